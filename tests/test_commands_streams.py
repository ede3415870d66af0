"""Tests for kvserver/commands/streams.py and values/streams.py: streams.

* harness tests (``kv``): replies, the log's bytes (IDs generated, trims,
  XREADGROUP as XCLAIM / XGROUP SETID), a failed log append rolled back
  exactly, IDs that never go backwards (clock stepping back, restart), the
  replay and the rewrite (groups, consumers, pending entries);
* side by side with redis-server 7.0: every command's cases and errors,
  byte for byte, RESP2 and RESP3 (time-dependent fields masked);
* redis-server loading kvserver's log (as written, and after BGREWRITEAOF)
  to the same XINFO STREAM FULL;
* redis-py's stream methods against the RESP port, RESP2 and RESP3;
* readers hammering a stream while writers change it.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import pytest
import redis

from kvserver.store import Keyspace
from kvserver.values.streams import Stream, make_id
from tests.support import FakeClock, race, resp, wait_for, replayed

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture
def kv(failing_kv):
    return failing_kv


def records(data: bytes) -> list[list[bytes]]:
    """The log's records, parsed by hand (not with the code under test)."""
    out = []
    while data:
        header, data = data.split(b"\r\n", 1)
        record = []
        for _ in range(int(header[1:])):
            length, data = data.split(b"\r\n", 1)
            size = int(length[1:])
            record.append(data[:size])
            data = data[size + 2 :]
        out.append(record)
    return out


def logged(kv, before: bytes) -> list[list[bytes]]:
    return [r for r in records(kv.log_after_setup(before)) if r[0] != b"SELECT"]


# -- the value ------------------------------------------------------------------------


def test_nodes_follow_redis_listpack_limits_for_approximate_trims(kv):
    for i in range(1, 251):
        kv("XADD", "s", f"{i}-1", "f", "v")
    stream = kv.db.data[b"s"]
    assert [n.live for n in stream.nodes] == [100, 100, 50]
    # As redis-server 7.0 does: ~ removes whole nodes only, and the LIMIT
    # stops before a node that would pass it.
    assert kv("XTRIM", "s", "MAXLEN", "~", 120) == 100
    assert kv("XTRIM", "s", "MAXLEN", "~", 10, "LIMIT", 99) == 0
    assert kv("XTRIM", "s", "MAXLEN", "~", 10, "LIMIT", 100) == 100
    assert kv("XLEN", "s") == 50


def test_an_empty_stream_stays_and_undo_is_exact(kv):
    kv("XADD", "s", "1-1", "a", "b")
    assert kv("XDEL", "s", "1-1") == 1
    assert kv("EXISTS", "s") == 1 and kv("XLEN", "s") == 0
    assert kv("TYPE", "s") == "stream"
    assert kv("OBJECT", "ENCODING", "s") == b"stream"


# -- the log ---------------------------------------------------------------------------


def test_xadd_logs_the_generated_id_and_ids_never_go_backwards(kv):
    before = kv.log()
    now = kv.clock()
    assert kv("XADD", "s", "*", "a", "1") == b"%d-0" % now
    assert kv("XADD", "s", "*", "a", "2") == b"%d-1" % now
    kv.clock.advance(-5000)  # the clock steps back: the sequence goes on
    assert kv("XADD", "s", "*", "a", "3") == b"%d-2" % now
    assert kv("XADD", "s", f"{now}-*", "a", "4") == b"%d-3" % now
    assert error_text(kv("XADD", "s", f"{now - 1}-*", "a", "5")) == (
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    )
    assert kv("XADD", "s", f"{now + 7}-*", "a", "6") == b"%d-0" % (now + 7)
    assert logged(kv, before) == [
        [b"XADD", b"s", b"%d-0" % now, b"a", b"1"],
        [b"XADD", b"s", b"%d-1" % now, b"a", b"2"],
        [b"XADD", b"s", b"%d-2" % now, b"a", b"3"],
        [b"XADD", b"s", b"%d-3" % now, b"a", b"4"],
        [b"XADD", b"s", b"%d-0" % (now + 7), b"a", b"6"],
    ]
    # After a restart the last ID is still there, entry deleted or not.
    kv("XDEL", "s", f"{now + 7}-0")
    kv.aof.close()
    keyspace = replayed(kv)
    assert keyspace.dbs[0].data[b"s"].last_id == make_id(now + 7, 0)
    assert keyspace.dbs[0].data[b"s"] == kv.db.data[b"s"]


def error_text(reply) -> str:
    return reply.message


def test_approximate_trims_are_logged_as_the_exact_trim_done(kv):
    for i in range(1, 251):
        kv("XADD", "s", f"{i}-1", "f", "v")
    before = kv.log()
    kv("XADD", "s", "MAXLEN", "~", 120, "300-1", "a", "b")
    kv("XADD", "s", "MAXLEN", "~", 10, "LIMIT", 100, "301-1", "a", "b")
    kv("XADD", "s", "MINID", "~", 200, "302-1", "a", "b")
    kv("XTRIM", "s", "MAXLEN", "~", 5)  # removes nothing: not logged
    kv("XTRIM", "s", "MAXLEN", 2)
    kv("XTRIM", "s", "MINID", "~", "999")  # everything: the max ID
    assert logged(kv, before) == [
        [b"XADD", b"s", b"MAXLEN", b"=", b"151", b"300-1", b"a", b"b"],
        [b"XADD", b"s", b"MAXLEN", b"=", b"52", b"LIMIT", b"100", b"301-1", b"a", b"b"],
        [b"XADD", b"s", b"MINID", b"=", b"201-1", b"302-1", b"a", b"b"],
        [b"XTRIM", b"s", b"MAXLEN", b"2"],
        [b"XTRIM", b"s", b"MINID", b"=", b"18446744073709551615-18446744073709551615"],
    ]
    kv.aof.close()
    assert replayed(kv).dbs[0].data[b"s"] == kv.db.data[b"s"]


def test_xreadgroup_is_logged_as_xclaim_and_setid(kv):
    kv("XADD", "s", "1-1", "a", "1")
    kv("XADD", "s", "2-1", "b", "2")
    kv("XGROUP", "CREATE", "s", "g", "0")
    before = kv.log()
    t = kv.clock()
    assert kv("XREADGROUP", "GROUP", "g", "alice", "COUNT", 1, "STREAMS", "s", ">") == [
        [b"s", [[b"1-1", [b"a", b"1"]]]]
    ]
    kv("XREADGROUP", "GROUP", "g", "bob", "NOACK", "STREAMS", "s", ">")
    kv("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0")  # history: not logged
    assert logged(kv, before) == [
        [b"XCLAIM", b"s", b"g", b"alice", b"0", b"1-1", b"TIME", b"%d" % t, b"RETRYCOUNT", b"1",
         b"FORCE", b"JUSTID", b"LASTID", b"1-1"],
        [b"MULTI"],
        [b"XGROUP", b"CREATECONSUMER", b"s", b"g", b"bob"],
        [b"XGROUP", b"SETID", b"s", b"g", b"2-1", b"ENTRIESREAD", b"2"],
        [b"EXEC"],
    ]  # fmt: skip


def test_replay_and_rewrite_rebuild_groups_consumers_and_pending(kv):
    for i in range(1, 6):
        kv("XADD", "s", f"{i}-0", "f", str(i))
    kv("XDEL", "s", "2-0")
    kv("XGROUP", "CREATE", "s", "g", "0")
    kv("XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", 5)
    kv("XREADGROUP", "GROUP", "g", "alice", "COUNT", 2, "STREAMS", "s", ">")
    kv.clock.advance(1000)
    kv("XREADGROUP", "GROUP", "g", "bob", "COUNT", 1, "STREAMS", "s", ">")
    kv("XCLAIM", "s", "g", "carol", 500, "1-0")
    kv("XGROUP", "CREATECONSUMER", "s", "g", "dave")
    kv("XGROUP", "CREATE", "e", "eg", "$", "MKSTREAM")
    kv.aof.close()
    keyspace = replayed(kv)
    assert keyspace.dbs[0].data[b"s"] == kv.db.data[b"s"]
    assert keyspace.dbs[0].data[b"e"] == kv.db.data[b"e"]
    stream = keyspace.dbs[0].data[b"s"]
    pel = {i: (n.consumer.name, n.delivery_time, n.delivery_count) for i, n in stream.groups[b"g"].pel.items()}
    t = kv.clock()
    assert pel == {
        make_id(1, 0): (b"carol", t, 2),
        make_id(3, 0): (b"alice", t - 1000, 1),
        make_id(4, 0): (b"bob", t, 1),
    }
    # The rewrite's records rebuild the same.
    from kvserver.values import rewrite_records

    rebuilt = Keyspace(clock=FakeClock(t))
    from kvserver.dispatch import Dispatcher
    from kvserver.session import Session

    replayer = Dispatcher(rebuilt, None, clock=lambda: 0)
    session = Session(rebuilt, loading=True, dispatcher=replayer)
    for key in (b"s", b"e"):
        for record in rewrite_records(key, kv.db.data[key]):
            reply = replayer.execute(session, record)
            assert not hasattr(reply, "message"), (record, reply)
        assert rebuilt.dbs[0].data[key] == kv.db.data[key]


def test_a_failed_append_rolls_everything_back(kv):
    for i in range(1, 120):
        kv("XADD", "s", f"{i}-0", "f", str(i))
    kv("XGROUP", "CREATE", "s", "g", "0")
    kv("XREADGROUP", "GROUP", "g", "alice", "COUNT", 3, "STREAMS", "s", ">")
    stream = kv.db.data[b"s"]
    snapshot = (stream.state(), [n.state() for n in stream.nodes], stream.nbytes, kv.db.used_bytes)
    kv.aof.failing = True
    for command in (
        ("XADD", "s", "MAXLEN", "~", 10, "*", "a", "b"),
        ("XADD", "s", "MINID", "50", "*", "a", "b"),
        ("XTRIM", "s", "MAXLEN", 3),
        ("XDEL", "s", "1-0", "5-0", "110-0"),
        ("XREADGROUP", "GROUP", "g", "bob", "COUNT", 5, "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "new", "NOACK", "STREAMS", "s", ">"),
        ("XCLAIM", "s", "g", "bob", 0, "1-0", "2-0", "LASTID", "100-0"),
        ("XAUTOCLAIM", "s", "g", "bob", 0, "0"),
        ("XACK", "s", "g", "1-0"),
        ("XGROUP", "DELCONSUMER", "s", "g", "alice"),
        ("XGROUP", "DESTROY", "s", "g"),
        ("XGROUP", "SETID", "s", "g", "$"),
        ("XSETID", "s", "999-0", "ENTRIESADDED", 5000, "MAXDELETEDID", "998-0"),
    ):
        reply = kv(*command)
        assert error_text(reply).startswith("MISCONF"), (command, reply)
        assert kv.db.data[b"s"] is stream
        assert (stream.state(), [n.state() for n in stream.nodes], stream.nbytes, kv.db.used_bytes) == snapshot, command
    assert error_text(kv("XADD", "new", "*", "a", "b")).startswith("MISCONF")
    assert kv("EXISTS", "new") == 0


def test_wrong_type_and_expiry(kv):
    kv("SET", "str", "x")
    for command in (("XADD", "str", "*", "a", "b"), ("XLEN", "str"), ("XRANGE", "str", "-", "+")):
        assert error_text(kv(*command)) == WRONGTYPE
    kv("XADD", "s", "1-1", "a", "b")
    kv("PEXPIRE", "s", 100)
    kv.clock.advance(200)
    assert kv("XLEN", "s") == 0
    assert kv("XADD", "s", "NOMKSTREAM", "*", "a", "b") is None


# -- side by side with redis-server 7.0 ------------------------------------------------------

_TIMES = re.compile(rb"(:|\$\d+\r\n)1[0-9]{12}\r\n")


def both_all(sb, commands) -> None:
    for command in commands:
        sb.both(*command)


def test_side_by_side_xadd_xlen_xrange_xdel_xtrim(side_by_side):
    sb = side_by_side
    both_all(
        sb,
        [
            ("XADD", "s", "1-1", "a", "1", "b", "2"),
            ("XADD", "s", "1-*", "c", "3"),
            ("XADD", "s", "5", "c", "3"),
            ("XADD", "s", "5-*", "d", "4"),
            ("XADD", "s", "007-1", "e", "5"),
            ("XADD", "s", "+8-1", "e", "5"),
            ("XADD", "s", " 9-1", "e", "5"),
            ("XADD", "s", "0-0", "a", "b"),
            ("XADD", "s", "1-1", "a", "b"),
            ("XADD", "s", "1-1", "a"),
            ("XADD", "s", "x", "a", "b"),
            ("XADD", "s", "-1-1", "a", "b"),
            ("XADD", "s", "18446744073709551616-1", "a", "b"),
            ("XADD", "s", "MAXLEN", "-1", "10-1", "a", "b"),
            ("XADD", "s", "MAXLEN", "x", "10-1", "a", "b"),
            ("XADD", "s", "MAXLEN", "1", "MINID", "1", "10-1", "a", "b"),
            ("XADD", "s", "LIMIT", "5", "10-1", "a", "b"),
            ("XADD", "s", "MAXLEN", "5", "LIMIT", "5", "10-1", "a", "b"),
            ("XADD", "s", "LIMIT", "-1", "10-1", "a", "b"),
            ("XADD", "nokey", "NOMKSTREAM", "1-1", "a", "b"),
            ("EXISTS", "nokey"),
            ("XADD", "s", "MAXLEN", "=", "100", "LIMIT", "0", "10-1", "a", "b"),
            ("XLEN", "s"),
            ("XLEN", "nokey"),
            ("XRANGE", "s", "-", "+"),
            ("XRANGE", "s", "-", "+", "COUNT", "2"),
            ("XRANGE", "s", "-", "+", "COUNT", "0"),
            ("XRANGE", "s", "-", "+", "COUNT", "-3"),
            ("XRANGE", "s", "-", "+", "COUNT"),
            ("XRANGE", "s", "-", "+", "FOO", "1"),
            ("XRANGE", "s", "(1-1", "5"),
            ("XRANGE", "s", "1", "(5-1"),
            ("XRANGE", "s", "(-", "+"),
            ("XRANGE", "s", "-", "(0-0"),
            ("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
            ("XRANGE", "s", "9", "1"),
            ("XRANGE", "nokey", "-", "+"),
            ("XRANGE", "nokey", "x", "+"),
            ("XREVRANGE", "s", "+", "-"),
            ("XREVRANGE", "s", "+", "-", "COUNT", "1"),
            ("XREVRANGE", "s", "(9-1", "(1-1"),
            ("XREVRANGE", "s", "+", "-", "COUNT", "0"),
            ("XDEL", "s", "1-2", "99-1", "5-0"),
            ("XDEL", "s", "x"),
            ("XDEL", "nokey", "x"),
            ("XRANGE", "s", "-", "+"),
            ("XTRIM", "s", "MAXLEN", "2"),
            ("XTRIM", "s", "MAXLEN", "2"),
            ("XTRIM", "s", "MINID", "9"),
            ("XTRIM", "s", "FOO"),
            ("XTRIM", "s", "MAXLEN", "1", "LIMIT", "2"),
            ("XTRIM", "s", "MAXLEN", "1", "FOO"),
            ("XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "2"),
            ("XTRIM", "nokey", "MAXLEN", "0"),
            ("XRANGE", "s", "-", "+"),
            ("SET", "str", "x"),
            ("XADD", "str", "1-1", "a", "b"),
            ("XLEN", "str"),
            ("XRANGE", "str", "-", "+"),
            ("XDEL", "str", "1-1"),
            ("XTRIM", "str", "MAXLEN", "0"),
            ("XADD", "s"),
            ("XLEN",),
            ("XRANGE", "s", "-"),
        ],
    )
    for i in range(1, 260):
        sb.both("XADD", "big", f"{i}-1", "f", f"v{i}")
    both_all(
        sb,
        [
            ("XTRIM", "big", "MAXLEN", "~", "120"),
            ("XLEN", "big"),
            ("XTRIM", "big", "MINID", "~", "205"),
            ("XADD", "big", "MINID", "~", "300", "300-1", "x", "y"),
            ("XLEN", "big"),
        ],
    )


def test_side_by_side_xsetid(side_by_side):
    sb = side_by_side
    both_all(
        sb,
        [
            ("XADD", "s", "5-5", "a", "b"),
            ("XSETID", "s", "1-1"),
            ("XSETID", "nokey", "1-1"),
            ("XSETID", "s", "9-9", "ENTRIESADDED", "-1"),
            ("XSETID", "s", "9-9", "MAXDELETEDID", "10-0"),
            ("XSETID", "s", "9-9", "ENTRIESADDED", "0"),
            ("XSETID", "s", "9-9", "FOO"),
            ("XSETID", "s", "9-9", "ENTRIESADDED"),
            ("XSETID", "s", "9-9", "ENTRIESADDED", "7", "MAXDELETEDID", "3-0"),
            ("XSETID", "s", "2-0"),
            ("XADD", "s", "9-9", "a", "b"),
            ("XADD", "s", "9-*", "a", "b"),
            ("XDEL", "s", "9-10"),
            ("XSETID", "s", "9-9"),
            ("XSETID", "s", "+"),
            ("XSETID", "s", "18446744073709551615-18446744073709551615"),
            ("XADD", "s", "*", "a", "b"),
            ("XADD", "s", "18446744073709551615-*", "a", "b"),
        ],
    )


def xinfo_masked(reply: bytes) -> bytes:
    """radix-tree-nodes (Redis's rax internals) and Unix-ms times masked."""
    reply = re.sub(rb"(radix-tree-nodes\r\n:)\d+", rb"\1N", reply)
    return _TIMES.sub(rb"\1T\r\n", reply)


def test_side_by_side_groups(side_by_side):
    sb = side_by_side
    for proto in ("2", "3"):
        sb.both("FLUSHALL")
        sb.each("HELLO", proto)
        both_all(
            sb,
            [
                ("XGROUP", "CREATE", "s", "g", "$"),
                ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
                ("XINFO", "GROUPS", "s"),
                ("XADD", "s", "1-1", "a", "1"),
                ("XADD", "s", "2-1", "b", "2"),
                ("XADD", "s", "3-1", "c", "3"),
                ("XGROUP", "CREATE", "s", "g", "0"),
                ("XGROUP", "CREATE", "s", "g0", "0"),
                ("XGROUP", "CREATE", "s", "g1", "0", "ENTRIESREAD", "1"),
                ("XGROUP", "CREATE", "s", "g2", "0", "FOO"),
                ("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "-5"),
                ("XGROUP", "CREATE", "s", "g2", "x"),
                ("XGROUP", "CREATE", "nokey", "g", "0"),
                ("XGROUP", "CREATE", "s"),
                ("XGROUP", "FOO"),
                ("XGROUP", "SETID", "s", "nog", "0"),
                ("XGROUP", "SETID", "s", "g", "0", "FOO"),
                ("XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD"),
                ("XGROUP", "CREATECONSUMER", "s", "nog", "c"),
                ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
                ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
                ("XGROUP", "DELCONSUMER", "s", "nog", "c"),
                ("XGROUP", "DELCONSUMER", "s", "g", "zz"),
                ("XGROUP", "DESTROY", "nokey", "g"),
                ("XGROUP", "HELP"),
                ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">"),
                ("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"),
                ("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"),
                ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"),
                ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "0", "STREAMS", "s", "0"),
                ("XREADGROUP", "GROUP", "g", "zed", "STREAMS", "s", "0"),
                ("XREADGROUP", "GROUP", "g0", "n", "NOACK", "COUNT", "2", "STREAMS", "s", ">"),
                ("XREADGROUP", "GROUP", "g1", "m", "STREAMS", "s", ">"),
                ("XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"),
                ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"),
                ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s"),
                ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "t", ">"),
                ("XREADGROUP", "STREAMS", "s", ">", "x", "y"),
                ("XREADGROUP", "GROUP", "g", "c", "FOO", "STREAMS", "s", ">"),
                ("XACK", "s", "g", "x"),
                ("XACK", "s", "g", "1-1", "1-1", "9-9"),
                ("XACK", "s", "nog", "1-1"),
                ("XACK", "nokey", "g", "1-1"),
                ("XPENDING", "s", "g"),
                ("XPENDING", "s", "g0"),
                ("XPENDING", "s", "nog"),
                ("XPENDING", "nokey", "g"),
                ("XPENDING", "s", "g", "-", "+"),
                ("XPENDING", "s", "g", "IDLE", "5", "-", "+"),
                ("XPENDING", "s", "g", "x", "+", "5"),
                ("XPENDING", "s", "g", "-", "+", "x"),
                ("XPENDING", "s", "g", "-", "+", "0"),
                ("XPENDING", "s", "g", "-", "+", "5", "nobody"),
                ("XPENDING", "s", "g", "IDLE", "99999999", "-", "+", "5"),
                ("XDEL", "s", "2-1"),
                ("XINFO", "GROUPS", "s"),
                ("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", "0"),
                ("XCLAIM", "s", "nog", "c", "0", "1-1"),
                ("XCLAIM", "s", "g", "c", "x", "1-1"),
                ("XCLAIM", "s", "g", "c", "0", "1-1", "IDLE", "x"),
                ("XCLAIM", "s", "g", "c", "0", "1-1", "TIME", "x"),
                ("XCLAIM", "s", "g", "c", "0", "1-1", "RETRYCOUNT", "x"),
                ("XCLAIM", "s", "g", "c", "0", "1-1", "FOO"),
                ("XCLAIM", "s", "g", "c", "99999999", "1-1"),
                ("XCLAIM", "s", "g", "carol", "0", "1-1", "2-1", "9-9"),
                ("XCLAIM", "s", "g", "carol", "0", "3-1", "JUSTID", "RETRYCOUNT", "7"),
                ("XCLAIM", "s", "g", "carol", "0", "1-1", "FORCE", "JUSTID"),
                ("XCLAIM", "s", "g0", "carol", "0", "1-1", "FORCE", "JUSTID"),
                ("XCLAIM", "s", "g0", "carol", "0", "2-1", "FORCE"),
                ("XAUTOCLAIM", "s", "g", "c", "x", "0"),
                ("XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "0"),
                ("XAUTOCLAIM", "s", "g", "c", "0", "0", "FOO"),
                ("XAUTOCLAIM", "s", "nog", "c", "0", "0"),
                ("XAUTOCLAIM", "s", "g", "c", "0", "(18446744073709551615-18446744073709551615"),
                ("XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1"),
                ("XAUTOCLAIM", "s", "g", "dave", "0", "0", "JUSTID"),
                ("XAUTOCLAIM", "s", "g", "dave", "99999999", "0"),
                ("XPENDING", "s", "g"),
                ("XGROUP", "DELCONSUMER", "s", "g", "dave"),
                ("XGROUP", "SETID", "s", "g", "$"),
                ("XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"),
                ("XINFO", "GROUPS", "s"),
                ("XGROUP", "DESTROY", "s", "g1"),
                ("XGROUP", "DESTROY", "s", "g1"),
                ("XINFO", "HELP"),
                ("XINFO", "FOO"),
                ("XINFO", "STREAM", "nokey"),
                ("XINFO", "STREAM", "s", "FOO"),
                ("XINFO", "STREAM", "s", "FULL", "COUNT"),
                ("XINFO", "GROUPS", "nokey"),
                ("XINFO", "CONSUMERS", "s", "nog"),
            ],
        )
        for command in (
            ("XINFO", "STREAM", "s"),
            ("XINFO", "STREAM", "s", "FULL"),
            ("XINFO", "STREAM", "s", "FULL", "COUNT", "1"),
            ("XINFO", "CONSUMERS", "s", "g"),
            ("XPENDING", "s", "g", "-", "+", "10"),
            ("XPENDING", "s", "g0", "-", "+", "10", "n"),
        ):
            ours, theirs = sb.each(*command)
            if command[1] == "CONSUMERS" or command[0] == "XPENDING":
                ours, theirs = (re.sub(rb"idle\r\n:\d+", b"idle:I", x) for x in (ours, theirs))
                ours, theirs = (re.sub(rb":\d+\r\n(:\d+\r\n)$", rb":I\r\n\1", x) for x in (ours, theirs))
                ours, theirs = (re.sub(rb":\d+\r\n(:\d+\r\n\*)", rb":I\r\n\1", x) for x in (ours, theirs))
            a, b = xinfo_masked(ours).split(b"\r\n"), xinfo_masked(theirs).split(b"\r\n")
            assert a == b, (command, [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y], b" ".join(a[140:200]))


def test_side_by_side_xread(side_by_side):
    sb = side_by_side
    for proto in ("2", "3"):
        sb.both("FLUSHALL")
        sb.each("HELLO", proto)
        both_all(
            sb,
            [
                ("XADD", "a", "1-1", "f", "1"),
                ("XADD", "a", "2-1", "f", "2"),
                ("XADD", "b", "3-1", "g", "3"),
                ("XREAD", "STREAMS", "a", "0"),
                ("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"),
                ("XREAD", "STREAMS", "a", "b", "nokey", "1-1", "$", "0"),
                ("XREAD", "STREAMS", "a", "$"),
                ("XREAD", "STREAMS", "nokey", "$"),
                ("XREAD", "COUNT", "-1", "STREAMS", "a", "1"),
                ("XREAD", "COUNT", "0", "STREAMS", "a", "1"),
                ("XREAD", "STREAMS", "a"),
                ("XREAD", "STREAMS", "a", "b", "0"),
                ("XREAD", "GROUP", "a", "b", "STREAMS", "a", "0"),
                ("XREAD", "NOACK", "STREAMS", "a", "0"),
                ("XREAD", "STREAMS", "a", ">"),
                ("XREAD", "STREAMS", "a", "x"),
                ("XREAD", "STREAMS", "a", "+"),
                ("XREAD", "FOO", "STREAMS", "a", "0"),
                ("XREAD", "COUNT", "x", "STREAMS", "a", "0"),
                ("XREAD", "BLOCK", "-1", "STREAMS", "a", "0"),
                ("XREAD", "BLOCK", "x", "STREAMS", "a", "0"),
                ("SET", "str", "x"),
                ("XREAD", "STREAMS", "str", "0"),
                ("XREAD", "STREAMS", "a", "str", "0", "0"),
            ],
        )


def test_side_by_side_command_info(side_by_side):
    for name in ("xadd", "xlen", "xrange", "xrevrange", "xdel", "xtrim", "xack", "xpending", "xclaim",
                 "xautoclaim", "xsetid", "xread", "xreadgroup"):  # fmt: skip
        ours, theirs = (_command_info_head(reply) for reply in side_by_side.each("COMMAND", "INFO", name))
        assert ours == theirs, name


def _command_info_head(reply: bytes) -> tuple:
    """name, arity, flags and first/last/step of a COMMAND INFO reply."""
    lines = reply.split(b"\r\n")
    name, arity = lines[3], lines[4]
    count = int(lines[5][1:])
    flags = sorted(lines[6 : 6 + count])
    return name, arity, flags, lines[6 + count : 9 + count]


# -- redis-server loads kvserver's log ----------------------------------------------------

STREAM_WORKLOAD = [
    *[("XADD", "s", f"{i}-1", "f", f"v{i}") for i in range(1, 131)],
    *[("XADD", "t", f"{i}-1", "f", f"v{i}") for i in range(1, 131)],
    ("XADD", "s", "*", "big", "x" * 300),
    ("XDEL", "s", "5-1", "77-1"),
    ("XTRIM", "s", "MAXLEN", "~", "100"),
    ("XTRIM", "t", "MAXLEN", "~", "20"),
    ("XADD", "s", "MINID", "~", "3", "*", "a", "b"),
    ("XGROUP", "CREATE", "s", "g", "0"),
    ("XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", "3"),
    ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "nick", "NOACK", "COUNT", "2", "STREAMS", "s", ">"),
    ("XACK", "s", "g", "2-1"),
    ("XCLAIM", "s", "g", "carol", "0", "3-1", "RETRYCOUNT", "5"),
    ("XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1"),
    ("XGROUP", "CREATECONSUMER", "s", "g", "erin"),
    ("XGROUP", "CREATE", "empty", "eg", "$", "MKSTREAM"),
    ("XADD", "e2", "1-1", "a", "b"),
    ("XDEL", "e2", "1-1"),
    ("XSETID", "e2", "5-0", "ENTRIESADDED", "9", "MAXDELETEDID", "4-0"),
]


def _stream_dump(port: int) -> dict:
    """XINFO STREAM FULL of each stream (raw bytes), less seen-time (Redis's
    replay stamps it with its own clock) and radix-tree-keys/-nodes (a
    replay packs the listpacks anew, Redis's own too)."""
    from tests.resp_client import RawRespClient

    client = RawRespClient(port)
    out = {}
    for key in (b"s", b"t", b"empty", b"e2"):
        info = client.call("XINFO", "STREAM", key, "FULL", "COUNT", "0")
        info = re.sub(rb"(radix-tree-(?:keys|nodes)\r\n:)\d+", rb"\1N", info)
        out[key] = re.sub(rb"(seen-time\r\n:)\d+", rb"\1T", info)
    client.close()
    return out


@pytest.mark.parametrize("rewrite", [False, True], ids=["as written", "after BGREWRITEAOF"])
def test_redis_server_loads_the_log_to_the_same_streams(tmp_path, start_server, rewrite):
    from tests.test_log_interop import _start_redis_on

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    log_path = tmp_path / "kv.aof"
    server = start_server(aof_path=str(log_path))
    r = redis.Redis(port=server.resp_port, protocol=2)
    for args in STREAM_WORKLOAD:
        r.execute_command(*args)
    if rewrite:
        r.bgrewriteaof()
        rewriter = server.server.rewriter
        wait_for(lambda: rewriter.rewrites == 1 and not rewriter.in_progress, "the rewrite to finish")
    ours = _stream_dump(server.resp_port)
    server.stop()
    proc, port = _start_redis_on(log_path, tmp_path)
    try:
        theirs = _stream_dump(port)
    finally:
        proc.kill()
        proc.wait()
    assert all(name in ours[b"s"] for name in (b"alice", b"bob", b"carol", b"dave", b"erin", b"nick"))
    assert theirs == ours


# -- redis-py -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_stream_methods(start_server, protocol):
    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    assert r.xadd("s", {"a": "1"}, id="1-1") == b"1-1"
    assert r.xadd("s", {"b": "2"}, id="2-1") == b"2-1"
    assert r.xadd("s", {"c": "3"}, maxlen=5, approximate=False) .startswith(b"")
    assert r.xlen("s") == 3
    assert r.xrange("s", "-", "+", count=2) == [(b"1-1", {b"a": b"1"}), (b"2-1", {b"b": b"2"})]
    assert r.xrevrange("s", "+", "-", count=1)[0][1] == {b"c": b"3"}
    streams = r.xread({"s": "1-1"}, count=1)
    if protocol == 3:
        assert streams == {b"s": [[(b"2-1", {b"b": b"2"})]]} or streams == {b"s": [(b"2-1", {b"b": b"2"})]}
    else:
        assert streams == [[b"s", [(b"2-1", {b"b": b"2"})]]]
    assert r.xgroup_create("s", "g", id="0") is True
    got = r.xreadgroup("g", "alice", {"s": ">"}, count=2)
    assert got
    pending = r.xpending("s", "g")
    assert pending["pending"] == 2 and pending["min"] == b"1-1" and pending["max"] == b"2-1"
    assert pending["consumers"] == [{"name": b"alice", "pending": 2}]
    detail = r.xpending_range("s", "g", "-", "+", 10)
    assert [d["message_id"] for d in detail] == [b"1-1", b"2-1"]
    assert r.xack("s", "g", "1-1") == 1
    claimed = r.xclaim("s", "g", "bob", 0, ["2-1"], justid=True)
    assert claimed == [b"2-1"]
    auto = r.xautoclaim("s", "g", "carol", 0, "0", justid=True)
    assert auto == [b"2-1"]  # redis-py keeps only the claimed IDs with JUSTID
    assert r.xautoclaim("s", "g", "carol", 0, "0")[0] == b"0-0"
    info = r.xinfo_stream("s")
    assert info["length"] == 3 and info["groups"] == 1
    assert info["first-entry"][0] == b"1-1"
    groups = r.xinfo_groups("s")
    assert groups[0]["name"] == b"g" and groups[0]["pending"] == 1
    consumers = r.xinfo_consumers("s", "g")
    assert [c["name"] for c in consumers] == [b"alice", b"bob", b"carol"]
    assert r.xtrim("s", maxlen=1, approximate=False) == 2
    assert r.xdel("s", "2-1") == 0
    assert r.xgroup_destroy("s", "g") == 1


# -- readers against writers ------------------------------------------------------------------


def test_readers_never_see_a_torn_stream(start_server):
    """Each writer transaction adds two entries and a group read delivers
    both; readers must always see an even length, IDs in order, and a
    pending count that matches the entries read."""
    server = start_server()
    base = redis.Redis(port=server.resp_port, protocol=2)
    base.execute_command("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM", "ENTRIESREAD", "0")

    def write(r) -> None:
        with r.pipeline(transaction=True) as pipe:
            pipe.execute_command("XADD", "s", "MAXLEN", "~", "300", "*", "a", "1")
            pipe.execute_command("XADD", "s", "*", "b", "2")
            pipe.execute_command("XREADGROUP", "GROUP", "g", "w", "STREAMS", "s", ">")
            pipe.execute()

    def read(r):
        entries = r.xrange("s", "-", "+")
        ids = [tuple(map(int, i.split(b"-"))) for i, _ in entries]
        if len(entries) % 2 or ids != sorted(ids):
            return f"torn: {len(entries)} entries"
        (group,) = r.xinfo_groups("s")
        if group["pending"] % 2 or group["lag"] != 0 or group["entries-read"] != group["pending"]:
            return f"torn group: {group}"
        return None

    race(
        lambda: redis.Redis(port=server.resp_port, protocol=2),
        writers=[write] * 2,
        readers=[read] * 2,
        writes=1000,  # about 1.5 s of load on a 2-core machine
        reads=250,
    )
    assert base.xlen("s") > 0


def test_block_answers_at_once_when_it_can_and_inside_multi(kv):
    kv("XADD", "s", "1-1", "a", "b")
    assert kv("XREAD", "BLOCK", 0, "STREAMS", "s", "0") == [[b"s", [[b"1-1", [b"a", b"b"]]]]]
    kv("MULTI")
    kv("XREAD", "BLOCK", 100, "STREAMS", "s", "$")
    assert kv("EXEC") == [NullArray]


from kvserver.protocol import NullArray  # noqa: E402
