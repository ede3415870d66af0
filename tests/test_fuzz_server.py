"""The socket fuzzer (tests/fuzz_server.py) in short runs with fixed seeds,
and proof that its checks catch what they are there to catch. Longer runs:
``make fuzz``."""

from __future__ import annotations

import dataclasses
import logging
import random
import sys

import pytest

from kvserver.commands import COMMANDS
from tests.fuzz_server import FuzzFailure, ModelClient, run_fuzz, unhandled

RUN_SECONDS = 2.5


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzing_leaves_both_ports_serving_and_the_model_keys_intact(tmp_path, seed):
    # run_fuzz raises FuzzFailure on any broken promise: PING on both ports,
    # the model keys on both ports, the log records, the replayed keyspace.
    report = run_fuzz(tmp_path, RUN_SECONDS, seed)
    assert set(report.inputs) == {"valid", "mutated", "random", "disconnect", "oversized"}, report.summary()
    assert report.total_inputs > 1000, report.summary()
    assert report.model_ops > 300, report.summary()
    assert report.closed_by_server > 0, report.summary()  # protocol errors did hang up
    assert report.keys_replayed > 0, report.summary()
    assert report.model_keys_checked == 48


def test_a_command_that_raises_fails_the_run(tmp_path, monkeypatch):
    # STRLEN is fuzz traffic only: the model never sends it, so the failure
    # can come only from the server's log (dispatch logs "internal error").
    def boom(session, args):
        raise KeyError("planted bug")

    monkeypatch.setitem(COMMANDS, b"STRLEN", dataclasses.replace(COMMANDS[b"STRLEN"], func=boom))
    with pytest.raises(FuzzFailure, match="unhandled exceptions logged.*internal error"):
        run_fuzz(tmp_path, 1.0, seed=3)


def test_the_model_check_sees_a_value_changed_behind_its_back(start_server):
    server = start_server()
    model = ModelClient(server.port, server.resp_port, random.Random(5))
    for _ in range(300):
        model.step()
    model.verify()
    key = next(iter(model.model))
    other = server.client()
    assert other.call(b"SET " + key + b" changed") == b"OK"
    with pytest.raises(FuzzFailure, match="the model says"):
        model.verify()
    model.close()


def test_only_unexpected_exceptions_count_as_unhandled():
    def record(level, message, exc_info=None):
        return logging.LogRecord("kvserver.x", level, __file__, 1, message, (), exc_info)

    try:
        raise ValueError("x")
    except ValueError:
        exc_info = sys.exc_info()
    expected = [
        record(logging.WARNING, "closing, its unparsed input passed 1048576 bytes"),
        record(logging.WARNING, "failed AUTH from 127.0.0.1:1"),
    ]
    bad = [
        record(logging.ERROR, "internal error running 'get'", exc_info),
        record(logging.ERROR, "worker failed", exc_info),
        record(logging.CRITICAL, "something", exc_info),
    ]
    assert unhandled(expected) == []
    assert len(unhandled(expected + bad)) == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_strangers_and_authenticated_clients_with_requirepass(tmp_path, seed):
    # run_auth_fuzz raises FuzzFailure if a client that never authenticated
    # changed a key or got past Redis's pre-AUTH limits, if AUTH then a big
    # pipelined SET failed, or if failed AUTHs were not bounded in the log.
    from kvserver.commands import connection as connection_commands
    from tests.fuzz_server import run_auth_fuzz

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connection_commands, "AUTH_FAILURE_DELAY_S", 0.0)  # keep the run short
        counts = run_auth_fuzz(tmp_path, 1.5, seed)
    assert counts["limits"] > 5 and counts["guesses"] > 20, counts
    assert counts["authenticated"] + counts["authenticated_refused"] > 3, counts
