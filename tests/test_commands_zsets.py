"""Tests for kvserver/commands/zsets.py and values/zsets.py: sorted sets.

* harness tests (``kv``): replies, the log's bytes, a failed log append
  rolled back exactly, keys expiring mid-way, the replay and the rewrite
  (scores bit for bit);
* side by side with redis-server 7.0: every command's normal and edge
  cases, byte for byte, in RESP2 and RESP3;
* redis-py's zset methods against the RESP port, RESP2 and RESP3;
* readers hammering one sorted set while writers change it.
"""

from __future__ import annotations

import math
import random
import struct

import pytest
import redis

from kvserver.protocol import format_double
from kvserver.commands import COMMANDS
from kvserver.values import EncodingSettings, Set, Zset
from kvserver.values.zsets import score_text
from tests.conftest import SideBySide
from tests.support import dump, race, resp, replayed

SELECT0 = resp("SELECT", "0")

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture
def kv(failing_kv):
    return failing_kv


def put_set(kv, key: str, *members: str) -> None:
    """A plain set for the inputs of ZUNION & co (SADD, if this build has it)."""
    if b"SADD" in COMMANDS:
        kv("SADD", key, *members)
    else:
        kv.keyspace.dbs[0].set(key.encode(), Set(m.encode() for m in members))


@pytest.fixture
def side_by_side(start_server, redis_server_port):
    """conftest's side_by_side, keeping the kvserver for put_set_both."""
    server = start_server()
    pair = SideBySide(server.resp_port, redis_server_port)
    pair.server = server
    yield pair
    pair.close()


def put_set_both(sb, key: str, *members: str) -> None:
    sb.redis.call("SADD", key, *members)
    if b"SADD" in COMMANDS:
        sb.kv.call("SADD", key, *members)
    else:
        keyspace = sb.server.server.keyspace
        with keyspace.write_lock:
            keyspace.dbs[0].set(key.encode(), Set(m.encode() for m in members))


# -- the value ------------------------------------------------------------------------------


def test_zset_orders_by_score_then_member_bytes_and_keeps_nbytes():
    z = Zset()
    empty = z.nbytes
    undos = [z.set_score(m, s) for m, s in [(b"b", 1.0), (b"a", 1.0), (b"ab", 1.0), (b"c", -math.inf), (b"d", 0.5)]]
    assert z.items() == [(b"c", -math.inf), (b"d", 0.5), (b"a", 1.0), (b"ab", 1.0), (b"b", 1.0)]
    assert z.rank(b"ab") == 3 and z.rank(b"x") is None
    assert z.nbytes == Zset(z.items()).nbytes
    moved = z.set_score(b"c", 2.0)
    assert z.items()[-1] == (b"c", 2.0)
    moved()
    assert z.items()[0] == (b"c", -math.inf)
    for undo in reversed(undos):
        undo()
    assert len(z) == 0 and z.nbytes == empty and list(z.order) == []


def test_zset_remove_and_pop_undo_exactly():
    z = Zset([(b"m%d" % i, float(i % 7)) for i in range(50)])
    snapshot, size = z.items(), z.nbytes
    removed, undo = z.remove_ranks(5, 20)
    assert len(removed) == 15 and len(z) == 35
    undo()
    count, undo = z.remove_members([b"m1", b"m2", b"nope"])
    assert count == 2
    undo()
    assert z.items() == snapshot and z.nbytes == size and dict(z.scores) == dict(snapshot)


def test_encoding_listpack_until_a_threshold_is_passed_then_skiplist_for_good():
    settings = EncodingSettings()
    z = Zset([(b"m%d" % i, float(i)) for i in range(128)])
    assert z.encoding(settings) == "listpack"
    z.set_score(b"extra", 1.0)
    assert z.encoding(settings) == "skiplist"
    z.remove_members([b"extra", b"m1"])
    assert z.encoding(settings) == "skiplist"  # converted once, never back
    long = Zset([(b"x" * 65, 1.0)])
    assert long.encoding(settings) == "skiplist"
    assert Zset([(b"x" * 64, 1.0)]).encoding(settings) == "listpack"


ROUND_TRIP_SCORES = [0.1, 1 / 3, 1e-300, -0.0, 0.0, float(2**53 + 1), 2.0**53 + 2, 5e-324, 1.7976931348623157e308,
                     math.inf, -math.inf, -123.456, 1e16, 123456789.123456789]


def test_rewrite_writes_scores_that_read_back_bit_for_bit():
    z = Zset([(b"m%d" % i, s) for i, s in enumerate(ROUND_TRIP_SCORES)])
    records = list(z.rewrite_records(b"k", 64))
    assert len(records) == 1
    from kvserver.commands.zsets import parse_score

    args = records[0][2:]
    back = {args[i + 1]: parse_score(args[i]) for i in range(0, len(args), 2)}
    for member, score in z.scores.items():
        assert struct.pack(">d", back[member]) == struct.pack(">d", score), (member, score, back[member])
    assert score_text(-0.0) == b"-0.0"
    # 64 members a record at most, as Redis's rewrite does
    big = Zset([(b"m%d" % i, float(i)) for i in range(130)])
    assert [len(r) for r in big.rewrite_records(b"k", 64)] == [2 + 128, 2 + 128, 2 + 4]


def test_rewritten_scores_read_back_bit_for_bit_by_redis_too(side_by_side):
    """The rewrite's ZADD records, sent to both servers, give every score
    back exactly (%.17g is exact for a double, so equal text is equal bits).
    As skiplists: a listpack keeps scores as text, where -0.0 becomes 0."""
    side_by_side.both("CONFIG", "SET", "zset-max-listpack-entries", "0")
    z = Zset([(b"m%02d" % i, s) for i, s in enumerate(ROUND_TRIP_SCORES)])
    for record in z.rewrite_records(b"z", 64):
        side_by_side.both(*record)
    for member, score in z.scores.items():
        reply = side_by_side.both("ZSCORE", "z", member)
        assert reply == b"$%d\r\n%s\r\n" % (len(format_double(score)), format_double(score))
    side_by_side.both("CONFIG", "SET", "zset-max-listpack-entries", "128")
    side_by_side.both("ZADD", "small", "-0", "m")
    side_by_side.both("ZSCORE", "small", "m")


# -- harness: replies and the log ------------------------------------------------------------


def test_zadd_options_replies_and_log(kv):
    assert kv("ZADD", "z", "1", "a", "2", "b") == 2
    assert kv("ZADD", "z", "NX", "5", "a", "3", "c") == 1
    assert kv("ZADD", "z", "XX", "CH", "1", "a") == 0  # same score: nothing changed, nothing logged
    assert kv("ZADD", "z", "GT", "CH", "0", "b", "9", "c") == 1
    assert kv("ZADD", "z", "INCR", "1.5", "a") == 2.5
    assert kv("ZADD", "z", "LT", "INCR", "1", "a") is None
    assert kv("ZINCRBY", "z", "0", "a") == 2.5  # no change: not logged
    assert kv("ZSCORE", "z", "a") == 2.5
    assert kv.log() == SELECT0 + (
        resp("ZADD", "z", "1", "a", "2", "b")
        + resp("ZADD", "z", "NX", "5", "a", "3", "c")
        + resp("ZADD", "z", "GT", "CH", "0", "b", "9", "c")
        + resp("ZADD", "z", "INCR", "1.5", "a")
    )


def test_nan_is_refused_and_changes_nothing(kv):
    kv("ZADD", "z", "inf", "a")
    assert kv("ZINCRBY", "z", "-inf", "a").message == "ERR resulting score is not a number (NaN)"
    assert kv("ZADD", "z", "nan", "b").message == "ERR value is not a valid float"
    assert kv("ZSCORE", "z", "a") == math.inf
    assert kv.log() == SELECT0 + resp("ZADD", "z", "inf", "a")


def test_pops_and_zmpop_log_as_redis_propagates_them(kv):
    kv("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
    assert kv("ZPOPMIN", "z") == [b"a", 1.0]
    assert kv("ZPOPMAX", "z", "2") == [b"d", 4.0, b"c", 3.0]
    assert kv("ZPOPMIN", "z", "0") == []
    assert kv("ZMPOP", "2", "none", "z", "MIN", "COUNT", "10") == [b"z", [[b"b", 2.0]]]
    assert kv("EXISTS", "z") == 0
    assert kv("ZMPOP", "1", "z", "MAX") is not None  # the null array
    assert kv.log() == SELECT0 + (
        resp("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
        + resp("ZPOPMIN", "z")
        + resp("ZPOPMAX", "z", "2")
        + resp("ZPOPMIN", "z", "1")
    )


def test_store_commands_log_as_issued_and_only_when_they_change_something(kv):
    kv("ZADD", "z", "1", "a", "2", "b")
    put_set(kv, "s", "b", "c")
    assert kv("ZUNIONSTORE", "u", "2", "z", "s", "WEIGHTS", "2", "3") == 3
    assert kv("ZRANGE", "u", "0", "-1", "WITHSCORES") == [b"a", 2.0, b"c", 3.0, b"b", 7.0]
    assert kv("ZRANGESTORE", "u", "z", "5", "10") == 0  # deletes u: logged
    assert kv("ZRANGESTORE", "u", "z", "5", "10") == 0  # nothing to delete: not logged
    assert kv("ZDIFFSTORE", "d", "1", "missing") == 0
    assert kv("ZRANDMEMBER", "z") in (b"a", b"b")
    assert kv("ZREMRANGEBYSCORE", "z", "5", "6") == 0
    assert kv("ZREM", "z", "nope") == 0
    assert kv.log() == SELECT0 + (
        resp("ZADD", "z", "1", "a", "2", "b")
        + (resp("SADD", "s", "b", "c") if b"SADD" in COMMANDS else b"")
        + resp("ZUNIONSTORE", "u", "2", "z", "s", "WEIGHTS", "2", "3")
        + resp("ZRANGESTORE", "u", "z", "5", "10")
    )


def test_failed_log_append_rolls_every_zset_change_back(kv):
    kv("ZADD", "z", "1", "a", "2", "b", "3", "c")
    kv("ZADD", "other", "5", "x")
    before = dump(kv.keyspace)
    kv.aof.failing = True
    for args in [
        ("ZADD", "z", "9", "a", "4", "d"),
        ("ZINCRBY", "z", "5", "b"),
        ("ZREM", "z", "a", "c"),
        ("ZPOPMIN", "z", "2"),
        ("ZPOPMAX", "z", "10"),
        ("ZMPOP", "1", "z", "MIN"),
        ("ZREMRANGEBYRANK", "z", "0", "-1"),
        ("ZREMRANGEBYSCORE", "z", "-inf", "+inf"),
        ("ZREMRANGEBYLEX", "z", "-", "+"),
        ("ZUNIONSTORE", "other", "1", "z"),
        ("ZRANGESTORE", "other", "z", "0", "0"),
        ("ZINTERSTORE", "z", "2", "z", "other"),
    ]:
        reply = kv(*args)
        assert reply.message.startswith("MISCONF"), args
        assert dump(kv.keyspace) == before, args
    kv.aof.failing = False
    assert kv("ZRANGE", "z", "0", "-1", "WITHSCORES") == [b"a", 1.0, b"b", 2.0, b"c", 3.0]
    assert kv.keyspace.dbs[0].used_bytes == replayed(kv).dbs[0].used_bytes


def test_keys_that_expire_mid_way_are_missing(kv):
    kv("ZADD", "z", "1", "a")
    kv("ZADD", "w", "2", "b")
    kv("PEXPIRE", "z", "100")
    kv("PEXPIRE", "w", "100")
    kv.clock.advance(101)
    assert kv("ZCARD", "z") == 0
    assert kv("ZRANGE", "z", "0", "-1") == []
    assert kv("ZADD", "w", "XX", "5", "b") == 0
    assert kv("ZUNIONSTORE", "u", "2", "z", "w") == 0
    assert kv("EXISTS", "u", "z", "w") == 0


def test_replay_rebuilds_the_same_sorted_sets(kv):
    rng = random.Random(7)
    members = [b"m%d" % i for i in range(40)]
    for _ in range(400):
        key = rng.choice([b"a", b"b", b"c"])
        m = rng.choice(members)
        op = rng.randrange(12)
        if op < 4:
            kv("ZADD", key, rng.choice(["NX", "XX", "GT", "LT", "CH"]), repr(rng.uniform(-5, 5)), m)
        elif op == 4:
            kv("ZINCRBY", key, repr(rng.choice([0.1, -0.3, 1e-9])), m)
        elif op == 5:
            kv("ZREM", key, m, rng.choice(members))
        elif op == 6:
            kv("ZPOPMIN", key, str(rng.randrange(3)))
        elif op == 7:
            kv("ZMPOP", "2", key, "c", rng.choice(["MIN", "MAX"]), "COUNT", "2")
        elif op == 8:
            kv("ZREMRANGEBYSCORE", key, "(%f" % rng.uniform(-5, 5), "+inf")
        elif op == 9:
            kv("ZUNIONSTORE", "c", "2", "a", "b", "AGGREGATE", rng.choice(["SUM", "MIN", "MAX"]))
        elif op == 10:
            kv("ZRANGESTORE", "c", key, "0", "5", "REV")
        else:
            kv("ZINTERSTORE", "b", "2", "a", "c", "WEIGHTS", "0.5", "2")
    kv.aof.close()
    assert dump(replayed(kv)) == dump(kv.keyspace)


# -- side by side with redis-server -----------------------------------------------------------


@pytest.fixture
def side_by_side_redis_port(redis_server_port):
    return redis_server_port


SCORE_TEXTS = ["1", "-1", "0", "-0", "+5", ".5", "5.", "1e3", "1E-3", "0x10", "0x1p3", "-0x.8", "inf", "+inf",
               "-inf", "Infinity", "-INFINITY", "1e400", "-1e400", "1e-400", "1e-310", "nan", "NaN", "-nan", " 1",
               "1 ", "", "1_0", "1e", "e1", "0x", "++1", "1.2.3", "9007199254740993", "0.1", "4.9e-324", "abc",
               "1\x002"]


def test_side_by_side_zadd_scores_parse_as_strtod(side_by_side):
    for text in SCORE_TEXTS:
        side_by_side.both("ZADD", "z", text, "m")
        side_by_side.both("ZSCORE", "z", "m")
        side_by_side.both("ZINCRBY", "w", text, "m")
        side_by_side.both("ZSCORE", "w", "m")


RANGE_TEXTS = ["1", "(1", "-inf", "+inf", "(-inf", "(+inf", "inf", "", "(", " 2", "( 2", "2 ", "x", "((1", "nan",
               "(nan", "1e400", "0x2", "-0", "(0", "1\x00junk", "[1"]


def test_side_by_side_score_ranges(side_by_side):
    sb = side_by_side
    sb.both("ZADD", "z", "-inf", "ninf", "-1", "neg", "0", "zero", "-0", "nzero", "1", "a", "1", "b", "1", "c",
            "2", "d", "3", "e", "inf", "pinf")
    for low in RANGE_TEXTS:
        for high in ["+inf", "(2", "2", "inf", low]:
            sb.both("ZCOUNT", "z", low, high)
            sb.both("ZRANGEBYSCORE", "z", low, high, "WITHSCORES")
            sb.both("ZREVRANGEBYSCORE", "z", high, low)
    for limit in [("0", "2"), ("1", "-1"), ("-1", "5"), ("2", "0"), ("100", "1"), ("9", "1"), ("x", "1")]:
        sb.both("ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", *limit)
        sb.both("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES", "LIMIT", *limit)
        sb.both("ZRANGE", "z", "(0", "3", "BYSCORE", "LIMIT", *limit, "WITHSCORES")
        sb.both("ZRANGE", "z", "3", "(0", "BYSCORE", "REV", "LIMIT", *limit)
    sb.both("ZRANGEBYSCORE", "z", "0", "1", "LIMIT", "0")
    sb.both("ZRANGEBYSCORE", "z", "0", "1", "WITHSCORES", "WITHSCORES")
    sb.both("ZRANGEBYSCORE", "z", "0", "1", "REV")
    sb.both("ZRANGEBYSCORE", "z", "0", "1", "BYSCORE")
    sb.both("ZCOUNT", "missing", "0", "1")
    sb.both("ZCOUNT", "missing", "x", "1")


LEX_TEXTS = ["-", "+", "[a", "(a", "[b", "(b", "[", "(", "[bb", "a", "", "-x", "+x", "[z", "(c"]


def test_side_by_side_lex_ranges(side_by_side):
    sb = side_by_side
    sb.both("ZADD", "z", "0", "a", "0", "b", "0", "bb", "0", "c", "0", "", "0", "d\x00e")
    for low in LEX_TEXTS:
        for high in ["+", "[c", "(c", low, "-"]:
            sb.both("ZLEXCOUNT", "z", low, high)
            sb.both("ZRANGEBYLEX", "z", low, high)
            sb.both("ZREVRANGEBYLEX", "z", high, low)
    for limit in [("0", "2"), ("1", "-1"), ("-1", "5"), ("2", "0"), ("100", "1")]:
        sb.both("ZRANGEBYLEX", "z", "-", "+", "LIMIT", *limit)
        sb.both("ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", *limit)
        sb.both("ZRANGE", "z", "[b", "+", "BYLEX", "LIMIT", *limit)
        sb.both("ZRANGE", "z", "+", "[b", "BYLEX", "REV", "LIMIT", *limit)
    sb.both("ZRANGEBYLEX", "z", "-", "+", "WITHSCORES")
    sb.both("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES")
    sb.both("ZLEXCOUNT", "missing", "-", "+")
    sb.both("ZLEXCOUNT", "missing", "x", "+")
    # a big set (Redis's skiplist) in one score
    members = []
    for i in range(300):
        members += ["0", "k%03d" % i]
    sb.both("ZADD", "big", *members)
    for low, high in [("[k100", "(k200"), ("-", "[k050"), ("(k299", "+"), ("[k5", "+"), ("-", "+"), ("[a", "[b")]:
        sb.both("ZLEXCOUNT", "big", low, high)
        sb.both("ZRANGEBYLEX", "big", low, high, "LIMIT", "3", "4")
        sb.both("ZREVRANGEBYLEX", "big", high, low, "LIMIT", "3", "4")
    sb.both("ZREMRANGEBYLEX", "big", "[k100", "(k200")
    sb.both("ZRANGEBYLEX", "big", "[k095", "[k205")


def test_side_by_side_zrange_by_rank_and_options(side_by_side):
    sb = side_by_side
    sb.both("ZADD", "z", "1", "a", "2", "b", "3", "c", "3", "cc", "0.1", "x", "1e20", "big", "-2.5e-7", "tiny")
    for start, stop in [("0", "-1"), ("1", "2"), ("-2", "-1"), ("-100", "100"), ("5", "2"), ("10", "20"), ("0", "0"),
                        ("-1", "-100"), ("x", "1"), ("0", "9223372036854775807"), ("-9223372036854775808", "0")]:
        sb.both("ZRANGE", "z", start, stop)
        sb.both("ZRANGE", "z", start, stop, "WITHSCORES")
        sb.both("ZRANGE", "z", start, stop, "REV", "WITHSCORES")
        sb.both("ZREVRANGE", "z", start, stop, "WITHSCORES")
    for bad in [("REV", "REV"), ("BYSCORE", "BYLEX"), ("LIMIT", "0", "1"), ("LIMIT", "0", "-1"), ("LIMIT", "0"),
                ("WITHSCORE",), ("BYLEX", "WITHSCORES"), ("LIMIT", "x", "1")]:
        sb.both("ZRANGE", "z", "0", "-1", *bad)
    sb.both("ZREVRANGE", "z", "0", "1", "REV")
    sb.both("ZREVRANGE", "z", "0", "1", "BYSCORE")
    sb.both("ZRANGE", "missing", "0", "-1")
    sb.both("ZRANGE", "missing", "x", "-1")
    sb.both("ZRANGE", "z", "0")
    sb.both("ZRANGESTORE", "dst", "z", "1", "3")
    sb.both("ZRANGE", "dst", "0", "-1", "WITHSCORES")
    sb.both("ZRANGESTORE", "dst", "z", "(1", "3", "BYSCORE", "LIMIT", "1", "1")
    sb.both("ZRANGESTORE", "dst", "z", "[b", "+", "BYLEX", "REV")
    sb.both("ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES")
    sb.both("ZRANGESTORE", "dst", "missing", "0", "-1")
    sb.both("EXISTS", "dst")
    sb.both("SET", "str", "x")
    sb.both("ZRANGESTORE", "str", "z", "0", "0")
    sb.both("TYPE", "str")
    sb.both("ZRANGE", "str", "0", "-1")
    sb.both("ZRANGESTORE", "dst", "str", "0", "-1")


def test_side_by_side_reads_of_members(side_by_side):
    sb = side_by_side
    sb.both("ZADD", "z", "1", "a", "1", "b", "-3", "c", "0.30000000000000004", "d")
    for member in ["a", "b", "c", "d", "nope"]:
        sb.both("ZSCORE", "z", member)
        sb.both("ZRANK", "z", member)
        sb.both("ZREVRANK", "z", member)
    sb.both("ZMSCORE", "z", "a", "nope", "d")
    sb.both("ZMSCORE", "missing", "a", "b")
    sb.both("ZCARD", "z")
    sb.both("ZCARD", "missing")
    sb.both("ZSCORE", "missing", "a")
    sb.both("ZRANK", "missing", "a")
    sb.both("ZRANK", "z", "a", "WITHSCORE")  # 7.2's option: an arity error in 7.0
    sb.both("SET", "s", "x")
    for args in [("ZSCORE", "s", "a"), ("ZMSCORE", "s", "a"), ("ZRANK", "s", "a"), ("ZCARD", "s"),
                 ("ZCOUNT", "s", "0", "1"), ("ZLEXCOUNT", "s", "-", "+"), ("ZRANGE", "s", "0", "1"),
                 ("ZADD", "s", "1", "a"), ("ZINCRBY", "s", "1", "a"), ("ZREM", "s", "a"), ("ZPOPMIN", "s"),
                 ("ZMPOP", "1", "s", "MIN"), ("ZRANDMEMBER", "s"), ("ZRANDMEMBER", "s", "2"), ("ZSCAN", "s", "0"),
                 ("ZUNION", "1", "s"), ("ZINTERSTORE", "d", "1", "s"), ("ZREMRANGEBYRANK", "s", "0", "1"),
                 ("ZCOUNT", "s", "x", "1"), ("ZREMRANGEBYSCORE", "s", "x", "1"), ("ZREMRANGEBYLEX", "s", "x", "+")]:
        sb.both(*args)


def test_side_by_side_zadd_options_and_errors(side_by_side):
    sb = side_by_side
    cases = [
        ("ZADD", "z", "1", "a", "2", "b"), ("ZADD", "z", "NX", "5", "a", "3", "c"), ("ZADD", "z", "xx", "ch", "9", "a", "9", "q"),
        ("ZADD", "z", "GT", "CH", "0", "a", "10", "b"), ("ZADD", "z", "LT", "ch", "0", "a", "10", "b"),
        ("ZADD", "z", "XX", "GT", "CH", "11", "b"), ("ZADD", "z", "INCR", "2", "a"), ("ZADD", "z", "incr", "nx", "2", "a"),
        ("ZADD", "z", "incr", "xx", "2", "nope"), ("ZADD", "z", "GT", "INCR", "-1", "a"), ("ZADD", "z", "NX", "XX", "1", "a"),
        ("ZADD", "z", "GT", "LT", "1", "a"), ("ZADD", "z", "GT", "NX", "1", "a"), ("ZADD", "z", "INCR", "1", "a", "2", "b"),
        ("ZADD", "z", "1"), ("ZADD", "z", "1", "a", "2"), ("ZADD", "z", "NX"), ("ZADD", "z", "x", "a"),
        ("ZADD", "z", "1", "a", "x", "b"), ("ZADD", "z", "CH", "CH", "1", "a"), ("ZADD", "new", "XX", "1", "a"),
        ("ZADD", "new", "XX", "INCR", "1", "a"), ("EXISTS", "new"), ("ZADD", "z", "-0", "zero"), ("ZSCORE", "z", "zero"),
        ("ZADD", "z", "0", "zero"), ("ZSCORE", "z", "zero"), ("ZADD", "z", "inf", "a"), ("ZINCRBY", "z", "-inf", "a"),
        ("ZADD", "z", "INCR", "-inf", "a"), ("ZINCRBY", "z", "1", "new1"), ("ZINCRBY", "z", "x", "a"), ("ZINCRBY", "z", "1"),
        ("ZADD", "z", "1", "a", "1", "a", "2", "a"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZREM", "z", "a", "a", "nope"), ("ZREM", "missing", "a"), ("ZREM", "z"), ("ZADD", "z"),
        ("ZADD", "z", "1.1", "m", "0.1", "n"), ("ZINCRBY", "z", "0.2", "n"), ("ZINCRBY", "z", "1e308", "m"),
        ("ZINCRBY", "z", "1e308", "m"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
    ]
    for args in cases:
        sb.both(*args)


def test_side_by_side_removals_and_pops(side_by_side):
    sb = side_by_side
    def fill():
        sb.both("DEL", "z")
        sb.both("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
    for args in [("0", "1"), ("-2", "-1"), ("3", "1"), ("-100", "100"), ("10", "20"), ("x", "1"), ("0", "-6")]:
        fill()
        sb.both("ZREMRANGEBYRANK", "z", *args)
        sb.both("ZRANGE", "z", "0", "-1")
    for args in [("2", "4"), ("(2", "(4"), ("-inf", "+inf"), ("5", "1"), ("x", "1"), ("(5", "5")]:
        fill()
        sb.both("ZREMRANGEBYSCORE", "z", *args)
        sb.both("ZRANGE", "z", "0", "-1")
    for args in [("-", "+"), ("[b", "(d"), ("x", "+"), ("(e", "+")]:
        fill()
        sb.both("ZREMRANGEBYLEX", "z", *args)
        sb.both("ZRANGE", "z", "0", "-1")
    sb.both("ZREMRANGEBYRANK", "missing", "0", "1")
    fill()
    for args in [("ZPOPMIN", "z"), ("ZPOPMAX", "z", "2"), ("ZPOPMIN", "z", "0"), ("ZPOPMIN", "z", "-1"),
                 ("ZPOPMIN", "z", "x"), ("ZPOPMIN", "z", "1", "2"), ("ZPOPMIN", "missing"), ("ZPOPMIN", "missing", "-1"),
                 ("ZPOPMAX", "missing", "3"), ("ZPOPMIN", "z", "100"), ("EXISTS", "z")]:
        sb.both(*args)
    fill()
    sb.both("ZADD", "y", "7", "y1")
    for args in [("ZMPOP", "2", "missing", "z", "MIN"), ("ZMPOP", "2", "z", "y", "MAX", "COUNT", "2"),
                 ("ZMPOP", "1", "z", "min", "count", "100"), ("ZMPOP", "1", "z", "MIN"), ("ZMPOP", "0", "z", "MIN"),
                 ("ZMPOP", "-1", "z", "MIN"), ("ZMPOP", "x", "z", "MIN"), ("ZMPOP", "3", "z", "y", "MIN"),
                 ("ZMPOP", "1", "y", "LEFT"), ("ZMPOP", "1", "y", "MIN", "COUNT", "0"), ("ZMPOP", "1", "y", "MIN", "COUNT"),
                 ("ZMPOP", "1", "y", "MIN", "COUNT", "1", "COUNT", "1"), ("ZMPOP", "1", "y", "MIN", "junk"),
                 ("ZMPOP", "1", "y", "MAX", "COUNT", "-5")]:
        sb.both(*args)


def test_side_by_side_resp3_shapes(side_by_side):
    sb = side_by_side
    sb.kv.call("HELLO", "3")
    sb.redis.call("HELLO", "3")
    sb.both("ZADD", "z", "1", "a", "2.5", "b", "inf", "c")
    put_set_both(sb, "s", "a", "x")
    for args in [("ZSCORE", "z", "b"), ("ZSCORE", "z", "c"), ("ZMSCORE", "z", "a", "no"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
                 ("ZRANGE", "z", "0", "-1"), ("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"),
                 ("ZREVRANGE", "z", "0", "0", "WITHSCORES"), ("ZINCRBY", "z", "1", "a"), ("ZADD", "z", "INCR", "1", "a"),
                 ("ZUNION", "2", "z", "s", "WITHSCORES"), ("ZINTER", "2", "z", "s", "WITHSCORES"),
                 ("ZDIFF", "2", "z", "s", "WITHSCORES"), ("ZRANDMEMBER", "z", "5", "WITHSCORES"),
                 ("ZRANDMEMBER", "z", "0", "WITHSCORES"), ("ZSCAN", "z", "0"), ("ZPOPMIN", "z"), ("ZPOPMIN", "z", "1"),
                 ("ZPOPMAX", "z", "5"), ("ZPOPMIN", "z"), ("ZMPOP", "1", "z", "MIN"), ("ZSCORE", "z", "a"),
                 ("ZRANK", "z", "a"), ("ZRANDMEMBER", "z")]:
        sb.both(*args)


def test_side_by_side_union_inter_diff(side_by_side):
    sb = side_by_side
    sb.both("ZADD", "a", "1", "x", "2", "y", "3", "z", "inf", "i")
    sb.both("ZADD", "b", "10", "y", "20", "z", "30", "w", "-inf", "i")
    put_set_both(sb, "s", "x", "w", "v")
    sb.both("SET", "str", "1")
    cases = []
    for op in ["ZUNION", "ZINTER"]:
        cases += [
            (op, "2", "a", "b"), (op, "2", "a", "b", "WITHSCORES"), (op, "3", "a", "b", "s", "WITHSCORES"),
            (op, "2", "a", "b", "WEIGHTS", "2", "0.5", "WITHSCORES"), (op, "2", "a", "b", "WEIGHTS", "0", "1", "WITHSCORES"),
            (op, "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"), (op, "2", "a", "b", "aggregate", "max", "withscores"),
            (op, "2", "a", "missing", "WITHSCORES"), (op, "1", "missing"), (op, "2", "a", "a", "WITHSCORES"),
            (op, "0", "a"), (op, "-1", "a"), (op, "x", "a"), (op, "3", "a", "b"), (op, "2", "a", "b", "WEIGHTS", "1"),
            (op, "2", "a", "b", "WEIGHTS", "1", "x"), (op, "2", "a", "b", "AGGREGATE", "AVG"), (op, "2", "a", "b", "AGGREGATE"),
            (op, "2", "a", "b", "junk"), (op, "2", "a", "str"), (op, "2", "a", "b", "WEIGHTS", "nan", "1"),
            (op, "2", "a", "b", "WEIGHTS", "inf", "-inf", "WITHSCORES"),
        ]
    cases += [
        ("ZDIFF", "2", "a", "b", "WITHSCORES"), ("ZDIFF", "2", "a", "s"), ("ZDIFF", "2", "a", "a"), ("ZDIFF", "1", "missing"),
        ("ZDIFF", "2", "a", "b", "WEIGHTS", "1", "2"), ("ZDIFF", "2", "a", "b", "AGGREGATE", "SUM"), ("ZDIFF", "0", "a"),
        ("ZINTERCARD", "2", "a", "b"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "1"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "0"),
        ("ZINTERCARD", "2", "a", "b", "LIMIT", "-1"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "x"),
        ("ZINTERCARD", "2", "a", "b", "WITHSCORES"), ("ZINTERCARD", "0", "a"), ("ZINTERCARD", "3", "a", "b", "s"),
        ("ZINTERCARD", "2", "a", "b", "WEIGHTS", "1", "1"),
        ("ZUNIONSTORE", "d", "2", "a", "b"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZUNIONSTORE", "d", "2", "a", "b", "WITHSCORES"),
        ("ZINTERSTORE", "d", "3", "a", "b", "s", "WEIGHTS", "1", "2", "3"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZDIFFSTORE", "d", "2", "a", "b"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZDIFFSTORE", "d", "1", "missing"),
        ("EXISTS", "d"), ("ZUNIONSTORE", "str", "1", "a"), ("TYPE", "str"), ("ZINTERSTORE", "a", "2", "a", "b"),
        ("ZRANGE", "a", "0", "-1", "WITHSCORES"), ("ZUNIONSTORE", "d", "0", "a"), ("ZDIFFSTORE", "d", "2", "a"),
        ("ZUNIONSTORE", "s", "1", "s"), ("TYPE", "s"), ("ZRANGE", "s", "0", "-1", "WITHSCORES"),
    ]
    for args in cases:
        sb.both(*args)


def test_side_by_side_zrandmember_and_zscan_shapes(side_by_side):
    sb = side_by_side
    sb.both("ZADD", "z", "1", "a", "2", "b", "3", "c")
    for args in [("ZRANDMEMBER", "z", "3"), ("ZRANDMEMBER", "z", "10", "WITHSCORES"), ("ZRANDMEMBER", "z", "0"),
                 ("ZRANDMEMBER", "z", "x"), ("ZRANDMEMBER", "z", "1", "junk"), ("ZRANDMEMBER", "z", "1", "WITHSCORES", "x"),
                 ("ZRANDMEMBER", "z", "-9223372036854775808"), ("ZRANDMEMBER", "missing"), ("ZRANDMEMBER", "missing", "3"),
                 ("ZRANDMEMBER", "missing", "x"), ("ZRANDMEMBER", "missing", "1", "junk"),
                 ("ZSCAN", "z", "0"), ("ZSCAN", "z", "0", "COUNT", "1"), ("ZSCAN", "z", "0", "MATCH", "[ab]"),
                 ("ZSCAN", "z", "0", "COUNT", "0"), ("ZSCAN", "z", "0", "COUNT", "x"), ("ZSCAN", "z", "0", "TYPE", "zset"),
                 ("ZSCAN", "z", "x"), ("ZSCAN", "z", "-1"), ("ZSCAN", "missing", "0"), ("ZSCAN", "missing", "0", "COUNT", "0"),
                 ("ZSCAN", "z", "0", "MATCH")]:
        sb.both(*args)
    for args in [("ZRANDMEMBER", "z", "-5"), ("ZRANDMEMBER", "z", "-5", "WITHSCORES"), ("ZRANDMEMBER", "z", "2")]:
        ours, theirs = sb.each(*args)
        assert ours.split(b"\r\n")[0] == theirs.split(b"\r\n")[0]  # same length, random picks


def test_side_by_side_command_info_and_encoding(side_by_side):
    sb = side_by_side
    names = ["zadd", "zincrby", "zrem", "zcard", "zcount", "zlexcount", "zscore", "zmscore", "zrank", "zrevrank",
             "zrange", "zrangestore", "zrevrange", "zrangebyscore", "zrevrangebyscore", "zrangebylex",
             "zrevrangebylex", "zremrangebyrank", "zremrangebyscore", "zremrangebylex", "zpopmin", "zpopmax",
             "zmpop", "zrandmember", "zunion", "zinter", "zdiff", "zunionstore", "zinterstore", "zdiffstore",
             "zintercard", "zscan"]
    for name in names:
        ours, theirs = sb.each("COMMAND", "INFO", name)
        # name, arity, flags, first/last/step, ACL categories: the first 7 fields
        assert _fields(ours, 7) == _fields(theirs, 7), name
    sb.both("ZADD", "small", "1", "a")
    for name in ["zset-max-listpack-entries", "zset-max-ziplist-entries", "zset-max-listpack-value", "zset-max-ziplist-value"]:
        sb.both("CONFIG", "GET", name)
    ours, theirs = sb.each("CONFIG", "GET", "zset-max-*")  # the same pairs; Redis's order is its hash's
    assert sorted(ours.split(b"\r\n")) == sorted(theirs.split(b"\r\n"))
    sb.both("CONFIG", "SET", "zset-max-listpack-entries", "-1")
    sb.both("CONFIG", "SET", "zset-max-listpack-value", "1kb")
    sb.both("CONFIG", "GET", "zset-max-ziplist-value")
    sb.both("CONFIG", "SET", "zset-max-ziplist-entries", "2")
    sb.both("CONFIG", "GET", "zset-max-listpack-entries")
    sb.both("CONFIG", "SET", "zset-max-listpack-value", "64")
    if _has_object(sb):
        sb.both("ZADD", "grow", "1", "a", "2", "b")
        sb.both("OBJECT", "ENCODING", "grow")
        sb.both("ZADD", "grow", "3", "c")
        sb.both("OBJECT", "ENCODING", "grow")
        sb.both("ZREM", "grow", "c", "b")
        sb.both("OBJECT", "ENCODING", "grow")
        sb.both("ZADD", "long", "1", "x" * 65)
        sb.both("OBJECT", "ENCODING", "long")
    sb.both("CONFIG", "SET", "zset-max-listpack-entries", "128")


def _has_object(sb) -> bool:
    return not sb.kv.call("OBJECT", "HELP").startswith(b"-ERR unknown command")


def _fields(reply: bytes, count: int) -> bytes:
    """The first ``count`` fields of a one-command COMMAND INFO reply (a
    rough cut at the 8th top-level element: enough for these fixed shapes)."""
    lines = reply.split(b"\r\n")
    return b"\r\n".join(lines[: _field_end(lines, count)])


def _field_end(lines: list[bytes], count: int) -> int:
    # skip "*1", "*10"; then walk count elements of the inner array
    i, seen = 2, 0
    while seen < count:
        i = _skip(lines, i)
        seen += 1
    return i


def _skip(lines: list[bytes], i: int) -> int:
    head = lines[i]
    if head[:1] in (b"*", b"~", b"%"):
        n = int(head[1:]) * (2 if head[:1] == b"%" else 1)
        i += 1
        for _ in range(n):
            i = _skip(lines, i)
        return i
    if head[:1] == b"$":
        return i + 2
    return i + 1


def test_side_by_side_big_sets_and_zscan_walks(side_by_side):
    """Past the listpack thresholds (Redis's skiplist): ranks, ranges, and a
    full ZSCAN walk that returns every member."""
    sb = side_by_side
    args = []
    for i in range(500):
        args += [repr(float(i % 50)), "m%03d" % i]
    sb.both("ZADD", "big", *args)
    for cmd in [("ZRANGE", "big", "100", "110", "WITHSCORES"), ("ZREVRANGE", "big", "5", "9"),
                ("ZRANGEBYSCORE", "big", "(10", "12", "LIMIT", "5", "7"), ("ZCOUNT", "big", "10", "(20"),
                ("ZRANK", "big", "m333"), ("ZREVRANK", "big", "m333"), ("ZREMRANGEBYRANK", "big", "10", "19"),
                ("ZREMRANGEBYSCORE", "big", "(48", "+inf"), ("ZCARD", "big"), ("ZRANGE", "big", "-3", "-1")]:
        sb.both(*cmd)
    seen, cursor = [], b"0"
    r = sb.kv
    while True:
        reply = r.call("ZSCAN", "big", cursor, "COUNT", "17")
        parts = reply.split(b"\r\n")
        cursor = parts[2]
        seen += parts[5::4][: int(parts[3][1:]) // 2]
        if cursor == b"0":
            break
    everything = sb.kv.call("ZRANGE", "big", "0", "-1").split(b"\r\n")[2::2]
    assert set(seen) == set(everything)


# -- redis-py -----------------------------------------------------------------------------------


def pairs(reply):
    """redis-py's WITHSCORES shapes (tuples in RESP2, lists in RESP3) as tuples."""
    return [tuple(p) if isinstance(p, (list, tuple)) else p for p in reply]


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_zset_methods(start_server, protocol):
    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    assert r.zadd("z", {"a": 1, "b": 2, "c": 3}) == 3
    assert r.zadd("z", {"a": 5}, nx=True) == 0
    assert r.zadd("z", {"a": 0.5, "d": 4}, xx=True, ch=True) == 1
    assert r.zadd("z", {"b": 10}, gt=True, ch=True) == 1
    assert r.zadd("z", {"c": 1}, incr=True) == 4.0
    assert r.zincrby("z", 2.5, "a") == 3.0
    assert r.zrange("z", 0, -1) == [b"a", b"c", b"b"]
    assert pairs(r.zrange("z", 0, -1, withscores=True)) == [(b"a", 3.0), (b"c", 4.0), (b"b", 10.0)]
    assert pairs(r.zrange("z", 0, 0, desc=True, withscores=True)) == [(b"b", 10.0)]
    assert r.zrange("z", "(3", "+inf", byscore=True, offset=0, num=1) == [b"c"]
    assert pairs(r.zrangebyscore("z", 3, 4, withscores=True)) == [(b"a", 3.0), (b"c", 4.0)]
    assert r.zrevrangebyscore("z", "+inf", 4) == [b"b", b"c"]
    assert r.zscore("z", "b") == 10.0 and r.zrank("z", "b") == 2 and r.zcard("z") == 3
    assert r.zmscore("z", ["a", "nope"]) == [3.0, None]
    assert pairs(r.zpopmin("z")) in ([(b"a", 3.0)], [b"a", 3.0])
    assert pairs(r.zpopmax("z", 2)) == [(b"b", 10.0), (b"c", 4.0)]
    r.zadd("s1", {f"m{i}": i for i in range(300)})
    assert sorted(m for m, _ in r.zscan_iter("s1")) == sorted(f"m{i}".encode() for i in range(300))
    assert dict(r.zscan_iter("s1", match="m1?")) == {f"m1{i}".encode(): 10.0 + i for i in range(10)}
    r.zadd("s2", {"m1": 100, "x": 1})
    assert r.zunionstore("u", ["s1", "s2"], aggregate="MAX") == 301
    assert r.zscore("u", "m1") == 100.0
    assert r.zinterstore("i", {"s1": 2, "s2": 1}) == 1
    assert r.zscore("i", "m1") == 102.0
    assert pairs(r.zunion(["s2", "i"], withscores=True)) == [(b"x", 1.0), (b"m1", 202.0)]
    assert r.zrangestore("dst", "s1", 0, 2) == 3
    assert r.zlexcount("dst", "-", "+") == 3
    picked = r.zrandmember("s2", 2, withscores=True)  # both members, highest first, as Redis sends them
    assert pairs(picked) == [(b"m1", 100.0), (b"x", 1.0)] or picked == [b"m1", b"100", b"x", b"1"]
    assert r.zmpop(1, ["s2"], min=True) in ([b"s2", [[b"x", 1.0]]], [b"s2", [[b"x", b"1"]]])


# -- readers against writers ---------------------------------------------------------------------


def test_readers_never_see_a_torn_sorted_set(start_server):
    """Writers keep "z" at 50 members whose scores sum to 0 (each change is
    a ZADD moving two members); readers must always see 50 and a zero sum."""
    server = start_server()
    redis.Redis(port=server.resp_port).zadd("z", {f"m{i}": 0 for i in range(50)})

    def writer(seed: int):
        rng = random.Random(seed)

        def write(r) -> None:
            a, b = rng.sample(range(50), 2)
            delta = rng.randrange(1, 100)
            r.execute_command("MULTI")
            r.execute_command("ZINCRBY", "z", delta, f"m{a}")
            r.execute_command("ZINCRBY", "z", -delta, f"m{b}")
            r.execute_command("EXEC")

        return write

    def read(r):
        pairs = r.zrange("z", 0, -1, withscores=True)
        if len(pairs) != 50 or sum(s for _, s in pairs) != 0:
            return f"torn: {len(pairs)} members, sum {sum(s for _, s in pairs)}"
        scores = [s for _, s in pairs]
        return "out of order" if scores != sorted(scores) else None

    race(
        lambda: redis.Redis(port=server.resp_port),
        writers=[writer(i) for i in range(2)],
        readers=[read] * 2,
        writes=600,  # about 1.5 s of load on a 2-core machine
        reads=1800,
    )
