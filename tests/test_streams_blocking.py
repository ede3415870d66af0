"""XREAD / XREADGROUP ... BLOCK (kvserver/commands/streams.py on
kvserver/blocking.py): replies side by side with redis-server 7.0 for
waits served, timed out, unblocked and ended by the stream or its group
going away; what the log holds; redis-py; nothing left behind."""

from __future__ import annotations

import os
import re
import socket
import threading

import pytest
import redis

from kvserver.server import load_log
from kvserver.store import Keyspace
from tests.resp_client import RawRespClient
from tests.support import dump, wait_for
from tests.test_blocking import Pair, wait_blocked


@pytest.fixture
def pair(side_by_side):
    made = []

    def make(count: int = 1, resp: int = 2) -> Pair:
        p = Pair(side_by_side, count)
        for client in p.kv + p.redis:
            client.call("HELLO", resp)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def _served(sbs, p: Pair, wait: tuple, *writes: tuple, still_blocked: tuple = ()) -> bytes:
    """Client 0 blocks on ``wait``; ``writes`` run (those in
    ``still_blocked``, by index, leave it waiting); its reply, compared."""
    p.send(0, *wait)
    p.wait_blocked(1)
    for i, write in enumerate(writes):
        sbs.both(*write)
        if i in still_blocked:
            p.wait_blocked(1)
    reply = p.replies(0)
    p.wait_blocked(0)
    return reply


# -- XREAD ---------------------------------------------------------------------------


@pytest.mark.parametrize("resp", [2, 3])
def test_xread_block_served_as_redis(side_by_side, pair, resp):
    both = side_by_side.both
    side_by_side.each("HELLO", resp)
    p = pair(1, resp)
    both("XADD", "s", "1-1", "f", "v")
    # $: only what comes after the call.
    _served(side_by_side, p, ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"), ("XADD", "s", "2-0", "a", "1"))
    # An explicit ID: an entry before it does not serve.
    _served(
        side_by_side, p, ("XREAD", "BLOCK", "0", "STREAMS", "s", "5-0"),
        ("XADD", "s", "3-0", "a", "2"), ("XADD", "s", "6-0", "a", "3"), still_blocked=(0,),
    )  # fmt: skip
    # Several streams, one missing: the first to get an entry serves, COUNT kept.
    _served(
        side_by_side, p, ("XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "t", "$", "$"),
        ("MULTI",), ("XADD", "t", "1-0", "x", "1"), ("XADD", "s", "7-0", "x", "2"), ("XADD", "t", "2-0", "x", "3"),
        ("EXEC",),
    )  # fmt: skip
    # Deleted, overwritten, XSETID: XREAD waits on; a stream made anew serves
    # once past the ID it blocked after.
    _served(
        side_by_side, p, ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
        ("XSETID", "s", "9-0"), ("DEL", "s"), ("SET", "s", "x"), ("DEL", "s"), ("XADD", "s", "7-0", "n", "1"),
        ("XADD", "s", "8-0", "n", "2"),
        still_blocked=(0, 1, 2, 3, 4),
    )  # fmt: skip
    # An entry added and trimmed at once: served, with nothing (Redis's last-ID test).
    _served(side_by_side, p, ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"), ("XADD", "s", "MAXLEN", "0", "10-0", "a", "b"))
    # The timeout, and what BLOCK answers where nothing blocks.
    both("XREAD", "BLOCK", "10", "STREAMS", "s", "nothing", "$", "$")
    both("XREAD", "COUNT", "2", "BLOCK", "1", "STREAMS", "s", "9-9")
    both("MULTI")
    both("XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    both("EXEC")
    both("EVAL", "return redis.call('XREAD', 'BLOCK', '0', 'STREAMS', 's', '$')", "1", "s")
    both("XREAD", "BLOCK", "-1", "STREAMS", "s", "$")
    both("XREAD", "BLOCK", "x", "STREAMS", "s", "$")
    both("SET", "str", "v")
    both("XREAD", "BLOCK", "0", "STREAMS", "str", "$")


def test_every_xread_on_a_stream_is_served(side_by_side, pair):
    p = pair(3)
    side_by_side.both("XADD", "s", "1-0", "f", "v")
    p.send(0, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    p.send(1, "XREAD", "BLOCK", "0", "STREAMS", "other", "s", "0", "1-0")
    p.send(2, "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$")
    p.wait_blocked(3)
    side_by_side.both("XADD", "other", "1-0", "o", "1")  # client 1 only
    assert p.replies(1) == b"*1\r\n*2\r\n$5\r\nother\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\no\r\n$1\r\n1\r\n"
    p.wait_blocked(2)
    side_by_side.both("MULTI")
    side_by_side.both("XADD", "s", "2-0", "f", "v")
    side_by_side.both("XADD", "s", "3-0", "f", "v")
    side_by_side.both("EXEC")
    p.replies(0)
    assert p.replies(2).count(b"-0\r\n") == 1  # COUNT 1
    p.wait_blocked(0)


# -- XREADGROUP ------------------------------------------------------------------------


@pytest.mark.parametrize("resp", [2, 3])
def test_xreadgroup_block_served_in_turn_as_redis(side_by_side, pair, resp):
    both = side_by_side.both
    side_by_side.each("HELLO", resp)
    p = pair(3, resp)
    both("XADD", "s", "1-0", "f", "v")
    both("XGROUP", "CREATE", "s", "g", "$")
    p.send(0, "XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">")
    p.wait_blocked(1)
    p.send(1, "XREADGROUP", "GROUP", "g", "bob", "BLOCK", "0", "STREAMS", "s", ">")
    p.wait_blocked(2)
    p.send(2, "XREADGROUP", "GROUP", "g", "carol", "BLOCK", "0", "NOACK", "STREAMS", "s", ">")
    p.wait_blocked(3)
    both("XINFO", "CONSUMERS", "s", "g")  # nobody made yet: only when served
    both("XADD", "s", "2-0", "n", "1")  # alice only: each entry to one consumer
    p.replies(0)
    p.wait_blocked(2)
    both("XGROUP", "SETID", "s", "g", "0")  # no new entry: nobody served
    both("XSETID", "s", "3-0")
    p.wait_blocked(2)
    both("MULTI")
    both("XADD", "s", "4-0", "n", "2")
    both("XADD", "s", "5-0", "n", "3")
    both("EXEC")
    p.replies(1)  # bob takes all from the group's last ID (moved back): 1-0 .. 5-0
    p.wait_blocked(1)
    both("XADD", "s", "6-0", "n", "4")
    p.replies(2)  # carol, NOACK
    p.wait_blocked(0)
    both("XPENDING", "s", "g")
    both("XINFO", "GROUPS", "s")
    both("XREADGROUP", "GROUP", "g", "dave", "BLOCK", "10", "STREAMS", "s", ">")  # timeout
    both("XREADGROUP", "GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", "0")  # history: at once
    both("XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "missing", ">")
    both("MULTI")
    both("XREADGROUP", "GROUP", "g", "x", "BLOCK", "0", "STREAMS", "s", ">")
    both("EXEC")


@pytest.mark.parametrize(
    "ending",
    [("DEL", "s"), ("SET", "s", "x"), ("FLUSHALL",), ("FLUSHDB",), ("XGROUP", "DESTROY", "s", "g")],
    ids=["del", "set", "flushall", "flushdb", "destroy"],
)
def test_xreadgroup_ends_when_its_stream_or_group_goes(side_by_side, pair, ending):
    side_by_side.both("XADD", "s", "1-0", "f", "v")
    side_by_side.both("XGROUP", "CREATE", "s", "g", "$")
    p = pair(2)
    p.send(0, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    p.send(1, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
    p.wait_blocked(2)
    side_by_side.both(*ending)
    assert p.replies(0)[:1] == b"-"  # -UNBLOCKED the stream key... / -NOGROUP the consumer group...
    p.wait_blocked(1)  # XREAD waits on
    if ending[0] != "XGROUP":
        side_by_side.both("DEL", "s")
    side_by_side.both("XADD", "s", "9-0", "f", "v")
    p.replies(1)


def test_client_unblock_ends_a_blocked_xread(side_by_side, pair):
    kv, rd = side_by_side.kv, side_by_side.redis
    kv.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    rd.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    p = pair(2)
    ids = [(int(p.kv[i].call("CLIENT", "ID")[1:-2]), int(p.redis[i].call("CLIENT", "ID")[1:-2])) for i in range(2)]
    for how in ("TIMEOUT", "ERROR"):
        p.send(0, "XREAD", "BLOCK", "0", "STREAMS", "s", "$")
        p.send(1, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
        p.wait_blocked(2)
        for i in range(2):
            assert kv.call("CLIENT", "UNBLOCK", ids[i][0], how) == rd.call("CLIENT", "UNBLOCK", ids[i][1], how) == b":1\r\n"
            p.replies(i)
    p.wait_blocked(0)
    assert p.kv[0].call("PING") == b"+PONG\r\n"


# -- the log ---------------------------------------------------------------------------


def test_a_served_xreadgroup_is_logged_and_replays_to_the_same_streams(start_server, tmp_path):
    aof = tmp_path / "streams.aof"
    running = start_server(aof_path=str(aof))
    writer = RawRespClient(running.resp_port)
    writer.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    waits = [
        ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "BLOCK", "0", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "bob", "BLOCK", "0", "NOACK", "STREAMS", "s", ">"),
        ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
    ]
    waiters = [RawRespClient(running.resp_port) for _ in waits]
    for i, (w, wait) in enumerate(zip(waiters, waits)):
        w.send(*wait)
        wait_blocked(writer, i + 1)
    writer.call("MULTI")
    for i in range(1, 4):
        writer.call("XADD", "s", f"{i}-0", "f", str(i))
    writer.call("EXEC")
    for w in waiters:
        assert w.read_reply().startswith(b"*1\r\n*2\r\n$1\r\ns\r\n")
    records = aof.read_bytes()
    exec_end = records.index(b"*1\r\n$4\r\nEXEC\r\n") + 14
    tail = re.sub(rb"TIME\r\n\$13\r\n\d{13}", b"TIME\r\n$13\r\nT", records[exec_end:])
    # As Redis 7.0's AOF holds it (checked): alice's two entries as XCLAIMs,
    # bob's NOACK read as his creation and the group's new last ID.
    def xclaim(entry: bytes) -> bytes:
        return (
            b"*14\r\n$6\r\nXCLAIM\r\n$1\r\ns\r\n$1\r\ng\r\n$5\r\nalice\r\n$1\r\n0\r\n$3\r\n%s\r\n"
            b"$4\r\nTIME\r\n$13\r\nT\r\n$10\r\nRETRYCOUNT\r\n$1\r\n1\r\n$5\r\nFORCE\r\n$6\r\nJUSTID\r\n"
            b"$6\r\nLASTID\r\n$3\r\n%s\r\n" % (entry, entry)
        )

    assert tail == (
        b"*1\r\n$5\r\nMULTI\r\n" + xclaim(b"1-0") + xclaim(b"2-0") + b"*1\r\n$4\r\nEXEC\r\n"
        b"*1\r\n$5\r\nMULTI\r\n*5\r\n$6\r\nXGROUP\r\n$14\r\nCREATECONSUMER\r\n$1\r\ns\r\n$1\r\ng\r\n$3\r\nbob\r\n"
        b"*7\r\n$6\r\nXGROUP\r\n$5\r\nSETID\r\n$1\r\ns\r\n$1\r\ng\r\n$3\r\n3-0\r\n$11\r\nENTRIESREAD\r\n$1\r\n3\r\n"
        b"*1\r\n$4\r\nEXEC\r\n"
    ), tail
    assert b"XREAD" not in records
    with running.server.keyspace.write_lock:
        expected = dump(running.server.keyspace)
    for c in [writer, *waiters]:
        c.close()
    running.stop()
    replayed = Keyspace()
    load_log(replayed, str(aof))
    assert dump(replayed) == expected


# -- redis-py ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_xread_and_xreadgroup_block(start_server, protocol):
    running = start_server()
    r = redis.Redis(port=running.resp_port, protocol=protocol)
    other = redis.Redis(port=running.resp_port, protocol=protocol)
    other.xgroup_create("s", "g", "$", mkstream=True)
    assert r.xread({"s": "$"}, block=20) in (None, [], {})
    assert r.xreadgroup("g", "c", {"s": ">"}, block=20) in (None, [], {})
    got = []

    def blocked(n: int) -> None:
        wait_for(lambda: other.info("clients")["blocked_clients"] == n, f"{n} blocked")

    t = threading.Thread(target=lambda: got.append(r.xread({"s": "$"}, block=0)))
    t.start()
    blocked(1)
    entry_id = other.xadd("s", {"f": "v"})
    t.join(10)
    expected = [[b"s", [(entry_id, {b"f": b"v"})]]]
    assert got[0] == (expected if protocol == 2 else {b"s": [expected[0][1]]})
    assert r.xreadgroup("g", "c", {"s": ">"}, block=0)  # new to the group: at once
    t = threading.Thread(target=lambda: got.append(r.xreadgroup("g", "c", {"s": ">"}, count=5, block=10_000)))
    t.start()
    blocked(1)
    second = other.xadd("s", {"g": "w"})
    t.join(10)
    entries = [(second, {b"g": b"w"})]
    assert got[1] == ([[b"s", entries]] if protocol == 2 else {b"s": [entries]})
    assert other.xpending("s", "g")["consumers"] == [{"name": b"c", "pending": 2}]
    r.close()
    other.close()


# -- nothing left behind --------------------------------------------------------------


def test_a_blocked_xread_whose_client_goes_leaves_no_thread(start_server):
    max_idle = 2
    running = start_server(max_idle_workers=max_idle)
    server = running.server
    admin = RawRespClient(running.resp_port)
    wait_for(lambda: server.pool.idle == server.pool.size - 1, "admin only")
    base_threads = len(os.listdir("/proc/self/task")) - server.pool.size
    socks = []
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", running.resp_port))
        key = b"s%d" % (i % 3)
        s.sendall(b"*6\r\n$5\r\nXREAD\r\n$5\r\nBLOCK\r\n$1\r\n0\r\n$7\r\nSTREAMS\r\n$2\r\n%s\r\n$1\r\n$\r\n" % key)
        socks.append(s)
    wait_for(lambda: server.keyspace.blocked_clients == 20, "blocked")
    for s in socks:
        s.close()

    def settled():
        return (
            server.keyspace.blocked_clients == 0
            and len(server.state.clients) == 1
            and server.pool.size <= max_idle + 1
            and len(os.listdir("/proc/self/task")) <= base_threads + max_idle + 1
        )

    wait_for(settled, "threads and waiters back to baseline")
    assert all(not db.blocked for db in server.keyspace.dbs)
    assert admin.call("XADD", "s1", "1-0", "f", "v") == b"$3\r\n1-0\r\n"  # nobody left to serve
    admin.close()
