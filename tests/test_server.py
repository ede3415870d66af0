"""End to end over real sockets: the text protocol as a person with nc sees it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.conftest import REPLY_TIMEOUT_S, TextClient
from tests.resp_client import RawRespClient
from tests.support import FakeClock

MINI_REDIS_SESSION = [
    ("SET name ABC", "OK"),
    ("GET name", "ABC"),
    ("DEL name", "1"),
    ("GET name", "nil"),
    ("SET temp hello", "OK"),
    ("EXPIRE temp 30", "1"),
    ("TTL temp", "30"),
    ("PING", "PONG"),
    ("QUIT", "OK"),
]


def test_the_mini_redis_session_byte_for_byte(start_server):
    server = start_server(clock=FakeClock())
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=REPLY_TIMEOUT_S)
    sock.sendall(b"".join(request.encode() + b"\n" for request, _ in MINI_REDIS_SESSION))
    received = b""
    while chunk := sock.recv(65536):  # QUIT: the server closes the connection
        received += chunk
    expected = b"OK mini-redis ready\r\n" + b"".join(r.encode() + b"\r\n" for _, r in MINI_REDIS_SESSION)
    assert received == expected


def test_ttl_counts_down_and_keys_expire_with_the_clock(start_server):
    clock = FakeClock()
    client = start_server(clock=clock).client()
    assert client.call("SET temp hello") == b"OK"
    assert client.call("EXPIRE temp 30") == b"1"
    clock.advance(2_400)
    assert client.call("TTL temp") == b"28"  # 27.6 s left, rounded as Redis rounds
    clock.advance(27_600)
    assert client.call("TTL temp") == b"0"  # at the deadline itself the key still lives (Redis)
    clock.advance(1)
    assert client.call("TTL temp") == b"-2"
    assert client.call("GET temp") == b"nil"
    assert client.call("TTL nosuchkey") == b"-2"
    assert client.call("SET plain v") == b"OK"
    assert client.call("TTL plain") == b"-1"


def test_set_clears_ttl_and_nonpositive_expire_deletes(start_server):
    client = start_server().client()
    client.call("SET k v")
    client.call("EXPIRE k 100")
    assert client.call("SET k w") == b"OK"
    assert client.call("TTL k") == b"-1"
    assert client.call("EXPIRE k 0") == b"1"
    assert client.call("GET k") == b"nil"
    assert client.call("EXPIRE k 10") == b"0"
    assert client.call("DEL k") == b"0"


def test_command_names_are_case_insensitive(start_server):
    client = start_server().client()
    assert client.call("set a 1") == b"OK"
    assert client.call("gEt a") == b"1"
    assert client.call("ping") == b"PONG"


@pytest.mark.parametrize(
    "line, reply",
    [
        ("FOO", "ERR unknown command 'FOO', with args beginning with: "),
        ("FOO a b", "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "),
        ("GET", "ERR wrong number of arguments for 'get' command"),
        ("GET a b", "ERR wrong number of arguments for 'get' command"),
        ("SET a", "ERR wrong number of arguments for 'set' command"),
        ("EXPIRE a", "ERR wrong number of arguments for 'expire' command"),
        ("EXPIRE a ten", "ERR value is not an integer or out of range"),
        ("EXPIRE a 1.5", "ERR value is not an integer or out of range"),
        ("EXPIRE a 99999999999999999999", "ERR value is not an integer or out of range"),
        ("EXPIRE a 9223372036854775807", "ERR invalid expire time in 'expire' command"),
        ('SET "a b', "ERR Protocol error: unbalanced quotes in request"),
        ("SET 'a b", "ERR Protocol error: unbalanced quotes in request"),
        ('SET "a"b c', "ERR Protocol error: unbalanced quotes in request"),
    ],
)
def test_malformed_requests_get_one_error_line_and_the_connection_goes_on(start_server, line, reply):
    client = start_server().client()
    assert client.call(line) == reply.encode()
    assert client.call("PING") == b"PONG"


def test_empty_lines_get_no_reply(start_server):
    client = start_server().client()
    client.send(b"\r\n\n   \t \r\nPING\r\n")
    assert client.read_line() == b"PONG"


def test_lf_and_crlf_and_split_packets(start_server):
    client = start_server().client()
    for byte in b"SET split value\r\nGET split\n":
        client.send(bytes([byte]))
    assert client.read_line() == b"OK"
    assert client.read_line() == b"value"


@pytest.mark.parametrize(
    "value",
    [
        b"hello world\n",
        b"",
        b"nil",
        b'say "hi"',
        b"it's",
        b"back\\slash",
        b"\x00\x01\xff binary",
        "caf\u00e9 \u2603".encode(),
        b"\t\r\n",
        b"plain",
    ],
)
def test_any_value_round_trips_through_get_and_set(start_server, value):
    client = start_server().client()
    from kvserver.protocol.text import quote

    assert client.call(b"SET k " + quote(value)) == b"OK"
    printed = client.call("GET k")
    # What GET printed, pasted back into SET, stores the same bytes.
    assert client.call(b"SET copy " + printed) == b"OK"
    assert client.call("GET copy") == printed
    assert printed == quote(value)


def test_quoted_keys_and_escapes(start_server):
    client = start_server().client()
    assert client.call(r'SET "key with spaces" "tab\there"') == b"OK"
    assert client.call(r"GET 'key with spaces'") == b'"tab\\there"'
    assert client.call(r'SET bytes "\x41\x42\x00"') == b"OK"
    assert client.call("GET bytes") == b'"AB\\x00"'


def test_nil_value_is_distinguishable_from_missing(start_server):
    client = start_server().client()
    client.call("SET k nil")
    assert client.call("GET k") == b'"nil"'
    assert client.call("GET missing") == b"nil"


def test_too_long_line_gets_an_error_and_only_that_connection_closes(start_server):
    server = start_server(max_inline_bytes=1024)
    bystander = server.client()
    bystander.call("SET keep me")
    offender = server.client()
    offender.send(b"SET k " + b"x" * 2000)  # no line end: the limit must still hold
    assert offender.read_until_closed() == b"ERR Protocol error: too big inline request\r\n"
    assert bystander.call("GET keep") == b"me"
    assert server.client().call("PING") == b"PONG"


def test_binary_junk_does_not_disturb_other_clients(start_server):
    server = start_server()
    bystander = server.client()
    junk = server.client()
    junk.send(bytes(range(256)) * 4 + b"\n\x00\x00\xff\xfe\r\n")
    bystander.call("SET safe 1")
    junk.send(b"PING\r\n")
    # Whatever the junk lines were answered with, each got one line and PING still works.
    while (line := junk.read_line()) != b"PONG":
        assert line.startswith(b"ERR ")
    assert bystander.call("GET safe") == b"1"


def test_client_vanishing_mid_line_and_mid_reply(start_server):
    server = start_server()
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(b"SET half-written val")  # no line end, then gone
    half.close()
    reset = socket.create_connection(("127.0.0.1", server.port))
    reset.sendall(b"SET big " + b"x" * 60000 + b"\r\n" + b"GET big\r\n" * 200)
    reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    reset.close()  # RST with replies still being sent
    client = server.client()
    assert client.call("GET half-written") == b"nil"  # an unfinished line is never run
    assert client.call("PING") == b"PONG"
    _wait_for(lambda: len(server.server.reactor.connections) == 1)


def test_pipelined_commands_are_answered_in_order(start_server):
    client = start_server().client()
    client.send(b"".join(b"SET k%d v%d\r\nGET k%d\r\n" % (i, i, i) for i in range(2000)))
    for i in range(2000):
        assert client.read_line() == b"OK"
        assert client.read_line() == b"v%d" % i


def test_fifty_concurrent_clients_get_their_own_replies(start_server):
    server = start_server()
    errors: list[str] = []

    def work(n: int) -> None:
        try:
            client = TextClient(server.port)
            for i in range(200):
                key, value = f"c{n}:k{i}", f"v{n}-{i}"
                assert client.call(f"SET {key} {value}") == b"OK"
                got = client.call(f"GET {key}").decode()
                if got != value:
                    errors.append(f"client {n} wanted {value} got {got}")
            client.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"client {n}: {exc!r}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert server.client().call("GET c49:k199") == b"v49-199"


def test_quit_closes_after_replying(start_server):
    client = start_server().client()
    client.send(b"QUIT\r\nPING\r\n")
    assert client.read_until_closed() == b"OK\r\n"


def test_worker_threads_are_reused_and_shrink_back(start_server):
    server = start_server(max_idle_workers=2)
    for _ in range(3):
        clients = [server.client() for _ in range(10)]
        for client in clients:
            assert client.call("PING") == b"PONG"
            client.close()
        server.clients.clear()
        _wait_for(lambda: len(server.server.reactor.connections) == 0)
    _wait_for(lambda: server.server.pool.size <= 2)


def test_back_pressure_a_client_that_never_reads_replies(start_server):
    server = start_server(max_queued_requests=64)
    hog = socket.create_connection(("127.0.0.1", server.port))
    hog.setblocking(False)
    sent = 0
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    # Keep writing until the server stops reading (the kernel buffers fill).
    while time.monotonic() < deadline:
        try:
            sent += hog.send(b"GET somekey\r\n" * 1000)
        except BlockingIOError:
            break
    assert sent > 0
    # The server is still serving everyone else.
    assert server.client().call("PING") == b"PONG"
    hog.close()


def _wait_for(predicate, timeout: float = REPLY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.01)


# -- limits ------------------------------------------------------------------------------------


def test_past_maxclients_new_connections_are_told_and_closed(start_server):
    server = start_server(max_clients=2)
    first, second = server.client(), server.client()
    refused = socket.create_connection(("127.0.0.1", server.port), timeout=REPLY_TIMEOUT_S)
    data = b""
    while chunk := refused.recv(100):
        data += chunk
    assert data == b"ERR max number of clients reached\r\n"
    resp = socket.create_connection(("127.0.0.1", server.resp_port), timeout=REPLY_TIMEOUT_S)
    assert resp.recv(100) == b"-ERR max number of clients reached\r\n"
    assert first.call("PING") == b"PONG" and second.call("PING") == b"PONG"
    assert server.server.state.rejected_connections == 2
    first.close()
    _wait_for(lambda: len(server.server.reactor.connections) == 1)
    assert server.client().call("PING") == b"PONG"  # room again


def test_a_client_past_the_query_buffer_limit_is_closed_alone(start_server):
    server = start_server(max_query_buffer_bytes=256 * 1024)
    bystander = server.client()
    hog = socket.create_connection(("127.0.0.1", server.resp_port), timeout=REPLY_TIMEOUT_S)
    # A 100 MB argument announced, 300 KiB of it sent. Without the limit the
    # server would wait for the rest and recv() below would time out. With
    # it, the server answers and hangs up; if some of our bytes were still
    # unread then, the kernel turns the close into a reset (as with Redis,
    # which does not even answer), so the reply may not arrive.
    hog.sendall(b"*2\r\n$3\r\nGET\r\n$100000000\r\n" + b"x" * (300 * 1024))
    data = b""
    try:
        while chunk := hog.recv(100):
            data += chunk
    except ConnectionResetError:
        pass
    assert data in (b"", b"-ERR Protocol error: client query buffer limit reached\r\n")
    _wait_for(lambda: len(server.server.reactor.connections) == 1)
    assert bystander.call("PING") == b"PONG"


def test_accepted_sockets_use_tcp_keepalive(start_server):
    server = start_server(tcp_keepalive_seconds=120)
    client = server.client()
    assert client.call("PING") == b"PONG"
    (conn,) = server.server.reactor.connections
    assert conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 120


def test_idle_clients_are_closed_after_the_timeout(start_server):
    server = start_server(timeout_seconds=0.5)
    idle = server.client()
    busy = server.client()
    assert idle.call("PING") == b"PONG"
    started = time.monotonic()
    # The busy client keeps talking past the timeout; the idle one says nothing.
    while time.monotonic() - started < 1.0:
        assert busy.call("PING") == b"PONG"
    assert idle.read_until_closed() == b""
    assert time.monotonic() - started >= 0.5
    assert busy.call("PING") == b"PONG"


# -- access --------------------------------------------------------------------------------------


def test_listening_on_several_addresses_ipv4_and_ipv6(start_server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("::1 is not configured here")
    server = start_server(bind="127.0.0.1 ::1")
    assert server.client().call("SET both yes") == b"OK"
    six = TextClient(server.port, host="::1")
    assert six.call("GET both") == b"yes"
    # Addresses as Redis writes them: the IPv6 host in brackets.
    port = six.sock.getsockname()[1]
    assert f"addr=[::1]:{port} laddr=[::1]:{server.port} ".encode() in six.call("CLIENT INFO")
    six.close()


class _FakeListener:
    """A listening socket whose one client appears to come from far away."""

    def __init__(self, peer):
        self.server_side, self.client_side = socket.socketpair()
        self.peer = peer
        self.done = False

    def accept(self):
        if self.done:
            raise BlockingIOError
        self.done = True
        return self.server_side, self.peer


@pytest.mark.parametrize(
    "peer, denied",
    [
        (("192.0.2.7", 4242), True),
        (("2001:db8::7", 4242, 0, 0), True),
        (("127.0.0.1", 4242), False),
        (("127.1.2.3", 4242), False),
        (("::1", 4242, 0, 0), False),
        (("::ffff:127.0.0.1", 4242, 0, 0), False),
    ],
)
def test_protected_mode_refuses_other_machines_with_redis_words(start_server, peer, denied):
    from kvserver.errors import PROTECTED_MODE_DENIED
    from kvserver.protocol.wire import RESP

    # As if bound beyond loopback with no password (the test itself listens
    # on loopback only; test_protected_mode_applies_... checks when it is on).
    server = start_server(resp_port=None)
    server.server.reactor._protected = True
    fake = _FakeListener(peer)
    server.server.reactor.call_soon(server.server.reactor._on_accept, fake, RESP)
    fake.client_side.settimeout(REPLY_TIMEOUT_S)
    if denied:
        data = b""
        while chunk := fake.client_side.recv(4096):
            data += chunk
        assert data == b"-" + PROTECTED_MODE_DENIED.encode() + b"\r\n"
    else:
        fake.client_side.sendall(b"PING\r\n")
        assert fake.client_side.recv(100) == b"+PONG\r\n"
    fake.client_side.close()


def test_protected_mode_applies_only_beyond_loopback_without_a_password():
    from kvserver.server import _all_loopback

    assert _all_loopback("127.0.0.1")
    assert _all_loopback("127.0.0.1 ::1")
    assert not _all_loopback("0.0.0.0")
    assert not _all_loopback("127.0.0.1 192.0.2.1")
    assert not _all_loopback("::")
    assert not _all_loopback("my-host.example")


def test_protected_mode_is_off_for_a_loopback_server(start_server):
    assert start_server().server.reactor._protected is False


def test_info_counts_rejected_connections_and_worker_threads(start_server):
    server = start_server(max_clients=1)
    client = server.client()
    refused = socket.create_connection(("127.0.0.1", server.port), timeout=REPLY_TIMEOUT_S)
    assert refused.recv(100).startswith(b"ERR max number of clients reached")
    info = client.call("INFO stats").decode()
    assert "rejected_connections:1" in info
    assert "worker_threads:1" in client.call("INFO clients").decode()


def test_info_counts_the_bytes_clients_sent_and_were_sent(start_server):
    server = start_server()
    client = RawRespClient(server.resp_port)
    client.call("CONFIG", "RESETSTAT")
    request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n" + b"v" * 1000 + b"\r\n"
    client.sock.sendall(request)
    assert client.read_reply() == b"+OK\r\n"
    info = client.call("INFO", "stats").decode()
    figures = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
    info_request = b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n"
    # RESETSTAT's request was read before the zeroing, its reply written
    # after: counted are the SET and INFO requests, and two +OKs.
    assert int(figures["total_net_input_bytes"]) == len(request) + len(info_request)
    assert int(figures["total_net_output_bytes"]) == 2 * len(b"+OK\r\n")
    client.close()


def test_maxmemory_refuses_writes_that_add_data_and_keeps_reads_and_deletes(start_server):
    server = start_server(maxmemory=20_000)
    client = RawRespClient(server.resp_port)
    value = "x" * 1000
    written = 0
    while (reply := client.call("SET", f"k{written}", value)) == b"+OK\r\n":
        written += 1
        assert written < 100, "maxmemory never refused a write"
    assert reply == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    assert 15 <= written <= 25  # ~1.1 kB a key against 20 kB
    assert client.call("GET", "k0") == b"$1000\r\n" + value.encode() + b"\r\n"  # reads go on
    assert client.call("APPEND", "k0", "more").startswith(b"-OOM")
    assert client.call("DEL", "k0", "k1", "k2", "k3", "k4") == b":5\r\n"  # deletes too
    assert client.call("SET", "again", value) == b"+OK\r\n"  # and then there is room
    info = client.call("INFO", "memory")
    assert b"maxmemory:20000" in info


def test_the_memory_estimate_follows_writes_deletes_and_undo(tmp_path):
    from kvserver.store import PER_KEY_OVERHEAD
    from tests.support import FailingAof, Harness

    kv = Harness(tmp_path / "a.aof", aof_class=FailingAof)
    keyspace = kv.keyspace
    assert keyspace.used_bytes == 0
    kv("SET", "a", "12345")
    kv("SET", "b", "x")
    kv("SET", "a", "1")  # overwrite: smaller
    kv("SELECT", "3")
    kv("SET", "c", "zz")
    kv("SWAPDB", "0", "3")
    kv("FLUSHDB")
    kv("DEL", "nothing")
    expected = sum(len(k) + len(v) + PER_KEY_OVERHEAD for db in keyspace.dbs for k, v in db.data.items())
    assert keyspace.used_bytes == expected
    kv.aof.failing = True  # a refused write is undone, and so is its estimate
    kv("SET", "big", "y" * 500)
    kv("DEL", "a")
    assert keyspace.used_bytes == expected
    kv.aof.failing = False
    kv("FLUSHALL")
    assert keyspace.used_bytes == 0


def test_info_commandstats_counts_calls_rejections_and_failures(start_server):
    server = start_server()
    client = RawRespClient(server.resp_port)
    client.call("SET", "a", "1")
    client.call("SET", "b", "x")
    client.call("GET")  # rejected: wrong arity
    client.call("INCR", "b")  # failed: not an integer
    stats = client.call("INFO", "commandstats").decode()
    assert "# Commandstats\r\n" in stats
    assert "cmdstat_set:calls=2,usec=" in stats
    assert "cmdstat_get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0" in stats
    assert ",rejected_calls=0,failed_calls=1" in stats.split("cmdstat_incr:")[1].split("\r\n")[0]
    assert "cmdstat_ping" not in stats  # never called: not listed
    assert "Commandstats" not in client.call("INFO").decode()  # not a default section
    assert "Commandstats" in client.call("INFO", "all").decode()
    client.call("CONFIG", "RESETSTAT")
    assert "cmdstat_set" not in client.call("INFO", "commandstats").decode()


def test_the_start_up_banner_says_what_runs_and_never_the_password(start_server, caplog):
    import logging
    import os

    from kvserver import __version__
    from tests.conftest import READY

    caplog.set_level(logging.INFO, logger="kvserver")
    server = start_server(requirepass="banner-secret", max_clients=100)
    client = server.client()
    assert client.call("AUTH banner-secret") == b"OK"  # serving: the banner is out
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith(f"kvserver {__version__} starting (answers as Redis 7.0.15; Python ")
    assert messages[0].endswith(f"pid {os.getpid()}")
    assert messages[1] == "no configuration file: command-line options and defaults"
    assert f"listening (text) on 127.0.0.1:{server.port}" in messages
    assert f"listening (RESP) on 127.0.0.1:{server.resp_port}" in messages
    assert "maxclients 100, maxmemory 0 (no limit), timeout 0 (never), slowlog-log-slower-than 10000 us" in messages
    assert "access: password required (requirepass is set)" in messages
    ready = [m for m in messages if READY.search(m.encode())]
    assert len(ready) == 1 and messages[-1] == ready[0]  # the banner comes first
    assert "banner-secret" not in caplog.text
    # Commands themselves log nothing at info or above.
    before = len(caplog.records)
    for line in ("SET k v", "GET k", "DEL k", "INFO", "SLOWLOG GET"):
        client.call(line)
    assert [r.getMessage() for r in caplog.records[before:] if r.levelno >= logging.INFO] == []


@pytest.mark.parametrize(
    "settings, access",
    [
        ({}, "no password, loopback only (protected mode yes)"),
        ({"protected_mode": False}, "no password, protected mode off: anyone who can connect has every key"),
        ({"bind": "0.0.0.0"}, "no password: protected mode refuses clients from other machines"),
    ],
)
def test_the_banner_says_who_may_connect(start_server, caplog, settings, access):
    import logging

    caplog.set_level(logging.INFO, logger="kvserver")
    server = start_server(**settings)
    server.client().call("PING")
    assert f"access: {access}" in [record.getMessage() for record in caplog.records]
