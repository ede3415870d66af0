"""kvserver.run (kvserver/api.py): a server started from code, in a thread
or a subprocess, stopped with its log closed however the block ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import redis

import kvserver
from kvserver.errors import AofError
from tests.conftest import TextClient
from tests.support import resp


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_thread_server_serves_both_ports_and_stops_with_its_temporary_log():
    with kvserver.run() as srv:
        assert srv.url == f"redis://127.0.0.1:{srv.port}/0"
        client = srv.client()
        assert client.set("k", "v") is True
        assert TextClient(srv.text_port).call("GET k") == b"v"
        assert redis.Redis.from_url(srv.url).get("k") == b"v"
        aof = srv.aof_path
        assert os.path.exists(aof)
        thread = srv.thread
    assert not thread.is_alive()
    assert _refused(srv.port) and _refused(srv.text_port)
    assert not os.path.exists(os.path.dirname(aof))  # the temporary log is gone


def test_a_given_log_is_kept_closed_and_whole_and_read_back(tmp_path):
    aof = tmp_path / "app.aof"
    with kvserver.run(aof=aof, appendfsync="always") as srv:
        srv.client().set("k", "v")
    assert aof.read_bytes().endswith(resp("SET", "k", "v"))
    with kvserver.run(aof=str(aof)) as srv:
        assert srv.client().get("k") == b"v"


def test_an_exception_in_the_block_still_stops_the_server_and_closes_the_log(tmp_path):
    aof = tmp_path / "app.aof"
    with pytest.raises(RuntimeError, match="boom"):
        with kvserver.run(aof=aof) as srv:
            srv.client().set("k", "v")
            raise RuntimeError("boom")
    assert srv.stopped and not srv.thread.is_alive()
    assert _refused(srv.port)
    assert aof.read_bytes().endswith(resp("SET", "k", "v"))  # flushed (everysec) at close
    with kvserver.run(aof=aof) as again:
        assert again.client().get("k") == b"v"


def test_options_are_config_fields_and_an_unknown_one_is_refused_at_once():
    with kvserver.run(requirepass="s3cret") as srv:
        with pytest.raises(redis.AuthenticationError):
            srv.client().ping()
        assert srv.client(password="s3cret").ping() is True
    with pytest.raises(TypeError, match="unknown option.*appendfsnyc"):
        kvserver.run(appendfsnyc="always").__enter__()


def test_a_damaged_log_raises_and_nothing_is_left_listening(tmp_path):
    aof = tmp_path / "bad.aof"
    aof.write_bytes(resp("SET", "a", "1") + b"garbage\r\n")
    with pytest.raises(AofError, match="kv-check-aof --fix"):
        with kvserver.run(aof=aof):
            pass
    with pytest.raises(RuntimeError, match="kv-check-aof --fix"):  # the child's log, quoted
        with kvserver.run(aof=aof, subprocess=True):
            pass


def test_subprocess_server_restarts_on_the_same_ports_and_log():
    with kvserver.run(subprocess=True, appendfsync="always") as srv:
        assert srv.pid != os.getpid()
        client = srv.client()
        client.rpush("q", "a", "b")
        old_pid, port, text_port = srv.pid, srv.port, srv.text_port
        srv.restart()
        assert (srv.port, srv.text_port) == (port, text_port) and srv.pid != old_pid
        assert client.lrange("q", 0, -1) == [b"a", b"b"]  # redis-py reconnects
        proc, aof = srv.proc, srv.aof_path
    assert proc.returncode == 0  # SIGTERM: a clean shutdown
    assert _refused(port)
    assert not os.path.exists(aof)


def test_a_killed_subprocess_server_does_not_touch_the_caller(tmp_path):
    aof = tmp_path / "app.aof"
    with kvserver.run(aof=aof, subprocess=True, appendfsync="always") as srv:
        srv.client().set("k", "v")
        srv.kill()
        assert srv.proc.returncode == -9
        srv.restart()  # the log survives a kill -9 under appendfsync always
        assert srv.client().get("k") == b"v"
    assert aof.exists()


def test_import_kvserver_and_the_plugin_stay_light():
    code = (
        "import sys, kvserver, kvserver.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith(('kvserver', 'redis'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['kvserver', 'kvserver.pytest_plugin']"
