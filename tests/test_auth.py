"""--requirepass: nothing but AUTH, HELLO AUTH and QUIT until the password is given."""

from __future__ import annotations

import time

from tests.resp_client import RawRespClient

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
