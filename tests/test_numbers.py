"""Every number a client can send gets a Redis reply, never a traceback.

Python's int() refuses more than 4,300 digits, float() and Fraction read
forms Redis does not: each numeric argument of each command, and each
CONFIG SET value, is sent hostile numbers (thousands of digits, signs,
spaces, hex, exponents) over a real socket. The reply must be what
redis-server 7.0 answers, byte for byte where it is installed (side by
side), and in any case never "internal error" nor Python's own words.
"""

from __future__ import annotations

import pytest

from kvserver.commands.configcmd import SETTINGS
from tests.resp_client import RawRespClient
from tests.support import bulk_strings

HUGE = "9" * 5_000
HOSTILE = [
    HUGE,
    "-" + HUGE,
    "1" + "0" * 100_000,
    "-" + "1" * 100_000,
    "0." + "0" * 5_000 + "1",
    HUGE + ".5",
    "1" * 127,  # around memtoull's 128-byte buffer
    "1" * 128,
    "18446744073709551616",  # 2**64
    "9223372036854775808",  # 2**63
    "-9223372036854775809",
    "4294967296",
    "+5",
    "0x10",
    " 5",
    "5 ",
    "1e5000",
    "-1e5000",
    "1e5",
    "nan",
    "-inf",
    "-0",
    "007",
    "",
    "1_000",
    "\u0665".encode().decode("latin-1"),  # an Arabic-Indic five, as UTF-8 bytes
    "5kb" + "0" * 5_000,
    HUGE + "mb",
]

# Commands with a number in them: N is where the hostile value goes. The
# keys are set up below (k: "5", s: a string, e: with a TTL).
TEMPLATES = [
    ["SET", "k2", "v", "EX", "N"],
    ["SET", "k2", "v", "PX", "N"],
    ["SET", "k2", "v", "EXAT", "N"],
    ["SET", "k2", "v", "PXAT", "N"],
    ["SETEX", "k2", "N", "v"],
    ["PSETEX", "k2", "N", "v"],
    ["GETEX", "s", "EX", "N"],
    ["GETEX", "s", "PXAT", "N"],
    ["EXPIRE", "s", "N"],
    ["PEXPIRE", "s", "N"],
    ["EXPIREAT", "s", "N"],
    ["PEXPIREAT", "s", "N"],
    ["EXPIRE", "s", "N", "GT"],
    ["INCRBY", "k", "N"],
    ["DECRBY", "k", "N"],
    ["INCRBYFLOAT", "k", "N"],
    ["GETRANGE", "s", "N", "1"],
    ["GETRANGE", "s", "0", "N"],
    ["SUBSTR", "s", "N", "N"],
    ["SETRANGE", "s", "N", "x"],
    ["SCAN", "N"],
    ["SCAN", "0", "COUNT", "N"],
    ["SELECT", "N"],
    ["MOVE", "s", "N"],
    ["COPY", "s", "s2", "DB", "N"],
    ["SWAPDB", "N", "0"],
    ["SWAPDB", "0", "N"],
    ["CLIENT", "KILL", "ID", "N"],
    ["CLIENT", "KILL", "ID", "N", "SKIPME", "yes"],
    ["CLIENT", "LIST", "ID", "N"],
    ["SLOWLOG", "GET", "N"],
    ["WAIT", "N", "0"],
    ["WAIT", "0", "N"],
    ["MEMORY", "USAGE", "s", "SAMPLES", "N"],
    ["FLUSHALL", "N"],
    ["DEBUG", "SLEEP", "N"],
]
# Values stored then read as numbers.
STORED = [["INCR", "v"], ["DECR", "v"], ["INCRBY", "v", "1"], ["INCRBYFLOAT", "v", "1"]]

PYTHON_WORDS = ("internal error", "Traceback", "invalid literal", "Exceeds the limit", "int()", "could not convert", "Error:", "object")


# DEBUG SLEEP really sleeps for a positive number (strtod reads "0x10" as
# 16 s, "1e5000" as for ever): only the ones that return at once.
NOT_POSITIVE = ["-" + HUGE, "-" + "1" * 100_000, "-1e5000", "-inf", "nan", "", "-0", "0." + "0" * 5_000]


def _values(template):
    return NOT_POSITIVE if template[0] == "DEBUG" else HOSTILE


def _setup(client):
    client.call("FLUSHALL")
    client.call("SET", "k", "5")
    client.call("SET", "s", "hello")
    client.call("SET", "e", "x", "EX", "100")


def _is_proper(reply: bytes) -> bool:
    if not reply.startswith(b"-"):
        return True
    text = reply.decode("latin-1")
    return not any(word in text for word in PYTHON_WORDS) and text.endswith("\r\n") and "\n" not in text[:-2]


def _calls():
    for template in TEMPLATES:
        for value in _values(template):
            yield [value if word == "N" else word for word in template]
    for template in STORED:
        for value in HOSTILE:
            yield ("SET", "v", value), template


def test_numeric_arguments_never_get_python_errors(start_server):
    server = start_server()
    client = RawRespClient(server.resp_port)
    _setup(client)
    for call in _calls():
        if isinstance(call, tuple):
            client.call(*call[0])
            call = call[1]
        reply = client.call(*call)
        assert _is_proper(reply), (call[0], call[1][:30] if len(call) > 1 else "", reply[:200])
        _setup(client)


def test_numeric_arguments_side_by_side(side_by_side):
    both = side_by_side
    _setup(both.kv), _setup(both.redis)
    for call in _calls():
        if isinstance(call, tuple):
            both.both(*call[0])
            call = call[1]
        if call[0] == "DEBUG":  # off by default in redis-server (enable-debug-command)
            continue
        ours, theirs = both.each(*call)
        shown = [word[:20] for word in call]
        assert _is_proper(ours), (shown, ours[:200])
        if theirs.startswith(b"-") or ours.startswith(b"-"):
            assert ours == theirs, (shown, ours[:200], theirs[:200])
        _setup(both.kv), _setup(both.redis)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_config_set_values_never_get_python_errors(start_server, name):
    server = start_server()
    client = RawRespClient(server.resp_port)
    for value in HOSTILE:
        reply = client.call("CONFIG", "SET", name, value)
        assert _is_proper(reply), (name, value[:30], reply[:200])
    for value in HOSTILE:  # in a list of buffer limits too
        reply = client.call("CONFIG", "SET", "client-output-buffer-limit", f"normal {value} 0 0")
        assert _is_proper(reply), (value[:30], reply[:200])
        reply = client.call("CONFIG", "SET", "client-output-buffer-limit", f"normal 0 0 {value}")
        assert _is_proper(reply), (value[:30], reply[:200])


# Settings redis-server may really take a hostile value for (a memory value
# is read by strtoull: "+5" and " 5" are 5), and whose change would disturb
# the shared redis-server: only their errors are compared.
_RISKY = {"maxmemory", "port", "bind", "dir", "requirepass", "save", "appendonly", "daemonize"}


@pytest.mark.parametrize("name", sorted(set(SETTINGS) - _RISKY))
def test_config_set_errors_side_by_side(side_by_side, name):
    original = bulk_strings(side_by_side.redis.call("CONFIG", "GET", name))[1]
    for value in HOSTILE:
        ours, theirs = side_by_side.each("CONFIG", "SET", name, value)
        assert _is_proper(ours), (name, value[:30], ours[:200])
        if ours.startswith(b"-") and theirs.startswith(b"-"):
            assert ours == theirs, (name, value[:30], ours[:200], theirs[:200])
        if not theirs.startswith(b"-"):  # put redis-server back as it was
            assert side_by_side.redis.call("CONFIG", "SET", name, original) == b"+OK\r\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4096", 4096),
        ("1kb", 1024),
        ("", 0),  # memtoull: no digits is 0
        ("1" * 127, 2**64 - 1),  # strtoull saturates; nobody checks ERANGE
        ("1" * 128, None),  # past its 128-byte buffer
        (HUGE, None),
        ("18446744073709551615gb", 2**64 - 1024**3),  # the unit's product wraps
        ("+5", None),
        (" 5", None),
        ("-1", None),
        ("\u0665", None),  # an Arabic-Indic digit: isdigit is ASCII's
    ],
)
def test_parse_memory_is_memtoull(text, expected):
    from kvserver.config import parse_memory

    assert parse_memory(text) == expected
