"""Shutdown within one deadline (shutdown-timeout), the log closed safely
under the write lock, and clients turned away when no thread can start for
them. In-process servers; tests/test_restart.py has the real-process side."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from kvserver import errors
from kvserver.session import Session
from tests.resp_client import RawRespClient
from tests.support import wait_for

TIMEOUT_S = 0.5  # the shutdown-timeout these servers get
# A shutdown may overrun its timeout by the time it gives a write under way
# (server.CLOSE_LOCK_MIN_WAIT_S) and thread wake-ups on a loaded machine.
OVERRUN_S = 2.0


class _Never:
    """In place of ServerState.stopping: a DEBUG SLEEP that a shutdown
    cannot wake, as a command that runs long would be."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def wait(self, timeout: float) -> bool:
        return self.release.wait(timeout)

    def set(self) -> None:
        pass  # shutdown's wake-up is lost


def test_workers_busy_past_the_deadline_do_not_hold_the_shutdown_up(start_server, caplog):
    # Before: the grace period was waited three times (drain, force, leave),
    # then each busy worker was joined for a whole grace period in turn.
    running = start_server(shutdown_timeout_seconds=TIMEOUT_S)
    server = running.server
    stuck = _Never()
    server.state.stopping = stuck
    sleepers = [RawRespClient(running.resp_port) for _ in range(6)]
    for client in sleepers:
        client.send("DEBUG", "SLEEP", "600")
    wait_for(lambda: sum(s.last_command == "debug" for s in server.state.sessions()) == 6, "six asleep")
    writer = RawRespClient(running.resp_port)
    assert writer.call("SET", "acked", "1") == b"+OK\r\n"
    writer.close()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="kvserver"):
        running.stop()
    assert time.monotonic() - started < TIMEOUT_S + OVERRUN_S
    assert "log flushed and closed" in caplog.text
    assert "6 workers still busy at the shutdown deadline" in caplog.text
    assert b"acked" in open(server.config.aof_path, "rb").read()
    stuck.release.set()
    for client in sleepers:
        client.close()


def test_debug_sleep_is_woken_by_shutdown(start_server):
    running = start_server()  # shutdown-timeout 10 s, the default
    server = running.server
    sleeper = RawRespClient(running.resp_port)
    sleeper.send("DEBUG", "SLEEP", "600")
    wait_for(lambda: any(s.last_command == "debug" for s in server.state.sessions()), "asleep")
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < OVERRUN_S  # not the 10 s deadline
    assert sleeper.read_reply() == b"+OK\r\n"
    sleeper.close()


def test_the_log_is_closed_under_the_write_lock_and_later_writes_are_refused(start_server):
    running = start_server(shutdown_timeout_seconds=TIMEOUT_S)
    server = running.server
    client = RawRespClient(running.resp_port)
    assert client.call("SET", "before", "1") == b"+OK\r\n"
    client.close()
    lock_held_at_close = []
    real_close = server.aof.close

    def close() -> None:
        # RLock._is_owned: does the closing thread hold the write lock?
        lock_held_at_close.append(server.keyspace.write_lock._is_owned())
        real_close()

    server.aof.close = close
    running.stop()
    assert lock_held_at_close == [True]  # no write can be half-way through the log
    logged = open(server.config.aof_path, "rb").read()
    # A worker left running past the deadline writes after the close: refused.
    late = Session(server.keyspace, 999, server=server.state)
    reply = server.dispatcher.execute(late, [b"SET", b"late", b"1"])
    assert reply.message == errors.log_write_failed(errors.AOF_CLOSED).message
    assert server.keyspace.dbs[0].lookup(b"late", server.keyspace.clock()) is None  # undone
    assert open(server.config.aof_path, "rb").read() == logged


def test_config_get_and_set_shutdown_timeout_as_redis(side_by_side):
    side_by_side.both("CONFIG", "GET", "shutdown-timeout")
    side_by_side.both("CONFIG", "SET", "shutdown-timeout", "-1")
    side_by_side.both("CONFIG", "SET", "shutdown-timeout", "2.5")
    side_by_side.both("CONFIG", "SET", "shutdown-timeout", "2147483648")
    side_by_side.both("CONFIG", "SET", "shutdown-timeout", "3")
    side_by_side.both("CONFIG", "GET", "shutdown-timeout")
    side_by_side.both("CONFIG", "SET", "shutdown-timeout", "10")


def test_config_set_shutdown_timeout_applies_to_the_next_shutdown(start_server):
    running = start_server()  # 10 s
    server = running.server
    client = RawRespClient(running.resp_port)
    assert client.call("CONFIG", "SET", "shutdown-timeout", "0") == b"+OK\r\n"
    server.state.stopping = _Never()
    sleeper = RawRespClient(running.resp_port)
    sleeper.send("DEBUG", "SLEEP", "600")
    wait_for(lambda: any(s.last_command == "debug" for s in server.state.sessions()), "asleep")
    client.close()
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < OVERRUN_S
    server.state.stopping.release.set()
    sleeper.close()


# -- no thread for a new client ----------------------------------------------------------


class _NoThreads(threading.Thread):
    """A thread that cannot start, as under ``ulimit -v`` or ``ulimit -u``."""

    def start(self) -> None:
        raise RuntimeError("can't start new thread")


def test_a_client_no_thread_can_serve_is_refused_counted_and_logged_once(start_server, caplog):
    # Before: the RuntimeError was taken for "pool is shutting down": the
    # client was dropped without a word, the pool counted a worker that
    # never ran, and shutdown failed ("cannot join thread before it is started").
    running = start_server(shutdown_timeout_seconds=TIMEOUT_S)
    server = running.server
    admin = RawRespClient(running.resp_port)
    assert admin.call("PING") == b"+PONG\r\n"
    workers = server.pool.size
    server.pool.thread_factory = _NoThreads
    with caplog.at_level(logging.INFO, logger="kvserver"):
        for _ in range(5):
            refused = RawRespClient(running.resp_port)
            assert refused.read_reply() == b"-" + errors.WORKER_START_FAILED.encode() + b"\r\n"
            refused.close()
        assert server.pool.size == workers
        info = admin.call("INFO", "stats")
        assert b"rejected_connections:5\r\n" in info
        assert b"worker_threads" not in info or b"worker_threads:%d\r\n" % workers in info
        assert caplog.text.count("cannot start a thread for new clients") == 1  # not once per client
        server.pool.thread_factory = threading.Thread
        fine = RawRespClient(running.resp_port)
        assert fine.call("PING") == b"+PONG\r\n"
        fine.close()
        admin.close()
        running.stop()
    assert "log flushed and closed" in caplog.text
    assert "Traceback" not in caplog.text and "cannot join" not in caplog.text


# A memory limit (ulimit -v) under which the server starts but runs out of
# room for thread stacks (8 MiB each, RLIMIT_STACK) after a few dozen
# clients, with one malloc arena so that the arenas do not take it all.
MEMORY_LIMIT_BYTES = 400 * 1024 * 1024
THREAD_STACK_BYTES = 8 * 1024 * 1024
CLIENTS_UNDER_LIMIT = 300


def test_under_a_real_memory_limit_clients_past_it_are_refused_and_shutdown_is_clean(tmp_path, server_process):
    import resource
    import signal

    def limit() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_STACK, (THREAD_STACK_BYTES, THREAD_STACK_BYTES))
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))

    try:
        proc = server_process(tmp_path / "a.aof", env={"MALLOC_ARENA_MAX": "1"}, preexec_fn=limit)
    except RuntimeError as exc:
        pytest.skip(f"kvserver does not start under a {MEMORY_LIMIT_BYTES >> 20} MiB limit here: {exc}")
    first = RawRespClient(proc.resp_port)
    assert first.call("PING") == b"+PONG\r\n"
    served, refused = [first], 0
    for _ in range(CLIENTS_UNDER_LIMIT):
        client = RawRespClient(proc.resp_port)
        client.send("PING")
        reply = client.read_reply()
        if reply == b"+PONG\r\n":
            served.append(client)
        else:
            assert reply == b"-" + errors.WORKER_START_FAILED.encode() + b"\r\n"
            refused += 1
            client.close()
    if not refused:
        pytest.skip(f"{CLIENTS_UNDER_LIMIT} threads fit in {MEMORY_LIMIT_BYTES >> 20} MiB here")
    info = first.call("INFO")
    assert b"rejected_connections:%d\r\n" % refused in info
    workers = int(info.split(b"worker_threads:")[1].split(b"\r\n")[0])
    assert workers == len(served)  # not the clients that were refused
    for client in served:
        client.close()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish() == 0
    assert b"log flushed and closed" in proc.output
    assert proc.output.count(b"cannot start a thread for new clients") == 1
    assert b"Traceback" not in proc.output
