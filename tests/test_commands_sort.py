"""Tests for kvserver/commands/sort.py: SORT and SORT_RO.

* harness tests (``kv``): STORE logged as issued only when it changed
  something, a failed log append rolled back exactly, the replay;
* side by side with redis-server 7.0: every option and error, byte for
  byte, over lists, sets and sorted sets, RESP2 and RESP3 (a set's own
  order is unspecified: compared only where Redis sorts it);
* redis-py's sort against the RESP port, RESP2 and RESP3.
"""

from __future__ import annotations

import random

import pytest
import redis

from tests.support import dump, resp, replayed

SELECT0 = resp("SELECT", "0")


@pytest.fixture
def kv(failing_kv):
    return failing_kv


def test_sort_store_logs_as_issued_only_when_it_changes_something(kv):
    kv("RPUSH", "l", "3", "1", "2")
    assert kv("SORT", "l") == [b"1", b"2", b"3"]
    assert kv("SORT", "l", "STORE", "d") == 3
    assert kv("LRANGE", "d", "0", "-1") == [b"1", b"2", b"3"]
    assert kv("SORT", "l", "LIMIT", "0", "0", "STORE", "d") == 0  # deletes d: logged
    assert kv("SORT", "l", "LIMIT", "0", "0", "STORE", "d") == 0  # nothing to delete
    assert kv("SORT", "nokey", "STORE", "d") == 0
    assert kv("SORT_RO", "l", "DESC") == [b"3", b"2", b"1"]
    assert kv.log() == SELECT0 + (
        resp("RPUSH", "l", "3", "1", "2")
        + resp("SORT", "l", "STORE", "d")
        + resp("SORT", "l", "LIMIT", "0", "0", "STORE", "d")
    )


def test_failed_log_append_rolls_sort_store_back(kv):
    kv("RPUSH", "l", "3", "1", "2")
    kv("SET", "d", "x")
    before = dump(kv.keyspace)
    kv.aof.failing = True
    for args in [("SORT", "l", "STORE", "d"), ("SORT", "l", "LIMIT", "5", "5", "STORE", "d"),
                 ("SORT", "l", "STORE", "l"), ("SORT", "nokey", "STORE", "d")]:
        reply = kv(*args)
        assert reply.message.startswith("MISCONF"), args
        assert dump(kv.keyspace) == before, args


def test_replay_rebuilds_the_same_sorted_results(kv):
    rng = random.Random(5)
    for i in range(120):
        op = rng.randrange(4)
        if op == 0:
            kv("RPUSH", "l", str(rng.randrange(50)))
        elif op == 1:
            kv("SADD", "s", "m%d" % rng.randrange(50))
        elif op == 2:
            kv("SET", "w_%d" % rng.randrange(50), str(rng.randrange(9)))
        else:
            src = rng.choice(["l", "s"])
            kv("SORT", src, "BY", "nosort" if src == "l" else "w_*", "ALPHA", "LIMIT", "0", "10", "STORE", "out")
    kv.aof.close()
    assert dump(replayed(kv)) == dump(kv.keyspace)


def test_keys_that_expire_are_missing_to_by_and_get(kv):
    kv("RPUSH", "l", "a", "b")
    kv("SET", "w_a", "2")
    kv("SET", "w_b", "1")
    kv("PEXPIRE", "w_b", "10")
    kv.clock.advance(11)
    assert kv("SORT", "l", "BY", "w_*", "GET", "w_*") == [None, b"2"]


# -- side by side ---------------------------------------------------------------------------


def fill(sb):
    sb.both("RPUSH", "l", "3", "10", "2", "-1.5", "2", "1e1", "0x10", " 7", "inf", "-inf")
    sb.both("RPUSH", "words", "banana", "Apple", "cherry", "apple", "", "b\x00z", "b")
    sb.both("RPUSH", "bad", "1", "x", "3")
    sb.both("SADD", "s", "5", "3", "9", "1")
    sb.both("SADD", "sw", "pear", "fig", "kiwi", "date")
    sb.both("ZADD", "z", "3", "c", "1", "a", "2", "b", "5", "e", "4", "d")
    for name, weight, field in [("a", "5", "x3"), ("b", "1", "x1"), ("c", "9", "x2"), ("d", "1.0", "x0"), ("e", "-2", "x9")]:
        sb.both("SET", "w_" + name, weight)
        sb.both("HSET", "h_" + name, "f", field, "n", weight)
        sb.both("SET", "o_" + name, "obj-" + name)
    for word in ["pear", "fig", "kiwi", "date"]:
        sb.both("SET", "w_" + word, str(len(word)))
    for i, n in enumerate(["3", "10", "2", "1e1", "7"]):
        sb.both("SET", "w_" + n, str(i))
    sb.both("SET", "str", "v")


CASES = [
    ("SORT", "l"), ("SORT", "l", "DESC"), ("SORT", "l", "ASC", "LIMIT", "2", "3"), ("SORT", "l", "LIMIT", "-5", "2"),
    ("SORT", "l", "LIMIT", "8", "100"), ("SORT", "l", "LIMIT", "100", "5"), ("SORT", "l", "LIMIT", "0", "-1"),
    ("SORT", "l", "LIMIT", "0", "0"), ("SORT", "l", "LIMIT", "x", "1"), ("SORT", "l", "LIMIT", "1"),
    ("SORT", "l", "ALPHA"), ("SORT", "l", "ALPHA", "DESC", "LIMIT", "1", "4"),
    ("SORT", "words"), ("SORT", "words", "ALPHA"), ("SORT", "words", "ALPHA", "DESC"),
    ("SORT", "bad"), ("SORT", "bad", "ALPHA"), ("SORT", "bad", "BY", "nosort"),
    ("SORT", "s"), ("SORT", "s", "DESC"), ("SORT", "sw", "ALPHA"), ("SORT", "sw", "BY", "w_*", "DESC"),
    ("SORT", "sw", "BY", "nosort", "STORE", "out"), ("LRANGE", "out", "0", "-1"),
    ("SORT", "z"), ("SORT", "z", "ALPHA", "DESC"), ("SORT", "z", "BY", "nosort"), ("SORT", "z", "BY", "nosort", "DESC"),
    ("SORT", "z", "BY", "nosort", "LIMIT", "1", "2"), ("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"),
    ("SORT", "z", "BY", "nosort", "LIMIT", "9", "2"), ("SORT", "z", "BY", "w_*"), ("SORT", "z", "BY", "w_*", "DESC"),
    ("SORT", "z", "BY", "h_*->f", "ALPHA"), ("SORT", "z", "BY", "h_*->n"), ("SORT", "z", "BY", "h_*->missing"),
    ("SORT", "z", "BY", "missing_*"), ("SORT", "words", "BY", "missing_*", "ALPHA"), ("SORT", "words", "BY", "w_*", "ALPHA", "DESC"), ("SORT", "z", "BY", "w_*", "ALPHA"),
    ("SORT", "z", "BY", "h_*->"), ("SORT", "z", "BY", "str"), ("SORT", "z", "BY", "h_*->f"),
    ("SORT", "z", "GET", "o_*"), ("SORT", "z", "GET", "#", "GET", "o_*", "GET", "h_*->f", "GET", "nope_*"),
    ("SORT", "z", "GET", "#", "GET", "constant"), ("SORT", "z", "GET", "h_*"), ("SORT", "z", "GET", "str"),
    ("SORT", "z", "BY", "w_*", "GET", "#", "GET", "w_*", "LIMIT", "1", "3"),
    ("SORT", "l", "BY", "nosort"), ("SORT", "l", "BY", "nosort", "DESC"), ("SORT", "l", "BY", "nosort", "LIMIT", "2", "3"),
    ("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "2", "3"), ("SORT", "l", "BY", "w_*", "GET", "#", "GET", "w_*"),
    ("SORT", "l", "BY", "w_*", "LIMIT", "1", "2"),
    ("SORT", "z", "STORE", "out", "GET", "#", "GET", "nope_*"), ("LRANGE", "out", "0", "-1"),
    ("SORT", "z", "BY", "w_*", "STORE", "out"), ("LRANGE", "out", "0", "-1"), ("TYPE", "out"),
    ("SORT", "z", "LIMIT", "0", "0", "STORE", "out"), ("EXISTS", "out"),
    ("SORT", "s", "STORE", "out"), ("LRANGE", "out", "0", "-1"), ("SORT", "s", "STORE", "str"), ("TYPE", "str"),
    ("SORT", "nokey"), ("SORT", "nokey", "STORE", "out"), ("SET", "str", "v"), ("SORT", "str"),
    ("SORT", "str", "BAD"), ("SORT", "l", "BAD"), ("SORT", "l", "STORE"), ("SORT", "l", "BY"), ("SORT", "l", "GET"),
    ("SORT",), ("SORT_RO", "l", "STORE", "x"), ("SORT_RO", "z", "BY", "w_*", "GET", "#", "GET", "h_*->f", "DESC"),
    ("SORT_RO", "l", "LIMIT", "1", "2"), ("SORT_RO", "bad"),
    ("COMMAND", "GETKEYS", "SORT", "l", "STORE", "a", "LIMIT", "0", "1", "BY", "store", "STORE", "b"),
    ("COMMAND", "GETKEYS", "SORT", "l", "GET", "store", "x"), ("COMMAND", "GETKEYS", "SORT_RO", "l"),
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_sort(side_by_side, protocol):
    sb = side_by_side
    if protocol == 3:
        sb.kv.call("HELLO", "3")
        sb.redis.call("HELLO", "3")
    fill(sb)
    for args in CASES:
        sb.both(*args)


def test_side_by_side_random_lists_sort_the_same(side_by_side):
    sb = side_by_side
    rng = random.Random(9)
    items = [rng.choice(["%d" % rng.randrange(-50, 50), "%.3f" % rng.uniform(-5, 5), "1e%d" % rng.randrange(5)])
             for _ in range(300)]
    sb.both("RPUSH", "l", *items)
    for i, item in enumerate(items[:100]):
        sb.both("SET", "w_" + item, str(rng.randrange(20)))
    for args in [("SORT", "l"), ("SORT", "l", "DESC"), ("SORT", "l", "ALPHA"), ("SORT", "l", "BY", "w_*"),
                 ("SORT", "l", "BY", "w_*", "DESC", "GET", "#", "GET", "w_*"), ("SORT", "l", "LIMIT", "10", "20")]:
        sb.both(*args)


def test_side_by_side_command_info(side_by_side):
    from tests.test_commands_zsets import _fields

    for name in ["sort", "sort_ro"]:
        ours, theirs = side_by_side.each("COMMAND", "INFO", name)
        assert _fields(ours, 6) == _fields(theirs, 6), name


# -- redis-py ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_sort(start_server, protocol):
    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    r.rpush("l", 3, 1, 2)
    r.mset({"w_1": 30, "w_2": 10, "w_3": 20, "o_1": "one", "o_2": "two", "o_3": "three"})
    assert r.sort("l") == [b"1", b"2", b"3"]
    assert r.sort("l", desc=True, start=0, num=2) == [b"3", b"2"]
    assert r.sort("l", by="w_*") == [b"2", b"3", b"1"]
    assert r.sort("l", by="w_*", get=["#", "o_*"]) == [b"2", b"two", b"3", b"three", b"1", b"one"]
    assert r.sort("l", by="w_*", get=["#", "o_*"], groups=True) == [(b"2", b"two"), (b"3", b"three"), (b"1", b"one")]
    assert r.sort("l", alpha=True, store="dst") == 3
    assert r.lrange("dst", 0, -1) == [b"1", b"2", b"3"]
    assert r.sort_ro("l", by="nosort", desc=True) == [b"2", b"1", b"3"]
    r.rpush("bad", "x")
    with pytest.raises(redis.ResponseError, match="One or more scores can't be converted into double"):
        r.sort("bad")
