"""A client's pipelined requests run as one batch with one log append
(Dispatcher.begin_batch): what the log holds, what a refused append undoes,
and where a batch has to end early."""

from __future__ import annotations

import socket
import threading

import pytest

from kvserver import aof as aof_module
from kvserver.dispatch import MAX_BATCH_COMMANDS
from kvserver.protocol import Status
from kvserver.protocol.resp import encode_command
from tests.conftest import REPLY_TIMEOUT_S
from tests.resp_client import RawRespClient
from tests.support import DiskFull, Harness, error_text, resp, wait_for

OK = Status("OK")
SELECT_0 = resp("SELECT", "0")  # before the first record, as Redis


class CountingWrites:
    """Stands in for ``os.write``: counts the writes to one descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.count = 0
        self.real_write = aof_module.os.write

    def __call__(self, fd, data):
        if fd == self.fd:
            self.count += 1
        return self.real_write(fd, data)


def test_a_pipelined_batch_is_one_append_of_the_same_records(kv, tmp_path, monkeypatch):
    commands = [("SET", "a", "1"), ("INCR", "n"), ("LPUSH", "l", "x"), ("GET", "a"), ("HSET", "h", "f", "v")]
    alone = Harness(tmp_path / "alone.aof")
    for args in commands:
        alone(*args)
    writes = CountingWrites(kv.aof._fd)
    monkeypatch.setattr(aof_module.os, "write", writes)
    assert kv.pipeline(*commands) == [OK, 1, 1, b"1", 1]
    assert writes.count == 1
    assert kv.log() == alone.log()  # byte for byte what the commands log one by one
    alone.aof.close()


def test_a_refused_append_undoes_the_batch_and_answers_each_command_from_the_first_change(kv, monkeypatch):
    kv("SET", "k", "old")
    before = kv.log()
    disk = DiskFull(kv.aof._fd)
    monkeypatch.setattr(aof_module.os, "write", disk)
    replies = kv.pipeline(("GET", "k"), ("SET", "k", "new"), ("INCR", "n"), ("GET", "k"), ("LPUSH", "l", "a"))
    assert replies[0] == b"old"  # before anything changed: its reply stands
    for reply in replies[1:]:  # the GET too: it saw a change that never was
        assert error_text(reply).startswith("MISCONF")
    disk.allow = None
    assert kv("GET", "k") == b"old"
    assert kv("EXISTS", "n", "l") == 0
    assert kv.log() == before
    assert kv.pipeline(("SET", "k", "new"), ("INCR", "n")) == [OK, 1]
    assert kv.log_after_setup(before) == resp("SET", "k", "new") + resp("SET", "n", "1")  # INCR logs its result


def test_a_command_failing_inside_a_batch_fails_alone(kv):
    replies = kv.pipeline(("SET", "k", "v"), ("LPUSH", "k", "x"), ("SET", "j", "w"))
    assert replies[0] == OK and replies[2] == OK
    assert error_text(replies[1]).startswith("WRONGTYPE")
    assert kv.log() == SELECT_0 + resp("SET", "k", "v") + resp("SET", "j", "w")


def test_a_command_that_cannot_run_in_a_batch_ends_it_first(kv, monkeypatch):
    writes = CountingWrites(kv.aof._fd)
    monkeypatch.setattr(aof_module.os, "write", writes)
    replies = kv.pipeline(
        ("SET", "a", "1"), ("SELECT", "2"), ("SET", "b", "2"), ("MULTI",), ("INCR", "n"), ("EXEC",), ("GET", "b")
    )
    assert replies == [OK, OK, OK, OK, Status("QUEUED"), [1], b"2"]
    assert kv.log() == SELECT_0 + resp("SET", "a", "1") + resp("SELECT", "2") + resp("SET", "b", "2") + resp("SET", "n", "1")
    assert writes.count == 3  # SET a; then SET b, ended by MULTI; then EXEC's own


def test_an_expiry_inside_a_batch_is_logged_where_it_happened(kv):
    kv("SET", "old", "v", "PX", "100")
    before = kv.log()
    kv.clock.advance(200)
    assert kv.pipeline(("SET", "a", "1"), ("GET", "old"), ("SET", "b", "2")) == [OK, None, OK]
    assert kv.log_after_setup(before) == resp("SET", "a", "1") + resp("DEL", "old") + resp("SET", "b", "2")


def test_a_long_pipeline_is_cut_into_batches(kv, monkeypatch):
    writes = CountingWrites(kv.aof._fd)
    monkeypatch.setattr(aof_module.os, "write", writes)
    count = 2 * MAX_BATCH_COMMANDS + 10
    assert kv.pipeline(*[("INCR", "n")] * count) == list(range(1, count + 1))
    assert writes.count == 3
    assert kv.log() == SELECT_0 + b"".join(resp("SET", "n", str(i)) for i in range(1, count + 1))


def test_a_refused_append_at_a_cut_answers_the_command_that_cut_it(kv, monkeypatch):
    # The batch is written after its last command, before that reply is on
    # the list: that reply must become the error too.
    monkeypatch.setattr(aof_module.os, "write", DiskFull(kv.aof._fd))
    replies = kv.pipeline(*[("INCR", "n")] * (MAX_BATCH_COMMANDS + 1))
    assert all(error_text(reply).startswith("MISCONF") for reply in replies)


def test_blocked_clients_are_served_after_each_write_of_a_pipeline(start_server):
    # As Redis: the waiter is served after the first LPUSH, so it gets "a"
    # and "b" stays (a batch served at its end would hand over "b").
    server = start_server()
    waiter = RawRespClient(server.resp_port)
    pusher = RawRespClient(server.resp_port)
    waiter.send("BLPOP", "k", "0")
    wait_for(lambda: server.server.keyspace.blocked_clients == 1, "the BLPOP to block")
    pusher.sock.sendall(encode_command([b"LPUSH", b"k", b"a"]) + encode_command([b"LPUSH", b"k", b"b"]))
    assert pusher.read_reply() == b":1\r\n"
    assert pusher.read_reply() == b":1\r\n"
    assert waiter.read_reply() == b"*2\r\n$1\r\nk\r\n$1\r\na\r\n"
    assert pusher.call("LRANGE", "k", "0", "-1") == b"*1\r\n$1\r\nb\r\n"
    waiter.close()
    pusher.close()


def test_other_clients_never_see_a_batch_before_it_is_logged(start_server, monkeypatch):
    # A client pipelines SET k new + INCR behind a stuck log write; another
    # reads k meanwhile: the old value (or the new one, once logged), never
    # the new one while the append has not returned.
    server = start_server()
    setup = RawRespClient(server.resp_port)
    assert setup.call("SET", "k", "old") == b"+OK\r\n"
    aof = server.server.aof
    real_write = aof_module.os.write
    entered, release = threading.Event(), threading.Event()

    def stuck_write(fd, data):
        if fd == aof._fd and b"new" in bytes(data):
            entered.set()
            release.wait(REPLY_TIMEOUT_S)
        return real_write(fd, data)

    monkeypatch.setattr(aof_module.os, "write", stuck_write)
    writer = RawRespClient(server.resp_port)
    writer.sock.sendall(encode_command([b"SET", b"k", b"new"]) + encode_command([b"INCR", b"n"]))
    assert entered.wait(REPLY_TIMEOUT_S)
    reader = socket.create_connection(("127.0.0.1", server.resp_port), timeout=0.3)
    reader.sendall(encode_command([b"GET", b"k"]))
    with pytest.raises(socket.timeout):  # it waits for the append rather than read ahead of it
        reader.recv(100)
    release.set()
    reader.settimeout(REPLY_TIMEOUT_S)
    assert reader.recv(100) == b"$3\r\nnew\r\n"
    assert writer.read_reply() == b"+OK\r\n"
    assert writer.read_reply() == b":1\r\n"
    for client in (setup, writer):
        client.close()
    reader.close()
