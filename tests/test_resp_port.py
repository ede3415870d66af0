"""The RESP port: the same store as the text port, and Redis's exact bytes."""

from __future__ import annotations

import socket

from tests.resp_client import RawRespClient


def test_both_ports_share_one_keyspace(start_server):
    server = start_server()
    text = server.client()
    resp = RawRespClient(server.resp_port)
    assert text.call("SET shared hello") == b"OK"
    assert resp.call("GET", "shared") == b"$5\r\nhello\r\n"
    assert resp.call("SET", "other", "x y") == b"+OK\r\n"
    assert text.call("GET other") == b'"x y"'


def test_no_greeting_on_the_resp_port(start_server):
    server = start_server()
    resp = RawRespClient(server.resp_port)
    assert resp.call("PING") == b"+PONG\r\n"


def test_inline_commands_on_the_resp_port(start_server):
    server = start_server()
    sock = socket.create_connection(("127.0.0.1", server.resp_port), timeout=10)
    sock.sendall(b"SET a 1\r\nGET a\r\n")
    data = b""
    while data.count(b"\r\n") < 3:
        data += sock.recv(100)
    assert data == b"+OK\r\n$1\r\n1\r\n"


def test_pipelined_requests_answered_in_order(start_server):
    server = start_server()
    resp = RawRespClient(server.resp_port)
    for i in range(500):
        resp.send("SET", f"k{i}", f"v{i}")
        resp.send("GET", f"k{i}")
    for i in range(500):
        assert resp.read_reply() == b"+OK\r\n"
        assert resp.read_reply() == b"$%d\r\nv%d\r\n" % (len(f"v{i}"), i)


def test_replies_match_redis_byte_for_byte(side_by_side):
    for command in [
        ("SET", "a", "1"),
        ("GET", "a"),
        ("GET", "missing"),
        ("DEL", "a", "missing"),
        ("EXPIRE", "a", "10"),
        ("TTL", "a"),
        ("PING",),
        ("PING", "hello"),
        ("ECHO", "x"),
        ("FOO", "bar"),
        ("GET",),
        ("EXPIRE", "a", "notanumber"),
    ]:
        side_by_side.both(*command)


def test_protocol_errors_close_the_connection_as_redis(start_server):
    server = start_server()
    sock = socket.create_connection(("127.0.0.1", server.resp_port), timeout=10)
    sock.sendall(b"*1\r\n$-5\r\n")
    data = b""
    while chunk := sock.recv(100):
        data += chunk
    assert data == b"-ERR Protocol error: invalid bulk length\r\n"
