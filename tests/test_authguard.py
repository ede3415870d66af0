"""authguard.py: failed AUTHs are bounded per address and server-wide, and
logged one line a minute at most. A fake clock; no sleeping."""

from __future__ import annotations

import logging

from kvserver import authguard
from kvserver.authguard import AuthGuard, host_of
from tests.resp_client import RawRespClient

SECRET = "pw"


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(guard: AuthGuard, host: str, times: int) -> int:
    """Failed AUTHs from ``host``: how many had their password compared."""
    tried = 0
    for _ in range(times):
        allowed = guard.may_try(host)
        tried += allowed
        guard.failed(host, host + ":1", tried=allowed)
    return tried


def test_guesses_from_one_address_are_bounded_per_second():
    clock = Seconds()
    guard = AuthGuard(clock=clock)
    assert _fail(guard, "10.0.0.1", 1000) == authguard.FAILURE_BURST_PER_ADDRESS
    assert not guard.may_try("10.0.0.1")
    assert guard.may_try("10.0.0.2")  # another address is not held up
    clock.now += 1.0
    assert _fail(guard, "10.0.0.1", 1000) == authguard.FAILURES_PER_SECOND_PER_ADDRESS


def test_guesses_from_many_addresses_are_bounded_server_wide():
    clock = Seconds()
    guard = AuthGuard(clock=clock)
    tried = sum(_fail(guard, f"10.0.{i // 250}.{i % 250}", 3) for i in range(1000))
    assert tried == authguard.FAILURE_BURST
    clock.now += 1.0
    tried = sum(_fail(guard, f"10.1.{i // 250}.{i % 250}", 1) for i in range(1000))
    assert tried == authguard.FAILURES_PER_SECOND


def test_failures_are_logged_once_then_one_line_a_minute(caplog):
    clock = Seconds()
    guard = AuthGuard(clock=clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(30):  # 30 s of 100 failures a second
            for _ in range(100):
                guard.failed("127.0.0.1", "127.0.0.1:5000")
            clock.now += 1.0
        lines = [r.getMessage() for r in caplog.records]
        assert lines == ["failed AUTH from 127.0.0.1:5000"]
        clock.now += 30.0
        guard.failed("127.0.0.1", "127.0.0.1:5001")
    assert [r.getMessage() for r in caplog.records][1:] == [
        "3000 failed AUTH attempts from 127.0.0.1 in the last 60 seconds"
    ]


def test_the_address_table_is_bounded(monkeypatch):
    monkeypatch.setattr(authguard, "MAX_TRACKED_ADDRESSES", 100)
    guard = AuthGuard(clock=Seconds(), server_wide=(1e9, 10**9))
    for i in range(1000):
        guard.failed(f"h{i}", f"h{i}:1")
    assert len(guard._addresses) <= 100


def test_host_of():
    assert host_of("127.0.0.1:6379") == "127.0.0.1"
    assert host_of("[::1]:6379") == "[::1]"
    assert host_of("/tmp/sock") == "/tmp/sock"


def test_the_server_bounds_guesses_whatever_the_number_of_connections(start_server, monkeypatch, caplog):
    from kvserver.commands import connection as connection_commands

    monkeypatch.setattr(connection_commands, "AUTH_FAILURE_DELAY_S", 0.0)
    server = start_server(requirepass=SECRET)
    clock = Seconds()
    server.server.state.auth_guard = AuthGuard(clock=clock)
    clients = [RawRespClient(server.resp_port) for _ in range(20)]
    with caplog.at_level(logging.WARNING, logger="kvserver.commands.connection"):
        for client in clients:  # 20 connections x 10 wrong passwords
            for _ in range(10):
                assert client.call("AUTH", "guess").startswith(b"-WRONGPASS")
        # The bucket is empty: even the right password is not compared now.
        assert clients[0].call("AUTH", SECRET).startswith(b"-WRONGPASS")
        assert clients[0].call("HELLO", "3", "AUTH", "default", SECRET).startswith(b"-WRONGPASS")
        clock.now += 1.0  # a second later there are tokens again
        assert clients[0].call("AUTH", SECRET) == b"+OK\r\n"
    failures = [r for r in caplog.records if "failed AUTH" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    info = clients[0].call("INFO", "stats").decode()
    assert "\r\nacl_access_denied_auth:202\r\n" in info
    fields = [line.split(":")[0] for line in info.splitlines() if ":" in line]
    assert fields[-2:] == ["client_output_buffer_limit_disconnections", "acl_access_denied_auth"]
    clients[0].call("CONFIG", "RESETSTAT")
    assert "\r\nacl_access_denied_auth:0\r\n" in clients[0].call("INFO", "stats").decode()
