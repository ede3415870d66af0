"""Pending output and its limits (Redis's client-output-buffer-limit,
issue 7): a client that does not read what it asked for is disconnected
once it is too far behind; one that reads, however slowly, is not.

First ``Connection`` alone over a socketpair whose other end reads only
when told (the clock injected), then whole servers on port 0 with small
limits.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from kvserver import client as connection
from kvserver.client import Connection
from kvserver.protocol.wire import RESP
from tests.conftest import REPLY_TIMEOUT_S
from tests.resp_client import RawRespClient
from tests.support import resp as resp_command
from tests.support import wait_for

KB = 1024
MB = 1024 * 1024


# -- Connection alone ------------------------------------------------------------------------


class CountingSocket:
    """Stands in for a socket whose kernel buffer always has room."""

    def __init__(self) -> None:
        self.sends = 0

    def fileno(self) -> int:
        return -1

    def send(self, data) -> int:
        self.sends += 1
        return len(data)


@pytest.fixture
def pair():
    """A Connection on one end of a socketpair, the other end returned
    (read only when a test says so), and the watch_writable calls."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    watched: list[Connection] = []
    conn = Connection(ours, "peer", RESP, 1024, watched.append)
    conn.limits = {"normal": (0, 0, 0)}
    yield conn, theirs, watched
    ours.close()
    theirs.close()


def drain(sock: socket.socket) -> int:
    """Read everything the socket has now; the byte count."""
    sock.setblocking(False)
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except BlockingIOError:
        pass
    return total


def test_a_reply_the_kernel_takes_whole_costs_one_send_and_nothing_else():
    fake = CountingSocket()
    conn = Connection(fake, "peer", RESP, 1024, lambda c: pytest.fail("no wake-up needed"))
    for _ in range(3):
        assert conn.write(b"+OK\r\n")
    assert fake.sends == 3
    assert conn.pending_bytes == 0 and not conn.pending


def test_what_the_kernel_does_not_take_is_kept_and_the_reactor_asked_once(pair):
    conn, theirs, watched = pair
    conn.limits = {"normal": (64 * MB, 0, 0)}
    big = os.urandom(4 * MB)
    assert conn.write(big)
    assert 0 < conn.pending_bytes < len(big)
    assert conn.write(b"+OK\r\n")  # behind: queued after the rest, in order
    assert watched == [conn]  # asked once, until the reactor answers
    received = b""
    theirs.settimeout(REPLY_TIMEOUT_S)
    while len(received) < len(big) + 5:
        received += theirs.recv(1 << 20)
        conn.flush()
    assert received == big + b"+OK\r\n"
    assert conn.pending_bytes == 0 and not conn.pending


def test_behind_by_the_hard_limit_and_asked_for_more_disconnects(pair):
    conn, theirs, _ = pair
    conn.limits = {"normal": (1 * MB, 0, 0)}
    assert conn.write(os.urandom(4 * MB))  # one reply past the limit still goes out...
    assert conn.pending_bytes >= 1 * MB
    assert not conn.write(b"$1\r\nx\r\n")  # ...but not more on top of it
    assert conn.over_limit and conn.killed


def test_under_the_hard_limit_more_output_is_kept(pair):
    conn, theirs, _ = pair
    conn.limits = {"normal": (8 * MB, 0, 0)}
    for _ in range(6):
        assert conn.write(os.urandom(1 * MB))
    assert not conn.over_limit
    assert 0 < conn.pending_bytes <= 6 * MB
    assert drain(theirs) + conn.pending_bytes == 6 * MB  # nothing lost, nothing twice


def test_over_the_soft_limit_for_longer_than_its_seconds_disconnects(pair, monkeypatch):
    conn, theirs, _ = pair
    now = [1000.0]
    monkeypatch.setattr(connection, "_clock", lambda: now[0])
    conn.limits = {"normal": (64 * MB, 256 * KB, 10)}
    assert conn.write(os.urandom(2 * MB))
    assert conn.soft_since == 1000.0  # over since now
    now[0] += 10.0
    assert conn.flush()  # 10 s over: not yet (Redis: more than the seconds)
    now[0] += 0.5
    assert not conn.flush()
    assert conn.over_limit and conn.killed


def test_dropping_under_the_soft_limit_restarts_its_clock(pair, monkeypatch):
    conn, theirs, _ = pair
    now = [1000.0]
    monkeypatch.setattr(connection, "_clock", lambda: now[0])
    conn.limits = {"normal": (64 * MB, 256 * KB, 10)}
    assert conn.write(os.urandom(2 * MB))
    now[0] += 9.0
    drain(theirs)
    while conn.pending_bytes:  # the client catches up
        assert conn.flush()
        drain(theirs)
    assert conn.soft_since == 0.0
    assert conn.write(os.urandom(2 * MB))  # behind again: a fresh 10 s
    now[0] += 9.0
    assert conn.flush() and not conn.over_limit


def test_without_a_hard_limit_the_writer_waits_for_the_client(pair):
    conn, theirs, watched = pair
    conn.limits = {"normal": (0, 0, 0)}
    data = os.urandom(4 * MB)
    result = []
    writer = threading.Thread(target=lambda: result.append(conn.write(data)))
    writer.start()
    wait_for(lambda: watched, "the writer asked to be woken")
    assert writer.is_alive()  # blocked on the client, as a blocking send would be
    received = 0
    theirs.settimeout(REPLY_TIMEOUT_S)
    while received < len(data):
        received += len(theirs.recv(1 << 20))
        conn.write_watched = False
        conn.wake()  # what the reactor does once the socket has room
    writer.join(REPLY_TIMEOUT_S)
    assert result == [True] and conn.pending_bytes == 0


# -- whole servers ---------------------------------------------------------------------------

VALUE = os.urandom(128 * KB).hex().encode()  # 256 KiB
VALUE_REPLY = b"$%d\r\n%s\r\n" % (len(VALUE), VALUE)


def slow_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server is behind at once
    sock.settimeout(REPLY_TIMEOUT_S)
    sock.connect(("127.0.0.1", port))
    return sock


def read_until_closed(sock: socket.socket) -> int:
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


def info_field(client: RawRespClient, name: str) -> str:
    text = client.call("INFO", "stats").split(b"\r\n", 1)[1].decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)[name]


def test_a_client_that_never_reads_is_disconnected_past_the_hard_limit(start_server):
    running = start_server(client_output_buffer_limit=(1 * MB, 0, 0))
    server = running.server
    other = RawRespClient(running.resp_port)
    assert other.call("SET", "big", VALUE) == b"+OK\r\n"
    slow = slow_socket(running.resp_port)
    slow.sendall(resp_command("GET", "big") * 64)  # 16 MiB asked for, none read
    wait_for(lambda: server.state.client_output_buffer_limit_disconnections == 1, "disconnected")
    wait_for(lambda: len(server.reactor.connections) == 1, "its socket closed")
    got = read_until_closed(slow)  # the kernel's buffers, then the end
    assert got < 64 * len(VALUE_REPLY)
    assert other.call("GET", "big") == VALUE_REPLY  # everyone else carries on
    assert info_field(other, "client_output_buffer_limit_disconnections") == "1"
    other.close()
    slow.close()


def test_client_list_shows_the_output_a_client_has_not_read(start_server):
    running = start_server(client_output_buffer_limit=(64 * MB, 0, 0))
    other = RawRespClient(running.resp_port)
    assert other.call("SET", "big", VALUE) == b"+OK\r\n"
    slow = slow_socket(running.resp_port)
    # 16 MiB asked for: more than the kernel's buffers hold, under the limit.
    slow.sendall(resp_command("CLIENT", "SETNAME", "slow") + resp_command("GET", "big") * 64)
    fields = {}

    def slow_is_behind() -> bool:
        lines = [l for l in other.call("CLIENT", "LIST").split(b"\n") if b" name=slow " in l]
        if not lines:
            return False  # its CLIENT SETNAME has not run yet
        line = lines[0]
        fields.update(f.split(b"=", 1) for f in line.split())
        return int(fields[b"omem"]) > 0

    wait_for(slow_is_behind, "CLIENT LIST showing slow's unread replies")
    assert int(fields[b"oll"]) >= 1
    assert int(fields[b"omem"]) <= 64 * len(VALUE_REPLY)
    assert b"omem=0 " in other.call("CLIENT", "INFO")  # a client that reads has none
    slow.close()
    other.close()


def test_a_client_over_the_soft_limit_for_its_seconds_is_disconnected(start_server):
    running = start_server(client_output_buffer_limit=(0, 512 * KB, 0))
    server = running.server
    with socket.create_connection(("127.0.0.1", running.resp_port)) as setup:
        setup.sendall(resp_command("SET", "big", VALUE))
        assert setup.recv(16) == b"+OK\r\n"
    slow = slow_socket(running.resp_port)
    slow.sendall(resp_command("GET", "big") * 32)  # 8 MiB: far over 512 KiB, and it stays there
    wait_for(lambda: server.state.client_output_buffer_limit_disconnections == 1, "disconnected")
    assert read_until_closed(slow) < 32 * len(VALUE_REPLY)
    slow.close()


def test_a_slow_reader_that_keeps_up_is_not_disconnected(start_server):
    # Far behind for a moment (8 MiB asked at once, the soft limit 512 KiB)
    # but reading all along, 4 KiB at a time: under the soft limit's 5 s.
    running = start_server(client_output_buffer_limit=(0, 512 * KB, 5))
    server = running.server
    with socket.create_connection(("127.0.0.1", running.resp_port)) as setup:
        setup.sendall(resp_command("SET", "big", VALUE))
        assert setup.recv(16) == b"+OK\r\n"
    slow = slow_socket(running.resp_port)
    slow.sendall(resp_command("GET", "big") * 32)
    expected = VALUE_REPLY * 32
    received = bytearray()
    while len(received) < len(expected):
        chunk = slow.recv(4096)
        assert chunk, "disconnected"
        received += chunk
    assert received == expected
    slow.sendall(resp_command("PING"))
    assert slow.recv(16) == b"+PONG\r\n"
    assert server.state.client_output_buffer_limit_disconnections == 0
    slow.close()


def test_a_pipelining_reader_within_the_hard_limit_is_never_disconnected(start_server):
    # 64 MiB in all, through a 1 MiB hard limit: at most 512 KiB asked ahead.
    running = start_server(client_output_buffer_limit=(1 * MB, 0, 0))
    server = running.server
    client = RawRespClient(running.resp_port)
    assert client.call("SET", "big", VALUE) == b"+OK\r\n"
    for _ in range(128):
        client.send("GET", "big")
        client.send("GET", "big")
        assert client.read_reply() == VALUE_REPLY
        assert client.read_reply() == VALUE_REPLY
    assert server.state.client_output_buffer_limit_disconnections == 0
    client.close()


def test_with_no_limits_a_non_reading_client_is_held_but_the_server_still_stops(start_server):
    # client-output-buffer-limit normal 0 0 0 (Redis's default): never
    # disconnected; its worker waits for it, holding one batch, and
    # shutdown ends the wait before its deadline (shutdown-timeout).
    running = start_server(client_output_buffer_limit=(0, 0, 0), shutdown_timeout_seconds=0.5)
    server = running.server
    other = RawRespClient(running.resp_port)
    assert other.call("SET", "big", VALUE) == b"+OK\r\n"
    slow = slow_socket(running.resp_port)
    slow.sendall(resp_command("GET", "big") * 64)
    wait_for(lambda: any(c.pending_bytes for c in server.reactor.connections), "the slow client behind")
    assert other.call("PING") == b"+PONG\r\n"
    behind = [c for c in server.reactor.connections if c.pending_bytes]
    assert max(c.pending_bytes for c in behind) <= 2 * len(VALUE_REPLY)  # a batch, not 16 MiB
    other.close()
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < REPLY_TIMEOUT_S
    assert server.state.client_output_buffer_limit_disconnections == 0
    slow.close()


def test_config_set_client_output_buffer_limit_applies_at_once(start_server):
    running = start_server()
    server = running.server
    client = RawRespClient(running.resp_port)
    assert client.call("SET", "big", VALUE) == b"+OK\r\n"
    assert client.call("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0") == b"+OK\r\n"
    assert server.state.client_output_buffer_limits["normal"] == (1 * MB, 0, 0)
    slow = slow_socket(running.resp_port)
    slow.sendall(resp_command("GET", "big") * 64)
    wait_for(lambda: server.state.client_output_buffer_limit_disconnections == 1, "disconnected")
    client.close()
    slow.close()


# -- CONFIG GET / SET, beside Redis -----------------------------------------------------------

REDIS_DEFAULT_LIMITS = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"


@pytest.mark.parametrize(
    "value",
    [
        "normal 1mb 2mb 3",
        "NORMAL 1k 2kb 9999999999999 replica 1 1 1",
        "pubsub 1gb 0 0",
        "",
        "normal 1 2",
        "master 1 1 1",
        "normal -1 2 3",
        "normal 1 2 3.5",
        "normal 1x 2 3",
        "normal 1 2 -3",
        "  normal  5 6 7",
        "normal 1 2 3 foo 1 2 3",
    ],
)
def test_config_set_client_output_buffer_limit_as_redis(side_by_side, value):
    pair = side_by_side
    # Both start from the same value, so that CONFIG GET compares byte for byte.
    pair.both("CONFIG", "SET", "client-output-buffer-limit", REDIS_DEFAULT_LIMITS)
    try:
        pair.both("CONFIG", "SET", "client-output-buffer-limit", value)
        pair.both("CONFIG", "GET", "client-output-buffer-limit")
    finally:
        pair.redis.call("CONFIG", "SET", "client-output-buffer-limit", REDIS_DEFAULT_LIMITS)


def test_config_get_shows_kvserver_defaults(start_server):
    client = RawRespClient(start_server().resp_port)
    reply = client.call("CONFIG", "GET", "client-output-buffer-limit")
    assert b"normal 33554432 8388608 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60" in reply
    client.close()
