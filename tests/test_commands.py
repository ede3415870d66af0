"""Tests for the commands, run the way clients run them: through
``Dispatcher.execute`` with a ``Session``, a fake clock, and a real
``AppendOnlyFile`` whose bytes are checked exactly (the log records effects).

Covers kvserver/commands/*.py and kvserver/dispatch.py, including what
happens when the log cannot be written.
"""

from __future__ import annotations

import errno
import os

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kvserver import aof as aof_module
from kvserver.aof import AppendOnlyFile
from kvserver.commands import COMMANDS, Command
from kvserver.dispatch import Dispatcher
from kvserver.protocol import Status
from kvserver.session import Session
from kvserver.store import Keyspace
from tests.support import T0, DiskFull, FakeClock, Harness, error_text, resp

# The fixtures kv and failing_kv (a Harness each) are in conftest.py.

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

NOT_INTEGER = "ERR value is not an integer or out of range"
DISK_FULL = "MISCONF Errors writing to the AOF file: " + os.strerror(errno.ENOSPC)

SELECT0 = resp("SELECT", "0")


# -- SET / GET -----------------------------------------------------------------------


def test_set_then_get(kv):
    reply = kv("SET", "a", "b")
    assert reply == Status("OK") and type(reply) is Status
    assert kv("GET", "a") == b"b"


def test_get_missing_is_nil(kv):
    assert kv("GET", "nope") is None


def test_set_and_get_binary_values(kv):
    value = bytes(range(256)) + b"\r\n*1\r\n"
    assert kv("SET", b"k\x00\r\n", value) == Status("OK")
    assert kv("GET", b"k\x00\r\n") == value


def test_set_logs_select_then_set(kv):
    kv("SET", "a", "b")
    assert kv.log() == b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n"


def test_select_is_logged_once_per_change_of_database(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    assert kv.log() == SELECT0 + resp("SET", "a", "1") + resp("SET", "b", "2")


def test_set_overwrites_and_clears_ttl(kv):
    kv("SET", "k", "v1")
    kv("EXPIRE", "k", "100")
    assert kv("SET", "k", "v2") == Status("OK")
    assert kv("TTL", "k") == -1
    kv.clock.advance(10**9)
    assert kv("GET", "k") == b"v2"


def test_set_with_a_bad_option_is_a_syntax_error_and_not_applied(kv):
    # SET's options themselves: tests/test_commands_strings.py
    assert error_text(kv("SET", "k", "v", "EX", "10", "BOGUS")) == "ERR syntax error"
    assert kv("GET", "k") is None
    assert kv.log() == b""


def test_get_of_expired_key_is_nil(kv):
    kv("SET", "k", "v")
    kv("PEXPIRE", "k", "100")
    kv.clock.advance(99)
    assert kv("GET", "k") == b"v"
    kv.clock.advance(1)
    # At the deadline itself the key is still live (Redis's keyIsExpired).
    assert kv("GET", "k") == b"v"
    assert kv("PTTL", "k") == 0
    kv.clock.advance(1)
    assert kv("GET", "k") is None
    assert b"k" not in kv.db.data and b"k" not in kv.db.expires


def test_reads_log_nothing(kv):
    kv("GET", "k")
    kv("TTL", "k")
    kv("PTTL", "k")
    kv("PING")
    kv("ECHO", "hi")
    kv("SELECT", "2")
    kv("SELECT", "0")
    kv("QUIT")
    assert kv.log() == b""


def test_lazy_expiry_by_a_read_is_logged_as_a_del(kv):
    # As Redis propagates an expiry: the replay runs before every deadline,
    # so the DEL is what tells it the key went here (store.py).
    kv("SET", "k", "v")
    kv("PEXPIRE", "k", "5")
    before = kv.log()
    kv.clock.advance(5)
    assert kv("GET", "k") == b"v"  # at the deadline: still live
    assert kv.log() == before
    kv.clock.advance(1)
    assert kv("GET", "k") is None
    assert kv("GET", "k") is None
    assert kv.log() == before + resp("DEL", "k")  # once


# -- DEL -------------------------------------------------------------------------


def test_del_counts_keys_that_existed(kv):
    kv("SET", "a", "1")
    kv("SET", "c", "3")
    assert kv("DEL", "a", "b", "c") == 2
    assert kv("GET", "a") is None and kv("GET", "c") is None


def test_del_logs_one_record_per_deleted_key(kv):
    kv("SET", "a", "1")
    kv("SET", "c", "3")
    start = len(kv.log())
    kv("DEL", "a", "b", "c")
    assert kv.log()[start:] == resp("DEL", "a") + resp("DEL", "c")


def test_del_of_missing_key_logs_nothing(kv):
    assert kv("DEL", "nope") == 0
    assert kv("DEL", "x", "y") == 0
    assert kv.log() == b""


def test_del_same_key_twice_counts_once(kv):
    kv("SET", "a", "1")
    start = len(kv.log())
    assert kv("DEL", "a", "a") == 1
    assert kv.log()[start:] == resp("DEL", "a")


def test_del_of_expired_key_is_zero_and_logs_only_the_expiry(kv):
    kv("SET", "k", "v")
    kv("PEXPIRE", "k", "10")
    before = kv.log()
    kv.clock.advance(11)
    assert kv("DEL", "k") == 0
    assert kv.log() == before + resp("DEL", "k")  # the expiry's, not DEL's own


# -- EXPIRE and its family ------------------------------------------------------------


def test_expire_sets_ttl_and_logs_absolute_pexpireat(kv):
    kv("SET", "k", "v")
    start = len(kv.log())
    assert kv("EXPIRE", "k", "30") == 1
    assert kv.log()[start:] == resp("PEXPIREAT", "k", str(T0 + 30_000))
    assert kv.db.expires[b"k"] == T0 + 30_000


def test_pexpire_logs_pexpireat(kv):
    kv("SET", "k", "v")
    start = len(kv.log())
    assert kv("PEXPIRE", "k", "1234") == 1
    assert kv.log()[start:] == resp("PEXPIREAT", "k", str(T0 + 1234))


def test_expireat_logs_milliseconds(kv):
    kv("SET", "k", "v")
    start = len(kv.log())
    when_s = T0 // 1000 + 60
    assert kv("EXPIREAT", "k", str(when_s)) == 1
    assert kv.log()[start:] == resp("PEXPIREAT", "k", str(when_s * 1000))
    assert kv("TTL", "k") == 60


def test_pexpireat_logs_itself(kv):
    kv("SET", "k", "v")
    start = len(kv.log())
    assert kv("PEXPIREAT", "k", str(T0 + 7)) == 1
    assert kv.log()[start:] == resp("PEXPIREAT", "k", str(T0 + 7))
    assert kv("PTTL", "k") == 7


def test_expire_is_relative_to_the_clock_at_the_time(kv):
    kv("SET", "k", "v")
    kv.clock.advance(12_345)
    kv("EXPIRE", "k", "10")
    assert kv.db.expires[b"k"] == T0 + 12_345 + 10_000


@pytest.mark.parametrize(
    "args",
    [
        ("EXPIRE", "k", "-1"),
        ("EXPIRE", "k", "0"),
        ("PEXPIRE", "k", "0"),
        ("PEXPIRE", "k", "-1000"),
        ("EXPIREAT", "k", str(T0 // 1000)),
        ("EXPIREAT", "k", "0"),
        ("PEXPIREAT", "k", str(T0)),
        ("PEXPIREAT", "k", str(T0 - 1)),
        ("PEXPIREAT", "k", str(INT64_MIN)),
        ("PEXPIRE", "k", str(INT64_MIN)),
        ("EXPIRE", "k", "-9223372036854775"),  # the smallest whose product fits
    ],
)
def test_expire_in_the_past_deletes_and_logs_del(kv, args):
    kv("SET", "k", "v")
    kv("EXPIRE", "k", "100")  # a TTL that the DEL must take with it
    start = len(kv.log())
    assert kv(*args) == 1
    assert kv("GET", "k") is None
    assert b"k" not in kv.db.data and b"k" not in kv.db.expires
    assert kv.log()[start:] == resp("DEL", "k")


def test_pexpire_one_ms_is_still_in_the_future(kv):
    kv("SET", "k", "v")
    assert kv("PEXPIRE", "k", "1") == 1
    assert kv("GET", "k") == b"v"
    kv.clock.advance(1)
    assert kv("GET", "k") == b"v"  # at the deadline: still live
    assert kv("PTTL", "k") == 0
    kv.clock.advance(1)
    assert kv("GET", "k") is None


@pytest.mark.parametrize("name", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_expire_on_missing_key_is_zero_and_logs_nothing(kv, name):
    assert kv(name, "nope", "100") == 0
    assert kv(name, "nope", "-100") == 0
    assert kv.log() == b""
    assert kv("TTL", "nope") == -2


def test_expire_on_expired_key_is_zero(kv):
    kv("SET", "k", "v")
    kv("PEXPIRE", "k", "10")
    before = kv.log()
    kv.clock.advance(10)
    assert kv("PTTL", "k") == 0  # at the deadline: still live
    kv.clock.advance(1)
    assert kv("EXPIRE", "k", "100") == 0
    assert kv.log() == before + resp("DEL", "k")  # the expiry, logged as Redis does
    assert b"k" not in kv.db.data


# Redis 7's expireGenericCommand: NX only without a TTL, XX only with one,
# GT only if greater (no TTL counts as infinite, so GT fails), LT only if
# smaller (no TTL counts as infinite, so LT succeeds).
@pytest.mark.parametrize(
    "current_ttl, seconds, option, expected",
    [
        (None, 10, "NX", 1),
        (100, 10, "NX", 0),
        (None, 10, "XX", 0),
        (100, 10, "XX", 1),
        (None, 10, "GT", 0),
        (None, -10, "GT", 0),
        (100, 200, "GT", 1),
        (100, 100, "GT", 0),
        (100, 50, "GT", 0),
        (None, 10, "LT", 1),
        (None, -10, "LT", 1),
        (100, 50, "LT", 1),
        (100, 100, "LT", 0),
        (100, 200, "LT", 0),
        (100, -1, "LT", 1),
        (100, -1, "GT", 0),
        (100, 10, "nx", 0),
        (None, 10, "nx", 1),
        (None, 10, "Gt", 0),
    ],
)
def test_expire_conditions(kv, current_ttl, seconds, option, expected):
    kv("SET", "k", "v")
    if current_ttl is not None:
        kv("EXPIRE", "k", str(current_ttl))
    before_log = kv.log()
    before_deadline = kv.db.expires.get(b"k")
    assert kv("EXPIRE", "k", str(seconds), option) == expected
    if expected == 0:
        assert kv.log() == before_log
        assert kv.db.expires.get(b"k") == before_deadline
        assert kv("GET", "k") == b"v"
    elif seconds <= 0:
        assert kv("GET", "k") is None
        assert kv.log()[len(before_log):] == resp("DEL", "k")
    else:
        assert kv.db.expires[b"k"] == T0 + seconds * 1000
        assert kv.log()[len(before_log):] == resp("PEXPIREAT", "k", str(T0 + seconds * 1000))


@pytest.mark.parametrize(
    "options, current_ttl, expected",
    [
        (("XX", "GT"), None, 0),
        (("XX", "GT"), 100, 1),
        (("XX", "LT"), None, 0),
        (("XX", "LT"), 300, 1),
        (("GT", "XX"), 300, 0),
        (("NX", "NX"), None, 1),
        (("GT", "GT"), 100, 1),
    ],
)
def test_expire_combined_conditions(kv, options, current_ttl, expected):
    kv("SET", "k", "v")
    if current_ttl is not None:
        kv("EXPIRE", "k", str(current_ttl))
    assert kv("EXPIRE", "k", "200", *options) == expected


@pytest.mark.parametrize("name", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_conditions_apply_to_every_form(kv, name):
    kv("SET", "k", "v")
    deadline = T0 + 100_000
    amount = {
        "EXPIRE": "100",
        "PEXPIRE": "100000",
        "EXPIREAT": str(deadline // 1000),
        "PEXPIREAT": str(deadline),
    }[name]
    assert kv(name, "k", amount, "XX") == 0
    assert kv(name, "k", amount, "GT") == 0
    assert kv(name, "k", amount, "NX") == 1
    assert kv.db.expires[b"k"] == deadline
    assert kv(name, "k", amount, "NX") == 0
    assert kv(name, "k", amount, "GT") == 0
    assert kv(name, "k", amount, "LT") == 0
    assert kv(name, "k", amount, "XX") == 1


def test_expire_unsupported_option(kv):
    kv("SET", "k", "v")
    assert error_text(kv("EXPIRE", "k", "10", "foo")) == "ERR Unsupported option foo"
    assert error_text(kv("EXPIRE", "k", "10", "NX", "bar")) == "ERR Unsupported option bar"
    assert kv("TTL", "k") == -1


@pytest.mark.parametrize("options", [("NX", "XX"), ("XX", "NX"), ("NX", "GT"), ("LT", "NX"), ("nx", "xx")])
def test_expire_nx_conflict(kv, options):
    kv("SET", "k", "v")
    assert (
        error_text(kv("EXPIRE", "k", "10", *options))
        == "ERR NX and XX, GT or LT options at the same time are not compatible"
    )
    assert kv("TTL", "k") == -1


def test_expire_gt_lt_conflict(kv):
    kv("SET", "k", "v")
    assert (
        error_text(kv("EXPIRE", "k", "10", "GT", "LT"))
        == "ERR GT and LT options at the same time are not compatible"
    )
    assert error_text(kv("PEXPIRE", "k", "10", "XX", "LT", "GT")).startswith("ERR GT and LT")


def test_expire_options_are_checked_before_the_number(kv):
    # As Redis: parse the options, then the number, then look at the key.
    assert error_text(kv("EXPIRE", "k", "abc", "foo")) == "ERR Unsupported option foo"
    assert error_text(kv("EXPIRE", "k", "abc", "NX", "XX")).startswith("ERR NX and XX")
    assert error_text(kv("EXPIRE", "k", "abc", "NX")) == NOT_INTEGER


@pytest.mark.parametrize(
    "amount",
    [
        " 30",
        "30 ",
        "+30",
        "030",
        "00",
        "-0",
        "1.5",
        "1e3",
        "",
        "-",
        "abc",
        "0x10",
        "3_0",
        "\u0663",  # an Arabic-Indic three: int() would take it, Redis does not
        "9223372036854775808",
        "-9223372036854775809",
        pytest.param("1" * 5000, id="5000-digits"),  # more than int() converts by default
    ],
)
@pytest.mark.parametrize("name", ["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
def test_expire_not_an_integer(kv, name, amount):
    kv("SET", "k", "v")
    assert error_text(kv(name, "k", amount)) == NOT_INTEGER
    assert error_text(kv(name, "missing", amount)) == NOT_INTEGER
    assert kv("TTL", "k") == -1


@pytest.mark.parametrize(
    "name, amount",
    [
        ("expire", str(INT64_MAX)),
        ("expire", str(INT64_MAX // 1000 + 1)),
        ("expire", str(INT64_MIN)),
        ("expire", "-9223372036854776"),  # C's LLONG_MIN / 1000 is ...775
        ("expire", str((INT64_MAX - T0) // 1000 + 1)),  # fits alone, not added to now
        ("pexpire", str(INT64_MAX)),
        ("pexpire", str(INT64_MAX - T0 + 1)),
        ("expireat", str(INT64_MAX // 1000 + 1)),
        ("expireat", str(INT64_MIN // 1000)),
    ],
)
def test_expire_overflow(kv, name, amount):
    kv("SET", "k", "v")
    message = f"ERR invalid expire time in '{name}' command"
    assert error_text(kv(name.upper(), "k", amount)) == message
    # Checked before the key is looked at, as Redis does.
    assert error_text(kv(name.upper(), "missing", amount)) == message
    assert kv("GET", "k") == b"v" and kv("TTL", "k") == -1
    assert b"PEXPIRE" not in kv.log()


@pytest.mark.parametrize(
    "name, amount, deadline",
    [
        ("PEXPIRE", str(INT64_MAX - T0), INT64_MAX),
        ("EXPIREAT", str(INT64_MAX // 1000), INT64_MAX // 1000 * 1000),
        ("PEXPIREAT", str(INT64_MAX), INT64_MAX),
    ],
)
def test_expire_largest_deadlines_are_accepted(kv, name, amount, deadline):
    kv("SET", "k", "v")
    assert kv(name, "k", amount) == 1
    assert kv.db.expires[b"k"] == deadline
    assert kv.log().endswith(resp("PEXPIREAT", "k", str(deadline)))


# -- TTL / PTTL --------------------------------------------------------------------


def test_ttl_and_pttl_missing_key(kv):
    assert kv("TTL", "k") == -2
    assert kv("PTTL", "k") == -2


def test_ttl_and_pttl_key_without_ttl(kv):
    kv("SET", "k", "v")
    assert kv("TTL", "k") == -1
    assert kv("PTTL", "k") == -1


@pytest.mark.parametrize(
    "left_ms, seconds",
    [(1, 0), (499, 0), (500, 1), (1000, 1), (1499, 1), (1500, 2), (29_999, 30), (30_000, 30)],
)
def test_ttl_rounds_to_the_nearest_second(kv, left_ms, seconds):
    kv("SET", "k", "v")
    kv("PEXPIRE", "k", str(left_ms))
    assert kv("TTL", "k") == seconds == (left_ms + 500) // 1000
    assert kv("PTTL", "k") == left_ms


def test_ttl_counts_down_and_ends_at_minus_two(kv):
    kv("SET", "k", "v")
    kv("EXPIRE", "k", "2")
    assert kv("PTTL", "k") == 2000
    kv.clock.advance(1200)
    assert kv("PTTL", "k") == 800
    assert kv("TTL", "k") == 1
    kv.clock.advance(800)
    assert kv("PTTL", "k") == 0  # at the deadline: still live
    assert kv("TTL", "k") == 0
    kv.clock.advance(1)
    assert kv("PTTL", "k") == -2
    assert kv("TTL", "k") == -2


# -- connection commands -----------------------------------------------------------


def test_ping(kv):
    reply = kv("PING")
    assert reply == Status("PONG") and type(reply) is Status


def test_ping_with_message_is_a_bulk_reply(kv):
    reply = kv("PING", "hello")
    assert reply == b"hello" and type(reply) is bytes


def test_ping_with_two_arguments_is_an_arity_error(kv):
    assert error_text(kv("PING", "a", "b")) == "ERR wrong number of arguments for 'ping' command"


def test_echo(kv):
    assert kv("ECHO", "hi there") == b"hi there"
    assert kv("ECHO", "") == b""


def test_quit_sets_closing(kv):
    assert kv.session.conn.closing is False
    assert kv("QUIT") == Status("OK")
    assert kv.session.conn.closing is True


def test_select_isolates_databases(kv):
    kv("SET", "k", "zero")
    assert kv("SELECT", "1") == Status("OK")
    assert kv("GET", "k") is None
    kv("SET", "k", "one")
    assert kv("GET", "k") == b"one"
    kv("SELECT", "0")
    assert kv("GET", "k") == b"zero"
    assert kv("SELECT", "15") == Status("OK")
    assert kv("GET", "k") is None


def test_select_is_per_session(kv):
    other = kv.new_session()
    kv("SELECT", "5")
    kv("SET", "k", "five")
    assert kv("GET", "k", session=other) is None
    kv("SELECT", "5", session=other)
    assert kv("GET", "k", session=other) == b"five"


@pytest.mark.parametrize("index", ["16", "-1", "1000"])
def test_select_out_of_range(kv, index):
    assert error_text(kv("SELECT", index)) == "ERR DB index is out of range"
    kv("SET", "k", "v")
    assert kv.db.index == 0


@pytest.mark.parametrize("index", ["x", "1.0", " 1", "01", "99999999999999999999"])
def test_select_not_an_integer(kv, index):
    assert error_text(kv("SELECT", index)) == NOT_INTEGER
    assert kv.db.index == 0


def test_select_then_set_logs_select_of_that_database(kv):
    kv("SELECT", "3")
    kv("SET", "a", "b")
    assert kv.log() == resp("SELECT", "3") + resp("SET", "a", "b")


def test_switching_databases_logs_select_each_time(kv):
    kv("SET", "a", "0")
    kv("SELECT", "3")
    kv("SET", "a", "3")
    kv("SET", "b", "3")
    kv("SELECT", "0")
    kv("DEL", "a")
    assert kv.log() == (
        SELECT0
        + resp("SET", "a", "0")
        + resp("SELECT", "3")
        + resp("SET", "a", "3")
        + resp("SET", "b", "3")
        + SELECT0
        + resp("DEL", "a")
    )


def test_two_sessions_in_different_databases_interleave_selects(kv):
    other = kv.new_session()
    kv("SELECT", "2", session=other)
    kv("SET", "a", "x")
    kv("SET", "b", "y", session=other)
    kv("SET", "c", "z")
    assert kv.log() == (
        SELECT0
        + resp("SET", "a", "x")
        + resp("SELECT", "2")
        + resp("SET", "b", "y")
        + SELECT0
        + resp("SET", "c", "z")
    )


# -- unknown commands, arity, case ---------------------------------------------------------


def test_unknown_command_message_is_redis_byte_for_byte(kv):
    assert (
        error_text(kv("foo", "a", "b"))
        == "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    )


def test_unknown_command_without_args(kv):
    assert error_text(kv("foo")) == "ERR unknown command 'foo', with args beginning with: "


def test_unknown_command_keeps_the_name_as_typed(kv):
    assert error_text(kv("FooBar", "x")) == "ERR unknown command 'FooBar', with args beginning with: 'x' "


def test_unknown_command_args_are_cut_after_128_characters(kv):
    message = error_text(kv("foo", "a" * 200, "b"))
    assert message == "ERR unknown command 'foo', with args beginning with: '" + "a" * 128 + "' "


def test_unknown_command_blanks_out_newlines(kv):
    message = error_text(kv("fo\r\no", "a\nb"))
    assert message == "ERR unknown command 'fo  o', with args beginning with: 'a b' "


def test_unknown_command_logs_nothing(kv):
    kv("FLUSHALL")
    assert kv.log() == b""


@pytest.mark.parametrize(
    "args, name",
    [
        (("GET",), "get"),
        (("GET", "a", "b"), "get"),
        (("get",), "get"),
        (("SET", "k"), "set"),
        (("SET",), "set"),
        (("DEL",), "del"),
        (("EXPIRE", "k"), "expire"),
        (("PEXPIREAT", "k"), "pexpireat"),
        (("TTL",), "ttl"),
        (("TTL", "a", "b"), "ttl"),
        (("PTTL",), "pttl"),
        (("ECHO",), "echo"),
        (("ECHO", "a", "b"), "echo"),
        (("SELECT",), "select"),
        (("SELECT", "1", "2"), "select"),
    ],
)
def test_wrong_arity(kv, args, name):
    assert error_text(kv(*args)) == f"ERR wrong number of arguments for '{name}' command"
    assert kv.log() == b""


def test_command_names_are_case_insensitive(kv):
    assert kv("sEt", "k", "v") == Status("OK")
    assert kv("get", "k") == b"v"
    assert kv("GeT", "k") == b"v"
    assert kv("eXpIrE", "k", "10", "nX") == 1
    assert kv("pttl", "k") == 10_000
    assert kv("dEl", "k") == 1
    assert kv("ping") == Status("PONG")


def test_keys_and_values_are_case_sensitive(kv):
    kv("SET", "k", "v")
    assert kv("GET", "K") is None


def test_every_command_has_its_syntax_line(kv):
    for cmd in COMMANDS.values():
        assert cmd.syntax.split()[0] == cmd.name.upper()


def test_an_internal_error_is_a_reply_not_an_exception(kv, monkeypatch, caplog):
    def boom(session, args):
        raise RuntimeError("a bug")

    monkeypatch.setitem(COMMANDS, b"BOOM", Command("boom", boom, 1, False, 0, 0, 0))
    assert error_text(kv("boom")) == "ERR internal error, see the server log"
    assert "a bug" in caplog.text
    assert kv("PING") == Status("PONG")


# -- the log fails: refuse the write ------------------------------------------------------


def test_failed_log_refuses_set_of_new_key(failing_kv):
    kv = failing_kv
    kv.aof.failing = True
    assert error_text(kv("SET", "k", "v")).startswith("MISCONF")
    assert kv("GET", "k") is None
    assert b"k" not in kv.db.data and b"k" not in kv.db.expires
    assert kv.log() == b""


def test_failed_log_refuses_overwrite_and_keeps_ttl(failing_kv):
    kv = failing_kv
    kv("SET", "k", "old")
    kv("EXPIRE", "k", "100")
    kv.aof.failing = True
    assert error_text(kv("SET", "k", "new")).startswith("MISCONF")
    assert kv("GET", "k") == b"old"
    assert kv("PTTL", "k") == 100_000


def test_failed_log_refuses_del(failing_kv):
    kv = failing_kv
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    kv("EXPIRE", "b", "5")
    kv.aof.failing = True
    assert error_text(kv("DEL", "a", "b", "c")).startswith("MISCONF")
    assert kv("GET", "a") == b"1"
    assert kv("GET", "b") == b"2"
    assert kv("PTTL", "b") == 5000
    assert kv("GET", "c") is None


@pytest.mark.parametrize(
    "args",
    [
        ("EXPIRE", "k", "30"),
        ("EXPIRE", "k", "-1"),
        ("PEXPIRE", "k", "1"),
        ("EXPIREAT", "k", "1"),
        ("PEXPIREAT", "k", str(T0 + 5)),
        ("EXPIRE", "k", "5", "LT"),
    ],
)
def test_failed_log_leaves_ttl_unchanged(failing_kv, args):
    kv = failing_kv
    kv("SET", "k", "v")
    kv("EXPIRE", "k", "100")
    kv.aof.failing = True
    assert error_text(kv(*args)).startswith("MISCONF")
    assert kv("GET", "k") == b"v"
    assert kv("PTTL", "k") == 100_000


def test_failed_log_leaves_no_ttl_unchanged(failing_kv):
    kv = failing_kv
    kv("SET", "k", "v")
    kv.aof.failing = True
    assert error_text(kv("EXPIRE", "k", "30")).startswith("MISCONF")
    assert kv("TTL", "k") == -1
    assert b"k" not in kv.db.expires


def test_writes_with_nothing_to_log_succeed_while_the_log_fails(failing_kv):
    kv = failing_kv
    kv.aof.failing = True
    assert kv("DEL", "nope") == 0
    assert kv("EXPIRE", "nope", "10") == 0
    assert kv("GET", "nope") is None


def test_writes_succeed_again_once_the_log_works(failing_kv):
    kv = failing_kv
    kv("SET", "k", "v1")
    kv.aof.failing = True
    assert error_text(kv("SET", "k", "v2")).startswith("MISCONF")
    kv.aof.failing = False
    assert kv("SET", "k", "v3") == Status("OK")
    assert kv("GET", "k") == b"v3"
    assert kv.log() == SELECT0 + resp("SET", "k", "v1") + resp("SET", "k", "v3")


def test_misconf_message_carries_the_reason(failing_kv):
    kv = failing_kv
    kv.aof.failing = True
    assert error_text(kv("SET", "k", "v")) == DISK_FULL


def test_enospc_is_refused_with_misconf(kv, monkeypatch):
    kv("SET", "k", "old")
    before = kv.log()
    disk = DiskFull(kv.aof._fd)
    monkeypatch.setattr(aof_module.os, "write", disk)
    assert error_text(kv("SET", "k", "new")) == DISK_FULL
    assert kv("GET", "k") == b"old"
    assert kv.log() == before
    disk.allow = None  # space again
    assert kv("SET", "k", "new") == Status("OK")
    assert kv.log() == before + resp("SET", "k", "new")


def test_a_failed_first_append_still_gets_its_select_later(kv, monkeypatch):
    disk = DiskFull(kv.aof._fd)
    monkeypatch.setattr(aof_module.os, "write", disk)
    kv("SELECT", "4")
    assert error_text(kv("SET", "k", "v")).startswith("MISCONF")
    disk.allow = None
    assert kv("SET", "k", "v") == Status("OK")
    assert kv.log() == resp("SELECT", "4") + resp("SET", "k", "v")


@pytest.mark.parametrize("allow", [1, 5, 17, 30])
def test_a_partial_write_is_cut_back_to_the_last_whole_record(kv, monkeypatch, allow):
    kv("SET", "k", "old")
    before = kv.log()
    # The new record (SET k <40 bytes>) is longer than any ``allow``: part of
    # it reaches the file before the disk fills.
    disk = DiskFull(kv.aof._fd, allow)
    monkeypatch.setattr(aof_module.os, "write", disk)
    assert error_text(kv("SET", "k", "x" * 40)).startswith("MISCONF")
    assert disk.allow == 0  # the partial write did happen
    assert kv.log() == before
    assert os.path.getsize(kv.path) == len(before) == kv.aof.size
    assert kv("GET", "k") == b"old"
    disk.allow = None
    assert kv("SET", "k", "new") == Status("OK")
    assert kv.log() == before + resp("SET", "k", "new")


def test_a_partial_write_in_a_new_database_is_cut_back(kv, monkeypatch):
    kv("SET", "a", "1")
    before = kv.log()
    disk = DiskFull(kv.aof._fd, 3)  # part of the SELECT 9 record
    monkeypatch.setattr(aof_module.os, "write", disk)
    kv("SELECT", "9")
    assert error_text(kv("SET", "b", "2")).startswith("MISCONF")
    assert kv.log() == before
    disk.allow = None
    kv("SET", "b", "2")
    assert kv.log() == before + resp("SELECT", "9") + resp("SET", "b", "2")


def test_fsync_failure_with_appendfsync_always_is_never_acknowledged(tmp_path, monkeypatch):
    # Under "always" the fsync runs after the write lock is released (group
    # commit), so a failed fsync cannot undo the change in memory (Redis
    # keeps it too); what it must do is refuse to acknowledge it, and refuse
    # every later write until the disk takes an fsync again.
    kv = Harness(tmp_path / "a.aof")
    kv.aof.close()
    kv.aof = kv.dispatcher.aof = AppendOnlyFile(kv.path, fsync="always")
    try:
        kv("SET", "k", "old")

        def failing_fsync(fd):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        real_fsync = os.fsync
        monkeypatch.setattr(aof_module.os, "fsync", failing_fsync)
        misconf = "MISCONF Errors writing to the AOF file: " + os.strerror(errno.EIO)
        assert error_text(kv("SET", "k", "new")) == misconf
        assert error_text(kv("SET", "other", "x")) == misconf  # refused before it is applied
        assert kv("GET", "other") is None
        assert kv.aof.error == os.strerror(errno.EIO)
        monkeypatch.setattr(aof_module.os, "fsync", real_fsync)
        assert kv("SET", "k", "newer") == Status("OK")  # writes resume by themselves
        assert kv.aof.error is None
    finally:
        kv.aof.close()


# -- replay mode: Dispatcher(keyspace, None) --------------------------------------------


def test_dispatcher_without_log_applies_writes(tmp_path):
    clock = FakeClock()
    keyspace = Keyspace(clock=clock)
    dispatcher = Dispatcher(keyspace, None)
    session = Session(keyspace)
    assert dispatcher.execute(session, [b"SET", b"k", b"v"]) == Status("OK")
    assert dispatcher.execute(session, [b"PEXPIREAT", b"k", b"%d" % (T0 + 10)]) == 1
    assert keyspace.dbs[0].expires == {b"k": T0 + 10}
    assert session.effects == []  # nothing left over for the next command
    assert dispatcher.execute(session, [b"PEXPIREAT", b"k", b"%d" % T0]) == 1
    assert keyspace.dbs[0].data == {}


# -- integer arguments, against a reference -----------------------------------------------


def string2ll(raw: bytes) -> int | None:
    """Redis's util.c string2ll, transcribed: the reference for what is an
    integer argument."""
    if not raw or len(raw) > 20:
        return None
    if raw == b"0":
        return 0
    negative = raw[:1] == b"-"
    digits = raw[1:] if negative else raw
    if not digits or not b"1" <= digits[:1] <= b"9" or not all(48 <= c <= 57 for c in digits):
        return None
    value = -int(digits) if negative else int(digits)
    return value if INT64_MIN <= value <= INT64_MAX else None


integer_like = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: str(n).encode()),
    st.text(alphabet="-+0123456789 ._e\u0663", max_size=24).map(str.encode),
    st.binary(max_size=8),
)


@given(amount=integer_like)
@example(amount=b"-0")
@example(amount=b"1" * 5000)
@example(amount=str(INT64_MIN).encode())
def test_pexpireat_argument_is_an_integer_exactly_when_redis_says_so(amount):
    # Parsed, or "not an integer", never anything else (an internal error
    # included), and the same answer as Redis's own parser.
    keyspace = Keyspace(clock=FakeClock())
    dispatcher = Dispatcher(keyspace, None)
    session = Session(keyspace)
    dispatcher.execute(session, [b"SET", b"k", b"v"])
    reply = dispatcher.execute(session, [b"PEXPIREAT", b"k", amount])
    expected = string2ll(amount)
    if expected is None:
        assert error_text(reply) == NOT_INTEGER
        assert keyspace.dbs[0].expires == {}
    else:
        assert reply == 1
        if expected > T0:
            assert keyspace.dbs[0].expires == {b"k": expected}
        else:
            assert keyspace.dbs[0].data == {}
