"""Tests for kvserver/commands/strings.py (and longdouble.py, its arithmetic).

Three kinds:

* unit tests through ``Dispatcher.execute`` with a fake clock and a real
  ``AppendOnlyFile`` whose bytes are checked exactly (the log records effects);
* replay round trips: random string commands, then the log replayed into a
  fresh keyspace must rebuild exactly what the live one holds, also when the
  replay runs after some deadlines have passed;
* side by side with a real redis-server 7.0: the same requests, the same
  reply bytes (skipped where redis-server is missing).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvserver.commands import COMMANDS, strings
from kvserver.protocol import Status
from kvserver.store import Keyspace
from kvserver.values import Hash
from tests.support import T0, error_text, resp, replayed

# The fixture kv (a Harness) is in conftest.py.

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

OK = Status("OK")
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
OVERFLOW = "ERR increment or decrement would overflow"
NAN_OR_INF = "ERR increment would produce NaN or Infinity"
TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

SELECT0 = resp("SELECT", "0")


def live_state(keyspace: Keyspace, now: int) -> list[tuple[dict, dict]]:
    """Every database's keys and deadlines as a client would find them at ``now``."""
    state = []
    for db in keyspace.dbs:
        live = {k for k in db.data if db.expires.get(k, now) >= now}
        state.append(({k: db.data[k] for k in live}, {k: d for k, d in db.expires.items() if k in live}))
    return state


def exact_state(keyspace: Keyspace) -> list[tuple[dict, dict]]:
    return [(dict(db.data), dict(db.expires)) for db in keyspace.dbs]


# -- SET and its options ----------------------------------------------------------------


def test_set_ex_is_logged_with_an_absolute_pxat(kv):
    assert kv("SET", "k", "v", "EX", 10) == OK
    assert kv.db.expires[b"k"] == T0 + 10_000
    assert kv.log() == SELECT0 + resp("SET", "k", "v", "PXAT", str(T0 + 10_000))


@pytest.mark.parametrize(
    "option, amount, deadline",
    [
        ("PX", 1500, T0 + 1500),
        ("EXAT", 1_800_000_000, 1_800_000_000_000),
        ("PXAT", T0 + 7, T0 + 7),
        ("ex", 1, T0 + 1000),  # options in any case
    ],
)
def test_set_expiry_forms_log_pxat(kv, option, amount, deadline):
    assert kv("SET", "k", "v", option, amount) == OK
    assert kv("PTTL", "k") == deadline - T0
    assert kv.log() == SELECT0 + resp("SET", "k", "v", "PXAT", str(deadline))


def test_set_ex_expires_after_its_time(kv):
    kv("SET", "k", "v", "PX", 100)
    kv.clock.advance(100)
    assert kv("GET", "k") == b"v"  # at the deadline itself: still live
    kv.clock.advance(1)
    assert kv("GET", "k") is None


def test_set_without_ttl_clears_the_ttl_and_logs_plain_set(kv):
    kv("SET", "k", "v", "EX", 10)
    before = kv.log()
    assert kv("SET", "k", "w") == OK
    assert kv("TTL", "k") == -1
    assert kv.log_after_setup(before) == resp("SET", "k", "w")


def test_set_keepttl_keeps_the_deadline_and_logs_it_absolute(kv):
    kv("SET", "k", "v", "EX", 10)
    kv.clock.advance(3000)
    before = kv.log()
    assert kv("SET", "k", "w", "KEEPTTL") == OK
    assert kv("PTTL", "k") == 7000
    # Not "KEEPTTL": replayed later, the first SET may already be dropped.
    assert kv.log_after_setup(before) == resp("SET", "k", "w", "PXAT", str(T0 + 10_000))


def test_set_keepttl_on_a_key_without_ttl_logs_plain_set(kv):
    assert kv("SET", "k", "v", "KEEPTTL") == OK
    assert kv("TTL", "k") == -1
    assert kv.log() == SELECT0 + resp("SET", "k", "v")


def test_set_nx_and_xx(kv):
    assert kv("SET", "k", "v", "XX") is None
    assert kv("SET", "k", "v", "NX") == OK
    assert kv("SET", "k", "w", "NX") is None
    assert kv("SET", "k", "w", "XX") == OK
    assert kv("GET", "k") == b"w"
    assert kv.log() == SELECT0 + resp("SET", "k", "v") + resp("SET", "k", "w")


def test_set_nx_sees_an_expired_key_as_missing(kv):
    kv("SET", "k", "v", "PX", 10)
    kv.clock.advance(11)
    assert kv("SET", "k", "w", "NX") == OK
    assert kv("GET", "k") == b"w"


def test_set_get_returns_the_old_value(kv):
    assert kv("SET", "k", "v", "GET") is None
    assert kv("SET", "k", "w", "GET") == b"v"
    assert kv("SET", "k", "x", "GET", "NX") == b"w"  # allowed together in 7.0
    assert kv("GET", "k") == b"w"
    assert kv("SET", "n", "x", "GET", "XX") is None
    assert kv("GET", "n") is None
    assert kv.log() == SELECT0 + resp("SET", "k", "v") + resp("SET", "k", "w")


@pytest.mark.parametrize(
    "options",
    [
        ("NX", "XX"),
        ("XX", "NX"),
        ("EX", "1", "PX", "1"),
        ("PXAT", "1", "EXAT", "1"),
        ("KEEPTTL", "EX", "1"),
        ("EX", "1", "KEEPTTL"),
        ("EX",),
        ("PERSIST",),
        ("BOGUS",),
        ("NX", "EX"),
    ],
)
def test_set_option_conflicts_are_syntax_errors(kv, options):
    assert error_text(kv("SET", "k", "v", *options)) == SYNTAX
    assert kv("GET", "k") is None
    assert kv.log() == b""


def test_set_repeated_options_are_allowed_and_the_last_amount_wins(kv):
    assert kv("SET", "k", "v", "NX", "NX", "GET", "GET", "EX", 1, "EX", 5) is None
    assert kv("TTL", "k") == 5


@pytest.mark.parametrize(
    "option, amount, message",
    [
        ("EX", "0", "ERR invalid expire time in 'set' command"),
        ("PX", "-5", "ERR invalid expire time in 'set' command"),
        ("EXAT", "0", "ERR invalid expire time in 'set' command"),
        ("EX", "abc", NOT_INTEGER),
        ("EX", "1.5", NOT_INTEGER),
        ("EX", str(INT64_MAX // 1000 + 1), "ERR invalid expire time in 'set' command"),
        ("EX", str(INT64_MAX // 1000), "ERR invalid expire time in 'set' command"),  # + now overflows
        ("PX", str(INT64_MAX), "ERR invalid expire time in 'set' command"),
        ("PX", str(INT64_MAX - T0 + 1), "ERR invalid expire time in 'set' command"),
    ],
)
def test_set_invalid_expire_times(kv, option, amount, message):
    kv("SET", "k", "old")
    before = kv.log()
    assert error_text(kv("SET", "k", "v", option, amount)) == message
    assert kv("GET", "k") == b"old"
    assert kv.log() == before


@pytest.mark.parametrize(
    "option, amount, deadline",
    [
        ("PX", str(INT64_MAX - T0), INT64_MAX),
        ("PXAT", str(INT64_MAX), INT64_MAX),
        ("EXAT", str(INT64_MAX // 1000), INT64_MAX // 1000 * 1000),
    ],
)
def test_set_largest_deadlines(kv, option, amount, deadline):
    assert kv("SET", "k", "v", option, amount) == OK
    assert kv.db.expires[b"k"] == deadline


def test_set_with_a_deadline_in_the_past_removes_the_key_and_logs_del(kv):
    kv("SET", "k", "old")
    before = kv.log()
    assert kv("SET", "k", "v", "PXAT", T0 - 1) == OK
    assert kv("GET", "k") is None and b"k" not in kv.db.data
    assert kv.log_after_setup(before) == resp("DEL", "k")


def test_set_with_a_past_deadline_on_a_missing_key_logs_nothing(kv):
    assert kv("SET", "k", "v", "EXAT", 1, "GET") is None
    assert kv("GET", "k") is None
    assert kv.log() == b""


def test_set_with_a_deadline_of_now_is_live_until_then(kv):
    assert kv("SET", "k", "v", "PXAT", T0) == OK
    assert kv("GET", "k") == b"v"
    assert kv.log() == SELECT0 + resp("SET", "k", "v", "PXAT", str(T0))
    kv.clock.advance(1)
    assert kv("GET", "k") is None


def test_set_nx_with_xx_failing_logs_nothing(kv):
    kv("SET", "k", "v")
    before = kv.log()
    assert kv("SET", "k", "w", "NX", "EX", 5) is None
    assert kv("TTL", "k") == -1
    assert kv.log() == before


# -- SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX ----------------------------------------------


def test_setnx(kv):
    assert kv("SETNX", "k", "v") == 1
    assert kv("SETNX", "k", "w") == 0
    assert kv("GET", "k") == b"v"
    assert kv.log() == SELECT0 + resp("SET", "k", "v")


def test_setex_and_psetex_log_set_pxat(kv):
    assert kv("SETEX", "a", 10, "v") == OK
    assert kv("PSETEX", "b", 250, "w") == OK
    assert kv("PTTL", "a") == 10_000 and kv("PTTL", "b") == 250
    assert kv.log() == SELECT0 + resp("SET", "a", "v", "PXAT", str(T0 + 10_000)) + resp(
        "SET", "b", "w", "PXAT", str(T0 + 250)
    )


@pytest.mark.parametrize("name", ["SETEX", "PSETEX"])
@pytest.mark.parametrize("amount", ["0", "-1"])
def test_setex_invalid_expire_time_names_the_command(kv, name, amount):
    assert error_text(kv(name, "k", amount, "v")) == f"ERR invalid expire time in '{name.lower()}' command"
    assert error_text(kv(name, "k", "x", "v")) == NOT_INTEGER
    assert kv.log() == b""


def test_getset_returns_old_value_and_clears_ttl(kv):
    assert kv("GETSET", "k", "v") is None
    kv("EXPIRE", "k", 100)
    before = kv.log()
    assert kv("GETSET", "k", "w") == b"v"
    assert kv("TTL", "k") == -1
    assert kv.log_after_setup(before) == resp("SET", "k", "w")


def test_getdel(kv):
    kv("SET", "k", "v")
    before = kv.log()
    assert kv("GETDEL", "k") == b"v"
    assert kv("GETDEL", "k") is None
    assert kv("GET", "k") is None
    assert kv.log_after_setup(before) == resp("DEL", "k")


def test_getex_sets_ttl_and_logs_pexpireat(kv):
    kv("SET", "k", "v")
    before = kv.log()
    assert kv("GETEX", "k", "EX", 100) == b"v"
    assert kv("GETEX", "k", "PX", 500) == b"v"
    assert kv("PTTL", "k") == 500
    assert kv.log_after_setup(before) == resp("PEXPIREAT", "k", str(T0 + 100_000)) + resp(
        "PEXPIREAT", "k", str(T0 + 500)
    )


def test_getex_without_options_is_a_plain_read(kv):
    kv("SET", "k", "v", "EX", 5)
    before = kv.log()
    assert kv("GETEX", "k") == b"v"
    assert kv("TTL", "k") == 5
    assert kv.log() == before


@pytest.mark.parametrize("option, amount", [("EXAT", 1), ("PXAT", T0)])
def test_getex_deadline_reached_deletes_and_logs_del(kv, option, amount):
    # Unlike SET, GETEX deletes at the deadline itself (Redis's checkAlreadyExpired).
    kv("SET", "k", "v")
    before = kv.log()
    assert kv("GETEX", "k", option, amount) == b"v"
    assert kv("GET", "k") is None
    assert kv.log_after_setup(before) == resp("DEL", "k")


def test_getex_persist_logs_persist_only_when_a_ttl_was_removed(kv):
    kv("SET", "k", "v", "EX", 5)
    before = kv.log()
    assert kv("GETEX", "k", "PERSIST") == b"v"
    assert kv("TTL", "k") == -1
    assert kv("GETEX", "k", "PERSIST") == b"v"
    assert kv.log_after_setup(before) == resp("PERSIST", "k")


def test_getex_on_a_missing_key_is_nil_before_the_amount_is_checked(kv):
    assert kv("GETEX", "nope", "EX", "-1") is None
    assert kv("GETEX", "nope", "EX", "abc") is None
    assert error_text(kv("GETEX", "nope", "BOGUS")) == SYNTAX


@pytest.mark.parametrize(
    "options, message",
    [
        (("PERSIST", "EX", "1"), SYNTAX),
        (("EX", "1", "PERSIST"), SYNTAX),
        (("NX",), SYNTAX),
        (("KEEPTTL",), SYNTAX),
        (("GET",), SYNTAX),
        (("EX", "0"), "ERR invalid expire time in 'getex' command"),
        (("PX", "x"), NOT_INTEGER),
    ],
)
def test_getex_errors_leave_the_key_alone(kv, options, message):
    kv("SET", "k", "v", "EX", 5)
    before = kv.log()
    assert error_text(kv("GETEX", "k", *options)) == message
    assert kv("TTL", "k") == 5
    assert kv.log() == before


# -- MGET, MSET, MSETNX ----------------------------------------------------------------


def test_mget(kv):
    kv("MSET", "a", "1", "b", "2")
    kv.db.set(b"other", Hash({b"not": b"a string"}))
    assert kv("MGET", "a", "nope", "b", "other", "a") == [b"1", None, b"2", None, b"1"]


def test_mset_clears_ttls_and_is_logged_as_given(kv):
    kv("SET", "a", "old", "EX", 10)
    before = kv.log()
    assert kv("MSET", "a", "1", "b", "2", "a", "3") == OK
    assert kv("GET", "a") == b"3" and kv("TTL", "a") == -1
    assert kv.log_after_setup(before) == resp("MSET", "a", "1", "b", "2", "a", "3")


def test_msetnx_all_or_nothing(kv):
    assert kv("MSETNX", "a", "1", "b", "2") == 1
    assert kv("MSETNX", "c", "3", "a", "x") == 0
    assert kv("MGET", "a", "b", "c") == [b"1", b"2", None]
    assert kv.log() == SELECT0 + resp("MSET", "a", "1", "b", "2")


@pytest.mark.parametrize("name", ["MSET", "MSETNX"])
def test_mset_with_a_missing_value_is_an_arity_error(kv, name):
    assert error_text(kv(name, "a", "1", "b")) == f"ERR wrong number of arguments for '{name.lower()}' command"
    assert kv("GET", "a") is None


# -- APPEND, STRLEN, GETRANGE, SETRANGE --------------------------------------------------------


def test_append_creates_then_extends_keeping_the_ttl(kv):
    assert kv("APPEND", "k", "ab") == 2
    kv("PEXPIRE", "k", 500)
    before = kv.log()
    assert kv("APPEND", "k", "cd") == 4
    assert kv("GET", "k") == b"abcd" and kv("PTTL", "k") == 500
    assert kv("APPEND", "k", "") == 4
    # As issued, as Redis logs it: the record is the size of the request.
    assert kv.log_after_setup(before) == resp("APPEND", "k", "cd")


def test_append_empty_to_a_missing_key_creates_an_empty_string(kv):
    assert kv("APPEND", "k", "") == 0
    assert kv.db.data[b"k"] == b""
    assert kv.log() == SELECT0 + resp("SET", "k", "")


def test_append_and_setrange_past_the_size_limit(kv, monkeypatch):
    monkeypatch.setattr(strings, "PROTO_MAX_BULK_LEN", 10)
    kv("SET", "k", "12345")
    before = kv.log()
    assert kv("APPEND", "k", "67890") == 10
    assert error_text(kv("APPEND", "k", "x")) == TOO_LONG
    assert error_text(kv("SETRANGE", "k", 8, "abc")) == TOO_LONG
    assert error_text(kv("SETRANGE", "new", 10, "a")) == TOO_LONG
    assert kv("SETRANGE", "k", 7, "abc") == 10
    assert kv("GET", "k") == b"1234567abc"
    assert kv.log_after_setup(before) == resp("APPEND", "k", "67890") + resp("SETRANGE", "k", "7", "abc")


def test_strlen(kv):
    assert kv("STRLEN", "k") == 0
    kv("SET", "k", "h\x00llo")
    assert kv("STRLEN", "k") == 5


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (0, -1, b"Hello"),
        (1, 3, b"ell"),
        (-3, -1, b"llo"),
        (-100, 100, b"Hello"),
        (3, 1, b""),
        (-1, -2, b""),
        (-6, -7, b""),  # both negative and start > end: empty, not the first byte
        (-7, 0, b"H"),
        (4, 100, b"o"),
        (5, 6, b""),
        (INT64_MIN, INT64_MAX, b"Hello"),
    ],
)
def test_getrange(kv, start, end, expected):
    kv("SET", "k", "Hello")
    assert kv("GETRANGE", "k", start, end) == expected
    assert kv("SUBSTR", "k", start, end) == expected


def test_getrange_missing_and_empty(kv):
    assert kv("GETRANGE", "nope", 0, -1) == b""
    kv("SET", "e", "")
    assert kv("GETRANGE", "e", 0, -1) == b""
    assert kv("GETRANGE", "e", -1, 0) == b""
    assert error_text(kv("GETRANGE", "nope", "a", 0)) == NOT_INTEGER
    assert error_text(kv("GETRANGE", "nope", 0, str(2**63))) == NOT_INTEGER


def test_setrange_pads_with_zero_bytes_and_keeps_the_ttl(kv):
    assert kv("SETRANGE", "k", 3, "ab") == 5
    assert kv("GET", "k") == b"\x00\x00\x00ab"
    kv("EXPIRE", "k", 9)
    before = kv.log()
    assert kv("SETRANGE", "k", 1, "XYZW") == 5
    assert kv("GET", "k") == b"\x00XYZW"
    assert kv("SETRANGE", "k", 7, "!") == 8
    assert kv("GET", "k") == b"\x00XYZW\x00\x00!"
    assert kv("TTL", "k") == 9
    assert kv.log_after_setup(before) == resp("SETRANGE", "k", "1", "XYZW") + resp("SETRANGE", "k", "7", "!")
    restarted = replayed(kv)
    assert restarted.dbs[0].data == {b"k": b"\x00XYZW\x00\x00!"}
    assert restarted.dbs[0].expires == {b"k": T0 + 9000}


def test_setrange_on_a_missing_key_logs_no_padding(kv):
    assert kv("SETRANGE", "k", 0, "ab") == 2
    assert kv("SETRANGE", "far", 1_000_000, "x") == 1_000_001
    assert kv("GET", "far") == bytes(1_000_000) + b"x"
    # A SET that creates the key (replacing anything replay may still hold
    # under that name), then the SETRANGE as issued: not a megabyte of zeros.
    assert kv.log() == SELECT0 + resp("SET", "k", "ab") + resp("SET", "far", "") + resp(
        "SETRANGE", "far", "1000000", "x"
    )
    assert replayed(kv).dbs[0].data == {b"k": b"ab", b"far": bytes(1_000_000) + b"x"}


@pytest.mark.parametrize("write", [("APPEND", "k", "new"), ("SETRANGE", "k", "0", "new"), ("SETRANGE", "k", "2", "new")])
def test_append_and_setrange_on_an_expired_key_start_afresh_after_a_restart(kv, write):
    # The live server finds k expired and creates a new one; expiry is not
    # logged, so replay (at time 0) still holds the old k: the record must
    # replace it, not extend it.
    kv("SET", "k", "old value", "PX", 100)
    kv.clock.advance(200)
    kv(*write)
    expected = kv.db.data[b"k"]
    assert expected.endswith(b"new") and b"old" not in expected and b"k" not in kv.db.expires
    restarted = replayed(kv)
    assert restarted.dbs[0].data == {b"k": expected} and restarted.dbs[0].expires == {}


@pytest.mark.parametrize("write", [("APPEND", "k", "x" * 1024), ("SETRANGE", "k", "0", "y" * 1024)])
def test_a_small_write_to_a_large_value_makes_a_small_record(kv, write):
    big = bytes(range(256)) * (4 * 4096)  # 4 MiB
    kv("SET", "k", big, "PXAT", str(T0 + 60_000))
    before = len(kv.log())
    for _ in range(100):
        kv(*write)
    grown = len(kv.log()) - before
    # 100 requests of about 1 KiB: the log grows by them, not by 100 x 4 MiB.
    assert grown < 100 * (1024 + 64)
    expected = kv.db.data[b"k"]
    assert len(expected) >= len(big)
    restarted = replayed(kv)
    assert restarted.dbs[0].data == {b"k": expected}
    assert restarted.dbs[0].expires == {b"k": T0 + 60_000}


def test_setrange_with_an_empty_value_changes_nothing(kv):
    assert kv("SETRANGE", "k", 5, "") == 0
    assert kv("GET", "k") is None
    kv("SET", "k", "abc")
    assert kv("SETRANGE", "k", 100, "") == 3
    assert kv.log() == SELECT0 + resp("SET", "k", "abc")


def test_setrange_errors(kv):
    assert error_text(kv("SETRANGE", "k", -1, "x")) == "ERR offset is out of range"
    assert error_text(kv("SETRANGE", "k", "x", "x")) == NOT_INTEGER
    assert error_text(kv("SETRANGE", "k", INT64_MAX, "x")) == TOO_LONG
    assert kv.log() == b""


# -- INCR and its family -------------------------------------------------------------------


def test_incr_decr_family(kv):
    assert kv("INCR", "n") == 1
    assert kv("INCRBY", "n", 41) == 42
    assert kv("DECR", "n") == 41
    assert kv("DECRBY", "n", 50) == -9
    assert kv("INCRBY", "n", -1) == -10
    assert kv("GET", "n") == b"-10"
    assert kv("DECR", "fresh") == -1
    assert kv.log() == SELECT0 + b"".join(
        resp("SET", k, v) for k, v in [("n", "1"), ("n", "42"), ("n", "41"), ("n", "-9"), ("n", "-10"), ("fresh", "-1")]
    )


def test_incr_keeps_the_ttl_and_logs_it_absolute(kv):
    kv("SET", "n", "5", "PX", 300)
    kv.clock.advance(100)
    before = kv.log()
    assert kv("INCR", "n") == 6
    assert kv("PTTL", "n") == 200
    assert kv.log_after_setup(before) == resp("SET", "n", "6", "PXAT", str(T0 + 300))
    kv.clock.advance(201)
    assert kv("GET", "n") is None


@pytest.mark.parametrize(
    "start, command, amount",
    [
        (INT64_MAX, "INCR", None),
        (INT64_MAX - 5, "INCRBY", 6),
        (INT64_MIN, "DECR", None),
        (INT64_MIN, "INCRBY", -1),
        (INT64_MAX, "DECRBY", -1),
        (-2, "INCRBY", INT64_MIN),
        (0, "DECRBY", -INT64_MAX),  # fine: the next case shows the bound
    ],
)
def test_increment_overflow(kv, start, command, amount):
    kv("SET", "n", str(start))
    before = kv.log()
    reply = kv(command, "n") if amount is None else kv(command, "n", amount)
    if (start, command) == (0, "DECRBY"):
        assert reply == INT64_MAX
        assert error_text(kv("INCR", "n")) == OVERFLOW
        return
    assert error_text(reply) == OVERFLOW
    assert kv("GET", "n") == str(start).encode()
    assert kv.log() == before


def test_increment_reaches_the_bounds_exactly(kv):
    kv("SET", "n", str(INT64_MAX - 1))
    assert kv("INCR", "n") == INT64_MAX
    kv("SET", "m", str(INT64_MIN + 1))
    assert kv("DECR", "m") == INT64_MIN
    assert kv("INCRBY", "z", INT64_MIN) == INT64_MIN


def test_decrby_of_int64_min_is_its_own_error(kv):
    assert error_text(kv("DECRBY", "n", str(INT64_MIN))) == "ERR decrement would overflow"
    assert kv("GET", "n") is None


@pytest.mark.parametrize("value", ["abc", "1.5", " 1", "1 ", "+1", "01", "-0", "", str(2**63), "1" * 30])
def test_increment_of_a_non_integer(kv, value):
    kv("SET", "n", value)
    assert error_text(kv("INCR", "n")) == NOT_INTEGER
    assert error_text(kv("DECRBY", "n", 1)) == NOT_INTEGER
    assert kv("GET", "n") == value.encode()


@pytest.mark.parametrize("amount", ["1.0", "x", str(2**63), ""])
def test_increment_amount_not_an_integer(kv, amount):
    assert error_text(kv("INCRBY", "n", amount)) == NOT_INTEGER
    assert error_text(kv("DECRBY", "n", amount)) == NOT_INTEGER
    assert kv("GET", "n") is None


@pytest.mark.parametrize(
    "start, increment, expected",
    [
        (None, "0.1", b"0.1"),
        ("10.5", "0.1", b"10.6"),  # long double: a double would say 10.59999999999999964
        ("1.5", "1.5", b"3"),
        ("0.1", "0.2", b"0.3"),
        ("5.0e3", "0", b"5000"),
        (None, "1e20", b"100000000000000000000"),
        ("3", "-0.0", b"3"),
        (None, "-0.0", b"0"),
        ("1", "-1", b"0"),
        (None, "-1e-20", b"0"),  # "-0.00000000000000000" is written "0"
        (None, "0x1p3", b"8"),
        (None, ".5", b"0.5"),
        (None, "1.", b"1"),
        (None, "-2.5E-1", b"-0.25"),
        (None, "0.000003814697265625", b"0.00000381469726562"),  # a tie: to even
        (None, "0.000011444091796875", b"0.00001144409179688"),
        (None, "1e-4950", b"0"),  # subnormal: accepted
    ],
)
def test_incrbyfloat_formatting(kv, start, increment, expected):
    if start is not None:
        kv("SET", "f", start)
    before = kv.log()
    assert kv("INCRBYFLOAT", "f", increment) == expected
    assert kv("GET", "f") == expected
    assert kv.log_after_setup(before) == (b"" if before else SELECT0) + resp("SET", "f", expected)


def test_incrbyfloat_of_a_huge_value_is_written_out_in_full(kv):
    reply = kv("INCRBYFLOAT", "f", "1e400")
    assert reply.startswith(b"10000000000000000000281880683947586514586") and len(reply) == 401


@pytest.mark.parametrize(
    "increment",
    ["abc", "  1", "1 ", "", "nan", "-nan", "1e5000", "1e-5000", "1e", "0x", "1,5", "1\x00", "e5", "."],
)
def test_incrbyfloat_invalid_increment(kv, increment):
    kv("SET", "f", "1")
    assert error_text(kv("INCRBYFLOAT", "f", increment)) == NOT_FLOAT
    assert kv("GET", "f") == b"1"


@pytest.mark.parametrize("start, increment", [("1", "inf"), ("inf", "1"), ("-infinity", "0"), ("1.18e4932", "1.18e4932")])
def test_incrbyfloat_nan_or_infinity(kv, start, increment):
    kv("SET", "f", start)
    before = kv.log()
    assert error_text(kv("INCRBYFLOAT", "f", increment)) == NAN_OR_INF
    assert kv.log() == before


def test_incrbyfloat_stored_value_not_a_float(kv):
    kv("SET", "f", "one")
    assert error_text(kv("INCRBYFLOAT", "f", "1")) == NOT_FLOAT


def test_incrbyfloat_keeps_the_ttl_and_logs_it_absolute(kv):
    kv("SET", "f", "1.5", "EX", 10)
    before = kv.log()
    assert kv("INCRBYFLOAT", "f", "1") == b"2.5"
    assert kv("TTL", "f") == 10
    assert kv.log_after_setup(before) == resp("SET", "f", "2.5", "PXAT", str(T0 + 10_000))


# -- other types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("GET", "h"),
        ("GETDEL", "h"),
        ("GETEX", "h", "PERSIST"),
        ("GETSET", "h", "v"),
        ("SET", "h", "v", "GET"),
        ("APPEND", "h", "v"),
        ("STRLEN", "h"),
        ("GETRANGE", "h", 0, -1),
        ("SETRANGE", "h", 0, "v"),
        ("INCR", "h"),
        ("DECRBY", "h", 2),
        ("INCRBYFLOAT", "h", 1),
    ],
)
def test_a_key_of_another_type_is_wrongtype(kv, args):
    other = Hash({b"a hash": b"one day"})
    kv.db.set(b"h", other)
    assert error_text(kv(*args)) == WRONGTYPE
    assert kv.db.data[b"h"] is other
    assert kv.log() == b""


def test_set_replaces_a_key_of_another_type(kv):
    kv.db.set(b"h", Hash({b"a": b"1"}))
    assert kv("SET", "h", "v") == OK
    assert kv("SETNX", "h", "w") == 0
    assert kv("GET", "h") == b"v"


# -- replay ------------------------------------------------------------------------------


def _random_command(rng: random.Random, now: int) -> list[str]:
    key = rng.choice("abcdef")
    number = str(rng.choice([0, 1, -1, 7, 250, 10**6]))
    value = rng.choice(["", "0", "12", "-3", "1.5", "x\x00y", "hello"])
    choices = [
        ["SET", key, value],
        ["SET", key, value, "PX", str(rng.randint(1, 400))],
        ["SET", key, value, "EX", "1", "NX"],
        ["SET", key, value, "XX", "KEEPTTL"],
        ["SET", key, value, "KEEPTTL", "GET"],
        ["SET", key, value, "PXAT", str(now + rng.randint(-300, 300))],
        ["SET", key, value, "EXAT", str(now // 1000 + rng.randint(-1, 2))],
        ["SETNX", key, value],
        ["SETEX", key, str(rng.randint(1, 2)), value],
        ["PSETEX", key, str(rng.randint(1, 500)), value],
        ["GETSET", key, value],
        ["GETDEL", key],
        ["GETEX", key, "PX", str(rng.randint(1, 500))],
        ["GETEX", key, "PXAT", str(now + rng.randint(-100, 300))],
        ["MSET", key, value, rng.choice("abcdef"), value],
        ["MSETNX", key, value, rng.choice("abcdef"), value],
        ["APPEND", key, value],
        ["SETRANGE", key, str(rng.choice([0, 1, 3, 8, 20])), value],
        ["INCR", key],
        ["DECRBY", key, number],
        ["INCRBYFLOAT", key, rng.choice(["0.1", "-2.5", "1e3", "3"])],
        ["PEXPIRE", key, str(rng.randint(1, 300))],
        ["DEL", key],
        ["SELECT", str(rng.randint(0, 2))],
    ]
    if b"PERSIST" in COMMANDS:  # registered by keyspace.py
        choices.append(["GETEX", key, "PERSIST"])
    return rng.choice(choices)


@pytest.mark.parametrize("seed", range(6))
def test_replay_rebuilds_exactly_what_the_live_keyspace_holds(kv, seed):
    rng = random.Random(seed)
    for _ in range(400):
        kv(*_random_command(rng, kv.clock.now))
        kv.clock.advance(rng.choice([0, 0, 1, 5, 40]))
    now = kv.clock.now
    expected = live_state(kv.keyspace, now)
    assert any(data for data, _ in expected) and any(expires for _, expires in expected)
    # Replayed at the same time: the same keys, values and deadlines, and
    # nothing already expired left lying around.
    assert exact_state(replayed(kv)) == expected
    # Replayed later: exactly what the live keyspace holds by then (no key
    # whose deadline passed in between comes back).
    for later in (now + 50, now + 250, now + 10_000):
        assert exact_state(replayed(kv, later)) == live_state(kv.keyspace, later)


@pytest.mark.parametrize(
    "write",
    [
        ("INCR", "k"),
        ("INCRBYFLOAT", "k", "0.5"),
        ("APPEND", "k", "0"),
        ("SETRANGE", "k", "0", "9"),
        ("SET", "k", "2", "KEEPTTL"),
    ],
)
def test_a_write_keeping_a_ttl_does_not_outlive_it_after_a_restart(kv, write):
    kv("SET", "k", "1", "PX", 100)
    kv.clock.advance(50)
    kv(*write)
    restarted = replayed(kv, now=kv.clock.now + 1000)
    assert restarted.dbs[0].lookup(b"k", kv.clock.now + 1000) is None
    assert restarted.dbs[0].data == {}


@pytest.mark.skipif(b"PERSIST" not in COMMANDS, reason="PERSIST is not registered yet (keyspace.py)")
def test_getex_persist_replays(kv):
    kv("SET", "k", "v", "EX", 5)
    kv("GETEX", "k", "PERSIST")
    restarted = replayed(kv, now=kv.clock.now + 10_000)
    assert restarted.dbs[0].data == {b"k": b"v"} and restarted.dbs[0].expires == {}


# -- side by side with redis-server ------------------------------------------------------------


def test_side_by_side_set_options(side_by_side):
    both = side_by_side.both
    for options in [
        (),
        ("NX",),
        ("XX",),
        ("NX", "XX"),
        ("XX", "NX"),
        ("GET",),
        ("GET", "NX"),
        ("NX", "GET"),
        ("XX", "GET"),
        ("EX", "100"),
        ("PX", "100000"),
        ("EX", "1", "PX", "1"),
        ("KEEPTTL", "EX", "1"),
        ("EX", "1", "KEEPTTL"),
        ("KEEPTTL",),
        ("EX",),
        ("EX", "0"),
        ("EX", "-1"),
        ("PX", "0"),
        ("EXAT", "0"),
        ("PXAT", "-3"),
        ("EX", "abc"),
        ("EX", "1.0"),
        ("EX", str(INT64_MAX // 1000)),
        ("EX", str(INT64_MAX // 1000 + 1)),
        ("PX", str(INT64_MAX)),
        ("EX", str(2**63)),
        ("EX", "1", "EX", "100"),
        ("NX", "NX"),
        ("GET", "GET"),
        ("KEEPTTL", "KEEPTTL"),
        ("PERSIST",),
        ("FOO",),
        ("nx", "get", "ex", "100"),
        ("EXAT", "4102444800"),
        ("PXAT", "4102444800000"),
        ("PXAT", str(INT64_MAX)),
    ]:
        both("SET", "k", "v", *options)
        both("TTL", "k")
        both("SET", "k", "w", "GET", *options)
        both("GET", "k")
        both("TTL", "k")
        both("DEL", "k")
        both("SET", "k", "x", *options)
        both("GET", "k")


def test_side_by_side_set_keepttl_and_past_deadlines(side_by_side):
    both = side_by_side.both
    both("SET", "k", "v", "EX", "100")
    both("SET", "k", "w", "KEEPTTL")
    assert both("TTL", "k") == b":100\r\n"
    both("SET", "k", "x", "XX", "KEEPTTL", "GET")
    both("TTL", "k")
    both("SET", "k", "y")
    both("TTL", "k")
    for options in [("PXAT", "1"), ("EXAT", "1"), ("PXAT", "1", "GET"), ("EXAT", "1", "NX")]:
        both("SET", "k", "v", *options)
        both("GET", "k")
        both("TTL", "k")
        both("SET", "k", "old")
        both("SET", "k", "v", *options)
        both("GET", "k")
        both("STRLEN", "k")


def test_side_by_side_get_getset_getdel_setnx(side_by_side):
    both = side_by_side.both
    both("GET", "k")
    both("GETSET", "k", "a")
    both("GETSET", "k", "b")
    both("SETNX", "k", "c")
    both("SETNX", "n", "c")
    both("GETDEL", "k")
    both("GETDEL", "k")
    both("GET", "k")
    both("SET", "bin", b"\x00\xff\r\n")
    both("GET", "bin")
    for args in [("GET",), ("GET", "a", "b"), ("GETSET", "k"), ("GETDEL",), ("SETNX", "k"), ("SET", "k")]:
        both(*args)


def test_side_by_side_setex_psetex(side_by_side):
    both = side_by_side.both
    for name in ("SETEX", "PSETEX"):
        for amount in ["100000", "0", "-1", "abc", "1.5", str(INT64_MAX), str(INT64_MAX // 1000 + 1), ""]:
            both(name, "k", amount, "v")
            both("GET", "k")
            both("TTL", "k")
        both(name, "k", "100")
    both("SETEX", "k", "100", "v", "extra")


def test_side_by_side_getex(side_by_side):
    both = side_by_side.both
    both("GETEX", "missing", "EX", "-1")
    both("GETEX", "missing", "EX", "x")
    both("GETEX", "missing", "BOGUS")
    both("SET", "k", "v")
    for options in [
        (),
        ("EX", "100"),
        ("PX", "200000"),
        ("EXAT", "4102444800"),
        ("PXAT", "4102444800000"),
        ("PERSIST",),
        ("PERSIST", "PERSIST"),
        ("EX", "100", "PERSIST"),
        ("PERSIST", "EX", "100"),
        ("EX", "100", "PX", "100"),
        ("EX", "100", "EX", "200"),
        ("EX",),
        ("EX", "0"),
        ("PX", "-1"),
        ("EX", "abc"),
        ("EX", str(INT64_MAX // 1000 + 1)),
        ("PX", str(INT64_MAX)),
        ("NX",),
        ("XX",),
        ("GET",),
        ("KEEPTTL",),
    ]:
        both("GETEX", "k", *options)
        both("TTL", "k")
    both("GETEX", "k", "PXAT", "1")
    both("GET", "k")
    both("SET", "k", "v")
    both("GETEX", "k", "EXAT", "1")
    both("TTL", "k")
    both("GETEX")


def test_side_by_side_mget_mset_msetnx(side_by_side):
    both = side_by_side.both
    both("MSET", "a", "1", "b", "2")
    both("MGET", "a", "b", "c", "a")
    both("MSET", "a", "1", "b")
    both("MSET", "a")
    both("MSETNX", "c", "3", "a", "9")
    both("MGET", "a", "b", "c")
    both("MSETNX", "c", "3", "d", "4", "c", "5")
    both("MGET", "c", "d")
    both("MSETNX", "x", "1", "y")
    both("MGET")
    both("SET", "t", "v", "EX", "100")
    both("MSET", "t", "w")
    both("TTL", "t")


def test_side_by_side_append_strlen(side_by_side):
    both = side_by_side.both
    both("STRLEN", "k")
    both("APPEND", "k", "")
    both("STRLEN", "k")
    both("GET", "k")
    both("APPEND", "k", "hello")
    both("APPEND", "k", b" \x00world")
    both("GET", "k")
    both("STRLEN", "k")
    both("SET", "n", "12")
    both("APPEND", "n", "34")
    both("INCR", "n")
    both("SET", "t", "a", "EX", "100")
    both("APPEND", "t", "b")
    both("TTL", "t")
    both("APPEND", "k")
    both("STRLEN")


def test_side_by_side_getrange(side_by_side):
    both = side_by_side.both
    both("SET", "k", "This is a string")
    both("SET", "e", "")
    both("SET", "n", "12345")
    indices = ["0", "1", "3", "-1", "-2", "-3", "-16", "-17", "-100", "15", "16", "100", str(INT64_MAX), str(INT64_MIN)]
    for key in ("k", "e", "n", "missing"):
        for start in indices:
            for end in indices:
                both("GETRANGE", key, start, end)
    both("SUBSTR", "k", "-3", "-1")
    both("GETRANGE", "k", "a", "1")
    both("GETRANGE", "k", "1", "a")
    both("GETRANGE", "missing", "a", "1")
    both("GETRANGE", "k", str(2**63), "1")
    both("GETRANGE", "k", "0")


def test_side_by_side_setrange(side_by_side):
    both = side_by_side.both
    both("SETRANGE", "k", "5", "")
    both("GET", "k")
    both("SETRANGE", "k", "3", "abc")
    both("GET", "k")
    both("SETRANGE", "k", "0", "X")
    both("SETRANGE", "k", "8", "Z")
    both("GET", "k")
    both("SETRANGE", "k", "2", "0123456789")
    both("GET", "k")
    both("SETRANGE", "k", "100", "")
    both("SETRANGE", "k", "-1", "x")
    both("SETRANGE", "k", "-1", "")
    both("SETRANGE", "missing", "-1", "")
    both("SETRANGE", "k", "x", "x")
    both("SETRANGE", "k", str(2**63), "x")
    both("SETRANGE", "k", "536870911", "xx")
    both("SETRANGE", "new", "536870912", "x")
    both("SETRANGE", "new", str(INT64_MAX), "x")
    both("SETRANGE", "new", "536870912", "")
    both("GET", "new")
    both("SET", "t", "abc", "EX", "100")
    both("SETRANGE", "t", "1", "Z")
    both("TTL", "t")
    both("SETRANGE", "k", "1")


def test_side_by_side_incr_family(side_by_side):
    both = side_by_side.both
    both("INCR", "n")
    both("INCRBY", "n", "10")
    both("DECR", "n")
    both("DECRBY", "n", "-5")
    both("INCRBY", "n", "-100")
    both("GET", "n")
    for start, args in [
        (str(INT64_MAX), ("INCR",)),
        (str(INT64_MAX - 1), ("INCR",)),
        (str(INT64_MAX), ("DECRBY", "-1")),
        (str(INT64_MIN), ("DECR",)),
        (str(INT64_MIN + 1), ("DECR",)),
        (str(INT64_MIN), ("INCRBY", "-1")),
        (str(INT64_MIN), ("INCRBY", str(INT64_MAX))),
        ("-1", ("INCRBY", str(INT64_MIN))),
        ("-2", ("INCRBY", str(INT64_MIN))),
        ("0", ("DECRBY", str(INT64_MIN))),
        ("0", ("DECRBY", str(INT64_MAX))),
        ("1", ("DECRBY", str(INT64_MAX))),
        ("0", ("INCRBY", str(2**63))),
        ("0", ("INCRBY", "-9223372036854775809")),
        ("0", ("INCRBY", "1.0")),
        ("0", ("INCRBY", "")),
        ("0", ("INCRBY", " 1")),
        ("0", ("INCRBY", "+1")),
        ("abc", ("INCR",)),
        ("1.5", ("INCR",)),
        (" 1", ("INCR",)),
        ("1 ", ("DECR",)),
        ("007", ("INCR",)),
        ("-0", ("INCR",)),
        ("", ("INCR",)),
        ("+5", ("INCR",)),
        (str(2**63), ("INCR",)),
        ("99999999999999999999999", ("DECR",)),
    ]:
        both("SET", "n", start)
        both(args[0], "n", *args[1:])
        both("GET", "n")
    both("SET", "t", "5", "EX", "100")
    both("INCR", "t")
    both("TTL", "t")
    both("INCR")
    both("INCRBY", "n")
    both("DECRBY", "n", "1", "2")


FLOAT_CASES = [
    (None, "0.1"),
    ("10.5", "0.1"),
    ("1.5", "1.5"),
    ("0.1", "0.2"),
    ("5.0e3", "0"),
    (None, "5.0e3"),
    (None, "1e20"),
    (None, "-1e20"),
    (None, "1e400"),
    (None, "-1e400"),
    (None, "1e4900"),
    (None, "1.18973e4932"),
    (None, "1.19e4932"),
    ("1.18e4932", "1.18e4932"),
    (None, "1e5000"),
    (None, "1e-5000"),
    (None, "1e-4950"),
    (None, "3.7e-4951"),
    (None, "1e-4951"),
    (None, "-0.0"),
    ("-0.0", "-0.0"),
    ("3", "-3"),
    (None, "-1e-20"),
    (None, "1e-17"),
    (None, "5e-18"),
    (None, "1.5e-17"),
    (None, "-1.5e-17"),
    (None, "0.000003814697265625"),
    (None, "0.000011444091796875"),
    (None, "  1"),
    (None, "1 "),
    (None, ""),
    (None, "1e"),
    (None, "1e+"),
    (None, "e1"),
    (None, "."),
    (None, ".5"),
    (None, "5."),
    (None, "+.5e+1"),
    (None, "0x1p3"),
    (None, "0X1.8P1"),
    (None, "0x.8"),
    (None, "0x"),
    (None, "0x1p"),
    (None, "0x1p-16445"),
    (None, "inf"),
    (None, "-INF"),
    (None, "Infinity"),
    (None, "infinit"),
    (None, "nan"),
    (None, "NaN"),
    (None, "nan(1)"),
    (None, "1,5"),
    (None, "1_0"),
    (None, "1\x00"),
    (None, "12345678901234567890123456789"),
    (None, "0." + "0" * 5100 + "1"),
    (None, "1" + "0" * 5117 + "e-5118"),
    (None, "1" + "0" * 5118 + "e-5118"),
    (None, "1" * 4500),
    ("inf", "1"),
    ("abc", "1"),
    ("1 ", "1"),
    ("99999999999999999999", "1"),
    ("0.1", "0.1"),
    ("3.0000000000000000001", "0"),
    ("1e-300", "1"),
    ("-5.5", "2.25"),
    ("123456789.123456789", "0.000000001"),
    ("9223372036854775807", "1"),
]


def test_side_by_side_incrbyfloat(side_by_side):
    both = side_by_side.both
    for start, increment in FLOAT_CASES:
        both("DEL", "f")
        if start is not None:
            both("SET", "f", start)
        both("INCRBYFLOAT", "f", increment)
        both("GET", "f")
        # The stored result reads back as the same number.
        both("INCRBYFLOAT", "f", "0")
    both("SET", "t", "1", "EX", "100")
    both("INCRBYFLOAT", "t", "1")
    both("TTL", "t")
    both("INCRBYFLOAT", "t")


_DECIMALS = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-", "+"]),
    st.integers(0, 10**20).map(str),
    st.one_of(st.just(""), st.integers(0, 10**25).map(lambda n: f".{n}")),
    st.one_of(st.just(""), st.integers(-40, 40).map(lambda n: f"e{n}")),
)
_FLOATS = st.one_of(
    _DECIMALS,
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.25e}"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=_FLOATS, increment=_FLOATS)
def test_side_by_side_incrbyfloat_random(side_by_side, start, increment):
    both = side_by_side.both
    both("SET", "f", start)
    both("INCRBYFLOAT", "f", increment)
    both("GET", "f")
