"""Tests for kvserver/commands/lists.py (and values/lists.py's list methods).

* Harness tests: replies, the exact log bytes (as Redis 7.0's AOF writes
  them), a refused log append undoing everything, keys that expire
  between commands, and replay rebuilding what the live keyspace holds.
* Side by side with redis-server 7.0: the same requests, the same bytes,
  in RESP2 and RESP3.
* redis-py's list methods against the RESP port, RESP2 and RESP3.
* Readers of a list that writers keep rotating never see an error or a
  list caught half-way through a change.
"""

from __future__ import annotations

import errno
import os
import random
import time

import pytest

from kvserver.commands import COMMANDS
from kvserver.errors import CommandError
from kvserver.protocol import NullArray, Status
from kvserver.server import load_log
from kvserver.store import Keyspace
from kvserver.values import List
from tests.support import Harness, error_text, race, resp, replayed

OK = Status("OK")
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
DISK_FULL = "MISCONF Errors writing to the AOF file: " + os.strerror(errno.ENOSPC)
SELECT0 = resp("SELECT", "0")


@pytest.fixture
def kv(failing_kv):
    """``failing_kv`` (conftest.py): any test here may set ``kv.aof.failing``."""
    return failing_kv


def contents(keyspace: Keyspace) -> dict:
    """Every live key as plain values (lists copied), with its deadline."""
    out = {}
    for db in keyspace.dbs:
        for key, value in db.data.items():
            deadline = db.expires.get(key)
            if deadline is not None and deadline < keyspace.clock():
                continue
            out[db.index, key] = (list(value) if type(value) is List else value, deadline)
    return out


def state(kv: Harness) -> tuple:
    """What a rollback must restore exactly: the contents and the memory figure."""
    return contents(kv.keyspace), kv.keyspace.used_bytes


def items(kv: Harness, key: str) -> list[bytes]:
    return kv("LRANGE", key, 0, -1)


# -- pushes and pops ----------------------------------------------------------------------


def test_pushes_order_and_lengths(kv):
    assert kv("RPUSH", "l", "a", "b") == 2
    assert kv("LPUSH", "l", "x", "y") == 4  # one at a time: y ends up first
    assert items(kv, "l") == [b"y", b"x", b"a", b"b"]
    assert kv("LPUSHX", "l", "0") == 5
    assert kv("RPUSHX", "l", "9", "10") == 7
    assert kv("LPUSHX", "nope", "a") == 0 and kv("RPUSHX", "nope", "a") == 0
    assert kv("EXISTS", "nope") == 0
    assert kv("LLEN", "l") == 7 and kv("LLEN", "nope") == 0
    assert kv("TYPE", "l") == Status("list")


def test_pops_with_and_without_count(kv):
    kv("RPUSH", "l", "a", "b", "c", "d", "e")
    assert kv("LPOP", "l") == b"a"
    assert kv("RPOP", "l") == b"e"
    assert kv("LPOP", "l", 0) == []
    assert kv("RPOP", "l", 2) == [b"d", b"c"]
    assert kv("LPOP", "l", 10) == [b"b"]
    assert kv("EXISTS", "l") == 0  # the last element took the key with it
    assert kv("LPOP", "l") is None
    assert kv("RPOP", "l", 1) is NullArray
    assert kv("LPOP", "l", 0) is NullArray  # missing: the null array even for 0
    assert error_text(kv("LPOP", "l", -1)) == "ERR value is out of range, must be positive"
    assert error_text(kv("LPOP", "l", "x")) == "ERR value is out of range, must be positive"
    assert error_text(kv("LPOP", "l", 1, 2)) == "ERR wrong number of arguments for 'lpop' command"


def test_every_command_refuses_another_type(kv):
    kv("SET", "s", "v")
    for args in [
        ("LPUSH", "s", "a"), ("RPUSHX", "s", "a"), ("LPOP", "s"), ("RPOP", "s", 0), ("LLEN", "s"),
        ("LRANGE", "s", 0, -1), ("LINDEX", "s", 0), ("LSET", "s", 0, "a"), ("LINSERT", "s", "BEFORE", "a", "b"),
        ("LREM", "s", 0, "a"), ("LTRIM", "s", 0, 1), ("LPOS", "s", "a"), ("LMOVE", "s", "d", "LEFT", "LEFT"),
        ("RPOPLPUSH", "s", "d"), ("LMPOP", 1, "s", "LEFT"),
    ]:
        assert error_text(kv(*args)) == WRONGTYPE, args
    kv("RPUSH", "l", "a")
    assert error_text(kv("LMOVE", "l", "s", "LEFT", "LEFT")) == WRONGTYPE
    assert items(kv, "l") == [b"a"]  # nothing popped before the destination was checked
    assert kv("GET", "s") == b"v"


# -- reads ------------------------------------------------------------------------------


def test_lrange_and_lindex_indexes(kv):
    kv("RPUSH", "l", *"abcde")
    assert kv("LRANGE", "l", 1, 3) == [b"b", b"c", b"d"]
    assert kv("LRANGE", "l", -2, -1) == [b"d", b"e"]
    assert kv("LRANGE", "l", -100, 100) == [b"a", b"b", b"c", b"d", b"e"]
    assert kv("LRANGE", "l", 3, 1) == [] and kv("LRANGE", "l", 5, 10) == []
    assert kv("LRANGE", "nope", 0, -1) == []
    assert kv("LINDEX", "l", 0) == b"a" and kv("LINDEX", "l", -1) == b"e"
    assert kv("LINDEX", "l", 5) is None and kv("LINDEX", "l", -6) is None
    assert kv("LINDEX", "nope", "x") is None  # the key first, as Redis


def test_lrange_of_the_ends_of_a_long_list_walks_only_what_it_returns():
    walked = [0]

    class Counting(List):
        __slots__ = ()

        def __iter__(self):
            for item in super().__iter__():
                walked[0] += 1
                yield item

        def __reversed__(self):
            for item in super().__reversed__():
                walked[0] += 1
                yield item

    value = Counting(b"%d" % i for i in range(100_000))
    walked[0] = 0  # building it walked it once
    assert value.range_items(0, 100) == [b"%d" % i for i in range(100)]
    assert walked[0] == 100
    walked[0] = 0
    assert value.range_items(99_900, 100_000) == [b"%d" % i for i in range(99_900, 100_000)]
    assert walked[0] == 100


def test_lpos(kv):
    kv("RPUSH", "l", "a", "b", "c", "a", "b", "a")
    assert kv("LPOS", "l", "a") == 0
    assert kv("LPOS", "l", "a", "RANK", 2) == 3
    assert kv("LPOS", "l", "a", "RANK", -1) == 5
    assert kv("LPOS", "l", "a", "RANK", -2, "COUNT", 0) == [3, 0]
    assert kv("LPOS", "l", "a", "COUNT", 2) == [0, 3]
    assert kv("LPOS", "l", "a", "COUNT", 0, "MAXLEN", 4) == [0, 3]
    assert kv("LPOS", "l", "z") is None and kv("LPOS", "l", "z", "COUNT", 1) == []
    assert kv("LPOS", "nope", "a") is None and kv("LPOS", "nope", "a", "COUNT", 1) == []
    assert error_text(kv("LPOS", "l", "a", "RANK", 0)).startswith("ERR RANK can't be zero")
    assert error_text(kv("LPOS", "l", "a", "COUNT", -1)) == "ERR COUNT can't be negative"
    assert error_text(kv("LPOS", "l", "a", "MAXLEN", -1)) == "ERR MAXLEN can't be negative"
    assert error_text(kv("LPOS", "l", "a", "COUNT")) == "ERR syntax error"


# -- the log ----------------------------------------------------------------------------


def test_the_log_holds_each_change_as_redis_writes_it(kv):
    kv("RPUSH", "l", "a", "b", "c", "d", "e", "f", "g")
    kv("LPUSH", "l", "z")
    kv("RPUSHX", "l", "h")
    kv("LPOP", "l")
    kv("RPOP", "l", 2)
    kv("RPOPLPUSH", "l", "l2")
    kv("LMOVE", "l", "l2", "left", "RIGHT")
    kv("LMPOP", 2, "nope", "l", "LEFT", "COUNT", 2)
    kv("LMPOP", 1, "l", "right")
    kv("LSET", "l", -1, "Q")
    kv("LINSERT", "l", "before", "Q", "P")
    kv("LREM", "l", 1, "Q")
    kv("LTRIM", "l", 1, 0)
    assert kv.log() == SELECT0 + b"".join(
        [
            resp("RPUSH", "l", "a", "b", "c", "d", "e", "f", "g"),
            resp("LPUSH", "l", "z"),
            resp("RPUSHX", "l", "h"),
            resp("LPOP", "l"),
            resp("RPOP", "l", "2"),
            resp("RPOPLPUSH", "l", "l2"),
            resp("LMOVE", "l", "l2", "left", "RIGHT"),
            resp("LPOP", "l", "2"),  # LMPOP, as Redis propagates it
            resp("RPOP", "l", "1"),
            resp("LSET", "l", "-1", "Q"),
            resp("LINSERT", "l", "before", "Q", "P"),
            resp("LREM", "l", "1", "Q"),
            resp("LTRIM", "l", "1", "0"),
        ]
    )
    assert kv("EXISTS", "l") == 0


def test_what_changes_nothing_logs_nothing(kv):
    kv("RPUSH", "l", "a", "b")
    before = kv.log()
    for args in [
        ("LPOP", "nope"), ("RPOP", "nope", 3), ("LPOP", "l", 0), ("LPUSHX", "nope", "a"),
        ("LREM", "l", 0, "zz"), ("LREM", "nope", 0, "a"), ("LTRIM", "l", 0, 100), ("LTRIM", "nope", 1, 0),
        ("LINSERT", "l", "BEFORE", "zz", "x"), ("LINSERT", "nope", "AFTER", "a", "x"),
        ("LMOVE", "nope", "l", "LEFT", "LEFT"), ("RPOPLPUSH", "nope", "l"), ("LMPOP", 2, "x", "y", "LEFT"),
        ("LSET", "l", 5, "x"), ("LSET", "nope", 0, "x"), ("LRANGE", "l", 0, -1), ("LPOS", "l", "a"),
    ]:
        kv(*args)
    assert kv.log() == before
    assert items(kv, "l") == [b"a", b"b"]


WRITES = [
    ("LPUSH", "l", "new", "new2"),
    ("RPUSH", "fresh", "x"),
    ("RPUSHX", "l", "x"),
    ("LPOP", "l"),
    ("RPOP", "l", 10),  # empties the list: the key goes, and must come back
    ("LSET", "l", 1, "changed"),
    ("LINSERT", "l", "AFTER", "b", "ins"),
    ("LREM", "l", -1, "a"),
    ("LTRIM", "l", 1, -2),
    ("LMOVE", "l", "m", "RIGHT", "LEFT"),
    ("LMOVE", "l", "fresh", "LEFT", "LEFT"),
    ("RPOPLPUSH", "l", "l"),
    ("LMPOP", 2, "nope", "m", "RIGHT", "COUNT", 5),
]


@pytest.mark.parametrize("args", WRITES, ids=lambda args: " ".join(map(str, args)))
def test_a_refused_log_append_leaves_everything_as_it_was(kv, args):
    kv("RPUSH", "l", "a", "b", "c", "a")
    kv("RPUSH", "m", "m1", "m2")
    kv("PEXPIRE", "m", 50_000)
    before, log_before = state(kv), kv.log()
    kv.aof.failing = True
    assert error_text(kv(*args)) == DISK_FULL
    assert state(kv) == before
    assert kv.log() == log_before
    kv.aof.failing = False
    assert not isinstance(kv(*args), CommandError)  # and it works once the log does
    assert contents(replayed(kv)) == contents(kv.keyspace)


def test_a_push_onto_a_list_that_expired_replays_to_the_new_list_alone(kv):
    kv("RPUSH", "l", "old")
    kv("PEXPIRE", "l", 10)
    kv("RPUSH", "d", "old")
    kv("PEXPIRE", "d", 10)
    kv("RPUSH", "src", "x", "y")
    kv.clock.advance(11)
    log_before = kv.log()
    kv.keyspace.dbs[0].sweep(kv.clock(), time.perf_counter() + 5)
    assert kv.log() == log_before + resp("DEL", "l") + resp("DEL", "d")  # the expiries, as Redis logs them
    assert kv("RPUSH", "l", "new") == 1
    assert kv("RPOPLPUSH", "src", "d") == b"y"
    live = contents(kv.keyspace)
    assert live[0, b"l"] == ([b"new"], None) and live[0, b"d"] == ([b"y"], None)
    assert contents(replayed(kv)) == live


def test_expiry_between_commands(kv):
    kv("RPUSH", "l", "a", "b")
    kv("PEXPIRE", "l", 10)
    kv.clock.advance(10)
    assert kv("LLEN", "l") == 2  # at the deadline: still live
    assert kv("LPUSHX", "l", "z") == 3
    kv.clock.advance(1)
    assert kv("LLEN", "l") == 0 and kv("LPOP", "l") is None and kv("LPUSHX", "l", "z") == 0
    assert kv("LMOVE", "l", "d", "LEFT", "LEFT") is None
    assert contents(replayed(kv)) == contents(kv.keyspace) == {}


def test_a_random_mix_replays_to_the_same_lists(kv):
    rng = random.Random(14)
    keys = ["a", "b", "c", "d"]
    values = ["x", "y", "z"]
    for _ in range(1000):
        key, other, value = rng.choice(keys), rng.choice(keys), rng.choice(values)
        index = str(rng.randint(-4, 4))
        args = rng.choice(
            [
                ("LPUSH", key, value, value),
                ("RPUSH", key, value),
                ("LPUSHX", key, value),
                ("RPUSHX", key, value),
                ("LPOP", key),
                ("RPOP", key, str(rng.randint(0, 3))),
                ("LSET", key, index, value),
                ("LINSERT", key, rng.choice(["BEFORE", "AFTER"]), value, "w"),
                ("LREM", key, index, value),
                ("LTRIM", key, index, str(rng.randint(-4, 4))),
                ("LMOVE", key, other, rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"])),
                ("RPOPLPUSH", key, other),
                ("LMPOP", "2", key, other, rng.choice(["LEFT", "RIGHT"]), "COUNT", "2"),
            ]
        )
        if rng.random() < 0.03:  # now and then a key expires, and is made anew
            args = ("PEXPIRE", key, str(rng.randint(1, 10)))
        kv(*args)
        kv.clock.advance(rng.randint(0, 3))
    live = contents(kv.keyspace)
    assert len(live) >= 2  # the mix ends with lists to compare
    assert contents(replayed(kv)) == live
    for db in kv.keyspace.dbs:  # and the memory figure kept up through all of it
        assert all(value.nbytes == List(value).nbytes for value in db.data.values())


# -- COMMAND INFO ---------------------------------------------------------------------------

# Redis 7.0.15's COMMAND INFO: arity, flags, first/last key and step, categories.
REDIS_COMMAND_INFO = {
    "lpush": (-3, {"write", "denyoom", "fast"}, 1, 1, 1),
    "rpush": (-3, {"write", "denyoom", "fast"}, 1, 1, 1),
    "lpushx": (-3, {"write", "denyoom", "fast"}, 1, 1, 1),
    "rpushx": (-3, {"write", "denyoom", "fast"}, 1, 1, 1),
    "lpop": (-2, {"write", "fast"}, 1, 1, 1),
    "rpop": (-2, {"write", "fast"}, 1, 1, 1),
    "llen": (2, {"readonly", "fast"}, 1, 1, 1),
    "lrange": (4, {"readonly"}, 1, 1, 1),
    "lindex": (3, {"readonly"}, 1, 1, 1),
    "lset": (4, {"write", "denyoom"}, 1, 1, 1),
    "linsert": (5, {"write", "denyoom"}, 1, 1, 1),
    "lrem": (4, {"write"}, 1, 1, 1),
    "ltrim": (4, {"write"}, 1, 1, 1),
    "lpos": (-3, {"readonly"}, 1, 1, 1),
    "lmove": (5, {"write", "denyoom"}, 1, 2, 1),
    "rpoplpush": (3, {"write", "denyoom"}, 1, 2, 1),
    "lmpop": (-4, {"write", "movablekeys"}, 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(REDIS_COMMAND_INFO))
def test_command_info_as_redis(kv, name):
    [info] = kv("COMMAND", "INFO", name)
    arity, flags, first, last, step = REDIS_COMMAND_INFO[name]
    assert info[0] == name.encode()
    assert (info[1], set(info[2]), info[3], info[4], info[5]) == (arity, flags, first, last, step)
    fast = "@fast" if "fast" in flags else "@slow"
    assert list(info[6]) == ["@write" if "write" in flags else "@read", "@list", fast]
    assert COMMANDS[name.upper().encode()].write == ("write" in flags)


def test_side_by_side_command_getkeys(side_by_side):
    both = side_by_side.both
    for args in [
        ("LMPOP", "2", "a", "b", "LEFT"), ("LMPOP", "1", "a", "LEFT", "COUNT", "2"), ("LMPOP", "0", "a", "LEFT"),
        ("LMPOP", "3", "a", "LEFT"), ("LMPOP", "2", "a", "LEFT"), ("LMPOP", "x", "a", "LEFT"), ("LMPOP", "1", "a"),
        ("LMOVE", "a", "b", "LEFT", "RIGHT"), ("RPOPLPUSH", "a", "b"), ("LPUSH", "a", "x"), ("LPOS", "a"),
    ]:
        both("COMMAND", "GETKEYS", *args)


# -- side by side with redis-server ------------------------------------------------------


@pytest.fixture(params=[2, 3], ids=["RESP2", "RESP3"])
def pair(request, side_by_side):
    """``side_by_side``, both connections switched to RESP ``request.param``."""
    if request.param == 3:
        side_by_side.each("HELLO", "3")  # the replies differ (server name, id...)
    return side_by_side


def test_side_by_side_pushes_and_pops(pair):
    both = pair.both
    both("RPUSH", "l", "a", "b", "c", "d", "e")
    both("LPUSH", "l", "x", "y")
    both("LPUSHX", "l", "0")
    both("RPUSHX", "l", "9", "10")
    both("LPUSHX", "nope", "a")
    both("RPUSHX", "nope", "a", "b")
    both("LLEN", "l")
    both("LLEN", "nope")
    for args in [
        ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "0"), ("RPOP", "l", "2"), ("LPOP", "l", "1"),
        ("LPOP", "l", "100"), ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "2"), ("RPOP", "l", "0"),
        ("LPOP", "l", "-1"), ("LPOP", "l", "abc"), ("LPOP", "l", "1.5"), ("LPOP", "l", "1", "2"),
        ("RPOP", "l", "9223372036854775807"), ("RPOP", "l", "9223372036854775808"),
    ]:
        both(*args)
    both("RPUSH", "l", "a")
    both("LPOP", "l", "9223372036854775807")
    both("RPUSH", "bin", b"\x00\xff\r\n", b"")
    both("LRANGE", "bin", "0", "-1")
    both("SET", "s", "v")
    for args in [
        ("LPUSH", "s", "a"), ("LPUSHX", "s", "a"), ("LPOP", "s"), ("RPOP", "s", "0"), ("LPOP", "s", "x"), ("LLEN", "s"),
    ]:
        both(*args)
    for args in [("LPUSH",), ("LPUSH", "l"), ("RPUSHX", "l"), ("LPOP",), ("LLEN",), ("LLEN", "a", "b")]:
        both(*args)


def test_side_by_side_ranges_and_indexes(pair):
    both = pair.both
    both("RPUSH", "l", *"abcdefghij")
    both("SET", "s", "v")
    for start, stop in [
        ("0", "-1"), ("0", "0"), ("2", "4"), ("-3", "-1"), ("-100", "100"), ("5", "2"), ("10", "20"),
        ("-1", "-2"), ("9223372036854775807", "-9223372036854775808"),
        ("-9223372036854775808", "9223372036854775807"),
        ("0", "99999999999999999999"), ("a", "1"), ("1", "b"), ("01", "2"), (" 1", "2"),
    ]:
        both("LRANGE", "l", start, stop)
        both("LRANGE", "nope", start, stop)
        both("LRANGE", "s", start, stop)
    for index in ["0", "9", "10", "-1", "-10", "-11", "abc", "9223372036854775807", "-9223372036854775808"]:
        both("LINDEX", "l", index)
        both("LINDEX", "nope", index)
        both("LINDEX", "s", index)
    for args in [("LRANGE", "l", "0"), ("LINDEX", "l"), ("LINDEX", "l", "0", "1")]:
        both(*args)


def test_side_by_side_lset_linsert_lrem_ltrim(pair):
    both = pair.both
    both("RPUSH", "l", "a", "b", "a", "c", "a", "b")
    both("SET", "s", "v")
    for args in [
        ("LSET", "l", "0", "A"), ("LSET", "l", "-1", "Z"), ("LSET", "l", "6", "x"), ("LSET", "l", "-7", "x"),
        ("LSET", "l", "x", "x"), ("LSET", "nope", "0", "x"), ("LSET", "nope", "x", "x"), ("LSET", "s", "x", "x"),
        ("LINSERT", "l", "BEFORE", "a", "1"), ("LINSERT", "l", "after", "a", "2"),
        ("LINSERT", "l", "AFTER", "zz", "3"), ("LINSERT", "l", "middle", "a", "3"),
        ("LINSERT", "nope", "BEFORE", "a", "x"), ("LINSERT", "nope", "x", "a", "x"),
        ("LINSERT", "s", "BEFORE", "a", "x"), ("LINSERT", "l", "BEFORE", "a"),
        ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "1", "a"), ("LREM", "l", "-1", "b"), ("LREM", "l", "0", "zz"), ("LREM", "l", "x", "a"),
        ("LREM", "nope", "1", "a"), ("LREM", "nope", "x", "a"), ("LREM", "s", "1", "a"),
        ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "0", "a"),
        ("LRANGE", "l", "0", "-1"),
        ("LTRIM", "l", "1", "-2"), ("LRANGE", "l", "0", "-1"), ("LTRIM", "l", "0", "100"),
        ("LTRIM", "l", "x", "1"),
        ("LTRIM", "nope", "0", "1"), ("LTRIM", "nope", "x", "1"), ("LTRIM", "s", "0", "1"),
        ("LTRIM", "l", "-1", "0"), ("LRANGE", "l", "0", "-1"), ("LTRIM", "l", "5", "1"), ("EXISTS", "l"),
    ]:
        both(*args)


def test_side_by_side_lpos(pair):
    both = pair.both
    both("RPUSH", "l", "a", "b", "c", "a", "b", "a", "c", "a")
    both("SET", "s", "v")
    for options in [
        (), ("RANK", "1"), ("RANK", "2"), ("RANK", "4"), ("RANK", "5"), ("RANK", "-1"), ("RANK", "-3"),
        ("RANK", "-9"), ("RANK", "0"), ("RANK", "x"), ("RANK", "9223372036854775807"),
        ("RANK", "-9223372036854775808"), ("RANK", "-9223372036854775808", "COUNT", "2"),
        ("COUNT", "0"), ("COUNT", "1"), ("COUNT", "3"), ("COUNT", "100"), ("COUNT", "-1"), ("COUNT", "x"),
        ("MAXLEN", "0"), ("MAXLEN", "3"), ("MAXLEN", "-1"), ("MAXLEN", "x"),
        ("RANK", "2", "COUNT", "2"), ("RANK", "-2", "COUNT", "0"), ("RANK", "-1", "MAXLEN", "2"),
        ("COUNT", "0", "MAXLEN", "4"), ("RANK", "2", "COUNT", "0", "MAXLEN", "5"), ("rank", "1", "count", "1"),
        ("COUNT", "1", "RANK", "2", "COUNT", "0"), ("RANK",), ("COUNT",), ("FOO", "1"), ("RANK", "0", "FOO"),
        ("RANK", "1", "MAXLEN"),
    ]:
        both("LPOS", "l", "a", *options)
        both("LPOS", "l", "zz", *options)
        both("LPOS", "nope", "a", *options)
        both("LPOS", "s", "a", *options)
    both("LPOS", "l")


def test_side_by_side_moves(pair):
    both = pair.both
    both("RPUSH", "l", "a", "b", "c", "d", "e", "f")
    both("SET", "s", "v")
    for args in [
        ("RPOPLPUSH", "l", "d"), ("LMOVE", "l", "d", "LEFT", "RIGHT"), ("LMOVE", "l", "d", "left", "left"),
        ("LMOVE", "l", "d", "RIGHT", "RIGHT"), ("LRANGE", "d", "0", "-1"), ("LRANGE", "l", "0", "-1"),
        ("RPOPLPUSH", "l", "l"), ("LMOVE", "l", "l", "LEFT", "RIGHT"), ("LRANGE", "l", "0", "-1"),
        ("LMOVE", "l", "d", "UP", "LEFT"), ("LMOVE", "l", "d", "LEFT", "DOWN"),
        ("LMOVE", "nope", "d", "UP", "LEFT"),
        ("RPOPLPUSH", "nope", "d"), ("RPOPLPUSH", "nope", "s"), ("RPOPLPUSH", "l", "s"), ("RPOPLPUSH", "s", "l"),
        ("LMOVE", "l", "s", "LEFT", "LEFT"), ("LMOVE", "nope", "s", "LEFT", "LEFT"),
        ("RPOPLPUSH", "l", "d"), ("RPOPLPUSH", "l", "d"), ("EXISTS", "l"), ("LRANGE", "d", "0", "-1"),
        ("RPUSH", "one", "x"), ("RPOPLPUSH", "one", "one"), ("LMOVE", "one", "one", "LEFT", "LEFT"),
        ("LRANGE", "one", "0", "-1"),
        ("RPOPLPUSH", "l"), ("LMOVE", "l", "d", "LEFT"),
    ]:
        both(*args)


def test_side_by_side_lmpop(pair):
    both = pair.both
    both("RPUSH", "a", "1", "2", "3")
    both("RPUSH", "b", "x", "y")
    both("SET", "s", "v")
    for args in [
        ("1", "a", "LEFT"), ("2", "nope", "a", "RIGHT"), ("2", "nope", "b", "left", "COUNT", "5"),
        ("3", "nope", "b", "a", "RIGHT", "count", "1"), ("1", "nope", "LEFT"), ("2", "nope", "s", "LEFT"),
        ("2", "s", "a", "LEFT"), ("0", "a", "LEFT"), ("-1", "a", "LEFT"), ("x", "a", "LEFT"),
        ("2", "a", "LEFT"), ("3", "a", "LEFT"), ("1", "a", "MIDDLE"), ("1", "a", "LEFT", "COUNT", "0"),
        ("1", "a", "LEFT", "COUNT", "-1"), ("1", "a", "LEFT", "COUNT", "x"), ("1", "a", "LEFT", "COUNT"),
        ("1", "a", "LEFT", "COUNT", "1", "COUNT", "1"), ("1", "a", "LEFT", "FOO"),
        ("9223372036854775807", "a", "LEFT"), ("1", "a", "LEFT", "COUNT", "9223372036854775807"),
        ("1", "a"), ("1",),
    ]:
        both("LMPOP", *args)
    both("EXISTS", "a", "b")


# -- redis-py -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_list_methods(start_server, protocol):
    import redis

    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lpush("l", "z") == 4
    assert r.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"]
    assert r.lpop("l") == b"z"
    assert r.lpop("l", 2) == [b"a", b"b"]
    assert r.lpop("nope", 2) is None
    assert r.rpop("nope") is None
    r.rpush("l", "d", "c", "e")
    assert r.lmove("l", "m", "LEFT", "RIGHT") == b"c"
    assert r.lmove("nope", "m") is None
    assert r.lpos("l", "c") == 1
    assert r.lpos("l", "c", count=0) == [1]
    assert r.lpos("l", "zz") is None
    assert r.linsert("l", "BEFORE", "c", "b") == 4
    assert r.linsert("l", "AFTER", "zz", "x") == -1
    assert r.lrem("l", 0, "c") == 1
    assert r.ltrim("l", 0, 1) is True
    assert r.lrange("l", 0, -1) == [b"d", b"b"]
    assert r.llen("l") == 2 and r.lindex("l", -1) == b"b" and r.lset("l", 0, "D") is True
    assert r.lmpop(2, "nope", "l", direction="RIGHT", count=5) == [b"l", [b"b", b"D"]]
    assert r.lmpop(1, "l", direction="LEFT") is None
    assert r.rpoplpush("m", "m") == b"c"
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.lset("l", 0, "x")


def test_the_text_port_prints_lists_on_one_line(start_server):
    client = start_server().client()
    assert client.call("RPUSH l a b") == b"2"
    assert client.call("LRANGE l 0 -1") == b"a b"
    assert client.call("LPOP nope 2") == b"nil"
    assert client.call("LMPOP 1 l LEFT COUNT 5") == b"l a b"
    assert client.call("LPOS l a COUNT 0") == b""


# -- readers while writers change the list -------------------------------------------------

LENGTH = 50  # items in the rotated list: every read must see all of them, in cyclic order


def test_readers_never_see_a_list_half_way_through_a_change(start_server):
    """Writers rotate a list (RPOPLPUSH l l, LMOVE l l LEFT RIGHT: a pop then a
    push) while readers LRANGE, LLEN and LINDEX it: every read sees all
    LENGTH items in cyclic order, never one missing or an error."""
    import redis

    server = start_server()
    redis.Redis(port=server.resp_port).rpush("l", *range(LENGTH))

    def read(r):
        whole = [int(x) for x in r.lrange("l", 0, -1)]
        length = r.llen("l")
        last = r.lindex("l", LENGTH - 1)
        start = whole[0] if whole else 0
        if whole != [(start + i) % LENGTH for i in range(LENGTH)] or length != LENGTH or last is None:
            return (whole, length, last)
        return None

    race(
        lambda: redis.Redis(port=server.resp_port),
        writers=[lambda r: r.rpoplpush("l", "l"), lambda r: r.lmove("l", "l", "LEFT", "RIGHT")],
        readers=[read] * 3,
        writes=6000,
        reads=3000,
    )


def test_keys_that_expired_while_the_server_was_down_are_logged_as_deleted(tmp_path, start_server):
    from tests.support import T0, FakeClock

    path = tmp_path / "down.aof"
    path.write_bytes(resp("SELECT", "0") + resp("RPUSH", "l", "old") + resp("PEXPIREAT", "l", str(T0 + 10)))
    server = start_server(aof_path=str(path), clock=FakeClock(T0 + 20))
    assert path.read_bytes().endswith(resp("DEL", "l"))  # dropped at start-up, and said so
    client = server.client()
    assert client.call("RPUSH l new") == b"1"
    server.stop()
    keyspace = Keyspace(clock=FakeClock(T0 + 20))
    load_log(keyspace, str(path))
    assert list(keyspace.dbs[0].data[b"l"]) == [b"new"]
