"""Tests for kvserver/commands/sets.py (and the Set methods it uses).

* harness tests (``kv``): replies, the exact bytes logged, a failed log
  append rolled back exactly, expiry, and the log replayed into a fresh
  keyspace giving the same sets;
* side by side with redis-server 7.0.15 (``side_by_side``), RESP2 and
  RESP3: identical bytes for every deterministic reply (replies in "any
  order" compared as sorted members);
* redis-py's set methods against the RESP port, RESP2 and RESP3;
* readers hammering a set that writers change never see half a change.
"""

from __future__ import annotations


import pytest

from kvserver.protocol import SetReply
from kvserver.store import Keyspace
from kvserver.values import Set
from tests.support import error_text, race, resp, replayed

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def sets_of(keyspace: Keyspace) -> dict:
    return {(db.index, key): set(value) for db in keyspace.dbs for key, value in db.data.items()}


# -- replies and the log (harness) -----------------------------------------------------


def test_sadd_srem_replies_and_log_as_issued(kv):
    assert kv("SADD", "s", "a", "b", "a") == 2
    assert kv("SADD", "s", "b") == 0  # nothing new: nothing logged
    assert kv("SREM", "s", "b", "zz") == 1
    assert kv("SREM", "s", "zz") == 0
    assert kv("SREM", "nokey", "a") == 0
    assert kv("SMEMBERS", "s") == SetReply([b"a"])
    assert kv.log() == (
        resp("SELECT", "0") + resp("SADD", "s", "a", "b", "a") + resp("SREM", "s", "b", "zz")
    )
    assert kv("SREM", "s", "a") == 1
    assert kv("EXISTS", "s") == 0  # the last member deletes the key


def test_read_commands_and_wrongtype(kv):
    kv("SADD", "s", "3", "1", "2")
    kv("SET", "str", "x")
    assert kv("SMEMBERS", "s") == [b"1", b"2", b"3"]  # an intset walks in order
    assert kv("SISMEMBER", "s", "1") == 1 and kv("SISMEMBER", "s", "9") == 0
    assert kv("SMISMEMBER", "s", "1", "9", "2") == [1, 0, 1]
    assert kv("SCARD", "s") == 3 and kv("SCARD", "nokey") == 0
    for args in (("SADD", "str", "a"), ("SMEMBERS", "str"), ("SINTER", "nokey", "str"), ("SPOP", "str", "0")):
        assert error_text(kv(*args)) == WRONGTYPE


def test_spop_logs_srem_of_each_member_taken(kv):
    kv("SADD", "s", *[str(i) for i in range(10)])
    start = len(kv.log())
    taken = kv("SPOP", "s", 3)
    assert type(taken) is SetReply and len(set(taken)) == 3
    one = kv("SPOP", "s")
    expected = resp("MULTI") + b"".join(resp("SREM", "s", m) for m in taken) + resp("EXEC") + resp("SREM", "s", one)
    assert kv.log()[start:] == expected
    assert kv("SCARD", "s") == 6 and not (set(taken) | {one}) & set(kv("SMEMBERS", "s"))
    rest = kv("SPOP", "s", 100)  # the whole set: logged as DEL
    assert len(rest) == 6 and kv("EXISTS", "s") == 0
    assert kv.log().endswith(resp("DEL", "s"))
    assert kv("SPOP", "s", 2) == [] and kv("SPOP", "s") is None


def test_spop_inside_multi_joins_the_transaction_group(kv):
    kv("SADD", "s", "a", "b", "c")
    start = len(kv.log())
    kv("MULTI")
    kv("SPOP", "s", 2)
    replies = kv("EXEC")
    taken = replies[0]
    assert kv.log()[start:] == resp("MULTI") + b"".join(resp("SREM", "s", m) for m in taken) + resp("EXEC")


def test_srandmember_distribution_rules_and_logs_nothing(kv):
    kv("SADD", "s", "a", "b", "c", "d")
    before = kv.log()
    for _ in range(50):
        picks = kv("SRANDMEMBER", "s", 3)
        assert len(picks) == 3 and len(set(picks)) == 3  # a positive count never repeats
    repeated = kv("SRANDMEMBER", "s", -40)
    assert len(repeated) == 40 and set(repeated) <= {b"a", b"b", b"c", b"d"}
    assert len(set(repeated)) < 40  # a negative count may repeat (and must, past the size)
    assert sorted(kv("SRANDMEMBER", "s", 10)) == [b"a", b"b", b"c", b"d"]
    seen = {kv("SRANDMEMBER", "s") for _ in range(200)}
    assert seen == {b"a", b"b", b"c", b"d"}  # random, not the same one every time
    assert kv.log() == before


def test_spop_picks_at_random_across_calls(kv):
    seen = set()
    for _ in range(60):
        kv("SADD", "s", "a", "b", "c", "d")
        seen.add(kv("SPOP", "s"))
    assert seen == {b"a", b"b", b"c", b"d"}


def test_smove(kv):
    kv("SADD", "src", "a", "b")
    start = len(kv.log())
    assert kv("SMOVE", "src", "dst", "a") == 1
    assert kv("SMOVE", "src", "dst", "zz") == 0
    assert kv("SMOVE", "src", "src", "b") == 1  # same key: a no-op, not logged
    assert kv("SMOVE", "src", "dst", "b") == 1  # the last member: src goes
    assert kv.log()[start:] == resp("SMOVE", "src", "dst", "a") + resp("SMOVE", "src", "dst", "b")
    assert kv("EXISTS", "src") == 0 and sorted(kv("SMEMBERS", "dst")) == [b"a", b"b"]


def test_store_commands_log_as_issued_and_empty_deletes(kv):
    kv("SADD", "a", "1", "2", "3")
    kv("SADD", "b", "2", "3", "4")
    kv("SET", "d", "old")
    kv("PEXPIRE", "d", 100000)
    start = len(kv.log())
    assert kv("SINTERSTORE", "d", "a", "b") == 2
    assert kv("TTL", "d") == -1 and kv("SMEMBERS", "d") == [b"2", b"3"]
    assert kv("SUNIONSTORE", "u", "a", "b") == 4
    assert kv("SDIFFSTORE", "f", "a", "b") == 1
    assert kv("SINTERSTORE", "none", "a", "nokey") == 0  # nothing to store or delete: not logged
    assert kv("SDIFFSTORE", "d", "a", "a") == 0  # empty: d is deleted
    assert kv("EXISTS", "d") == 0
    assert kv.log()[start:] == (
        resp("SINTERSTORE", "d", "a", "b")
        + resp("SUNIONSTORE", "u", "a", "b")
        + resp("SDIFFSTORE", "f", "a", "b")
        + resp("SDIFFSTORE", "d", "a", "a")
    )


def test_sintercard_limit(kv):
    kv("SADD", "a", *"abcdef")
    kv("SADD", "b", *"bcdefg")
    assert kv("SINTERCARD", 2, "a", "b") == 5
    assert kv("SINTERCARD", 2, "a", "b", "LIMIT", 3) == 3
    assert kv("SINTERCARD", 2, "a", "nokey") == 0
    assert kv("COMMAND", "GETKEYS", "SINTERCARD", 2, "a", "b", "LIMIT", 1) == [b"a", b"b"]


def test_sscan_walks_a_big_set_once_while_it_changes(kv):
    members = [b"m%d" % i for i in range(2000)]
    kv("SADD", "s", *members)
    seen: list[bytes] = []
    cursor = b"0"
    calls = 0
    while True:
        cursor, batch = kv("SSCAN", "s", cursor, "COUNT", 50)
        seen += batch
        calls += 1
        kv("SADD", "s", b"new%d" % calls)  # changes during the walk
        kv("SREM", "s", b"new%d" % (calls - 1))
        if cursor == b"0":
            break
    assert calls > 10  # it really walked in steps
    old = [m for m in seen if m.startswith(b"m")]
    assert sorted(old) == sorted(members)  # every member there throughout, exactly once
    matched = kv("SSCAN", "s", 0, "MATCH", "m1?", "COUNT", 100000)
    assert sorted(matched[1]) == sorted(b"m1%d" % i for i in range(10)) and matched[0] == b"0"


def test_sscan_of_an_intset_is_whole_with_cursor_zero(kv):
    kv("SADD", "s", *[str(i) for i in range(100)])
    cursor, batch = kv("SSCAN", "s", 0, "COUNT", 5)
    assert cursor == b"0" and batch == [str(i).encode() for i in range(100)]


def test_failed_log_append_rolls_back_exactly(failing_kv):
    kv = failing_kv
    kv("SADD", "s", "1", "2", "3")
    kv("SADD", "t", "x")
    snapshot = {k: (set(v), v.nbytes) for k, v in kv.db.data.items()}
    used = kv.db.used_bytes
    kv.aof.failing = True
    for args in (
        ("SADD", "s", "a", "b"),
        ("SADD", "new", "a"),
        ("SREM", "s", "1", "2", "3"),
        ("SPOP", "s", 2),
        ("SPOP", "s", 10),
        ("SPOP", "s"),
        ("SMOVE", "s", "t", "1"),
        ("SMOVE", "s", "fresh", "1"),
        ("SUNIONSTORE", "t", "s", "t"),
        ("SINTERSTORE", "t", "s", "nokey"),
    ):
        assert error_text(kv(*args)).startswith("MISCONF"), args
        assert {k: (set(v), v.nbytes) for k, v in kv.db.data.items()} == snapshot, args
        assert kv.db.used_bytes == used, args


def test_replay_rebuilds_the_same_sets(kv):
    kv("SADD", "a", *[str(i) for i in range(30)])
    kv("SADD", "b", "x", "y", "1", "2")
    kv("SPOP", "a", 5)
    kv("SPOP", "a")
    kv("SMOVE", "a", "b", "7")
    kv("SINTERSTORE", "i", "a", "b")
    kv("SUNIONSTORE", "u", "a", "b")
    kv("SDIFFSTORE", "d", "a", "b")
    kv("SREM", "b", "x")
    kv("MULTI")
    kv("SPOP", "b", 2)
    kv("SADD", "c", "z")
    kv("EXEC")
    live = sets_of(kv.keyspace)
    assert sets_of(replayed(kv)) == live


def test_replay_after_a_key_expired(kv):
    """A set that expired here is logged as deleted then (store.py): what
    was built after it is not mixed with it or dropped with its deadline."""
    kv("SADD", "old", "a", "b")
    kv("PEXPIRE", "old", 100)
    kv("SADD", "src", "a", "z")
    kv("PEXPIRE", "src", 100)
    kv.clock.advance(200)
    assert kv("SMEMBERS", "old") == []  # expired: reclaimed, its DEL logged
    kv("SADD", "old", "c")  # a new set under the same name
    kv("SADD", "keep", "a")
    kv("SUNIONSTORE", "u", "keep", "src")  # src is missing here
    kv("SMOVE", "keep", "src", "a")  # a new src
    live = sets_of(kv.keyspace)
    assert live == {(0, b"old"): {b"c"}, (0, b"u"): {b"a"}, (0, b"src"): {b"a"}}
    assert sets_of(replayed(kv)) == live


def test_expired_set_is_missing_to_every_command(kv):
    kv("SADD", "s", "a")
    kv("PEXPIRE", "s", 10)
    kv.clock.advance(11)
    assert kv("SCARD", "s") == 0
    assert kv("SPOP", "s") is None
    assert kv("SMOVE", "s", "t", "a") == 0
    assert kv("SADD", "s", "b") == 1 and kv("TTL", "s") == -1


# -- side by side with redis-server ----------------------------------------------------------

# Every reply here is deterministic: compared byte for byte.
EXACT_CASES = [
    ("SADD", "s", "1", "2", "3"),
    ("SADD", "s", "2"),
    ("SMEMBERS", "s"),
    ("SMEMBERS", "nokey"),
    ("SPOP", "s", "0"),
    ("SPOP", "nokey", "0"),
    ("SPOP", "nokey", "2"),
    ("SPOP", "s", "-1"),
    ("SPOP", "s", "abc"),
    ("SPOP", "nokey", "-1"),
    ("SPOP", "s", "1", "2"),
    ("SPOP", "nokey"),
    ("SRANDMEMBER", "nokey"),
    ("SRANDMEMBER", "s", "1", "2"),
    ("SRANDMEMBER", "s", "0"),
    ("SRANDMEMBER", "nokey", "5"),
    ("SRANDMEMBER", "nokey", "-5"),
    ("SRANDMEMBER", "s", "10"),
    ("SRANDMEMBER", "s", "-9223372036854775808"),
    ("SRANDMEMBER", "s", "9223372036854775807"),
    ("SRANDMEMBER", "s", "x"),
    ("SINTER", "s"),
    ("SINTER", "nokey", "s"),
    ("SINTERCARD", "1", "s"),
    ("SINTERCARD", "0", "s"),
    ("SINTERCARD", "2", "s"),
    ("SINTERCARD", "1", "s", "LIMIT", "-1"),
    ("SINTERCARD", "1", "s", "limit", "0"),
    ("SINTERCARD", "1", "s", "LIMIT", "x"),
    ("SINTERCARD", "1", "s", "foo", "1"),
    ("SINTERCARD", "1", "s", "LIMIT"),
    ("SINTERCARD", "x", "s"),
    ("SINTERCARD", "-1", "s"),
    ("SUNION", "nokey"),
    ("SDIFF", "nokey", "s"),
    ("SMISMEMBER", "s", "1", "9"),
    ("SMISMEMBER", "nokey", "1"),
    ("SISMEMBER", "s", "1"),
    ("SISMEMBER", "s", "9"),
    ("SCARD", "s"),
    ("SCARD", "nokey"),
    ("SSCAN", "s", "0"),
    ("SSCAN", "nokey", "0"),
    ("SSCAN", "s", "0", "COUNT", "0"),
    ("SSCAN", "s", "0", "MATCH", "*"),
    ("SSCAN", "s", "0", "MATCH", "1*"),
    ("SSCAN", "s", "x"),
    ("SSCAN", "s", "0", "foo"),
    ("SSCAN", "s", "0", "TYPE", "set"),
    ("SSCAN", "s", "0", "COUNT", "1", "COUNT", "2"),
    ("SSCAN", "s", "0", "MATCH"),
    ("SSCAN", "nokey", "0", "foo"),
    ("SSCAN", "nokey", "x"),
    ("SMOVE", "s", "s", "1"),
    ("SMOVE", "s", "s", "9"),
    ("SMOVE", "nokey", "s", "1"),
    ("SET", "str", "x"),
    ("SMOVE", "s", "str", "1"),
    ("SMOVE", "str", "s", "1"),
    ("SMOVE", "nokey", "str", "1"),
    ("SADD", "str", "1"),
    ("SREM", "nokey", "1"),
    ("SINTER", "str"),
    ("SINTER", "nokey", "str"),
    ("SUNION", "nokey", "str"),
    ("SDIFF", "nokey", "str"),
    ("SINTERSTORE", "d", "str"),
    ("SADD", "d", "5"),
    ("SINTERSTORE", "d", "nokey", "str"),
    ("EXISTS", "d"),
    ("SSCAN", "str", "0", "foo"),
    ("SINTERCARD", "1", "nokey", "str"),
    ("SINTERCARD", "2", "nokey", "str"),
    ("SPOP", "str", "0"),
    ("SRANDMEMBER", "str", "0"),
    ("SADD", "big", "10", "-5", "3", "100", "2"),
    ("SMEMBERS", "big"),
    ("SUNION", "big", "s"),
    ("SINTER", "big", "s"),
    ("SDIFF", "big", "s"),
    ("SUNIONSTORE", "d2", "s", "big"),
    ("SMEMBERS", "d2"),
    ("SINTERSTORE", "d3", "s", "big"),
    ("SDIFFSTORE", "d4", "big", "s"),
    ("SMEMBERS", "d4"),
    ("SINTERSTORE", "d4", "s", "nokey"),
    ("EXISTS", "d4"),
    ("SINTERSTORE", "never", "nokey", "s"),
    ("EXISTS", "never"),
    ("SMOVE", "big", "s", "10"),
    ("SMOVE", "big", "s", "zz"),
    ("SMOVE", "big", "fresh", "-5"),
    ("SMEMBERS", "fresh"),
    ("SMEMBERS", "s"),
    ("SINTERCARD", "2", "big", "s"),
    ("SINTERCARD", "2", "big", "d2", "LIMIT", "1"),
    ("SADD", "one", "x"),
    ("SPOP", "one", "5"),
    ("EXISTS", "one"),
    ("SADD", "one", "x"),
    ("SPOP", "one"),
    ("SPOP", "one"),
    ("SADD", "w", "a", "b"),
    ("SREM", "w", "a", "b", "c"),
    ("EXISTS", "w"),
    ("SADD", "dup", "a", "a", "a", "b"),
    ("SCARD", "dup"),
    ("SADD", "sol", "only"),
    ("SRANDMEMBER", "sol"),
    ("SRANDMEMBER", "sol", "-3"),
    ("SPOP", "sol", "1"),
    ("SADD",),
    ("SADD", "k"),
    ("SREM", "k"),
    ("SMEMBERS",),
    ("SMEMBERS", "a", "b"),
    ("SISMEMBER", "a"),
    ("SMISMEMBER", "a"),
    ("SCARD",),
    ("SPOP",),
    ("SRANDMEMBER",),
    ("SMOVE", "a", "b"),
    ("SINTER",),
    ("SINTERCARD", "1"),
    ("SINTERSTORE", "d"),
    ("SUNION",),
    ("SUNIONSTORE", "d"),
    ("SDIFF",),
    ("SDIFFSTORE", "d"),
    ("SSCAN", "k"),
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_exact(side_by_side, protocol):
    if protocol == 3:
        side_by_side.each("HELLO", "3")  # the client ids differ
    for args in EXACT_CASES:
        side_by_side.both(*args)


def _members(raw: bytes) -> tuple[bytes, list[bytes]]:
    """A RESP array or set of bulk strings: its header and sorted members."""
    header, rest = raw.split(b"\r\n", 1)
    items = []
    for _ in range(int(header[1:])):
        length, rest = rest.split(b"\r\n", 1)
        items.append(rest[: int(length[1:])])
        rest = rest[int(length[1:]) + 2 :]
    return header, sorted(items)


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_hashtable_sets_in_any_order(side_by_side, protocol):
    if protocol == 3:
        side_by_side.each("HELLO", "3")
    words = [f"w{i}" for i in range(40)]
    side_by_side.both("SADD", "a", *words)
    side_by_side.both("SADD", "b", *words[10:], "x", "1")
    side_by_side.both("SADD", "n", *[str(i) for i in range(600)])  # past set-max-intset-entries
    for args in [
        ("SMEMBERS", "a"),
        ("SINTER", "a", "b"),
        ("SUNION", "a", "b", "n"),
        ("SDIFF", "b", "a"),
        ("SMEMBERS", "n"),
        ("SRANDMEMBER", "a", "100"),
    ]:
        ours, theirs = side_by_side.each(*args)
        assert _members(ours) == _members(theirs), args
    for args in [
        ("SINTERSTORE", "c", "a", "b"),
        ("SUNIONSTORE", "c", "a", "b"),
        ("SDIFFSTORE", "c", "a", "b"),
        ("SINTERCARD", "2", "a", "b", "LIMIT", "5"),
        ("SCARD", "n"),
        ("SPOP", "a", "0"),
    ]:
        side_by_side.both(*args)
    for raw in side_by_side.each("SPOP", "a", "3"):
        assert raw.startswith(b"~3\r\n" if protocol == 3 else b"*3\r\n")
    for raw in side_by_side.each("SRANDMEMBER", "a", "-3"):
        assert raw.startswith(b"*3\r\n")


def test_side_by_side_command_info(side_by_side):
    names = [
        "sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop", "srandmember",
        "smove", "sinter", "sintercard", "sinterstore", "sunion", "sunionstore", "sdiff",
        "sdiffstore", "sscan",
    ]  # fmt: skip
    for name in names:
        ours, theirs = side_by_side.each("COMMAND", "INFO", name)
        # name, arity, flags, first, last, step, categories: the first seven
        # fields (key specs and tips are Redis's finer detail).
        assert _decode(ours)[:7] == _decode(theirs)[:7], name


def _decode(raw: bytes):
    """A tiny RESP2 decoder for COMMAND INFO: arrays, ints, strings."""

    def parse(data: bytes, at: int):
        end = data.index(b"\r\n", at)
        kind, body = data[at : at + 1], data[at + 1 : end]
        at = end + 2
        if kind == b":":
            return int(body), at
        if kind == b"+":
            return body, at
        if kind == b"$":
            size = int(body)
            return data[at : at + size], at + size + 2
        if kind == b"*":
            items = []
            for _ in range(int(body)):
                item, at = parse(data, at)
                items.append(item)
            return items, at
        raise AssertionError(raw)

    value, _ = parse(raw, 0)
    return value[0]


# -- redis-py ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_set_methods(start_server, protocol):
    import redis

    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    assert r.sadd("s", "a", "b", "c") == 3
    assert r.smembers("s") == {b"a", b"b", b"c"}
    assert r.sismember("s", "a") in (1, True)
    assert r.smismember("s", ["a", "z"]) in ([1, 0], [True, False])
    assert r.scard("s") == 3
    assert r.srem("s", "c") == 1
    assert r.sadd("t", "b", "x") == 2
    assert r.sinter("s", "t") == {b"b"}
    assert r.sunion("s", "t") == {b"a", b"b", b"x"}
    assert r.sdiff("s", "t") == {b"a"}
    assert r.sintercard(2, ["s", "t"]) == 1
    assert r.sinterstore("i", ["s", "t"]) == 1
    assert r.sunionstore("u", ["s", "t"]) == 3
    assert r.sdiffstore("d", ["s", "t"]) == 1
    assert r.smove("u", "m", "x") in (1, True)
    assert r.srandmember("u") in {b"a", b"b"}
    assert sorted(r.srandmember("u", 5)) == [b"a", b"b"]
    assert len(r.srandmember("u", -5)) == 5
    popped = r.spop("u", 2)
    assert set(popped) == {b"a", b"b"} and not r.exists("u")
    assert r.spop("m") == b"x"
    cursor, members = r.sscan("s")
    assert cursor == 0 and sorted(members) == [b"a", b"b"]
    assert sorted(r.sscan_iter("s", match="a*")) == [b"a"]
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.sadd("str", "x")


# -- concurrency -------------------------------------------------------------------------------


def test_readers_never_see_half_of_a_set_change(start_server):
    """Writers add and remove a batch of members in one command while
    readers ask for the whole set: a reader sees the batch whole or not at
    all, and never an error."""
    import redis

    server = start_server()
    base = {b"base"}
    batch = [b"x%d" % i for i in range(300)]
    redis.Redis(port=server.resp_port, protocol=2).sadd("s", *base)

    def write(r) -> None:
        r.sadd("s", *batch)
        r.srem("s", *batch)

    def read(r):
        members = r.smembers("s")
        size = r.scard("s")
        picks = r.srandmember("s", 5)
        r.sscan("s", 0, count=1000)
        if members not in (base, base | set(batch)) or size not in (1, 301) or len(picks) not in (1, 5):
            return (len(members), size, len(picks))
        return None

    race(
        lambda: redis.Redis(port=server.resp_port, protocol=2),
        writers=[write],
        readers=[read] * 2,
        writes=300,
        reads=600,
        timeout=20,
    )


def test_set_value_random_index_follows_changes():
    value = Set([b"a", b"b", b"c"])
    assert sorted(value.random_members(5, repeat=False)) == [b"a", b"b", b"c"]  # index built
    value.add_members([b"d"])
    removed, undo = value.remove_members([b"a", b"c"])
    assert sorted(value.random_members(10, repeat=False)) == [b"b", b"d"]
    undo()
    assert sorted(value.random_members(10, repeat=False)) == [b"a", b"b", b"c", b"d"]
    assert set(value.random_members(200, repeat=True)) == {b"a", b"b", b"c", b"d"}
