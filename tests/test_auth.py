"""--requirepass: nothing but AUTH, HELLO AUTH and QUIT until the password is given."""

from __future__ import annotations

import time

from tests.resp_client import RawRespClient
from tests.support import resp

SECRET = "s3cret pass"  # a space: quoting works on the text port too


def test_text_port_needs_auth_first(start_server):
    server = start_server(requirepass=SECRET)
    client = server.client()
    assert client.call("GET a") == b"NOAUTH Authentication required."
    assert client.call("SET a 1") == b"NOAUTH Authentication required."
    assert client.call("GET") == b"ERR wrong number of arguments for 'get' command"  # arity first, as Redis
    assert client.call("AUTH wrong") == b"WRONGPASS invalid username-password pair or user is disabled."
    assert client.call(f'AUTH "{SECRET}"') == b"OK"
    assert client.call("SET a 1") == b"OK"
    assert client.call("GET a") == b"1"


def test_resp_port_auth_hello_and_reset(start_server):
    server = start_server(requirepass=SECRET)
    client = RawRespClient(server.resp_port)
    assert client.call("PING") == b"-NOAUTH Authentication required.\r\n"
    assert client.call("HELLO", "3", "AUTH", "default", "nope").startswith(b"-WRONGPASS")
    assert client.call("HELLO", "2", "AUTH", "default", SECRET).startswith(b"*14\r\n")
    assert client.call("PING") == b"+PONG\r\n"
    assert client.call("RESET") == b"+RESET\r\n"
    assert client.call("PING") == b"-NOAUTH Authentication required.\r\n"  # RESET forgets AUTH
    assert client.call("AUTH", "default", SECRET) == b"+OK\r\n"
    assert client.call("AUTH", "someone", SECRET).startswith(b"-WRONGPASS")
    other = RawRespClient(server.resp_port)  # each connection authenticates itself
    assert other.call("GET", "a") == b"-NOAUTH Authentication required.\r\n"


def test_quit_works_without_auth(start_server):
    server = start_server(requirepass=SECRET)
    client = server.client()
    client.send(b"QUIT\r\n")
    assert client.read_until_closed() == b"OK\r\n"


def test_a_wrong_password_is_slowed_down_and_logged(start_server, caplog):
    server = start_server(requirepass=SECRET)
    client = server.client()
    started = time.monotonic()
    assert client.call("AUTH nope").startswith(b"WRONGPASS")
    assert time.monotonic() - started >= 0.1
    assert any("failed AUTH from 127.0.0.1:" in r.getMessage() for r in caplog.records)


def test_no_password_configured_keeps_redis_replies(side_by_side):
    side_by_side.both("AUTH", "x")
    side_by_side.both("AUTH", "default", "anything")
    side_by_side.both("AUTH", "nobody", "x")


def test_requirepass_from_the_environment(tmp_path, server_process):
    # The password need not appear in ps: the environment variable works.
    proc = server_process(tmp_path / "a.aof", env={"KVSERVER_REQUIREPASS": SECRET})
    assert SECRET not in open(f"/proc/{proc.proc.pid}/cmdline").read()
    client = proc.client()
    assert client.call("GET a") == b"NOAUTH Authentication required."
    assert client.call(f'AUTH "{SECRET}"') == b"OK"
    client.close()


def test_config_get_shows_the_access_settings(start_server):
    server = start_server(requirepass=SECRET, max_clients=77, tcp_keepalive_seconds=60, timeout_seconds=5)
    client = RawRespClient(server.resp_port)
    client.call("AUTH", SECRET)
    assert client.call("CONFIG", "GET", "maxclients") == b"*2\r\n$10\r\nmaxclients\r\n$2\r\n77\r\n"
    assert client.call("CONFIG", "GET", "tcp-keepalive") == b"*2\r\n$13\r\ntcp-keepalive\r\n$2\r\n60\r\n"
    assert client.call("CONFIG", "GET", "timeout") == b"*2\r\n$7\r\ntimeout\r\n$1\r\n5\r\n"
    assert client.call("CONFIG", "GET", "protected-mode") == b"*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n"


# -- before AUTH: Redis's limits on what a stranger may send (CVE-2021-32675) ----------

HELLO_NOAUTH = (
    b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    b"HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
    b"the RESP protocol version at the same time\r\n"
)


def _closed_after(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh RESP connection; all the server sends before
    it closes the connection (a test timeout if it never does)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_before_auth_a_long_array_or_a_big_bulk_is_a_protocol_error(start_server):
    server = start_server(requirepass=SECRET)
    port = server.resp_port
    eleven = b"*11\r\n" + b"$1\r\nx\r\n" * 11  # a whole request: NOAUTH without the limit
    assert _closed_after(port, eleven) == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    big = b"*2\r\n$4\r\nAUTH\r\n$16385\r\n" + b"x" * 16385 + b"\r\n"
    assert _closed_after(port, big) == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    # The limits themselves are allowed, as in Redis: 10 elements, 16384 bytes.
    client = RawRespClient(port)
    assert client.call("MGET", *["k"] * 9) == b"-NOAUTH Authentication required.\r\n"
    assert client.call("AUTH", "p" * 16384).startswith(b"-WRONGPASS")
    # The full limits once authenticated.
    assert client.call("AUTH", SECRET) == b"+OK\r\n"
    assert client.call("SET", "k", "v" * 100_000) == b"+OK\r\n"
    assert client.call("MSET", *["k", "v"] * 20) == b"+OK\r\n"


def test_before_auth_a_text_line_over_16_kib_is_refused_and_closed(start_server):
    server = start_server(requirepass=SECRET)
    client = server.client()
    client.send(b"GET " + b"k" * (16 * 1024) + b"\r\n")
    assert client.read_until_closed() == b"ERR Protocol error: too big inline request\r\n"
    client = server.client()
    assert client.call(f'AUTH "{SECRET}"') == b"OK"
    assert client.call(b"SET k " + b"v" * 40_000) == b"OK"  # the 64 KiB limit again


def test_auth_then_a_big_request_pipelined_in_one_write_works(start_server):
    # The reactor parses ahead of the worker: the SET behind the AUTH must
    # be judged after the AUTH has run, not by the rules for strangers.
    server = start_server(requirepass=SECRET)
    client = RawRespClient(server.resp_port)
    value = b"v" * 1_000_000
    pipeline = (
        resp("AUTH", SECRET) + resp("SET", "big", value) + resp("MSET", *["a", "1"] * 30) + resp("STRLEN", "big")
    )
    client.sock.sendall(pipeline)
    assert [client.read_reply() for _ in range(4)] == [b"+OK\r\n", b"+OK\r\n", b"+OK\r\n", b":1000000\r\n"]
    text = server.client()
    text.send(f'AUTH "{SECRET}"\r\nSET t {"w" * 30_000}\r\nSTRLEN t\r\n'.encode())
    assert [text.read_line() for _ in range(3)] == [b"OK", b"OK", b"30000"]


def test_reset_brings_the_limits_for_strangers_back(start_server):
    server = start_server(requirepass=SECRET)
    client = RawRespClient(server.resp_port)
    assert client.call("AUTH", SECRET) == b"+OK\r\n"
    assert client.call("RESET") == b"+RESET\r\n"
    assert client.call("PING") == b"-NOAUTH Authentication required.\r\n"
    client.sock.sendall(b"*11\r\n" + b"$1\r\nx\r\n" * 11)
    assert client.read_reply() == b"-ERR Protocol error: unauthenticated multibulk length\r\n"


def test_hello_before_auth_is_refused_and_changes_nothing(start_server):
    server = start_server(requirepass=SECRET)
    client = RawRespClient(server.resp_port)
    assert client.call("HELLO", "3", "SETNAME", "x") == HELLO_NOAUTH
    assert client.call("HELLO") == HELLO_NOAUTH
    assert client.call("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"  # checked first, as Redis
    assert client.call("AUTH", SECRET) == b"+OK\r\n"
    assert client.call("CLIENT", "GETNAME") == b"$-1\r\n"  # no name, and still RESP2:
    assert client.call("CLIENT", "INFO").split(b" resp=")[1].startswith(b"2 ")
    other = RawRespClient(server.resp_port)
    assert other.call("HELLO", "3", "SETNAME", "y", "AUTH", "default", SECRET).startswith(b"%7\r\n")
    assert other.call("CLIENT", "GETNAME") == b"$1\r\ny\r\n"


def test_before_auth_kvserver_answers_as_redis(start_server, redis_server_port):
    # The redis-server fixture has no password: start one of our own with one
    # (redis_server_port only for its skip when redis-server is missing).
    import shutil
    import socket
    import subprocess

    from tests.support import wait_for

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--requirepass", SECRET],
        stdout=subprocess.DEVNULL,
    )
    try:
        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(up, "redis-server with requirepass")
        ours = RawRespClient(start_server(requirepass=SECRET).resp_port)
        theirs = RawRespClient(port)
        for args in (("HELLO", "3", "SETNAME", "x"), ("HELLO",), ("HELLO", "3", "AUTH", "default", "nope")):
            assert ours.call(*args) == theirs.call(*args), args
        kv_port = ours.sock.getpeername()[1]
        for hostile in (b"*11\r\n", b"*1\r\n$16385\r\n"):
            assert _closed_after(kv_port, hostile) == _closed_after(port, hostile), hostile
    finally:
        proc.terminate()
        proc.wait(10)
