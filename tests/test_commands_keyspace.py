"""Tests for kvserver/commands/keyspace.py: the commands on keys whatever
their value, and on whole databases.

Four kinds:

* unit tests through ``Dispatcher.execute`` with a fake clock and a real
  ``AppendOnlyFile`` whose bytes are checked exactly (the log records
  effects), including writes refused because the log cannot be written,
  which must leave every database as it was;
* side by side with a real redis-server 7.0: the same requests, the same
  reply bytes (KEYS and SCAN compared as sets: their order is free);
* SCAN on a live server while another client writes;
* replay round trips: a random mix of these commands over several
  databases, then the log replayed into a fresh keyspace must rebuild
  exactly what the live one holds.
"""

from __future__ import annotations

import errno
import os
import random
import threading

import pytest

from kvserver.aof import replay
from kvserver.commands import COMMANDS
from kvserver.commands.keyspace import parse_cursor
from kvserver.dispatch import Dispatcher
from kvserver.errors import CommandError
from kvserver.protocol import Status
from kvserver.server import load_log
from kvserver.session import Session
from kvserver.store import SCAN_BUCKETS, Keyspace
from tests.resp_client import RawRespClient
from tests.support import (
    replayed,
    T0,
    FakeClock,
    FlakyAof,
    Harness,
    bulk_strings,
    dump,
    error_text,
    live_dump,
    resp,
)

OK = Status("OK")
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NO_SUCH_KEY = "ERR no such key"
SAME_OBJECT = "ERR source and destination objects are the same"
OUT_OF_RANGE = "ERR DB index is out of range"
INT_RANGE = "ERR value is out of range, value must between -2147483648 and 2147483647"
INVALID_CURSOR = "ERR invalid cursor"
DISK_FULL = "MISCONF Errors writing to the AOF file: " + os.strerror(errno.ENOSPC)

SELECT0 = resp("SELECT", "0")


@pytest.fixture
def kv(failing_kv):
    """``failing_kv`` (conftest.py): any test here may set ``kv.aof.failing``."""
    return failing_kv


# -- DEL, UNLINK, EXISTS, TYPE -------------------------------------------------------------


@pytest.mark.parametrize("name", ["DEL", "UNLINK"])
def test_del_and_unlink_remove_many_keys_and_log_del_per_key(kv, name):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    assert kv(name, "a", "missing", "b", "a") == 2
    assert kv("EXISTS", "a", "b") == 0
    assert kv.log() == SELECT0 + resp("SET", "a", "1") + resp("SET", "b", "2") + resp(
        "DEL", "a"
    ) + resp("DEL", "b")


@pytest.mark.parametrize("name", ["DEL", "UNLINK"])
def test_del_and_unlink_of_an_expired_key_count_nothing_and_log_only_the_expiry(kv, name):
    kv("SET", "a", "1")
    kv("PEXPIRE", "a", "10")
    before = kv.log()
    kv.clock.advance(11)
    assert kv(name, "a") == 0
    assert kv.log() == before + resp("DEL", "a")  # the expiry's DEL, as Redis propagates it


def test_exists_counts_each_mention(kv):
    kv("SET", "a", "1")
    assert kv("EXISTS", "a", "a", "nope", "a") == 3
    assert kv("EXISTS", "nope") == 0


def test_exists_does_not_count_an_expired_key(kv):
    kv("SET", "a", "1")
    kv("PEXPIRE", "a", "10")
    kv.clock.advance(10)
    assert kv("EXISTS", "a") == 1  # at the deadline: still live
    kv.clock.advance(1)
    assert kv("EXISTS", "a") == 0


def test_type(kv):
    kv("SET", "a", "1")
    assert kv("TYPE", "a") == Status("string") and type(kv("TYPE", "a")) is Status
    assert kv("TYPE", "nope") == Status("none")
    kv("PEXPIRE", "a", "1")
    kv.clock.advance(2)
    assert kv("TYPE", "a") == Status("none")


# -- EXPIRETIME, PEXPIRETIME, PERSIST -----------------------------------------------------


def test_expiretime_and_pexpiretime(kv):
    assert kv("EXPIRETIME", "k") == -2
    assert kv("PEXPIRETIME", "k") == -2
    kv("SET", "k", "v")
    assert kv("EXPIRETIME", "k") == -1
    assert kv("PEXPIRETIME", "k") == -1
    kv("PEXPIREAT", "k", T0 + 1499)
    assert kv("PEXPIRETIME", "k") == T0 + 1499
    assert kv("EXPIRETIME", "k") == T0 // 1000 + 1  # rounded, as Redis
    kv("PEXPIREAT", "k", T0 + 1500)
    assert kv("EXPIRETIME", "k") == T0 // 1000 + 2


def test_expiretime_of_an_expired_key_is_minus_two(kv):
    kv("SET", "k", "v")
    kv("PEXPIRE", "k", "5")
    kv.clock.advance(6)
    assert kv("EXPIRETIME", "k") == -2
    assert kv("PEXPIRETIME", "k") == -2


def test_persist_removes_the_ttl_and_logs_persist(kv):
    kv("SET", "k", "v")
    kv("EXPIRE", "k", "10")
    assert kv("PERSIST", "k") == 1
    assert kv("TTL", "k") == -1
    kv.clock.advance(10**9)
    assert kv("GET", "k") == b"v"
    assert kv.log().endswith(resp("PEXPIREAT", "k", str(T0 + 10_000)) + resp("PERSIST", "k"))


def test_persist_without_ttl_or_key_is_zero_and_logs_nothing(kv):
    kv("SET", "k", "v")
    before = kv.log()
    assert kv("PERSIST", "k") == 0
    assert kv("PERSIST", "nope") == 0
    kv("PEXPIRE", "k", "5")
    before = kv.log()
    kv.clock.advance(6)
    assert kv("PERSIST", "k") == 0  # expired: missing
    assert kv.log() == before + resp("DEL", "k")  # only the expiry


# -- KEYS, SCAN, RANDOMKEY, DBSIZE ---------------------------------------------------------


def test_keys_matches_the_pattern(kv):
    for key in ["user:1", "user:2", "admin:1", ""]:
        kv("SET", key, "x")
    assert sorted(kv("KEYS", "*")) == [b"", b"admin:1", b"user:1", b"user:2"]
    assert sorted(kv("KEYS", "user:*")) == [b"user:1", b"user:2"]
    assert kv("KEYS", "*:[2-9]") == [b"user:2"]
    assert kv("KEYS", "nothing*") == []


def test_keys_leaves_out_expired_keys(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    kv("PEXPIRE", "b", "5")
    kv.clock.advance(6)
    assert kv("KEYS", "*") == [b"a"]
    assert kv("DBSIZE") == 2  # as Redis: not reclaimed yet, still counted
    assert kv("GET", "b") is None
    assert kv("DBSIZE") == 1


def scan_all(kv: Harness, *options, count: int = 10) -> tuple[list[bytes], int]:
    """Every key a full SCAN returns, and how many calls it took."""
    cursor, found, calls = b"0", [], 0
    while True:
        next_cursor, keys = kv("SCAN", cursor, "COUNT", count, *options)
        found.extend(keys)
        calls += 1
        if next_cursor == b"0":
            return found, calls
        cursor = next_cursor


def test_scan_returns_every_key_once_in_batches(kv):
    keys = {b"key:%d" % i for i in range(1000)}
    for key in keys:
        kv("SET", key, "v")
    found, calls = scan_all(kv, count=50)
    assert sorted(found) == sorted(keys)  # no repeats in a database left alone
    assert 5 < calls <= 1000 // 50 + 1


def test_scan_cursor_is_a_bucket_number(kv):
    kv("SET", "a", "1")
    cursor, keys = kv("SCAN", "0", "COUNT", "1")
    assert keys == [b"a"]
    assert 0 < int(cursor) < SCAN_BUCKETS or cursor == b"0"
    assert kv("SCAN", str(SCAN_BUCKETS)) == [b"0", []]  # past the last bucket: done


def test_scan_match_and_type_filter_after_taking_a_batch(kv):
    for i in range(100):
        kv("SET", "user:%d" % i, "x")
        kv("SET", "item:%d" % i, "x")
    found, _ = scan_all(kv, "MATCH", "user:*")
    assert sorted(found) == sorted(b"user:%d" % i for i in range(100))
    found, _ = scan_all(kv, "TYPE", "STRING")
    assert len(found) == 200
    found, _ = scan_all(kv, "TYPE", "list")
    assert found == []
    found, _ = scan_all(kv, "MATCH", "*:7?", "TYPE", "string", "MATCH", "item:7?")  # last wins
    assert sorted(found) == sorted(b"item:7%d" % i for i in range(10))


def test_scan_leaves_out_and_reclaims_expired_keys(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    kv("PEXPIRE", "b", "5")
    kv.clock.advance(6)
    assert scan_all(kv)[0] == [b"a"]
    assert kv("DBSIZE") == 1


@pytest.mark.parametrize(
    ("cursor", "value"),
    [
        (b"0", 0),
        (b"", 0),
        (b"+0", 0),
        (b"-0", 0),
        (b"0007", 7),
        (b"7\x00junk", 7),  # strtoul stops at the NUL
        (b"\x00", 0),
        (b"18446744073709551615", 2**64 - 1),
        (b"-1", 2**64 - 1),
        (b"-18446744073709551615", 1),
        (b"0" * 5000 + b"12", 12),
    ],
)
def test_scan_cursors_that_redis_accepts(kv, cursor, value):
    assert parse_cursor(cursor) == value
    assert isinstance(kv("SCAN", cursor), list)


@pytest.mark.parametrize(
    "cursor",
    [b" 0", b"\t1", b"0 ", b"1x", b"x", b"+", b"-", b"+-1", b"1.0", b"0x10",
     b"18446744073709551616", b"-18446744073709551616", b"9" * 5000],
)  # fmt: skip
def test_scan_invalid_cursor(kv, cursor):
    assert error_text(kv("SCAN", cursor, "COUNT", "0")) == INVALID_CURSOR  # checked first


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["COUNT", "0"], SYNTAX),
        (["COUNT", "-1"], SYNTAX),
        (["COUNT", "x"], NOT_INTEGER),
        (["COUNT"], SYNTAX),
        (["MATCH"], SYNTAX),
        (["TYPE"], SYNTAX),
        (["FOO", "bar"], SYNTAX),
        (["MATCH", "*", "COUNT", "x", "FOO"], NOT_INTEGER),  # in order
    ],
)
def test_scan_option_errors(kv, options, message):
    assert error_text(kv("SCAN", "0", *options)) == message


def test_randomkey(kv):
    assert kv("RANDOMKEY") is None
    kv("SET", "only", "1")
    assert kv("RANDOMKEY") == b"only"
    for i in range(50):
        kv("SET", "k%d" % i, "v")
    seen = {kv("RANDOMKEY") for _ in range(300)}
    assert len(seen) > 20


def test_randomkey_in_a_large_database_picks_from_all_of_it(kv):
    for i in range(3000):
        kv("SET", "k%d" % i, "v")
    seen = {kv("RANDOMKEY") for _ in range(500)}
    assert len(seen) > 300
    assert seen <= {b"k%d" % i for i in range(3000)}


@pytest.mark.parametrize("size", [10, 3000])
def test_randomkey_never_returns_an_expired_key(kv, size):
    for i in range(size):
        kv("SET", "k%d" % i, "v")
        kv("PEXPIRE", "k%d" % i, "5")
    kv("SET", "live", "v")
    kv.clock.advance(6)
    assert kv("RANDOMKEY") == b"live"
    kv("DEL", "live")
    assert kv("RANDOMKEY") is None
    assert kv("DBSIZE") == 0  # the expired keys it drew were reclaimed


def test_dbsize_is_per_database(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "1")
    assert kv("DBSIZE") == 2
    kv("SELECT", "3")
    assert kv("DBSIZE") == 0


# -- RENAME, RENAMENX -------------------------------------------------------------------


def test_rename_moves_value_and_ttl_and_logs_rename(kv):
    kv("SET", "a", "1")
    kv("PEXPIRE", "a", "5000")
    kv("SET", "b", "old")
    assert kv("RENAME", "a", "b") == OK
    assert kv("GET", "a") is None
    assert kv("GET", "b") == b"1"
    assert kv("PTTL", "b") == 5000
    assert kv.log().endswith(resp("SET", "b", "old") + resp("RENAME", "a", "b"))


def test_rename_drops_the_target_ttl(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    kv("EXPIRE", "b", "100")
    kv("RENAME", "a", "b")
    assert kv("TTL", "b") == -1


def test_rename_missing_key(kv):
    before = kv.log()
    assert error_text(kv("RENAME", "nope", "b")) == NO_SUCH_KEY
    assert error_text(kv("RENAME", "nope", "nope")) == NO_SUCH_KEY
    assert error_text(kv("RENAMENX", "nope", "b")) == NO_SUCH_KEY
    assert kv.log() == before


def test_rename_of_an_expired_key_is_no_such_key(kv):
    kv("SET", "a", "1")
    kv("PEXPIRE", "a", "5")
    kv.clock.advance(6)
    assert error_text(kv("RENAME", "a", "b")) == NO_SUCH_KEY


def test_rename_onto_itself_changes_and_logs_nothing(kv):
    kv("SET", "a", "1")
    kv("EXPIRE", "a", "10")
    before = kv.log()
    assert kv("RENAME", "a", "a") == OK
    assert kv("RENAMENX", "a", "a") == 0
    assert kv("GET", "a") == b"1" and kv("TTL", "a") == 10
    assert kv.log() == before


def test_renamenx(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    before = kv.log()
    assert kv("RENAMENX", "a", "b") == 0
    assert kv.log() == before
    assert kv("RENAMENX", "a", "c") == 1
    assert kv("GET", "c") == b"1"
    assert kv.log() == before + resp("RENAMENX", "a", "c")


def test_renamenx_onto_an_expired_key(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    kv("PEXPIRE", "b", "5")
    kv.clock.advance(6)
    assert kv("RENAMENX", "a", "b") == 1
    assert kv("GET", "b") == b"1" and kv("TTL", "b") == -1


# -- COPY, MOVE ---------------------------------------------------------------------------


def test_copy_copies_value_and_ttl_and_logs_as_issued(kv):
    kv("SET", "a", "1")
    kv("PEXPIREAT", "a", T0 + 5000)
    before = kv.log()
    assert kv("COPY", "a", "b") == 1
    assert kv("GET", "b") == b"1" and kv("PEXPIRETIME", "b") == T0 + 5000
    assert kv("GET", "a") == b"1"
    assert kv.log() == before + resp("COPY", "a", "b")


def test_copy_onto_an_existing_key_needs_replace(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    kv("EXPIRE", "b", "100")
    before = kv.log()
    assert kv("COPY", "a", "b") == 0
    assert kv.log() == before
    assert kv("COPY", "a", "b", "replace") == 1
    assert kv("GET", "b") == b"1" and kv("TTL", "b") == -1
    assert kv.log() == before + resp("COPY", "a", "b", "replace")


def test_copy_to_another_database(kv):
    kv("SET", "a", "1")
    assert kv("COPY", "a", "a", "DB", "3") == 1
    assert kv("COPY", "a", "a", "DB", "3") == 0
    assert kv("COPY", "a", "x", "REPLACE", "DB", "15", "DB", "3") == 1  # the last DB wins
    assert kv.keyspace.dbs[3].data == {b"a": b"1", b"x": b"1"}
    assert kv.keyspace.dbs[15].data == {}
    assert kv.log().endswith(resp("COPY", "a", "x", "REPLACE", "DB", "15", "DB", "3"))


def test_copy_of_a_missing_or_expired_key_is_zero(kv):
    assert kv("COPY", "nope", "b") == 0
    kv("SET", "a", "1")
    kv("PEXPIRE", "a", "5")
    kv.clock.advance(6)
    assert kv("COPY", "a", "b") == 0
    assert kv("EXISTS", "b") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a", "a"], SAME_OBJECT),
        (["a", "a", "DB", "0"], SAME_OBJECT),
        (["a", "b", "DB", "16"], OUT_OF_RANGE),
        (["a", "b", "DB", "-1"], OUT_OF_RANGE),
        (["a", "b", "DB", "2147483647"], OUT_OF_RANGE),
        (["a", "b", "DB", "2147483648"], INT_RANGE),
        (["a", "b", "DB", "-2147483649"], INT_RANGE),
        (["a", "b", "DB", "9223372036854775808"], NOT_INTEGER),
        (["a", "b", "DB", "x"], NOT_INTEGER),
        (["a", "b", "DB", "01"], NOT_INTEGER),
        (["a", "b", "DB"], SYNTAX),
        (["a", "b", "FOO"], SYNTAX),
        (["a", "b", "DB", "16", "FOO"], OUT_OF_RANGE),  # in order
        (["nope", "b", "DB", "99"], OUT_OF_RANGE),  # before the key
    ],
)
def test_copy_errors(kv, args, message):
    kv("SET", "a", "1")
    assert error_text(kv("COPY", *args)) == message


def test_move_moves_value_and_ttl_and_logs_as_issued(kv):
    kv("SET", "a", "1")
    kv("PEXPIREAT", "a", T0 + 5000)
    before = kv.log()
    assert kv("MOVE", "a", "2") == 1
    assert kv("EXISTS", "a") == 0
    assert kv.keyspace.dbs[2].data == {b"a": b"1"} and kv.keyspace.dbs[2].expires == {b"a": T0 + 5000}
    assert kv.log() == before + resp("MOVE", "a", "2")


def test_move_when_the_target_has_the_key_or_the_key_is_missing(kv):
    kv("SET", "a", "here")
    kv("SELECT", "2")
    kv("SET", "a", "there")
    kv("SELECT", "0")
    before = kv.log()
    assert kv("MOVE", "a", "2") == 0
    assert kv("MOVE", "nope", "2") == 0
    assert kv("GET", "a") == b"here" and kv.keyspace.dbs[2].data == {b"a": b"there"}
    assert kv.log() == before


def test_move_onto_a_key_expired_in_the_target(kv):
    kv("SELECT", "2")
    kv("SET", "a", "old")
    kv("PEXPIRE", "a", "5")
    kv("SELECT", "0")
    kv("SET", "a", "new")
    kv.clock.advance(6)
    assert kv("MOVE", "a", "2") == 1
    assert kv.keyspace.dbs[2].data == {b"a": b"new"} and kv.keyspace.dbs[2].expires == {}


@pytest.mark.parametrize(
    ("db", "message"),
    [("0", SAME_OBJECT), ("16", OUT_OF_RANGE), ("-1", OUT_OF_RANGE), ("x", NOT_INTEGER),
     ("4294967296", INT_RANGE)],
)  # fmt: skip
def test_move_errors(kv, db, message):
    kv("SET", "a", "1")
    assert error_text(kv("MOVE", "a", db)) == message


# -- FLUSHDB, FLUSHALL, SWAPDB ---------------------------------------------------------------


def test_flushdb_empties_the_selected_database_only(kv):
    kv("SET", "a", "1")
    kv("SELECT", "1")
    kv("SET", "b", "2")
    before = kv.log()
    assert kv("FLUSHDB") == OK
    assert kv("DBSIZE") == 0
    assert kv.keyspace.dbs[0].data == {b"a": b"1"}
    assert kv.log() == before + resp("FLUSHDB")
    assert kv("FLUSHDB", "async") == OK  # already empty: nothing logged
    assert kv.log() == before + resp("FLUSHDB")


def test_flushall_empties_every_database_and_logs_once(kv):
    kv("SET", "a", "1")
    kv("EXPIRE", "a", "100")
    kv("SELECT", "7")
    kv("SET", "b", "2")
    before = kv.log()
    assert kv("FLUSHALL", "SYNC") == OK
    assert dump(kv.keyspace) == {}
    assert kv.log() == before + resp("FLUSHALL")
    assert kv("FLUSHALL") == OK
    assert kv.log() == before + resp("FLUSHALL")


@pytest.mark.parametrize("name", ["FLUSHDB", "FLUSHALL"])
@pytest.mark.parametrize("args", [["foo"], ["ASYNC", "SYNC"], ["sync", "x"]])
def test_flush_syntax_errors(kv, name, args):
    kv("SET", "a", "1")
    assert error_text(kv(name, *args)) == SYNTAX
    assert kv("DBSIZE") == 1


def test_swapdb_exchanges_contents_for_every_client(kv):
    other = Session(kv.keyspace)
    kv("SET", "a", "in0")
    kv("EXPIRE", "a", "100")
    kv("SELECT", "1", session=other)
    kv("SET", "b", "in1", session=other)
    before = kv.log()
    assert kv("SWAPDB", "0", "1") == OK
    assert kv("GET", "b") == b"in1" and kv("GET", "a") is None
    assert kv("GET", "a", session=other) == b"in0"
    assert kv("TTL", "a", session=other) == 100
    assert kv.log() == before + SELECT0 + resp("SWAPDB", "0", "1")


def test_swapdb_of_one_database_or_of_two_empty_ones_logs_nothing(kv):
    kv("SET", "a", "1")
    before = kv.log()
    assert kv("SWAPDB", "0", "0") == OK
    assert kv("SWAPDB", "3", "4") == OK
    assert kv.log() == before
    assert kv("GET", "a") == b"1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "0"], "ERR invalid first DB index"),
        (["0", "x"], "ERR invalid second DB index"),
        (["16", "x"], "ERR invalid second DB index"),  # both parsed, then checked
        (["4294967296", "0"], "ERR invalid first DB index"),
        (["0", "16"], OUT_OF_RANGE),
        (["-1", "0"], OUT_OF_RANGE),
        (["0", "2147483647"], OUT_OF_RANGE),
    ],
)
def test_swapdb_errors(kv, args, message):
    assert error_text(kv("SWAPDB", *args)) == message


# -- a refused log append undoes everything, in every database ------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["RENAME", "a", "b"],
        ["RENAMENX", "a", "c"],
        ["COPY", "a", "b", "REPLACE"],
        ["COPY", "a", "b", "DB", "1", "REPLACE"],
        ["MOVE", "a", "1"],
        ["SWAPDB", "0", "1"],
        ["FLUSHDB"],
        ["FLUSHALL"],
        ["PERSIST", "a"],
        ["UNLINK", "a", "b"],
    ],
)
def test_a_refused_write_leaves_every_database_as_it_was(kv, args):
    kv("SET", "a", "1")
    kv("EXPIRE", "a", "100")
    kv("SET", "b", "2")
    kv("SELECT", "1")
    kv("SET", "b", "other")
    kv("EXPIRE", "b", "50")
    kv("SELECT", "0")
    before, log_before = dump(kv.keyspace), kv.log()
    kv.aof.failing = True
    assert error_text(kv(*args)) == DISK_FULL
    assert dump(kv.keyspace) == before
    assert kv.log() == log_before
    kv.aof.failing = False
    assert not isinstance(kv(*args), CommandError)  # and it works once the log does
    assert dump(replayed(kv)) == live_dump(kv.keyspace, kv.clock())


# -- declared key positions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (["DEL", "a", "b", "c"], ["a", "b", "c"]),
        (["UNLINK", "a", "b"], ["a", "b"]),
        (["EXISTS", "a", "b"], ["a", "b"]),
        (["TYPE", "a"], ["a"]),
        (["PERSIST", "a"], ["a"]),
        (["EXPIRETIME", "a"], ["a"]),
        (["PEXPIRETIME", "a"], ["a"]),
        (["RENAME", "a", "b"], ["a", "b"]),
        (["RENAMENX", "a", "b"], ["a", "b"]),
        (["COPY", "a", "b", "DB", "1", "REPLACE"], ["a", "b"]),
        (["MOVE", "a", "1"], ["a"]),
        (["KEYS", "*"], []),
        (["SCAN", "0", "MATCH", "a"], []),
        (["RANDOMKEY"], []),
        (["DBSIZE"], []),
        (["FLUSHDB"], []),
        (["FLUSHALL"], []),
        (["SWAPDB", "0", "1"], []),
    ],
)
def test_declared_key_positions(args, keys):
    cmd = COMMANDS[args[0].encode()]
    assert cmd.keys([a.encode() for a in args[1:]]) == [k.encode() for k in keys]


# Redis 7.0.15's COMMAND INFO: arity, flags, first/last key and step.
REDIS_COMMAND_INFO = {
    "del": (-2, {"write"}, 1, -1, 1),
    "unlink": (-2, {"write", "fast"}, 1, -1, 1),
    "exists": (-2, {"readonly", "fast"}, 1, -1, 1),
    "type": (2, {"readonly", "fast"}, 1, 1, 1),
    "expire": (-3, {"write", "fast"}, 1, 1, 1),
    "pexpire": (-3, {"write", "fast"}, 1, 1, 1),
    "expireat": (-3, {"write", "fast"}, 1, 1, 1),
    "pexpireat": (-3, {"write", "fast"}, 1, 1, 1),
    "ttl": (2, {"readonly", "fast"}, 1, 1, 1),
    "pttl": (2, {"readonly", "fast"}, 1, 1, 1),
    "expiretime": (2, {"readonly", "fast"}, 1, 1, 1),
    "pexpiretime": (2, {"readonly", "fast"}, 1, 1, 1),
    "persist": (2, {"write", "fast"}, 1, 1, 1),
    "keys": (2, {"readonly"}, 0, 0, 0),
    "scan": (-2, {"readonly"}, 0, 0, 0),
    "randomkey": (1, {"readonly"}, 0, 0, 0),
    "dbsize": (1, {"readonly", "fast"}, 0, 0, 0),
    "rename": (3, {"write"}, 1, 2, 1),
    "renamenx": (3, {"write", "fast"}, 1, 2, 1),
    "copy": (-3, {"write", "denyoom"}, 1, 2, 1),
    "move": (3, {"write", "fast"}, 1, 1, 1),
    "flushdb": (-1, {"write"}, 0, 0, 0),
    "flushall": (-1, {"write"}, 0, 0, 0),
    "swapdb": (3, {"write", "fast"}, 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(REDIS_COMMAND_INFO))
def test_command_info_as_redis(kv, name):
    [info] = kv("COMMAND", "INFO", name)
    arity, flags, first, last, step = REDIS_COMMAND_INFO[name]
    assert info[0] == name.encode()
    assert (info[1], set(info[2]), info[3], info[4], info[5]) == (arity, flags, first, last, step)
    assert COMMANDS[name.upper().encode()].write == ("write" in flags)


# -- replay ---------------------------------------------------------------------------------


def test_replay_keeps_a_key_whose_ttl_was_extended_after_its_first_deadline(kv):
    # Written live: a deadline at T0+50, then (at T0+20) a new one far off.
    # Replayed at T0+1000, after the first deadline: the key must be there.
    kv("SET", "k", "v")
    kv("PEXPIRE", "k", "50")
    kv("SET", "p", "v")
    kv("PEXPIRE", "p", "50")
    kv.clock.advance(20)
    kv("PEXPIRE", "k", "100000")
    kv("PERSIST", "p")
    keyspace = replayed(kv, now=T0 + 1000)
    assert dump(keyspace) == {0: ({b"k": b"v", b"p": b"v"}, {b"k": T0 + 100_020})}


def test_replay_of_renamenx_copy_and_move_onto_keys_that_had_expired_live(kv):
    # Live, each target had expired (unreclaimed), so each command succeeded;
    # replay must not find the stale target in the way.
    for key in ["t1", "t2", "t3"]:
        kv("SET", key, "stale")
        kv("PEXPIRE", key, "5")
    kv("SELECT", "1")
    kv("SET", "t3", "stale")
    kv("PEXPIRE", "t3", "5")
    kv("SELECT", "0")
    kv("SET", "src", "fresh")
    kv.clock.advance(10)
    assert kv("RENAMENX", "src", "t1") == 1
    assert kv("COPY", "t1", "t2") == 1
    assert kv("RENAME", "t1", "t3") == OK
    assert kv("MOVE", "t3", "1") == 1
    assert dump(replayed(kv)) == live_dump(kv.keyspace, kv.clock())
    assert live_dump(kv.keyspace, kv.clock()) == {
        0: ({b"t2": b"fresh"}, {}),
        1: ({b"t3": b"fresh"}, {}),
    }


def test_replay_on_a_real_clock_tolerates_a_source_that_expired_since(kv):
    # A replay that runs on the wall clock (a loading session on a Dispatcher
    # of its own) finds the source of a logged RENAME or COPY expired: the
    # copy it made is expired as well, so the target goes and replay goes on.
    kv("SET", "a", "1")
    kv("PEXPIRE", "a", "50")
    kv("SET", "b", "old")
    kv("COPY", "a", "c")
    kv("RENAME", "a", "b")
    keyspace = Keyspace(clock=FakeClock(T0 + 100))
    dispatcher = Dispatcher(keyspace, None)
    session = Session(keyspace, loading=True)
    replay(kv.path, lambda args: dispatcher.execute(session, args))
    assert dump(keyspace) == {}


# -- side by side with redis-server ------------------------------------------------------


def scan_reply(reply: bytes) -> tuple[bytes, list[bytes]]:
    """SCAN's reply: the cursor and the keys."""
    assert reply.startswith(b"*2\r\n$"), reply
    rest = reply[4:]
    length, rest = rest.split(b"\r\n", 1)
    size = int(length[1:])
    return rest[:size], bulk_strings(rest[size + 2 :])


def test_side_by_side_del_unlink_exists_type(side_by_side):
    both = side_by_side.both
    both("SET", "a", "1")
    both("SET", "b", "2")
    both("SET", "", "empty")
    both("EXISTS", "a", "a", "b", "nope", "")
    both("TYPE", "a")
    both("TYPE", "nope")
    both("DEL", "a", "nope", "a")
    both("UNLINK", "b", "", "b")
    both("EXISTS", "a", "b", "")
    for name in ["DEL", "UNLINK", "EXISTS", "TYPE"]:
        both(name)
    both("TYPE", "a", "b")


def test_side_by_side_expiretime_and_persist(side_by_side):
    both = side_by_side.both
    both("SET", "k", "v")
    for name in ["EXPIRETIME", "PEXPIRETIME"]:
        both(name, "k")
        both(name, "nope")
        both(name)
        both(name, "k", "x")
    for deadline in ["99999999999499", "99999999999500", "4102444800000"]:
        both("PEXPIREAT", "k", deadline)
        both("EXPIRETIME", "k")
        both("PEXPIRETIME", "k")
    both("PERSIST", "k")
    both("PERSIST", "k")
    both("PERSIST", "nope")
    both("EXPIRETIME", "k")
    both("PERSIST")
    both("PERSIST", "k", "k")


def test_side_by_side_keys_scan_dbsize_randomkey(side_by_side):
    both, each = side_by_side.both, side_by_side.each
    both("RANDOMKEY")
    both("DBSIZE")
    both("KEYS", "*")
    both("SCAN", "0")
    keys = [b"user:%d" % i for i in range(60)] + [b"item:%d" % i for i in range(40)] + [b""]
    for key in keys:
        both("SET", key, "v")
    both("DBSIZE")
    for pattern in ["*", "user:*", "*:1?", "item:[0-2]*", "*[^0-9]", "", "nothing"]:
        ours, theirs = each("KEYS", pattern)
        assert sorted(bulk_strings(ours)) == sorted(bulk_strings(theirs)), pattern
    for options in [[], ["MATCH", "user:*"], ["COUNT", "7", "MATCH", "*5"], ["TYPE", "string"],
                    ["TYPE", "STRING", "MATCH", "item:*"], ["TYPE", "hash"], ["MATCH", "**"]]:  # fmt: skip
        found = []
        for client in (side_by_side.kv, side_by_side.redis):
            cursor, seen = b"0", []
            while True:
                cursor, batch = scan_reply(client.call("SCAN", cursor, *options))
                seen.extend(batch)
                if cursor == b"0":
                    break
            found.append(sorted(set(seen)))
        assert found[0] == found[1], options
    both("SET", "only", "v")
    both("SELECT", "5")
    both("SET", "only", "v")
    both("RANDOMKEY")
    both("DBSIZE")
    both("RANDOMKEY", "x")
    both("DBSIZE", "x")
    both("KEYS")


def test_side_by_side_scan_arguments(side_by_side):
    # On an empty database every accepted cursor gives the same reply, so
    # the replies show exactly which cursors and options each accepts.
    both = side_by_side.both
    cursors = ["0", "", "+0", "-0", "007", "7\x00x", "\x00", "18446744073709551615", "-1",
               "-18446744073709551615", "18446744073709551616", "-18446744073709551616",
               " 0", "\t0", "0 ", "1x", "x", "+", "-", "+-1", "1.5", "0x1", "1e3"]  # fmt: skip
    for cursor in cursors:
        both("SCAN", cursor)
    for options in [["COUNT", "0"], ["COUNT", "-5"], ["COUNT", "x"], ["COUNT", "1"],
                    ["COUNT", "9223372036854775807"], ["COUNT", "9223372036854775808"],
                    ["count", "3", "match", "a*", "type", "String"], ["MATCH"], ["COUNT"],
                    ["TYPE"], ["FOO"], ["FOO", "bar"], ["MATCH", "*", "COUNT", "0"],
                    ["COUNT", "0", "FOO"], ["TYPE", "none"], ["TYPE", "nonsense"]]:  # fmt: skip
        both("SCAN", "0", *options)
    both("SCAN", "x", "COUNT", "0")
    both("SCAN")


def test_side_by_side_rename(side_by_side):
    both = side_by_side.both
    both("SET", "a", "1")
    both("PEXPIREAT", "a", "4102444800000")
    both("SET", "b", "2")
    both("RENAME", "a", "b")
    both("GET", "b")
    both("PEXPIRETIME", "b")
    both("EXISTS", "a")
    both("RENAME", "a", "c")
    both("RENAME", "b", "b")
    both("RENAME", "nope", "nope")
    both("RENAMENX", "b", "b")
    both("SET", "c", "3")
    both("RENAMENX", "b", "c")
    both("RENAMENX", "b", "d")
    both("RENAMENX", "nope", "d")
    both("GET", "d")
    both("RENAME", "a")
    both("RENAMENX", "a", "b", "c")


def test_side_by_side_copy(side_by_side):
    both = side_by_side.both
    both("SET", "a", "1")
    both("PEXPIREAT", "a", "4102444800000")
    both("COPY", "a", "b")
    both("COPY", "a", "b")
    both("PEXPIRETIME", "b")
    both("SET", "c", "3")
    both("COPY", "c", "b", "REPLACE")
    both("PEXPIRETIME", "b")
    both("COPY", "a", "a", "DB", "1")
    both("COPY", "a", "a", "db", "1")
    both("COPY", "a", "z", "replace", "replace", "db", "2", "db", "3")
    both("COPY", "nope", "x")
    for args in [["a", "a"], ["a", "a", "DB", "0"], ["a", "b", "DB", "16"], ["a", "b", "DB", "-1"],
                 ["a", "b", "DB", "x"], ["a", "b", "DB", "2147483648"], ["a", "b", "DB"],
                 ["a", "b", "FOO"], ["a", "b", "DB", "16", "FOO"], ["nope", "b", "DB", "99"],
                 ["a", "b", "DB", "9223372036854775808"], ["a", "b", "DB", "1", "DB", "x"],
                 ["a"], []]:  # fmt: skip
        both("COPY", *args)
    for db in ["1", "2", "3"]:
        both("SELECT", db)
        both("KEYS", "*")
        both("PEXPIRETIME", "a")


def test_side_by_side_move(side_by_side):
    both = side_by_side.both
    both("SET", "a", "1")
    both("PEXPIREAT", "a", "4102444800000")
    both("SET", "b", "2")
    for args in [["a", "0"], ["a", "16"], ["a", "-1"], ["a", "x"], ["a", "4294967296"],
                 ["a", "9223372036854775808"], ["nope", "1"], ["a", "1"], ["a", "1"]]:  # fmt: skip
        both("MOVE", *args)
    both("SELECT", "1")
    both("SET", "b", "there")
    both("SELECT", "0")
    both("MOVE", "b", "1")
    both("GET", "b")
    both("SELECT", "1")
    both("GET", "a")
    both("PEXPIRETIME", "a")
    both("MOVE", "a")


def test_side_by_side_flush_and_swapdb(side_by_side):
    both = side_by_side.both
    both("SET", "a", "0")
    both("SELECT", "1")
    both("SET", "b", "1")
    both("SWAPDB", "0", "1")
    both("GET", "a")
    both("GET", "b")
    for args in [["0", "0"], ["x", "0"], ["0", "x"], ["16", "x"], ["x", "y"], ["0", "16"],
                 ["-1", "0"], ["0", "-1"], ["4294967296", "0"], ["0", "4294967296"],
                 ["0", "2147483647"], ["0"], ["0", "1", "2"]]:  # fmt: skip
        both("SWAPDB", *args)
    for name in ["FLUSHDB", "FLUSHALL"]:
        for args in [["foo"], ["ASYNC", "SYNC"], ["sync", "x"]]:
            both(name, *args)
    both("DBSIZE")
    both("FLUSHDB", "async")
    both("DBSIZE")
    both("SELECT", "0")
    both("DBSIZE")
    both("FLUSHDB", "SYNC")
    both("SET", "c", "2")
    both("FLUSHALL", "ASYNC")
    both("FLUSHALL", "sync")
    both("FLUSHALL")
    both("DBSIZE")


# -- SCAN while another client writes --------------------------------------------------------


def test_scan_returns_every_key_present_throughout_while_others_write(start_server):
    server = start_server()
    scanner = RawRespClient(server.resp_port)
    stable = {b"stable:%d" % i for i in range(2000)}
    scanner.call("MSET", *[part for key in sorted(stable) for part in (key, b"v")])
    stop = threading.Event()
    writes = [0]

    def churn() -> None:
        # Other keys come and go meanwhile, refiling SCAN's buckets.
        writer = RawRespClient(server.resp_port)
        rng = random.Random(7)
        try:
            while not stop.is_set():
                key = b"churn:%d" % rng.randrange(5000)
                if rng.random() < 0.6:
                    writer.call("SET", key, "v")
                else:
                    writer.call("DEL", key)
                writes[0] += 1
        finally:
            writer.close()

    thread = threading.Thread(target=churn)
    thread.start()
    overlapped = 0
    try:
        for _ in range(50):  # until three scans ran while writes landed
            writes_before, cursor, seen = writes[0], b"0", set()
            while True:
                cursor, batch = scan_reply(scanner.call("SCAN", cursor, "COUNT", "37"))
                seen.update(batch)
                if cursor == b"0":
                    break
            assert stable <= seen
            assert all(key.startswith((b"stable:", b"churn:")) for key in seen)
            overlapped += writes[0] - writes_before > 20
            if overlapped >= 3:
                break
    finally:
        stop.set()
        thread.join()
        scanner.close()
    assert overlapped >= 3, "the writer hardly ran during the scans: nothing was shown"


# -- replay round trips ---------------------------------------------------------------------

KEYS = [b"a", b"b", b"c", b"d", b"e"]


def random_command(rng: random.Random, now: int) -> list[bytes]:
    key, other = rng.choice(KEYS), rng.choice(KEYS)
    db = b"%d" % rng.choice([0, 1, 2, 3])
    kind = rng.random()
    if kind < 0.15:
        return [b"SET", key, b"%d" % rng.randrange(1000)]
    if kind < 0.19:
        return [rng.choice([b"DEL", b"UNLINK"])] + rng.sample(KEYS, rng.randrange(1, 3))
    if kind < 0.44:
        # TTLs set, then often moved again before they pass: replay must
        # honour the last one even when it runs after an earlier one.
        options = rng.choice([[], [], [], [b"NX"], [b"XX"], [b"GT"], [b"LT"]])
        return [b"PEXPIRE", key, b"%d" % rng.randrange(-100, 4000)] + options
    if kind < 0.49:
        return [b"PEXPIREAT", key, b"%d" % (now + rng.randrange(-100, 4000))]
    if kind < 0.55:
        return [b"PERSIST", key]
    if kind < 0.60:
        return [b"RENAME", key, other]
    if kind < 0.64:
        return [b"RENAMENX", key, other]
    if kind < 0.71:
        options = rng.choice([[], [b"REPLACE"], [b"DB", db], [b"DB", db, b"REPLACE"]])
        return [b"COPY", key, other] + options
    if kind < 0.76:
        return [b"MOVE", key, db]
    if kind < 0.79:
        return [b"SWAPDB", db, b"%d" % rng.choice([0, 1, 2, 3])]
    if kind < 0.795:
        return [b"FLUSHDB"]
    if kind < 0.796:
        return [b"FLUSHALL"]
    if kind < 0.86:
        return [b"SELECT", db]
    return rng.choice(
        [[b"GET", key], [b"EXISTS", key, other], [b"KEYS", b"*"], [b"SCAN", b"0", b"COUNT", b"3"],
         [b"RANDOMKEY"], [b"TYPE", key], [b"DBSIZE"], [b"PTTL", key]]
    )  # fmt: skip


EXPECTED_ERRORS = (
    "MISCONF",
    NO_SUCH_KEY,
    SAME_OBJECT,
    "ERR NX and XX",
    "ERR GT and LT",
)


def run_workload(path, seed: int, steps: int, failure_rate: float = 0.0, check_every: int = 0):
    """Random commands from three clients; every ``check_every`` steps, the
    log so far must replay to what clients see at that moment."""
    rng = random.Random(seed)
    clock = FakeClock()
    keyspace = Keyspace(clock=clock)
    aof = FlakyAof(str(path), rng, failure_rate)
    dispatcher = Dispatcher(keyspace, aof)
    sessions = [Session(keyspace, client_id=i) for i in range(3)]
    checked = 0
    try:
        for step in range(1, steps + 1):
            clock.advance(rng.choice([0, 1, 10, 100, 300, 1000]))
            args = random_command(rng, clock())
            reply = dispatcher.execute(rng.choice(sessions), args)
            if isinstance(reply, CommandError):
                assert reply.message.startswith(EXPECTED_ERRORS), (args, reply.message)
            if rng.random() < 0.03:
                keyspace.active_expire_cycle(budget_s=0)
            if check_every and step % check_every == 0:
                replayed_now = Keyspace(clock=FakeClock(clock()))
                load_log(replayed_now, str(path))
                assert dump(replayed_now) == live_dump(keyspace, clock()), f"after step {step}"
                checked += bool(dump(replayed_now))
    finally:
        aof.close()
    if failure_rate:
        assert aof.failures, "no append failed: the test proved nothing"
    if check_every:
        assert checked >= steps // check_every // 2, "the keyspace was mostly empty"
    return keyspace, clock


@pytest.mark.parametrize("seed", range(8))
def test_round_trip_gives_the_same_keyspace(tmp_path, seed):
    path = tmp_path / "a.aof"
    original, clock = run_workload(path, seed, steps=600, check_every=20)
    keyspace = Keyspace(clock=FakeClock(clock()))
    load_log(keyspace, str(path))
    expected = live_dump(original, clock())
    assert dump(keyspace) == expected
    assert len(expected) >= 2, "the workload left too little to compare"


@pytest.mark.parametrize("later_ms", [1, 3000, 10**9])
def test_round_trip_replayed_later(tmp_path, later_ms):
    path = tmp_path / "a.aof"
    original, clock = run_workload(path, 99, steps=600)
    keyspace = Keyspace(clock=FakeClock(clock() + later_ms))
    load_log(keyspace, str(path))
    assert dump(keyspace) == live_dump(original, clock() + later_ms)


@pytest.mark.parametrize("seed", range(4))
def test_round_trip_with_refused_appends(tmp_path, seed):
    # A refused write is undone in every database it touched, so the log
    # still rebuilds exactly what clients were told.
    path = tmp_path / "a.aof"
    original, clock = run_workload(path, 1000 + seed, steps=600, failure_rate=0.2, check_every=50)
    keyspace = Keyspace(clock=FakeClock(clock()))
    load_log(keyspace, str(path))
    assert dump(keyspace) == live_dump(original, clock())


def test_select_past_32_bits_is_out_of_range_as_redis(side_by_side):
    side_by_side.both("SELECT", "4294967296")
    side_by_side.both("SELECT", "16")
    side_by_side.both("SELECT", "-1")
