"""Tests for kvserver/commands/hashes.py (and the Hash methods behind them,
kvserver/values/hashes.py).

Four kinds:

* unit tests through the Harness (tests/support.py): replies, the exact
  bytes logged, a write refused because the log cannot be written leaving
  everything as it was, expiry, and the log replayed into a fresh keyspace
  rebuilding what the live one holds;
* HSCAN's promise (a field present throughout is returned) on big hashes
  changing between calls, and HRANDFIELD's counts;
* side by side with a real redis-server 7.0, in RESP2 and RESP3: the same
  requests, the same reply bytes (random replies compared by shape);
* redis-py's hash methods on a live server, and readers hammering a hash
  while writers change it, never seeing half of a write.
"""

from __future__ import annotations

import itertools
import random

import pytest

from kvserver.commands import COMMANDS
from kvserver.commands.hashes import MAX_RANDOM_FIELDS
from kvserver.protocol import Status
from kvserver.server import load_log
from kvserver.store import Keyspace
from kvserver.values import Hash
from kvserver.values.hashes import INDEX_MIN_FIELDS
from tests.support import dump, error_text, race, resp

OK = Status("OK")
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"


GROUP_FIELDS = 40  # fields one HSET changes together (the torn-read test)
MAX_SCAN_CALLS = 5_000  # a walk that long has lost its way


def _scan_all(kv, key, *options, between=None) -> tuple[list, int]:
    """Every field HSCAN returns for ``key`` (repeats kept), and the calls."""
    seen, cursor, calls = [], b"0", 0
    while calls < MAX_SCAN_CALLS:
        cursor, batch = kv("HSCAN", key, cursor, *options)
        calls += 1
        seen += batch[::2]
        if cursor == b"0":
            return seen, calls
        if between is not None:
            between(calls)
    raise AssertionError(f"HSCAN of {key} still going after {calls} calls")


# -- replies -------------------------------------------------------------------------


def test_set_get_and_the_field_reads(kv):
    assert kv("HSET", "h", "a", "1", "b", "22", "a", "3") == 2  # a named twice: its last value
    assert kv("HSET", "h", "b", "22", "c", "") == 1
    assert kv("HGET", "h", "a") == b"3" and kv("HGET", "h", "zz") is None and kv("HGET", "nokey", "a") is None
    assert kv("HMGET", "h", "a", "zz", "c") == [b"3", None, b""]
    assert kv("HMGET", "nokey", "a", "b") == [None, None]
    assert kv("HLEN", "h") == 3 and kv("HLEN", "nokey") == 0
    assert kv("HSTRLEN", "h", "b") == 2 and kv("HSTRLEN", "h", "zz") == 0 and kv("HSTRLEN", "nokey", "a") == 0
    assert kv("HEXISTS", "h", "c") == 1 and kv("HEXISTS", "h", "zz") == 0 and kv("HEXISTS", "nokey", "a") == 0
    assert kv("HKEYS", "h") == [b"a", b"b", b"c"]  # the order fields were first set
    assert kv("HVALS", "h") == [b"3", b"22", b""]
    assert kv("HGETALL", "h") == {b"a": b"3", b"b": b"22", b"c": b""}
    assert kv("HKEYS", "nokey") == [] and kv("HVALS", "nokey") == [] and kv("HGETALL", "nokey") == {}
    assert kv("HMSET", "h", "d", "4") == OK
    assert kv("HSETNX", "h", "d", "5") == 0 and kv("HSETNX", "h", "e", "5") == 1
    assert kv("HGET", "h", "d") == b"4" and kv("HGET", "h", "e") == b"5"
    assert kv("TYPE", "h") == Status("hash")


def test_hdel_removes_fields_and_the_hash_with_its_last(kv):
    kv("HSET", "h", "a", "1", "b", "2")
    assert kv("HDEL", "h", "a", "zz", "a") == 1
    assert kv("HDEL", "nokey", "a") == 0
    assert kv("HDEL", "h", "b") == 1
    assert kv("EXISTS", "h") == 0 and b"h" not in kv.db.data and kv.db.used_bytes == 0


def test_a_read_returns_new_objects_never_the_stored_hash(kv):
    kv("HSET", "h", "a", "1")
    stored = kv.db.data[b"h"]
    for args in (("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"), ("HMGET", "h", "a"), ("HSCAN", "h", "0")):
        reply = kv(*args)
        assert reply is not stored and type(reply) in (dict, list)
    assert type(kv("HGETALL", "h")) is dict  # a plain dict: a Hash is not a reply type


def test_wrong_type_and_arity_errors(kv):
    kv("SET", "s", "x")
    for args in [
        ("HSET", "s", "a", "1"), ("HSETNX", "s", "a", "1"), ("HGET", "s", "a"), ("HMGET", "s", "a"),
        ("HMSET", "s", "a", "1"), ("HDEL", "s", "a"), ("HLEN", "s"), ("HSTRLEN", "s", "a"),
        ("HEXISTS", "s", "a"), ("HKEYS", "s"), ("HVALS", "s"), ("HGETALL", "s"), ("HINCRBY", "s", "a", "1"),
        ("HINCRBYFLOAT", "s", "a", "1"), ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "0"), ("HSCAN", "s", "0"),
    ]:
        assert error_text(kv(*args)) == WRONGTYPE, args
    assert error_text(kv("HSET", "h", "a")) == "ERR wrong number of arguments for 'hset' command"
    assert error_text(kv("HSET", "s", "a", "1", "b")) == "ERR wrong number of arguments for 'hset' command"
    assert error_text(kv("HMSET", "h", "a", "1", "b")) == "ERR wrong number of arguments for 'hmset' command"
    assert kv("GET", "s") == b"x"


def test_hincrby(kv):
    assert kv("HINCRBY", "h", "n", "5") == 5
    assert kv("HINCRBY", "h", "n", "-7") == -2
    kv("HSET", "h", "big", str(2**63 - 1), "text", "abc", "spaced", " 1", "float", "1.5")
    assert error_text(kv("HINCRBY", "h", "big", "1")) == "ERR increment or decrement would overflow"
    for field in ("text", "spaced", "float"):
        assert error_text(kv("HINCRBY", "h", field, "1")) == "ERR hash value is not an integer"
    assert error_text(kv("HINCRBY", "h", "n", "1.0")) == NOT_INTEGER
    assert error_text(kv("HINCRBY", "s", "n", "x")) == NOT_INTEGER  # before the key is looked at
    assert kv("HGET", "h", "n") == b"-2"


def test_hincrbyfloat_as_incrbyfloat(kv):
    assert kv("HINCRBYFLOAT", "h", "f", "10.5") == b"10.5"
    assert kv("HINCRBYFLOAT", "h", "f", "0.1") == b"10.6"  # long double arithmetic, as Redis
    assert kv("HINCRBYFLOAT", "h", "f", "1e2") == b"110.6"
    assert kv("HINCRBYFLOAT", "h", "f", "-110.6") == b"0"
    kv("HSET", "h", "n", "3", "text", "x")
    assert kv("HINCRBYFLOAT", "h", "n", "0x10") == b"19"
    assert error_text(kv("HINCRBYFLOAT", "h", "text", "1")) == "ERR hash value is not a float"
    assert error_text(kv("HINCRBYFLOAT", "h", "n", "x")) == "ERR value is not a valid float"
    assert error_text(kv("HINCRBYFLOAT", "h", "n", "inf")) == "ERR value is NaN or Infinity"
    assert error_text(kv("HINCRBYFLOAT", "nokey", "n", "-inf")) == "ERR value is NaN or Infinity"
    assert kv("EXISTS", "nokey") == 0
    kv("HSET", "h", "huge", "1e4932")
    assert error_text(kv("HINCRBYFLOAT", "h", "huge", "1e4932")) == "ERR increment would produce NaN or Infinity"


def test_hrandfield_counts(kv):
    fields = {b"f%d" % i: b"v%d" % i for i in range(5)}
    kv("HSET", "h", *[x for pair in fields.items() for x in pair])
    assert kv("HRANDFIELD", "h") in fields
    assert kv("HRANDFIELD", "nokey") is None
    assert kv("HRANDFIELD", "nokey", "3") == [] and kv("HRANDFIELD", "nokey", "-3", "WITHVALUES") == []
    assert kv("HRANDFIELD", "h", "0") == []
    assert kv("HRANDFIELD", "h", "5") == list(fields)  # all of it, in its order
    assert kv("HRANDFIELD", "h", "50", "withvalues") == [x for pair in fields.items() for x in pair]
    three = kv("HRANDFIELD", "h", "3")
    assert len(three) == len(set(three)) == 3 and set(three) <= set(fields)
    many = kv("HRANDFIELD", "h", "-20", "WITHVALUES")
    assert len(many) == 40 and all(fields[f] == v for f, v in zip(many[::2], many[1::2]))
    one = kv("HRANDFIELD", "h", "1", "WITHVALUES")
    assert len(one) == 2 and fields[one[0]] == one[1]
    assert error_text(kv("HRANDFIELD", "h", "x")) == NOT_INTEGER
    assert error_text(kv("HRANDFIELD", "h", "1", "WITHSCORES")) == SYNTAX
    assert error_text(kv("HRANDFIELD", "h", "1", "WITHVALUES", "x")) == SYNTAX
    assert error_text(kv("HRANDFIELD", "h", str(-(2**63)))) == (
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )
    assert error_text(kv("HRANDFIELD", "h", str(2**62), "WITHVALUES")) == "ERR value is out of range"
    # Ours: a reply of more repeated fields than any client wants is refused.
    assert error_text(kv("HRANDFIELD", "h", str(-MAX_RANDOM_FIELDS - 1))) == "ERR count is too large for one reply"
    assert kv("HRANDFIELD", "nokey", str(-MAX_RANDOM_FIELDS - 1)) == []  # as Redis: nothing to build


def test_hrandfield_withvalues_in_resp3_is_pairs(kv):
    kv("HSET", "h", "a", "1", "b", "2")
    kv("HELLO", "3")
    assert kv("HRANDFIELD", "h", "2", "WITHVALUES") == [[b"a", b"1"], [b"b", b"2"]]
    assert kv("HRANDFIELD", "h", "-3", "WITHVALUES")[0] in ([b"a", b"1"], [b"b", b"2"])
    assert kv("HRANDFIELD", "h", "2") == [b"a", b"b"]  # no values: flat, as in RESP2


def test_hrandfield_on_a_big_hash_reaches_every_field(kv):
    count = INDEX_MIN_FIELDS + 100
    kv("HSET", "h", *[x for i in range(count) for x in (b"f%d" % i, b"v")])
    # Every field is reachable: draw until all have come up (the pick is by
    # bucket, so not perfectly even, as Redis's is not), within a bound.
    seen: set = set()
    for _ in range(200 * count):
        seen.add(kv("HRANDFIELD", "h"))
        if len(seen) == count:
            break
    assert len(seen) == count
    sample = kv("HRANDFIELD", "h", "100")
    assert len(set(sample)) == 100


def test_hscan_of_a_small_hash_is_whole_at_once(kv):
    kv("HSET", "h", "a", "1", "bb", "2", "c", "3")
    assert kv("HSCAN", "h", "0") == [b"0", [b"a", b"1", b"bb", b"2", b"c", b"3"]]
    assert kv("HSCAN", "h", "17", "COUNT", "1") == [b"0", [b"a", b"1", b"bb", b"2", b"c", b"3"]]
    assert kv("HSCAN", "h", "0", "MATCH", "?") == [b"0", [b"a", b"1", b"c", b"3"]]
    assert kv("HSCAN", "h", "0", "MATCH", "b*", "COUNT", "100") == [b"0", [b"bb", b"2"]]
    assert kv("HSCAN", "nokey", "0") == [b"0", []]
    assert kv("HSCAN", "nokey", "0", "COUNT", "0") == [b"0", []]  # options are read only for a hash
    assert error_text(kv("HSCAN", "h", "0", "COUNT", "0")) == SYNTAX
    assert error_text(kv("HSCAN", "h", "0", "COUNT", "x")) == NOT_INTEGER
    assert error_text(kv("HSCAN", "h", "0", "TYPE", "hash")) == SYNTAX
    assert error_text(kv("HSCAN", "h", "0", "MATCH")) == SYNTAX
    assert error_text(kv("HSCAN", "h", "x")) == "ERR invalid cursor"


def test_hscan_of_a_big_hash_returns_every_field_present_throughout(kv):
    """Fields come a few at a time; between calls fields set before the
    cursor go, new ones come, and the hash doubles (its index too): every
    field there from the first call to the last is returned."""
    count = 3 * INDEX_MIN_FIELDS
    kv("HSET", "h", *[x for i in range(count) for x in (b"keep%d" % i, b"v", b"gone%d" % i, b"v")])
    rng = random.Random(7)
    gone = [b"gone%d" % i for i in range(count)]
    rng.shuffle(gone)

    def churn(calls: int) -> None:
        if calls <= 30:
            kv("HSET", "h", *[x for j in range(100) for x in (b"new%d-%d" % (calls, j), b"w")])
            kv("HDEL", "h", *[gone.pop() for _ in range(30)])

    seen, calls = _scan_all(kv, "h", "COUNT", "20", between=churn)
    assert calls > 30  # it did walk in steps
    assert {b"keep%d" % i for i in range(count)} <= set(seen)
    assert kv("HLEN", "h") > 4 * 1024  # more than the index first held (1024 buckets of 4)
    matched, _ = _scan_all(kv, "h", "MATCH", "keep1*", "COUNT", "50")
    assert set(matched) == {b"keep%d" % i for i in range(count) if str(i).startswith("1")}


def test_hscan_walks_a_hash_shrinking_under_it(kv):
    count = 2 * INDEX_MIN_FIELDS
    kv("HSET", "h", *[x for i in range(count) for x in (b"f%d" % i, b"v")])
    doomed = [b"f%d" % i for i in range(100, count)]
    keep = {b"f%d" % i for i in range(100)}

    def shrink(calls: int) -> None:  # down to 100 fields: its index is dropped
        if doomed:
            kv("HDEL", "h", *[doomed.pop() for _ in range(min(200, len(doomed)))])

    seen, _ = _scan_all(kv, "h", between=shrink)
    assert keep <= set(seen)


# -- the log ------------------------------------------------------------------------------


def test_what_each_write_logs(kv):
    before = kv.log()
    kv("HSET", "h", "a", "1")
    kv("HSET", "h", "a", "1")  # changes nothing, logged all the same (as Redis)
    kv("HSETNX", "h", "a", "2")  # nothing
    kv("HSETNX", "h", "b", "2")
    kv("HMSET", "h", "c", "3")
    kv("HDEL", "h", "zz")  # nothing
    kv("HDEL", "h", "c", "zz")  # as issued
    kv("HINCRBY", "h", "n", "5")
    kv("HINCRBYFLOAT", "h", "f", "0.1")
    kv("HINCRBYFLOAT", "h", "f", "1e1")
    kv("HINCRBYFLOAT", "h", "a", "x")  # an error: nothing
    for args in (("HGET", "h", "a"), ("HGETALL", "h"), ("HRANDFIELD", "h", "-3"), ("HSCAN", "h", "0")):
        kv(*args)
    assert kv.log_after_setup(before) == b"".join(
        [
            resp("SELECT", "0"),
            resp("HSET", "h", "a", "1"),
            resp("HSET", "h", "a", "1"),
            resp("HSETNX", "h", "b", "2"),
            resp("HMSET", "h", "c", "3"),
            resp("HDEL", "h", "c", "zz"),
            resp("HINCRBY", "h", "n", "5"),
            resp("HSET", "h", "f", "0.1"),
            resp("HSET", "h", "f", "10.1"),
        ]
    )


def test_a_failed_log_append_leaves_every_hash_as_it_was(failing_kv):
    kv = failing_kv
    big = [x for i in range(INDEX_MIN_FIELDS + 1) for x in (b"f%d" % i, b"v")]
    kv("HSET", "h", "a", "1", "b", "2")
    kv("HSET", "big", *big)
    kv("HSET", "edge", *big[:-2])  # one field under the index: the next builds it
    kv("SET", "s", "x")
    state, used = dump(kv.keyspace), kv.db.used_bytes
    kv.aof.failing = True
    for args in [
        ("HSET", "h", "a", "9", "c", "3"),
        ("HSET", "new", "a", "1"),
        ("HMSET", "h", "a", "0"),
        ("HSETNX", "h", "d", "4"),
        ("HDEL", "h", "a", "b"),  # would delete the key
        ("HDEL", "big", "f1", "f2"),
        ("HSET", "edge", "x", "y"),
        ("HINCRBY", "h", "a", "5"),
        ("HINCRBYFLOAT", "h", "b", "1.5"),
        ("HINCRBYFLOAT", "new", "b", "1.5"),
    ]:
        assert error_text(kv(*args)).startswith("MISCONF"), args
        assert dump(kv.keyspace) == state and kv.db.used_bytes == used, args
    kv.aof.failing = False
    for key in (b"h", b"big", b"edge"):  # each one's size estimate is what measuring it afresh gives
        value = kv.db.data[key]
        assert value.nbytes == Hash(value).nbytes
    # The index of the big hash is still exact: a full walk finds every field.
    seen, calls = _scan_all(kv, "big", "COUNT", "5")
    assert calls > 1 and sorted(seen) == sorted(big[::2])
    assert kv("HSCAN", "edge", "0")[0] == b"0"  # no index was left behind


def test_a_hash_whose_ttl_passed_is_created_afresh_and_replays_so(kv):
    kv("HSET", "h", "old", "1")
    kv("PEXPIRE", "h", "50")
    kv("HSET", "g", "old", "1")
    kv("PEXPIRE", "g", "50")
    kv("HSET", "i", "old", "1")
    kv("PEXPIRE", "i", "50")
    kv.clock.advance(100)
    assert kv("HGET", "h", "old") is None  # expired, reclaimed, unlogged
    kv("HSET", "h", "new", "1")
    kv("HINCRBYFLOAT", "g", "n", "1.5")
    kv("HSETNX", "i", "old", "2")
    assert kv("HGETALL", "h") == {b"new": b"1"} and kv("PTTL", "h") == -1
    assert kv("HGETALL", "g") == {b"n": b"1.5"} and kv("HGETALL", "i") == {b"old": b"2"}
    kv.aof.close()
    replayed = Keyspace(clock=kv.clock)
    load_log(replayed, kv.path)
    assert dump(replayed) == dump(kv.keyspace)


def test_replay_rebuilds_the_same_hashes(kv):
    rng = random.Random(14)
    fields = [b"f%d" % i for i in range(12)]
    keys = ["h1", "h2", "h3"]
    for _ in range(600):
        key, field = rng.choice(keys), rng.choice(fields)
        kind = rng.randrange(8)
        if kind == 0:
            kv("HSET", key, field, b"%d" % rng.randrange(100), rng.choice(fields), b"x")
        elif kind == 1:
            kv("HSETNX", key, field, b"n")
        elif kind == 2:
            kv("HDEL", key, *rng.sample(fields, 3))
        elif kind == 3:
            kv("HINCRBY", key, field, b"%d" % rng.randrange(-50, 50))
        elif kind == 4:
            kv("HINCRBYFLOAT", key, field, rng.choice([b"0.1", b"-1.25", b"3e2", b"0x1p-3"]))
        elif kind == 5:
            kv("HMSET", key, field, b"m")
        elif kind == 6:
            kv("PEXPIRE", key, b"%d" % rng.randrange(1, 40))
        else:
            kv.clock.advance(rng.randrange(10))
            kv("HRANDFIELD", key, "-2", "WITHVALUES")
    kv("HSET", "big", *[x for i in range(2 * INDEX_MIN_FIELDS) for x in (b"f%d" % i, b"v%d" % i)])
    kv("HDEL", "big", *[b"f%d" % i for i in range(0, 2 * INDEX_MIN_FIELDS, 3)])
    kv.aof.close()
    replayed = Keyspace(clock=kv.clock)
    load_log(replayed, kv.path)
    assert dump(replayed) == dump(kv.keyspace)
    for key, value in kv.db.data.items():  # field order too: HGETALL answers the same
        assert list(replayed.dbs[0].data[key].items()) == list(value.items())


def test_hashes_inside_multi_and_a_rewrite_keeps_them(kv):
    kv("MULTI")
    kv("HSET", "h", "a", "1")
    kv("HINCRBYFLOAT", "h", "a", "0.5")
    kv("HINCRBY", "h", "a", "1")  # 1.5 is not an integer: an error inside EXEC
    replies = kv("EXEC")
    assert replies[:2] == [1, b"1.5"] and error_text(replies[2]) == "ERR hash value is not an integer"
    assert kv("HGETALL", "h") == {b"a": b"1.5"}


# -- COMMAND INFO ---------------------------------------------------------------------------

# Redis 7.0.15's COMMAND INFO: arity, flags, first/last key and step, categories.
REDIS_COMMAND_INFO = {
    "hset": (-4, {"write", "denyoom", "fast"}, ["@write", "@hash", "@fast"]),
    "hsetnx": (4, {"write", "denyoom", "fast"}, ["@write", "@hash", "@fast"]),
    "hget": (3, {"readonly", "fast"}, ["@read", "@hash", "@fast"]),
    "hmget": (-3, {"readonly", "fast"}, ["@read", "@hash", "@fast"]),
    "hmset": (-4, {"write", "denyoom", "fast"}, ["@write", "@hash", "@fast"]),
    "hdel": (-3, {"write", "fast"}, ["@write", "@hash", "@fast"]),
    "hlen": (2, {"readonly", "fast"}, ["@read", "@hash", "@fast"]),
    "hstrlen": (3, {"readonly", "fast"}, ["@read", "@hash", "@fast"]),
    "hexists": (3, {"readonly", "fast"}, ["@read", "@hash", "@fast"]),
    "hkeys": (2, {"readonly"}, ["@read", "@hash", "@slow"]),
    "hvals": (2, {"readonly"}, ["@read", "@hash", "@slow"]),
    "hgetall": (2, {"readonly"}, ["@read", "@hash", "@slow"]),
    "hincrby": (4, {"write", "denyoom", "fast"}, ["@write", "@hash", "@fast"]),
    "hincrbyfloat": (4, {"write", "denyoom", "fast"}, ["@write", "@hash", "@fast"]),
    "hrandfield": (-2, {"readonly"}, ["@read", "@hash", "@slow"]),
    "hscan": (-3, {"readonly"}, ["@read", "@hash", "@slow"]),
}


@pytest.mark.parametrize("name", sorted(REDIS_COMMAND_INFO))
def test_command_info_as_redis(kv, name):
    [info] = kv("COMMAND", "INFO", name)
    arity, flags, categories = REDIS_COMMAND_INFO[name]
    assert info[0] == name.encode()
    assert (info[1], set(info[2]), info[3], info[4], info[5]) == (arity, flags, 1, 1, 1)
    assert list(info[6]) == categories
    assert COMMANDS[name.upper().encode()].write == ("write" in flags)


# -- side by side with redis-server ----------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_set_get_and_reads(side_by_side, protocol):
    both = side_by_side.both
    side_by_side.each("HELLO", str(protocol))
    both("HSET", "h", "a", "1", "b", "2", "a", "3")
    both("HSET", "h", "b", "2", "c", "")
    both("HSET", "h", "n", "12345", "neg", "-7", "big", "9" * 30)  # integer-looking values
    both("HMSET", "h", "d", "4", "e", "5")
    both("HSETNX", "h", "d", "x")
    both("HSETNX", "h", "f", "6")
    both("HSETNX", "new", "f", "6")
    for key in ("h", "nokey"):
        both("HGET", key, "a")
        both("HGET", key, "zz")
        both("HMGET", key, "a", "zz", "c", "n")
        both("HLEN", key)
        both("HSTRLEN", key, "big")
        both("HSTRLEN", key, "n")
        both("HSTRLEN", key, "zz")
        both("HEXISTS", key, "c")
        both("HEXISTS", key, "zz")
        both("HKEYS", key)
        both("HVALS", key)
        both("HGETALL", key)
    both("HDEL", "h", "a", "zz", "a")
    both("HDEL", "nokey", "a")
    both("HGETALL", "h")
    both("HDEL", "new", "f")
    both("EXISTS", "new")
    both("HSET", "", "", "")  # empty key, field and value
    both("HGETALL", "")
    both("HSET", "bin", b"\x00\xff\r\n", b"\r\n\x00")
    both("HGETALL", "bin")


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_errors(side_by_side, protocol):
    both = side_by_side.both
    side_by_side.each("HELLO", str(protocol))
    both("SET", "s", "x")
    both("HSET", "h", "a", "1")
    for args in [
        ("HSET", "s", "a", "1"), ("HSETNX", "s", "a", "1"), ("HGET", "s", "a"), ("HMGET", "s", "a"),
        ("HMSET", "s", "a", "1"), ("HDEL", "s", "a"), ("HLEN", "s"), ("HSTRLEN", "s", "a"),
        ("HEXISTS", "s", "a"), ("HKEYS", "s"), ("HVALS", "s"), ("HGETALL", "s"), ("HINCRBY", "s", "a", "1"),
        ("HINCRBYFLOAT", "s", "a", "1"), ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "0"),
        ("HRANDFIELD", "s", "-1", "WITHVALUES"), ("HSCAN", "s", "0"), ("HSCAN", "s", "0", "COUNT", "0"),
        # arity
        ("HSET", "h"), ("HSET", "h", "a"), ("HSET", "h", "a", "1", "b"), ("HSET", "s", "a", "1", "b"),
        ("HMSET", "h", "a"), ("HMSET", "h", "a", "1", "b"), ("HSETNX", "h", "a"), ("HSETNX", "h", "a", "1", "2"),
        ("HGET", "h"), ("HGET", "h", "a", "b"), ("HMGET", "h"), ("HDEL", "h"), ("HLEN",), ("HLEN", "h", "a"),
        ("HSTRLEN", "h"), ("HEXISTS", "h"), ("HKEYS",), ("HVALS", "h", "x"), ("HGETALL",),
        ("HINCRBY", "h", "a"), ("HINCRBYFLOAT", "h", "a", "1", "2"), ("HRANDFIELD",), ("HSCAN", "h"),
    ]:
        both(*args)
    both("GET", "s")


def test_side_by_side_hincrby(side_by_side):
    both = side_by_side.both
    both("HINCRBY", "h", "n", "5")
    both("HINCRBY", "h", "n", "-12")
    both("HINCRBY", "h", "n", "0")
    for start, increment in [
        (str(2**63 - 1), "1"),
        (str(2**63 - 2), "1"),
        (str(-(2**63)), "-1"),
        (str(-(2**63)), str(2**63 - 1)),
        ("-1", str(-(2**63))),
        ("0", str(2**63)),
        ("0", "-9223372036854775809"),
        ("0", "1.0"),
        ("0", ""),
        ("0", " 1"),
        ("0", "+1"),
        ("abc", "1"),
        ("1.5", "1"),
        (" 1", "1"),
        ("1 ", "1"),
        ("007", "1"),
        ("-0", "1"),
        ("", "1"),
        ("+5", "1"),
        (str(2**63), "1"),
    ]:
        both("HSET", "h", "n", start)
        both("HINCRBY", "h", "n", increment)
        both("HGET", "h", "n")
    both("HINCRBY", "nokey", "n", "x")
    both("EXISTS", "nokey")


def test_side_by_side_hincrbyfloat(side_by_side):
    both = side_by_side.both
    both("HINCRBYFLOAT", "h", "f", "10.5")
    for increment in ["0.1", "-0.1", "1e2", "3.0e-3", "0x1p-4", "-5", "5.0000000000000000001", "1e308", "-1e308"]:
        both("HINCRBYFLOAT", "h", "f", increment)
    for start, increment in [
        ("1", "inf"),
        ("1", "-inf"),
        ("1", "nan"),
        ("1", "abc"),
        ("1", ""),
        ("1", " 1"),
        ("1", "1e5000"),
        ("abc", "1"),
        (" 1", "1"),
        ("1e4932", "1e4932"),
        ("inf", "1"),
        ("123", "0"),
        ("-0", "0"),
        ("9" * 40, "1"),
    ]:
        both("HSET", "h", "f", start)
        both("HINCRBYFLOAT", "h", "f", increment)
        both("HGET", "h", "f")
    both("HINCRBYFLOAT", "nokey", "f", "inf")
    both("HINCRBYFLOAT", "nokey", "f", "x")
    both("EXISTS", "nokey")


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_hrandfield(side_by_side, protocol):
    both, each = side_by_side.both, side_by_side.each
    each("HELLO", str(protocol))
    both("HSET", "h", "a", "1", "b", "2", "c", "3")
    both("HSET", "one", "only", "v")
    for key in ("h", "one", "nokey"):
        for count in ("3", "4", "100", "0", str(2**62), str(-(2**62)), str(-(2**63 - 1))):
            if key != "nokey" and count.startswith("-"):
                continue  # random repeats: compared by shape below
            both("HRANDFIELD", key, count)
        for count in ("3", "100", "0", str(2**62 - 1)):
            both("HRANDFIELD", key, count, "WITHVALUES")
            both("HRANDFIELD", key, count, "withvalues")
    both("HRANDFIELD", "one")
    both("HRANDFIELD", "one", "1")
    both("HRANDFIELD", "one", "1", "WITHVALUES")
    both("HRANDFIELD", "one", "-3", "WITHVALUES")  # one field: random, but only one way to be
    both("HRANDFIELD", "nokey")
    for args in [
        ("x",), ("1.5",), ("",), (str(-(2**63)),), (str(2**63),), ("1", "WITHSCORES"), ("1", "WITHVALUES", "x"),
        (str(2**62), "WITHVALUES"), (str(-(2**62) - 1), "WITHVALUES"), ("x", "WITHVALUES"),
    ]:
        both("HRANDFIELD", "h", *args)
        both("HRANDFIELD", "nokey", *args)
    # Random picks: the same shape, each field with its own value.
    for args in [("2",), ("-5",), ("2", "WITHVALUES"), ("-5", "WITHVALUES"), ("1", "WITHVALUES"), ()]:
        ours, theirs = each("HRANDFIELD", "h", *args)
        assert _shape(ours) == _shape(theirs), args


def _shape(reply: bytes) -> bytes:
    """A reply with every field and value blanked out (a, b, c and their
    values are one byte each), checking that each pair's value is its own."""
    for field, value in ((b"a", b"1"), (b"b", b"2"), (b"c", b"3")):
        reply = reply.replace(b"$1\r\n%s\r\n$1\r\n%s\r\n" % (field, value), b"PAIR")
    return reply.replace(b"$1\r\na\r\n", b"F").replace(b"$1\r\nb\r\n", b"F").replace(b"$1\r\nc\r\n", b"F")


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_hscan(side_by_side, protocol):
    both = side_by_side.both
    side_by_side.each("HELLO", str(protocol))
    both("HSET", "h", "a", "1", "bb", "2", "c", "3", "ab", "4", "", "empty")
    for options in [
        (), ("COUNT", "1"), ("count", "100"), ("MATCH", "a*"), ("MATCH", "?"), ("match", "*"), ("MATCH", ""),
        ("MATCH", "[ab]*", "COUNT", "2"), ("MATCH", "x*"), ("COUNT", "0"), ("COUNT", "-1"), ("COUNT", "x"),
        ("COUNT",), ("MATCH",), ("TYPE", "string"), ("NOVALUE",), ("COUNT", "1", "MATCH"),
    ]:
        both("HSCAN", "h", "0", *options)
        both("HSCAN", "nokey", "0", *options)
    for cursor in ("5", "18446744073709551615", "18446744073709551616", "-1", "x", " 1", "", "+0"):
        both("HSCAN", "h", cursor)
        both("HSCAN", "nokey", cursor)


# -- a live server ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_hash_methods(start_server, protocol):
    import redis

    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    assert r.hset("h", mapping={"a": "1", "b": "2", "c": "x"}) == 3
    assert r.hset("h", "d", "4") == 1
    assert r.hget("h", "a") == b"1" and r.hget("h", "zz") is None
    assert r.hgetall("h") == {b"a": b"1", b"b": b"2", b"c": b"x", b"d": b"4"}
    assert r.hincrby("h", "a", 41) == 42
    assert r.hincrbyfloat("h", "b", 0.5) == 2.5
    with pytest.raises(redis.ResponseError, match="hash value is not a float"):
        r.hincrbyfloat("h", "c", 1)
    assert r.hdel("h", "c", "zz") == 1
    assert r.hlen("h") == 3 and r.hexists("h", "d") and r.hstrlen("h", "d") == 1
    assert r.hmget("h", ["a", "zz"]) == [b"42", None]
    assert sorted(r.hkeys("h")) == [b"a", b"b", b"d"] and sorted(r.hvals("h")) == [b"2.5", b"4", b"42"]
    assert r.hrandfield("h") in (b"a", b"b", b"d")
    assert sorted(r.hrandfield("h", 5)) == [b"a", b"b", b"d"]
    assert len(r.hrandfield("h", -7)) == 7
    pairs = r.hrandfield("h", 2, withvalues=True)
    # redis-py hands back RESP2's flat list and RESP3's pairs as they come.
    flat = pairs if protocol == 2 else [x for pair in pairs for x in pair]
    assert len(flat) == 4 and all(r.hget("h", f) == v for f, v in zip(flat[::2], flat[1::2]))
    big = {f"f{i}": str(i) for i in range(2 * INDEX_MIN_FIELDS)}
    r.hset("big", mapping=big)
    scanned = dict(r.hscan_iter("big", count=50))
    assert scanned == {k.encode(): v.encode() for k, v in big.items()}
    assert dict(r.hscan_iter("big", match="f1?")) == {b"f1%d" % i: b"1%d" % i for i in range(10)}
    assert dict(r.hscan_iter("h")) == {b"a": b"42", b"b": b"2.5", b"d": b"4"}
    r.close()


def test_readers_never_see_half_of_a_hash_write(start_server):
    """Writers set a group of fields to one value in one HSET (and delete
    them all in one HDEL) while readers read the group by HMGET, HGETALL,
    HSCAN and HRANDFIELD: no reader may ever get an error or see the group
    hold two values."""
    import redis

    server = start_server()
    group = [f"g{i}" for i in range(GROUP_FIELDS)]
    filler = {f"pad{i}": "p" for i in range(INDEX_MIN_FIELDS)}  # big enough for HSCAN's cursor walk
    redis.Redis(port=server.resp_port).hset("h", mapping={**dict.fromkeys(group, "0"), **filler})

    def writer(n: int):
        rounds = itertools.count()

        def write(r) -> None:
            i = next(rounds)
            r.hset("h", mapping=dict.fromkeys(group, f"{n}-{i}"))
            if i % 5 == 0:
                r.hdel("h", *group)

        return write

    def read(r):
        seen = {"HMGET": r.hmget("h", group)}
        whole = r.hgetall("h")
        seen["HGETALL"] = [whole.get(f.encode()) for f in group]
        _, batch = r.hscan("h", 0, count=1000)
        seen["HSCAN"] = [v for f, v in batch.items() if f.startswith(b"g")]
        picks = r.hrandfield("h", -40, withvalues=True)
        seen["HRANDFIELD"] = [v for f, v in zip(picks[::2], picks[1::2]) if f.startswith(b"g")]
        torn = {how: sorted(set(values), key=str)[:3] for how, values in seen.items() if len(set(values)) > 1}
        return torn or None

    race(
        lambda: redis.Redis(port=server.resp_port),
        writers=[writer(n) for n in range(2)],
        readers=[read] * 2,
        writes=600,
        reads=300,
    )


def test_text_port_shows_a_hash_on_one_line(start_server):
    client = start_server().client()
    assert client.call("HSET h name ada lang en") == b"2"
    assert client.call("HGETALL h") == b"name ada lang en"
    assert client.call("HRANDFIELD h 2 WITHVALUES") == b"name ada lang en"
    assert client.call('HSET h note "two words"') == b"1"
    assert client.call("HGET h note") == b'"two words"'
    client.close()
