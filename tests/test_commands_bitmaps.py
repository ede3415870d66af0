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

from kvserver.aof import AppendOnlyFile
from kvserver.commands import COMMANDS, lcs as lcs_module
from kvserver.server import load_log
from kvserver.store import Keyspace
from kvserver.values import Hash
from tests.support import T0, FakeClock, Harness, error_text, resp

SELECT0 = resp("SELECT", "0")
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"


def replayed(kv: Harness, now: int | None = None) -> Keyspace:
    kv.aof.close()
    fresh = Keyspace(clock=FakeClock(kv.clock.now if now is None else now))
    load_log(fresh, kv.path)
    kv.aof = kv.dispatcher.aof = AppendOnlyFile(kv.path, fsync="no")
    return fresh


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
