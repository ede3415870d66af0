"""Tests for kvserver/commands/bitmaps.py and lcs.py.

* harness tests (``kv``): replies, the exact log bytes, rollback of a failed
  append, TTLs kept, replay rebuilding the same keyspace;
* side by side with redis-server 7.0 (``side_by_side``): the same requests,
  the same reply bytes, RESP2 and RESP3;
* redis-py's methods against the RESP port, RESP2 and RESP3.
"""

from __future__ import annotations

import random

import pytest
import redis

from kvserver.commands import COMMANDS, lcs as lcs_module
from kvserver.values import Hash
from tests.conftest import SideBySide
from tests.support import T0, error_text, resp, replayed

SELECT0 = resp("SELECT", "0")
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"


# -- SETBIT / GETBIT ----------------------------------------------------------------------


def test_setbit_logs_as_issued_and_only_when_something_changed(kv):
    assert kv("SETBIT", "k", 10, 1) == 0
    assert kv("GET", "k") == b"\x00\x20"
    assert kv("SETBIT", "k", 10, 1) == 1  # no change: nothing logged
    assert kv("SETBIT", "k", 10, 0) == 1
    assert kv("SETBIT", "k", 100, 0) == 0  # grows: logged
    assert kv("SETBIT", "k", 100, 0) == 0  # nothing: not logged
    assert kv("GETBIT", "k", 100) == 0 and kv("GETBIT", "k", 10**6) == 0 and kv("GETBIT", "nope", 3) == 0
    assert kv("STRLEN", "k") == 13
    assert kv.log() == SELECT0 + resp("SET", "k", "") + resp("SETBIT", "k", "10", "1") + resp(
        "SETBIT", "k", "10", "0"
    ) + resp("SETBIT", "k", "100", "0")
    assert replayed(kv).dbs[0].data == {b"k": bytes(13)}


def test_setbit_far_out_pads_with_zeros_and_counts_in_memory(kv):
    before = kv.keyspace.used_bytes
    offset = 8 * 2**20 + 7  # the last bit of byte 2^20
    assert kv("SETBIT", "k", offset, 1) == 0
    assert kv.db.data[b"k"] == bytes(2**20) + b"\x01"
    assert kv.keyspace.used_bytes - before >= 2**20 + 1
    assert len(kv.log()) < 200  # the request, not a megabyte of zeros
    assert "denyoom" in COMMANDS[b"SETBIT"].flags and "denyoom" in COMMANDS[b"BITFIELD"].flags
    assert "denyoom" in COMMANDS[b"BITOP"].flags


def test_setbit_past_maxmemory_is_refused(kv):
    kv.dispatcher.maxmemory = 1000
    assert kv("SETBIT", "k", 8 * 2000, 1) == 0  # under the limit when it starts
    assert error_text(kv("SETBIT", "k", 0, 1)).startswith("OOM command not allowed")
    assert kv("GETBIT", "k", 8 * 2000) == 1


def test_setbit_offset_limits(kv):
    assert error_text(kv("SETBIT", "k", 2**32, 1)) == BIT_OFFSET
    assert error_text(kv("SETBIT", "k", -1, 1)) == BIT_OFFSET
    assert error_text(kv("GETBIT", "k", "#1")) == BIT_OFFSET
    assert error_text(kv("SETBIT", "k", 2**32 - 1, 2)) == "ERR bit is not an integer or out of range"
    assert kv("GETBIT", "k", 2**32 - 1) == 0
    assert kv.log() == b""


def test_a_small_bit_write_to_a_large_value_makes_a_small_record(kv):
    big = bytes(range(256)) * 4096  # 1 MiB
    kv("SET", "k", big, "PXAT", str(T0 + 60_000))
    before = len(kv.log())
    for n in range(50):
        kv("SETBIT", "k", n, 1)
        kv("BITFIELD", "k", "INCRBY", "u8", "#100", 1, "GET", "u8", 0)
    assert len(kv.log()) - before < 50 * 200
    expected = kv.db.data[b"k"]
    restarted = replayed(kv)
    assert restarted.dbs[0].data == {b"k": expected}
    assert restarted.dbs[0].expires == {b"k": T0 + 60_000}


@pytest.mark.parametrize(
    "write",
    [
        ("SETBIT", "k", "3", "1"),
        ("BITFIELD", "k", "SET", "u8", "0", "7"),
        ("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "24", "300"),  # grows only
    ],
)
def test_bit_writes_keep_the_ttl(kv, write):
    kv("SET", "k", "abc", "PX", 1000)
    before = kv.log()
    kv(*write)
    assert kv("PTTL", "k") == 1000
    assert kv.log_after_setup(before) == resp(*write)
    restarted = replayed(kv)
    assert restarted.dbs[0].data == {b"k": kv.db.data[b"k"]} and restarted.dbs[0].expires == {b"k": T0 + 1000}


@pytest.mark.parametrize(
    "write", [("SETBIT", "k", "3", "1"), ("BITFIELD", "k", "SET", "u8", "8", "7"), ("BITOP", "OR", "k", "x")]
)
def test_bit_writes_on_an_expired_key_start_afresh_after_a_restart(kv, write):
    kv("SET", "x", "\x10")
    kv("SET", "k", "old value", "PX", 100)
    kv.clock.advance(200)
    kv(*write)
    expected = kv.db.data[b"k"]
    assert b"old" not in expected
    restarted = replayed(kv)
    assert restarted.dbs[0].data == {b"k": expected, b"x": b"\x10"}


def test_bitop_with_an_expired_source_replays_as_live(kv):
    kv("SET", "a", b"\xff\xff")
    kv("SET", "gone", b"\xff\xff\xff", "PX", 10)
    kv.clock.advance(20)
    assert kv("BITOP", "AND", "d", "a", "gone") == 2
    assert kv("GET", "d") == b"\x00\x00"
    assert kv.log().endswith(resp("BITOP", "AND", "d", "a", "gone"))
    assert replayed(kv).dbs[0].data == {b"a": b"\xff\xff", b"d": b"\x00\x00"}


@pytest.mark.parametrize(
    "write",
    [
        ("SETBIT", "k", "3", "1"),
        ("SETBIT", "new", "30", "1"),
        ("BITFIELD", "k", "SET", "i16", "#3", "-7", "GET", "u4", "0"),
        ("BITOP", "XOR", "k", "k", "o"),
        ("BITOP", "NOT", "new", "k"),
        ("BITOP", "AND", "k", "nope"),
    ],
)
def test_a_failed_log_append_leaves_everything_as_it_was(failing_kv, write):
    kv = failing_kv
    kv("SET", "k", "abc", "PX", 5000)
    kv("SET", "o", "xyzw")
    data, expires, used = dict(kv.db.data), dict(kv.db.expires), kv.keyspace.used_bytes
    kv.aof.failing = True
    assert isinstance(kv(*write), Exception)
    assert (kv.db.data, kv.db.expires, kv.keyspace.used_bytes) == (data, expires, used)


@pytest.mark.parametrize(
    "args",
    [
        ("SETBIT", "h", 0, 1),
        ("GETBIT", "h", 0),
        ("BITCOUNT", "h"),
        ("BITPOS", "h", 1),
        ("BITOP", "OR", "d", "h"),
        ("BITFIELD", "h", "GET", "u8", 0),
        ("BITFIELD", "h", "SET", "u8", 0, 1),
        ("BITFIELD_RO", "h", "GET", "u8", 0),
    ],
)
def test_a_key_of_another_type_is_wrongtype(kv, args):
    other = Hash({b"f": b"v"})
    kv.db.set(b"h", other)
    assert error_text(kv(*args)) == WRONGTYPE
    assert kv.db.data[b"h"] is other and kv.log() == b""
    assert error_text(kv("LCS", "h", "x")) == "ERR The specified keys must contain string values"


# -- BITOP ----------------------------------------------------------------------------------


def test_bitop_results_and_log(kv):
    kv("SET", "a", b"\x0f\xf0\xaa")
    kv("SET", "b", b"\xff")
    kv("SET", "d", "old", "EX", 100)
    before = kv.log()
    assert kv("BITOP", "AND", "d", "a", "b") == 3
    assert kv("GET", "d") == b"\x0f\x00\x00" and kv("TTL", "d") == -1
    assert kv("BITOP", "OR", "d", "a", "b") == 3 and kv("GET", "d") == b"\xff\xf0\xaa"
    assert kv("BITOP", "XOR", "d", "a", "b", "b") == 3 and kv("GET", "d") == b"\x0f\xf0\xaa"
    assert kv("BITOP", "NOT", "d", "a") == 3 and kv("GET", "d") == b"\xf0\x0f\x55"
    assert kv("BITOP", "AND", "d", "a", "nope") == 3 and kv("GET", "d") == bytes(3)
    assert kv("BITOP", "OR", "d", "nope") == 0 and kv("EXISTS", "d") == 0
    assert kv("BITOP", "OR", "d", "nope") == 0  # no change: not logged
    assert kv.log_after_setup(before) == b"".join(
        [
            resp("BITOP", "AND", "d", "a", "b"),
            resp("BITOP", "OR", "d", "a", "b"),
            resp("BITOP", "XOR", "d", "a", "b", "b"),
            resp("BITOP", "NOT", "d", "a"),
            resp("BITOP", "AND", "d", "a", "nope"),
            resp("BITOP", "OR", "d", "nope"),
        ]
    )


# -- BITFIELD -------------------------------------------------------------------------------


def test_bitfield_overflow_modes(kv):
    assert kv("BITFIELD", "k", "SET", "u8", 0, 250, "INCRBY", "u8", 0, 10) == [0, 4]
    assert kv("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u8", 0, 300, "INCRBY", "i8", 0, -300) == [255, -128]
    assert kv("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", 0, 200, "GET", "u8", 0) == [None, 128]
    assert kv("BITFIELD", "k", "SET", "i64", 0, -1, "GET", "u63", 1) == [-(2**63), 2**63 - 1]
    assert kv("BITFIELD", "k", "INCRBY", "i64", 0, 2**63 - 1) == [2**63 - 2]


def test_bitfield_fail_on_a_new_key_still_creates_it_and_logs_it(kv):
    # Redis 7.0 creates the key (zero bytes) but logs nothing: replay would
    # lose it. Here the creation is logged.
    assert kv("BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u8", 0, 300) == [None]
    assert kv("GET", "c") == b"\x00"
    assert replayed(kv).dbs[0].data == {b"c": b"\x00"}


def test_bitfield_ro_only_reads(kv):
    kv("SET", "k", b"\x80")
    assert kv("BITFIELD_RO", "k", "GET", "i8", 0, "GET", "u1", "#0") == [-128, 1]
    assert error_text(kv("BITFIELD_RO", "k", "SET", "u8", 0, 1)) == "ERR BITFIELD_RO only supports the GET subcommand"
    assert kv.log() == SELECT0 + resp("SET", "k", b"\x80")


# -- LCS ------------------------------------------------------------------------------------


def _naive_lcs(a: bytes, b: bytes, idx: bool, minlen: int, withlen: bool):
    """Redis's t_string.c lcsCommand transcribed, full table and all."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    out, matches = [], []
    i, j, start = len(a), len(b), None
    while i and j:
        emit = False
        if a[i - 1] == b[j - 1]:
            out.append(a[i - 1])
            if start is None:
                start, end = [i - 1, j - 1], [i - 1, j - 1]
            else:
                start = [start[0] - 1, start[1] - 1]
            emit = 0 in start
            i, j = i - 1, j - 1
        else:
            if table[i - 1][j] > table[i][j - 1]:
                i -= 1
            else:
                j -= 1
            emit = start is not None
        if emit:
            length = end[0] - start[0] + 1
            if length >= minlen:
                matches.append([[start[0], end[0]], [start[1], end[1]]] + ([length] if withlen else []))
            start = None
    if idx:
        return {b"matches": matches, b"len": table[-1][-1]}
    return bytes(reversed(out))


@pytest.mark.parametrize("seed", range(40))
def test_lcs_walks_the_table_as_redis(kv, seed):
    rng = random.Random(seed)
    alphabet = b"ab" if seed % 2 else b"abcdefgh\x00\xff"
    a = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    b = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    kv("SET", "a", a)
    kv("SET", "b", b)
    assert kv("LCS", "a", "b") == _naive_lcs(a, b, False, 0, False)
    assert kv("LCS", "a", "b", "LEN") == len(_naive_lcs(a, b, False, 0, False))
    minlen = rng.randint(0, 3)
    assert kv("LCS", "a", "b", "IDX", "MINMATCHLEN", minlen, "WITHMATCHLEN") == _naive_lcs(a, b, True, minlen, True)


def test_lcs_refuses_a_table_past_proto_max_bulk_len(kv, monkeypatch):
    monkeypatch.setattr(lcs_module, "PROTO_MAX_BULK_LEN", 4 * 101 * 101)
    kv("SET", "a", "x" * 100)
    kv("SET", "b", "x" * 101)
    assert kv("LCS", "a", "a", "LEN") == 100
    message = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
    assert error_text(kv("LCS", "a", "b")) == message


def test_lcs_at_redis_s_bound_is_quick_enough(kv):
    # 8192 x 16383 cells of 4 bytes: just under 512 MB, Redis's largest table.
    rng = random.Random(7)
    kv("SET", "a", bytes(rng.choice(b"ACGT") for _ in range(8191)))
    kv("SET", "b", bytes(rng.choice(b"ACGT") for _ in range(16382)))
    assert 0 < kv("LCS", "a", "b", "LEN") <= 8191
    kv("SET", "b", bytes(16384))
    assert error_text(kv("LCS", "a", "b")).startswith("ERR Insufficient memory")


# -- side by side with redis-server ----------------------------------------------------------


@pytest.fixture
def side_by_side(start_server, redis_server_port):
    """conftest's side_by_side, with a hash at "h" on both (HSET is another
    helper's: on kvserver the value is stored directly)."""
    server = start_server()
    pair = SideBySide(server.resp_port, redis_server_port)
    pair.redis.call("HSET", "h", "f", "v")
    keyspace = server.server.keyspace
    with keyspace.write_lock:
        keyspace.dbs[0].set(b"h", Hash({b"f": b"v"}))
    yield pair
    pair.close()


def _setup(both):
    both("SET", "s", "foobar")
    both("SET", "e", "")
    both("SET", "z", b"\x00\xff\xf0\x0f\x80\x01")
    both("SET", "f", b"\xff\xff\xff")


@pytest.mark.parametrize("protocol", ["2", "3"])
def test_side_by_side_bit_reads(side_by_side, protocol):
    both = side_by_side.both
    side_by_side.each("HELLO", protocol)
    _setup(both)
    ranges = [(), (0, 0), (1, 1), (0, -1), (-2, -1), (-1, -2), (2, 100), (-100, 1), (5, 3), (100, 200), (-100, -50)]
    for key in ("s", "e", "z", "f", "nope"):
        for r in ranges:
            both("BITCOUNT", key, *r)
            for unit in ("BYTE", "BIT", "bit"):
                if r:
                    both("BITCOUNT", key, *r, unit)
            for bit in (0, 1):
                both("BITPOS", key, bit, *r)
                if r:
                    both("BITPOS", key, bit, r[0])
                    for unit in ("BYTE", "BIT"):
                        both("BITPOS", key, bit, *r, unit)
        for r in [(3, 11), (9, 9), (1, 46), (8, 15), (-9, -3), (4, 4)]:
            for bit in (0, 1):
                both("BITPOS", key, bit, *r, "BIT")
            both("BITCOUNT", key, *r, "BIT")
        for offset in (0, 1, 7, 8, 15, 47, 48, 1000, 2**32 - 1):
            both("GETBIT", key, offset)
    for bad in [
        ("BITCOUNT", "s", 0), ("BITCOUNT", "s", 0, 1, "bits"), ("BITCOUNT", "s", "a", "b", "bits"),
        ("BITCOUNT", "nope", "a", "b"), ("BITCOUNT", "nope", 0), ("BITCOUNT", "s", 0, 1, 2, 3),
        ("BITCOUNT", "h"), ("BITCOUNT", "h", 0, "a"), ("BITCOUNT",),
        ("BITPOS", "nope", 1, "a"), ("BITPOS", "nope", "x"), ("BITPOS", "s", 2), ("BITPOS", "h", 1),
        ("BITPOS", "s", 1, 0, "a", "foo"), ("BITPOS", "s", 1, "a", 0, "foo"), ("BITPOS", "s", 1, 0, 1, 2, 3),
        ("BITPOS", "s"), ("GETBIT", "s", -1), ("GETBIT", "s", 2**32), ("GETBIT", "h", "x"), ("GETBIT", "h", 0),
        ("GETBIT", "s", "#1"), ("GETBIT", "s"),
    ]:
        both(*bad)


def test_side_by_side_setbit(side_by_side):
    both = side_by_side.both
    _setup(both)
    for args in [("k", 10, 1), ("k", 10, 1), ("k", 10, 0), ("k", 100, 0), ("s", 0, 1), ("s", 1, 0), ("s", 47, 0),
                 ("s", 7, 1), ("k", 2**32, 1), ("k", -1, 1), ("k", 2**32 - 1, 2), ("k", 1, -1), ("k", 1, "x"),
                 ("k", "x", 1), ("h", 0, 1), ("h", "x", 1), ("h", 0, 2), ("e", 9, 1), ("k", "010", 1), ("k", 1)]:
        both("SETBIT", *args)
    for key in ("k", "s", "e"):
        both("GET", key)


def test_side_by_side_bitop(side_by_side):
    both = side_by_side.both
    _setup(both)
    both("SET", "d", "x", "EX", "100")
    for op in ("AND", "or", "XOR"):
        for sources in [("s",), ("s", "z"), ("z", "s", "e"), ("s", "nope"), ("nope", "s"), ("e",), ("nope",), ("e", "nope")]:
            both("BITOP", op, "d", *sources)
            both("GET", "d")
            both("TTL", "d")
    for sources in [("s",), ("e",), ("nope",), ("z",)]:
        both("BITOP", "NOT", "d", *sources)
        both("GET", "d")
    both("BITOP", "OR", "s", "s", "z")
    both("GET", "s")
    for bad in [("BITOP", "foo", "d", "s"), ("BITOP", "NOT", "d", "s", "s"), ("BITOP", "AND", "d", "s", "h"),
                ("BITOP", "NOT", "d", "h"), ("BITOP", "AND", "d")]:
        both(*bad)


@pytest.mark.parametrize("protocol", ["2", "3"])
def test_side_by_side_bitfield(side_by_side, protocol):
    both = side_by_side.both
    side_by_side.each("HELLO", protocol)
    _setup(both)
    rng = random.Random(5)
    types = ["i1", "u1", "i5", "u7", "i8", "u8", "i13", "u16", "i32", "u32", "i63", "u63", "i64"]
    for _ in range(400):
        args = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(types)
            offset = rng.choice(["0", "1", "7", "9", "33", "#0", "#1", "#3", str(rng.randint(0, 200))])
            amount = str(rng.choice([0, 1, -1, 100, -100, 2**31, -(2**63), 2**63 - 1, rng.randint(-300, 300)]))
            op = rng.choice(["GET", "SET", "INCRBY", "OVERFLOW"])
            if op == "GET":
                args += ["GET", kind, offset]
            elif op == "OVERFLOW":
                args += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL", "sat"])]
            else:
                args += [op, kind, offset, amount]
        key = rng.choice(["s", "z", "b", "nope"])
        both("BITFIELD", key, *args)
        both("BITFIELD_RO", key, *args)
        if rng.random() < 0.05:
            both("DEL", "b")
    for key in ("s", "z", "b"):
        both("GET", key)
    for bad in [
        ("BITFIELD", "s", "GET", "i8", "0", "SET", "u8", "0"), ("BITFIELD", "s", "GET", "I8", "0"),
        ("BITFIELD", "s", "GET", "u64", "0"), ("BITFIELD", "s", "GET", "i65", "0"), ("BITFIELD", "s", "GET", "i0", "0"),
        ("BITFIELD", "s", "OVERFLOW", "bogus", "GET", "i8", "0"), ("BITFIELD", "s", "SET", "i8", "0", "a"),
        ("BITFIELD", "s", "SET", "i8", "-1", "a"), ("BITFIELD", "s", "GET", "i8", "#-1"),
        ("BITFIELD", "s", "GET", "i8", str(2**32)), ("BITFIELD", "s", "GET", "i8", "#" + str(2**29)),
        ("BITFIELD", "s", "GET", "i8", "# 1"), ("BITFIELD", "s", "GET", "i8", "0", "bogus"),
        ("BITFIELD", "s", "OVERFLOW"), ("BITFIELD", "h", "GET", "i8", "0"), ("BITFIELD", "h", "SET", "i8", "0", "1"),
        ("BITFIELD_RO", "h", "GET", "i8", "0"), ("BITFIELD_RO", "s", "SET", "u8", "0", "1", "GET", "u8", "0"),
        ("BITFIELD_RO", "s", "GET", "u8"), ("BITFIELD", "s"), ("BITFIELD", "nope", "GET", "u8", "0", "GET", "u8", "0"),
        ("BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300"), ("EXISTS", "c"),
        ("BITFIELD", "s", "GET", "u8", "4294967288"), ("BITFIELD",),
    ]:
        both(*bad)


@pytest.mark.parametrize("protocol", ["2", "3"])
def test_side_by_side_lcs(side_by_side, protocol):
    both = side_by_side.both
    side_by_side.each("HELLO", protocol)
    _setup(both)
    both("SET", "a", "ohmytext")
    both("SET", "b", "mynewtext")
    rng = random.Random(3)
    for n in range(12):
        both("SET", f"r{n}", bytes(rng.choice(b"abc") for _ in range(rng.randint(0, 30))))
    pairs = [("a", "b"), ("b", "a"), ("a", "nope"), ("nope", "nope"), ("e", "s"), ("s", "s")]
    pairs += [(f"r{n}", f"r{n + 1}") for n in range(0, 12, 2)]
    for x, y in pairs:
        for options in [(), ("LEN",), ("IDX",), ("IDX", "WITHMATCHLEN"), ("IDX", "MINMATCHLEN", "2"),
                        ("withmatchlen", "idx", "minmatchlen", "-3"), ("MINMATCHLEN", "4", "IDX", "WITHMATCHLEN"),
                        ("LEN", "WITHMATCHLEN"), ("MINMATCHLEN", "1")]:
            both("LCS", x, y, *options)
    for bad in [("LCS", "h", "s"), ("LCS", "s", "h"), ("LCS", "s", "nope", "LEN", "IDX"), ("LCS", "s", "s", "foo"),
                ("LCS", "s", "s", "MINMATCHLEN"), ("LCS", "s", "s", "MINMATCHLEN", "x", "LEN", "IDX"), ("LCS", "s")]:
        both(*bad)
    both("SET", "big1", "x" * 11000)
    both("SET", "big2", "y" * 13000)
    both("LCS", "big1", "big2", "LEN")


def test_side_by_side_command_info(side_by_side):
    for name in ("setbit", "getbit", "bitcount", "bitpos", "bitop", "bitfield", "bitfield_ro", "lcs"):
        ours, theirs = side_by_side.each("COMMAND", "INFO", name)
        # name, arity, flags, first key, last key, step: the reply up to
        # its ACL categories (which kvserver does not have all of)
        head = ours.split(b"@")[0].rsplit(b"*", 1)[0]
        assert head == theirs.split(b"@")[0].rsplit(b"*", 1)[0], name
        assert b"fast" in head or name not in ("getbit", "bitfield_ro")


# -- redis-py ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_bit_methods(start_server, protocol):
    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    try:
        assert r.setbit("k", 7, 1) == 0 and r.getbit("k", 7) == 1
        assert r.setbit("k", 7, 0) == 1
        r.set("s", "foobar")
        assert r.bitcount("s") == 26 and r.bitcount("s", 1, 1) == 6 and r.bitcount("s", 5, 30, "BIT") == 17
        assert r.bitpos("s", 1) == 1 and r.bitpos("s", 0, 2, -1) == 16 and r.bitpos("s", 1, 7, 15, "BIT") == 9
        assert r.bitop("AND", "d", "s", "k") == 6 and r.get("d") == bytes(6)
        assert r.bitop("NOT", "d", "s") == 6 and r.get("d") == bytes(255 - c for c in b"foobar")
        field = r.bitfield("f").set("u8", 0, 200).incrby("u8", 0, 100).overflow("SAT").incrby("i8", "#1", -300)
        assert field.get("u4", 0).execute() == [0, 44, -128, 2]
        assert r.bitfield("f", default_overflow="FAIL").incrby("u8", 0, 250).execute() == [None]
        assert r.bitfield_ro("f", "u8", 0, items=[("i8", 8)]) == [44, -128]
        r.set("a", "ohmytext")
        r.set("b", "mynewtext")
        assert r.lcs("a", "b") == b"mytext" and r.lcs("a", "b", len=True) == 6
        reply = r.lcs("a", "b", idx=True, minmatchlen=4, withmatchlen=True)
        matches = [[[4, 7], [5, 8], 4]]
        if protocol == 2:
            assert reply == [b"matches", matches, b"len", 6]
        else:
            assert reply == {b"matches": matches, b"len": 6}
    finally:
        r.close()
