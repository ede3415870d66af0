"""Blocking commands (BLPOP ... BZMPOP) and the waiting behind them
(kvserver/blocking.py): replies side by side with redis-server, the order
blocked clients are served in, what the log holds, and how a wait ends."""

from __future__ import annotations

import os
import re
import socket
import threading
import time

import pytest
import redis

from kvserver.protocol import NullArray
from kvserver.server import load_log
from kvserver.store import Keyspace
from tests.resp_client import RawRespClient
from tests.support import dump, wait_for


def blocked_count(client: RawRespClient) -> int:
    info = client.call("INFO", "clients")
    return int(re.search(rb"blocked_clients:(\d+)", info).group(1))


def wait_blocked(client: RawRespClient, n: int) -> None:
    wait_for(lambda: blocked_count(client) == n, f"{n} blocked clients")


class Pair:
    """A second and third connection to each server of a side_by_side, for
    the clients that block."""

    def __init__(self, sbs, count: int = 1) -> None:
        self.sbs = sbs
        self.kv = [RawRespClient(sbs.kv.sock.getpeername()[1]) for _ in range(count)]
        self.redis = [RawRespClient(sbs.redis.sock.getpeername()[1]) for _ in range(count)]

    def send(self, i: int, *args) -> None:
        self.kv[i].send(*args)
        self.redis[i].send(*args)

    def replies(self, i: int) -> bytes:
        ours, theirs = self.kv[i].read_reply(), self.redis[i].read_reply()
        assert ours == theirs, f"kvserver {ours!r} != redis {theirs!r}"
        return ours

    def wait_blocked(self, n: int) -> None:
        wait_blocked(self.sbs.kv, n)
        wait_blocked(self.sbs.redis, n)

    def close(self) -> None:
        for c in self.kv + self.redis:
            c.close()


@pytest.fixture
def pair(side_by_side):
    made = []

    def make(count: int = 1) -> Pair:
        made.append(Pair(side_by_side, count))
        return made[-1]

    yield make
    for p in made:
        p.close()


# -- replies that need no waiting -----------------------------------------------------


@pytest.mark.parametrize("resp", [2, 3])
def test_errors_and_immediate_replies_as_redis(side_by_side, resp):
    both = side_by_side.both
    side_by_side.each("HELLO", resp)
    for timeout in ["abc", "-1", "inf", "-inf", "nan", "1e30", " 1", "1 ", "9223372036854776", ""]:
        both("BLPOP", "k", timeout)
        both("BZPOPMIN", "k", timeout)
        both("BLMOVE", "k", "d", "LEFT", "RIGHT", timeout)
        both("BLMPOP", timeout, "1", "k", "LEFT")
    both("BLPOP", "k")
    both("BRPOPLPUSH", "a", "b")
    both("BLMOVE", "a", "b", "UP", "LEFT", "x")  # the ends are checked before the timeout
    both("BLMPOP", "0", "0", "k", "LEFT")
    both("BLMPOP", "0", "x", "k", "LEFT")
    both("BLMPOP", "0", "1", "k", "UP")
    both("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "0")
    both("BZMPOP", "0", "1", "k", "UP")
    both("BZMPOP", "0", "2", "k")
    both("SET", "s", "v")
    both("BLPOP", "s", "0")  # WRONGTYPE at once
    both("BLPOP", "missing", "s", "0")
    both("BZPOPMAX", "s", "0")
    both("BLMOVE", "s", "d", "LEFT", "LEFT", "0")
    both("RPUSH", "l", "a", "b", "c", "d", "e")
    both("BLMOVE", "l", "s", "LEFT", "LEFT", "0")  # destination WRONGTYPE
    both("BLPOP", "missing", "l", "0")
    both("BRPOP", "l", "missing", "0.5")
    both("BLMOVE", "l", "l2", "RIGHT", "left", "0")
    both("BRPOPLPUSH", "l", "l2", "0")
    both("BLMPOP", "0", "2", "missing", "l", "RIGHT", "COUNT", "10")
    both("LRANGE", "l2", "0", "-1")
    both("ZADD", "z", "1", "a", "2", "b", "3.5", "c", "4", "d")
    both("BZPOPMIN", "missing", "z", "0")
    both("BZPOPMAX", "z", "0")
    both("BZMPOP", "0", "1", "z", "MIN", "COUNT", "5")
    # The timeout's reply, and what a blocking command answers inside MULTI.
    both("BLPOP", "nothing", "0.01")
    both("BZPOPMIN", "nothing", "0.001")
    both("BLMOVE", "nothing", "d", "LEFT", "LEFT", "0.01")
    both("BLMPOP", "0.01", "1", "nothing", "LEFT")
    both("MULTI")
    both("BLPOP", "nothing", "0")
    both("BRPOPLPUSH", "nothing", "d", "0")
    both("BZMPOP", "0", "1", "nothing", "MAX")
    both("RPUSH", "nothing", "x")
    both("BLPOP", "nothing", "0")
    both("EXEC")
    both("EVAL", "return redis.call('BLMPOP', 0, 1, 'none', 'LEFT')", "0")
    both("EVAL", "return redis.call('BLPOP', 'none', 0)", "0")  # noscript
    both("CLIENT", "UNBLOCK", "999999")
    both("CLIENT", "UNBLOCK", "abc")
    both("CLIENT", "UNBLOCK", "1", "FOO")
    both("CLIENT", "UNBLOCK")
    both("COMMAND", "GETKEYS", "BLMPOP", "0", "2", "a", "b", "LEFT")
    both("COMMAND", "GETKEYS", "BZMPOP", "0", "1", "a", "MIN")
    both("COMMAND", "GETKEYS", "BLPOP", "a", "b", "0")


def test_command_info_as_redis(side_by_side):
    for name in ["blpop", "brpop", "blmove", "brpoplpush", "blmpop", "bzpopmin", "bzpopmax", "bzmpop"]:
        ours, theirs = side_by_side.each("COMMAND", "INFO", name)
        # Name, arity, flags, key positions and ACL categories (key specs are not compared).
        def head(reply):
            lines = reply.split(b"\r\n")
            return lines[: max(i for i, line in enumerate(lines) if line[:2] in (b"+@", b"@")) + 1]

        assert head(ours) == head(theirs), name


# -- served later ---------------------------------------------------------------------


@pytest.mark.parametrize("resp", [2, 3])
def test_served_replies_as_redis(side_by_side, pair, resp):
    both = side_by_side.both
    p = pair(1)
    p.kv[0].call("HELLO", resp)
    p.redis[0].call("HELLO", resp)
    cases = [
        (("BLPOP", "a", "b", "0"), ("RPUSH", "b", "x", "y")),
        (("BRPOP", "a1", "b1", "0"), ("LPUSH", "a1", "x", "y")),
        (("BLMOVE", "a", "d", "RIGHT", "LEFT", "0"), ("RPUSH", "a", "x", "y")),
        (("BRPOPLPUSH", "c", "d", "0"), ("RPUSH", "c", "x")),
        (("BLMPOP", "0", "2", "e", "f", "RIGHT", "COUNT", "3"), ("RPUSH", "f", "1", "2")),
        (("BZPOPMIN", "z", "0"), ("ZADD", "z", "2", "b", "1.5", "a")),
        (("BZPOPMAX", "z2", "z4", "0"), ("ZADD", "z2", "2", "b", "1", "a")),
        (("BZMPOP", "0", "1", "z3", "MAX", "COUNT", "5"), ("ZADD", "z3", "2", "b", "1", "a")),
    ]
    for wait, push in cases:
        p.send(0, *wait)
        p.wait_blocked(1)
        both(*push)
        p.replies(0)
        p.wait_blocked(0)
    for key in ["a", "b", "a1", "b1", "c", "d", "e", "f"]:
        both("LRANGE", key, "0", "-1")
    for key in ["z", "z2", "z3"]:
        both("ZRANGE", key, "0", "-1", "WITHSCORES")


def test_clients_are_served_in_the_order_they_blocked(side_by_side, pair):
    p = pair(4)
    p.send(0, "BLPOP", "k", "0")
    p.wait_blocked(1)
    p.send(1, "BRPOP", "other", "k", "0")
    p.wait_blocked(2)
    p.send(2, "BLMPOP", "0", "1", "k", "LEFT", "COUNT", "2")
    p.wait_blocked(3)
    p.send(3, "BLPOP", "k", "0")
    p.wait_blocked(4)
    side_by_side.both("RPUSH", "k", "1", "2", "3", "4")  # three are served, the fourth waits
    assert p.replies(0) == b"*2\r\n$1\r\nk\r\n$1\r\n1\r\n"
    assert p.replies(1) == b"*2\r\n$1\r\nk\r\n$1\r\n4\r\n"
    assert p.replies(2) == b"*2\r\n$1\r\nk\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n"
    p.wait_blocked(1)
    side_by_side.both("LPUSH", "k", "5")
    assert p.replies(3) == b"*2\r\n$1\r\nk\r\n$1\r\n5\r\n"
    side_by_side.both("EXISTS", "k")


def test_a_push_inside_multi_serves_once_after_exec(side_by_side, pair):
    p = pair(2)
    p.send(0, "BLPOP", "k", "0")
    p.wait_blocked(1)
    p.send(1, "BLPOP", "k", "0")
    p.wait_blocked(2)
    both = side_by_side.both
    both("MULTI")
    both("RPUSH", "k", "a")
    both("RPUSH", "k", "b", "c")
    both("LPOP", "k")  # inside the transaction nobody is served yet: a is still there
    both("EXEC")
    p.replies(0)  # b
    p.replies(1)  # c
    both("LRANGE", "k", "0", "-1")
    assert blocked_count(side_by_side.kv) == 0


def test_blmove_chains_and_type_changes_as_redis(side_by_side, pair):
    both = side_by_side.both
    p = pair(3)
    p.send(0, "BLMOVE", "a", "b", "LEFT", "RIGHT", "0")
    p.wait_blocked(1)
    p.send(1, "BLMOVE", "b", "c", "LEFT", "RIGHT", "0")
    p.wait_blocked(2)
    p.send(2, "BLPOP", "c", "0")
    p.wait_blocked(3)
    both("RPUSH", "a", "x")  # a -> b -> c -> client 2, all in one go
    for i in range(3):
        p.replies(i)
    for key in ["a", "b", "c"]:
        both("EXISTS", key)
    # A key deleted, flushed or turned into another type leaves its client blocked (Redis 7.0).
    p.send(0, "BLPOP", "k", "0")
    p.wait_blocked(1)
    both("SET", "k", "string")
    both("ZADD", "zk", "1", "m")
    both("RENAME", "zk", "k")
    both("DEL", "k")
    both("FLUSHALL")
    assert blocked_count(side_by_side.kv) == 1
    both("SELECT", "1")
    both("RPUSH", "k", "from db1")
    both("SWAPDB", "0", "1")  # db 0 now holds k: its client is served
    p.replies(0)
    p.wait_blocked(0)
    # BLMOVE onto a destination of the wrong type: the error, and the element stays.
    both("SELECT", "0")
    both("SET", "dst", "string")
    p.send(0, "BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
    p.wait_blocked(1)
    both("RPUSH", "src", "e")
    p.replies(0)
    both("LRANGE", "src", "0", "-1")


def test_client_unblock_timeout_and_error(side_by_side, pair):
    p = pair(2)
    ids = [(int(p.kv[i].call("CLIENT", "ID")[1:-2]), int(p.redis[i].call("CLIENT", "ID")[1:-2])) for i in range(2)]
    p.send(0, "BLPOP", "k", "0")
    p.send(1, "BLMOVE", "k", "d", "LEFT", "LEFT", "0")
    p.wait_blocked(2)
    kv, rd = side_by_side.kv, side_by_side.redis
    assert kv.call("CLIENT", "UNBLOCK", ids[0][0], "TIMEOUT") == rd.call("CLIENT", "UNBLOCK", ids[0][1], "TIMEOUT") == b":1\r\n"
    p.replies(0)
    assert kv.call("CLIENT", "UNBLOCK", ids[1][0], "ERROR") == rd.call("CLIENT", "UNBLOCK", ids[1][1], "ERROR") == b":1\r\n"
    assert p.replies(1) == b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    assert kv.call("CLIENT", "UNBLOCK", ids[1][0]) == b":0\r\n"  # not blocked any more
    assert p.kv[1].call("PING") == b"+PONG\r\n"


def test_timeouts_end_the_wait(start_server):
    server = start_server()
    client = RawRespClient(server.resp_port)
    started = time.monotonic()
    assert client.call("BLPOP", "k", "0.1") == b"*-1\r\n"
    assert client.call("BLMOVE", "k", "d", "LEFT", "LEFT", "0.05") == b"*-1\r\n"  # as Redis: not nil
    assert time.monotonic() - started >= 0.15
    client.send("BZPOPMIN", "k", "0.05")  # pipelined behind a wait, as a client may
    client.send("PING")
    assert client.read_reply() == b"*-1\r\n"
    assert client.read_reply() == b"+PONG\r\n"
    assert server.server.keyspace.blocked_clients == 0
    client.close()


def test_info_and_client_list_show_blocked_clients(start_server):
    server = start_server()
    watcher = RawRespClient(server.resp_port)
    waiter = RawRespClient(server.resp_port)
    waiter_id = int(waiter.call("CLIENT", "ID")[1:-2])
    waiter.send("BZPOPMAX", "z", "0")
    wait_blocked(watcher, 1)
    listing = watcher.call("CLIENT", "LIST")
    assert re.search(rb"id=%d .*flags=b .*cmd=bzpopmax" % waiter_id, listing)
    assert re.search(rb"flags=N .*cmd=client\|list", listing)
    watcher.call("ZADD", "z", "1", "m")
    assert waiter.read_reply() == b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n"
    assert blocked_count(watcher) == 0
    assert b"flags=b" not in watcher.call("CLIENT", "LIST")


# -- the log -------------------------------------------------------------------------


def test_the_log_holds_the_pops_and_replays_to_the_same_keyspace(start_server, tmp_path):
    aof = tmp_path / "blocking.aof"
    running = start_server(aof_path=str(aof))
    server = running.server
    pusher = RawRespClient(running.resp_port)
    waiters = [RawRespClient(running.resp_port) for _ in range(5)]
    waits = [
        ("BLPOP", "l", "0"),
        ("BLMOVE", "l", "m", "RIGHT", "LEFT", "0"),
        ("BRPOPLPUSH", "l", "m", "0"),
        ("BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"),
        ("BZPOPMIN", "z", "0"),
    ]
    for i, (w, wait) in enumerate(zip(waiters, waits)):
        w.send(*wait)
        wait_blocked(pusher, i + 1)
    pusher.send("MULTI")
    pusher.send("RPUSH", "l", "a", "b", "c", "d", "e")
    pusher.send("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
    pusher.send("EXEC")
    replies = [pusher.read_reply() for _ in range(4)]
    assert replies[-1] == b"*2\r\n:5\r\n:4\r\n"
    for w in waiters:
        w.read_reply()
    records = aof.read_bytes()
    assert records.endswith(
        b"*1\r\n$4\r\nEXEC\r\n"
        b"*2\r\n$4\r\nLPOP\r\n$1\r\nl\r\n"
        b"*5\r\n$5\r\nLMOVE\r\n$1\r\nl\r\n$1\r\nm\r\n$5\r\nright\r\n$4\r\nleft\r\n"
        b"*3\r\n$9\r\nRPOPLPUSH\r\n$1\r\nl\r\n$1\r\nm\r\n"
        b"*3\r\n$7\r\nZPOPMAX\r\n$1\r\nz\r\n$1\r\n2\r\n"
        b"*2\r\n$7\r\nZPOPMIN\r\n$1\r\nz\r\n"
    ), records
    assert b"BL" not in records and b"BZ" not in records and b"BRPOP" not in records
    with server.keyspace.write_lock:
        expected = dump(server.keyspace)
    running.stop()
    replayed = Keyspace()
    load_log(replayed, str(aof))
    assert dump(replayed) == expected


def test_a_failed_log_append_serves_nobody(failing_kv):
    kv = failing_kv
    waiter_session = kv.new_session()
    got = []
    thread = threading.Thread(target=lambda: got.append(kv("BLPOP", "k", "0", session=waiter_session)))
    thread.start()
    wait_for(lambda: kv.keyspace.blocked_clients == 1, "blocked")
    before = kv.log()
    kv.aof.failing = True
    assert "MISCONF" in str(kv("RPUSH", "k", "a"))  # refused: nothing to serve
    assert kv.keyspace.blocked_clients == 1 and not got
    kv.aof.failing = False
    assert kv("RPUSH", "k", "b") == 1
    thread.join(10)
    assert got == [[b"k", b"b"]]
    assert kv.log_after_setup(before).endswith(b"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$1\r\nb\r\n*2\r\n$4\r\nLPOP\r\n$1\r\nk\r\n")
    assert kv("EXISTS", "k") == 0


def test_the_timeout_follows_the_keyspace_clock(kv):
    # The deadline is on the injected clock: 0.1 s of wall-clock time is not
    # enough while the clock stands still (the waiter wakes, finds time
    # left, waits again); once the clock passes the deadline, the next
    # wake-up ends the wait.
    waiter_session = kv.new_session()
    got = []
    thread = threading.Thread(target=lambda: got.append(kv("BLPOP", "k", "0.1", session=waiter_session)))
    thread.start()
    wait_for(lambda: kv.keyspace.blocked_clients == 1, "blocked")
    thread.join(0.35)  # three of its wake-ups
    assert thread.is_alive() and not got
    kv.clock.advance(100)
    thread.join(10)
    assert not thread.is_alive()
    assert kv.keyspace.blocked_clients == 0
    assert got == [NullArray]


# -- ending waits leaves nothing behind --------------------------------------------------


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_thousand_blocked_clients_killed_dropped_timed_out_leave_nothing(start_server):
    max_idle = 4
    running = start_server(max_idle_workers=max_idle)
    server = running.server
    admin = RawRespClient(running.resp_port)
    wait_for(lambda: server.pool.idle == server.pool.size - 1, "admin only")
    base_threads = _threads() - server.pool.size
    base_fds = _fds()
    total, batch = 1000, 100

    def block(count: int, timeout: bytes) -> list[socket.socket]:
        socks = []
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", running.resp_port))
            key = b"k%d" % i
            s.sendall(b"*3\r\n$5\r\nBLPOP\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(timeout), timeout))
            socks.append(s)
        return socks

    for _ in range(total // batch):
        third = batch // 3
        socks = block(third, b"0")  # they hang up while blocked
        wait_for(lambda: server.keyspace.blocked_clients == third, "blocked")
        for s in socks:
            s.close()
        wait_for(lambda: server.keyspace.blocked_clients == 0, "hung-up clients unblocked")
        socks = block(third, b"0")  # CLIENT KILLed while blocked
        wait_for(lambda: server.keyspace.blocked_clients == third, "blocked")
        assert admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") == b":%d\r\n" % third
        for s in socks:
            s.settimeout(10)
            assert s.recv(100) == b""  # closed, with no reply
            s.close()
        socks = block(batch - 2 * third, b"0.02")  # they time out
        for s in socks:
            s.settimeout(10)
            assert s.recv(100) == b"*-1\r\n"
            s.close()

    def settled():
        return (
            server.keyspace.blocked_clients == 0
            and len(server.state.clients) == 1
            and server.pool.size <= max_idle + 1
            and _threads() <= base_threads + max_idle + 1
            and _fds() <= base_fds
        )

    wait_for(settled, "threads, fds and waiters back to baseline")
    assert all(not db.blocked for db in server.keyspace.dbs)
    assert admin.call("RPUSH", "k1", "x") == b":1\r\n"  # nobody left to serve
    admin.close()


def test_shutdown_ends_a_wait(start_server):
    running = start_server()
    client = RawRespClient(running.resp_port)
    client.send("BLPOP", "k", "0")
    wait_for(lambda: running.server.keyspace.blocked_clients == 1, "blocked")
    running.stop()  # would hang (its thread join fails) if the wait went on
    with pytest.raises((ConnectionError, OSError)):
        client.read_reply()
    client.close()


# -- redis-py -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_blocking_methods(start_server, protocol):
    running = start_server()
    r = redis.Redis(port=running.resp_port, protocol=protocol)
    other = redis.Redis(port=running.resp_port, protocol=protocol)
    assert r.blpop(["a", "b"], timeout=0.05) is None
    assert r.brpop(["a", "b"], timeout=0.05) is None
    other.rpush("b", "1", "2")
    assert r.blpop(["a", "b"], timeout=1) in ([b"b", b"1"], (b"b", b"1"))
    assert r.brpop(["a", "b"], timeout=1) in ([b"b", b"2"], (b"b", b"2"))
    got = []
    t = threading.Thread(target=lambda: got.append(r.bzpopmin("z", timeout=0)))
    t.start()
    wait_for(lambda: other.info("clients")["blocked_clients"] == 1, "blocked")
    other.zadd("z", {"m": 1.5})
    t.join(10)
    assert got[0] in ((b"z", b"m", 1.5), [b"z", b"m", 1.5])
    t = threading.Thread(target=lambda: got.append(r.blmove("src", "dst", 0, "LEFT", "RIGHT")))
    t.start()
    wait_for(lambda: other.info("clients")["blocked_clients"] == 1, "blocked")
    other.rpush("src", "v")
    t.join(10)
    assert got[1] == b"v"
    assert other.lrange("dst", 0, -1) == [b"v"]
    assert r.blmove("none", "dst", 0.05) is None
    assert r.bzpopmax("none", timeout=0.05) is None
    r.close()
    other.close()
