"""Tests for kvserver/protocol/resp.py: RESP requests in, RESP replies out.

The parser is fed input whole, byte by byte and with trailing data; errors are
checked against Redis's own wording; ``consumed`` and ``buffered`` (which the
log replay uses to truncate a torn tail) are checked at every byte offset.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvserver.config import MAX_INLINE_BYTES
from kvserver.errors import CommandError, ProtocolError
from kvserver.protocol import NEED_DATA, OK, SetReply, Status
from kvserver.protocol import resp
from kvserver.protocol.resp import (
    MAX_BULK_BYTES,
    MAX_MULTIBULK_COUNT,
    RespParser,
    encode_command,
    encode_reply,
)
from kvserver.protocol.text import InvalidRequest
from tests.support import drain, feed_split, spans
from tests.support import resp as frame

INVALID_MULTIBULK = "ERR Protocol error: invalid multibulk length"
INVALID_BULK = "ERR Protocol error: invalid bulk length"
UNBALANCED = "ERR Protocol error: unbalanced quotes in request"
TOO_BIG_INLINE = "ERR Protocol error: too big inline request"
PROTOCOL_PREFIX = "ERR Protocol error: "

# The autouse fixture below is function-scoped but the same for every example.
PROPERTY = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


HIREDIS = resp.hiredis  # None when it is not installed


@pytest.fixture(autouse=True, params=["hiredis", "python"])
def parser_kind(request, monkeypatch) -> str:
    """Every test here runs twice: with hiredis finding whole arrays (when
    installed) and with the Python parser alone. Both must give the same
    requests and the same errors."""
    if request.param == "hiredis" and resp.hiredis is None:
        pytest.skip("hiredis is not installed (pip install hiredis, or make install)")
    if request.param == "python":
        monkeypatch.setattr(resp, "hiredis", None)
    return request.param


def feed_in_pieces(data: bytes, cuts: list[int], **kwargs: object) -> tuple[list[object], bool]:
    """Feed ``data`` split at ``cuts``: the outcomes, and whether it ended in a ProtocolError."""
    outcomes, error = feed_split(RespParser(**kwargs), data, cuts)
    return outcomes, error is not None


def protocol_error(data: bytes, **kwargs: object) -> str:
    """The message of the ProtocolError that ``data`` fed whole must raise."""
    parser = RespParser(**kwargs)
    parser.feed(data)
    with pytest.raises(ProtocolError) as info:
        drain(parser)
    return info.value.message


RECORDS = [[b"SET", b"key", b"value"], [b"PING"], [b"SET", b"bin\r\n", b"\x00\xff\r\n$3\r\n"], [b"DEL", b""]]
STREAM = b"".join(encode_command(r) for r in RECORDS)


# --- encode_command --------------------------------------------------------------


def test_encode_command() -> None:
    assert encode_command([b"SET", b"k", b"v"]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
    assert encode_command([b""]) == b"*1\r\n$0\r\n\r\n"
    assert encode_command([b"a\r\nb"]) == b"*1\r\n$4\r\na\r\nb\r\n"
    assert encode_command([]) == b"*0\r\n"


# --- RespParser: arrays ------------------------------------------------------------


def test_parser_whole() -> None:
    parser = RespParser()
    parser.feed(STREAM)
    assert drain(parser) == RECORDS
    assert parser.consumed == len(STREAM)
    assert parser.buffered == 0


def test_parser_byte_by_byte() -> None:
    parser = RespParser()
    got = []
    for i in range(len(STREAM)):
        parser.feed(STREAM[i : i + 1])
        got += drain(parser)
        assert parser.consumed + parser.buffered == i + 1
    assert got == RECORDS
    assert parser.consumed == len(STREAM)
    assert parser.buffered == 0


def test_parser_trailing_partial_request_stays_buffered() -> None:
    tail = encode_command([b"GET", b"key"])
    parser = RespParser()
    parser.feed(STREAM + tail[:-3])
    assert drain(parser) == RECORDS
    assert parser.next_request() is NEED_DATA
    assert parser.consumed == len(STREAM)
    assert parser.buffered == len(tail) - 3
    parser.feed(tail[-3:])
    assert parser.next_request() == [b"GET", b"key"]
    assert parser.consumed == len(STREAM) + len(tail)
    assert parser.buffered == 0


def test_parser_next_request_on_nothing() -> None:
    parser = RespParser()
    assert parser.next_request() is NEED_DATA
    parser.feed(b"")
    assert parser.next_request() is NEED_DATA
    assert (parser.consumed, parser.buffered) == (0, 0)


def test_bulks_are_binary_safe() -> None:
    args = [b"", b"\r\n", b"\x00", bytes(range(256)), b"*1\r\n$1\r\nx\r\n", b"\n" * 10]
    parser = RespParser()
    parser.feed(encode_command(args))
    assert parser.next_request() == args
    assert all(type(arg) is bytes for arg in args)


def test_many_requests_in_one_feed() -> None:
    records = [[b"SET", b"key:%d" % i, b"v" * (i % 50)] for i in range(2000)]
    data = b"".join(encode_command(r) for r in records)
    parser = RespParser()
    parser.feed(data)
    assert drain(parser) == records
    assert (parser.consumed, parser.buffered) == (len(data), 0)


def test_large_bulk_in_many_pieces() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB, over any line limit
    data = encode_command([b"SET", b"k", value])
    parser = RespParser(max_inline=64)
    for start in range(0, len(data), 4096):
        assert parser.next_request() is NEED_DATA
        parser.feed(data[start : start + 4096])
    assert parser.next_request() == [b"SET", b"k", value]
    assert (parser.consumed, parser.buffered) == (len(data), 0)


@pytest.mark.parametrize("empty", [b"*0\r\n", b"*-1\r\n", b"*-5\r\n"])
def test_empty_and_null_arrays_are_ignored(empty: bytes) -> None:
    parser = RespParser(inline=False)
    parser.feed(empty)
    assert parser.next_request() is NEED_DATA
    assert (parser.consumed, parser.buffered) == (len(empty), 0)
    parser.feed(empty + encode_command([b"PING"]) + empty)
    assert drain(parser) == [[b"PING"]]
    assert parser.consumed == 3 * len(empty) + len(encode_command([b"PING"]))
    assert parser.buffered == 0


def test_limits_themselves_are_accepted() -> None:
    parser = RespParser()
    parser.feed(b"*%d\r\n" % MAX_MULTIBULK_COUNT)
    assert parser.next_request() is NEED_DATA
    parser = RespParser()
    parser.feed(b"*1\r\n$%d\r\n" % MAX_BULK_BYTES)
    assert parser.next_request() is NEED_DATA  # waits for the 512 MB, allocates nothing


# -- consumed and buffered --


def record_ends(records: list[bytes]) -> list[int]:
    ends, total = [], 0
    for record in records:
        total += len(record)
        ends.append(total)
    return ends


def test_consumed_at_every_cut_inside_the_last_record() -> None:
    records = [encode_command(r) for r in [[b"SET", b"a", b"1"], [b"INCR", b"a"], [b"SET", b"b", b"x\r\ny"]]]
    data = b"".join(records)
    start_of_last = len(data) - len(records[-1])
    for cut in range(start_of_last, len(data)):
        parser = RespParser(inline=False)
        parser.feed(data[:cut])
        assert len(drain(parser)) == 2, cut
        assert parser.consumed == start_of_last, cut
        assert parser.buffered == cut - start_of_last, cut
        parser.feed(data[cut:])
        assert parser.next_request() == [b"SET", b"b", b"x\r\ny"]
        assert (parser.consumed, parser.buffered) == (len(data), 0)


def test_consumed_byte_by_byte_is_always_the_end_of_the_last_whole_record() -> None:
    # Arrays, an empty array, inline lines and blank lines mixed: consumed must
    # never point inside a record, however the bytes arrive.
    records = [
        encode_command([b"SET", b"k", b"v"]),
        b"PING\r\n",
        b"*0\r\n",
        b"\r\n",
        encode_command([b"GET", b"k"]),
        b'ECHO "a b"\n',
        encode_command([b"A"] * 5),
    ]
    data = b"".join(records)
    ends = [0, *record_ends(records)]
    parser = RespParser()
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        drain(parser)
        fed = i + 1
        last_end = max(e for e in ends if e <= fed)
        assert parser.consumed == last_end, fed
        assert parser.buffered == fed - last_end, fed


def test_consumed_counts_bytes_across_many_feeds_and_compactions() -> None:
    record = encode_command([b"SET", b"k", b"v" * 100])
    parser = RespParser(inline=False)
    for n in range(1, 101):
        parser.feed(record[:50])
        assert parser.next_request() is NEED_DATA
        parser.feed(record[50:])
        assert parser.next_request() == [b"SET", b"k", b"v" * 100]
        assert parser.consumed == n * len(record)
        assert parser.buffered == 0


# --- RespParser: inline commands ------------------------------------------------


def test_inline_commands() -> None:
    parser = RespParser()
    parser.feed(b"PING\r\nSET k \"hello world\"\nECHO 'it\\'s'\r\n")
    assert drain(parser) == [[b"PING"], [b"SET", b"k", b"hello world"], [b"ECHO", b"it's"]]
    assert parser.buffered == 0


def test_inline_byte_by_byte_and_trailing_data() -> None:
    data = b"SET k v\r\nGET k\r\nGET"
    parser = RespParser()
    got = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        got += drain(parser)
    assert got == [[b"SET", b"k", b"v"], [b"GET", b"k"]]
    assert parser.consumed == len(b"SET k v\r\nGET k\r\n")
    assert parser.buffered == 3


def test_inline_empty_and_blank_lines_produce_nothing() -> None:
    parser = RespParser()
    blank = b"\r\n\n  \r\n\t\n \x0b\x0c \r\n"
    parser.feed(blank)
    assert parser.next_request() is NEED_DATA
    assert (parser.consumed, parser.buffered) == (len(blank), 0)


def test_inline_and_arrays_mixed() -> None:
    parser = RespParser()
    parser.feed(b"PING\r\n" + encode_command([b"GET", b"k"]) + b"\r\nGET j\n" + encode_command([b"X"]))
    assert drain(parser) == [[b"PING"], [b"GET", b"k"], [b"GET", b"j"], [b"X"]]


def test_inline_unbalanced_quotes_is_an_invalid_request_and_parsing_goes_on() -> None:
    parser = RespParser()
    parser.feed(b'SET k "abc\r\n' + encode_command([b"GET", b"k"]))
    request = parser.next_request()
    assert isinstance(request, InvalidRequest)
    assert isinstance(request.error, CommandError)
    assert request.error.message == UNBALANCED
    assert parser.next_request() == [b"GET", b"k"]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_inline_line_at_the_limit_is_accepted(ending: bytes) -> None:
    data = b"x" * 10 + ending
    whole = RespParser(max_inline=10)
    whole.feed(data)
    assert whole.next_request() == [b"x" * 10]
    pieces = RespParser(max_inline=10)
    for i in range(len(data) - 1):
        pieces.feed(data[i : i + 1])
        assert pieces.next_request() is NEED_DATA
    pieces.feed(data[-1:])
    assert pieces.next_request() == [b"x" * 10]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_inline_line_over_the_limit_with_its_line_end(ending: bytes) -> None:
    assert protocol_error(b"x" * 11 + ending, max_inline=10) == TOO_BIG_INLINE


def test_inline_line_over_the_limit_without_a_line_end() -> None:
    parser = RespParser(max_inline=10)
    parser.feed(b"x" * 10)
    assert parser.next_request() is NEED_DATA
    parser.feed(b"x")
    with pytest.raises(ProtocolError) as info:
        parser.next_request()
    assert info.value.message == TOO_BIG_INLINE


def test_inline_limit_is_per_line() -> None:
    parser = RespParser(max_inline=10)
    parser.feed((b"a" * 10 + b"\r\n") * 5 + b"b" * 10)
    assert drain(parser) == [[b"a" * 10]] * 5
    assert parser.buffered == 10


def test_inline_default_limit_is_max_inline_bytes() -> None:
    parser = RespParser()
    parser.feed(b"a" * MAX_INLINE_BYTES + b"\r\n")
    assert parser.next_request() == [b"a" * MAX_INLINE_BYTES]
    parser.feed(b"a" * (MAX_INLINE_BYTES + 1))
    with pytest.raises(ProtocolError):
        parser.next_request()


@pytest.mark.parametrize("data", [b"PING\r\n", b"\r\n", b" *1\r\n$1\r\nx\r\n", b"$1\r\nx\r\n"])
def test_without_inline_anything_but_an_array_is_a_protocol_error(data: bytes) -> None:
    message = protocol_error(data, inline=False)
    assert message.startswith(PROTOCOL_PREFIX)
    assert f"got '{chr(data[0])}'" in message


def test_without_inline_the_error_comes_after_the_whole_records_before_it() -> None:
    parser = RespParser(inline=False)
    parser.feed(encode_command([b"PING"]) + b"PING\r\n")
    assert parser.next_request() == [b"PING"]
    with pytest.raises(ProtocolError):
        parser.next_request()


# --- RespParser: errors worded as Redis words them ------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"*abc\r\n",
        b"*\r\n",
        b"*1.5\r\n",
        b"*1x\r\n",
        b"*0x10\r\n",
        b"*%d\r\n" % (MAX_MULTIBULK_COUNT + 1),
        b"*%d\r\n" % (2**63),
        # What Python's int() takes but Redis's string2ll does not.
        b"* 1\r\n",
        b"*1 \r\n",
        b"*+1\r\n",
        b"*1_0\r\n",
        b"*01\r\n",
        b"*-0\r\n",
        b"*\xd9\xa1\r\n",  # ARABIC-INDIC DIGIT ONE in UTF-8
    ],
)
def test_invalid_multibulk_length(header: bytes) -> None:
    assert protocol_error(header) == INVALID_MULTIBULK
    assert protocol_error(header, inline=False) == INVALID_MULTIBULK


@pytest.mark.parametrize(
    "bulk",
    [
        b"$-1\r\n",
        b"$-5\r\n",
        b"$abc\r\n",
        b"$\r\n",
        b"$3.0\r\n",
        b"$%d\r\n" % (MAX_BULK_BYTES + 1),
        b"$%d\r\n" % (2**64),
        b"$ 3\r\n",
        b"$3 \r\n",
        b"$+3\r\n",
        b"$0_3\r\n",
        b"$03\r\n",
        b"$-0\r\n",
    ],
)
def test_invalid_bulk_length(bulk: bytes) -> None:
    assert protocol_error(b"*1\r\n" + bulk + b"foo\r\n") == INVALID_BULK
    assert protocol_error(b"*2\r\n$1\r\nx\r\n" + bulk + b"foo\r\n", inline=False) == INVALID_BULK


@pytest.mark.parametrize(("got", "char"), [(b"x", "x"), (b":", ":"), (b"*", "*"), (b"\r", "\r"), (b"+", "+")])
def test_expected_dollar(got: bytes, char: str) -> None:
    expected = f"ERR Protocol error: expected '$', got '{char}'"
    assert protocol_error(b"*2\r\n$1\r\na\r\n" + got + b"1\r\n") == expected


def test_expected_dollar_is_raised_as_soon_as_the_byte_arrives() -> None:
    parser = RespParser()
    parser.feed(b"*1\r\n")
    assert parser.next_request() is NEED_DATA
    parser.feed(b"x")
    with pytest.raises(ProtocolError) as info:
        parser.next_request()
    assert info.value.message == "ERR Protocol error: expected '$', got 'x'"


@pytest.mark.parametrize("after", [b"XY", b"\rX", b"X\n", b"\n\r", b"\n\n"])
def test_bulk_not_followed_by_crlf(after: bytes) -> None:
    message = protocol_error(b"*1\r\n$3\r\nfoo" + after)
    assert message.startswith(PROTOCOL_PREFIX)


def test_bulk_not_followed_by_crlf_byte_by_byte() -> None:
    data = b"*1\r\n$3\r\nfooXY"
    parser = RespParser()
    for i in range(len(data) - 1):
        parser.feed(data[i : i + 1])
        assert parser.next_request() is NEED_DATA
    parser.feed(data[-1:])
    with pytest.raises(ProtocolError):
        parser.next_request()


# Whole frames that hiredis's reader returns a value for but Redis refuses:
# each must get the Python parser's (Redis's) error in either mode.
@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
        (b"*1\r\n:5\r\n", "expected '$', got ':'"),
        (b"*1\r\n-ERR x\r\n", "expected '$', got '-'"),
        (b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n#t\r\n", "expected '$', got '#'"),
        (b"*1\r\n_\r\n", "expected '$', got '_'"),
        (b"*1\r\n,1.5\r\n", "expected '$', got ','"),
        (b"*1\r\n%1\r\n$1\r\na\r\n$1\r\nb\r\n", "expected '$', got '%'"),
        (b"*1\r\n|1\r\n+a\r\n+b\r\n$4\r\nPING\r\n", "expected '$', got '|'"),
        (b"*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n", "bulk string not terminated by CRLF"),
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\n\n", "bulk string not terminated by CRLF"),
    ],
)
def test_what_hiredis_would_take_gets_redis_errors(frame: bytes, message: str) -> None:
    for prefix in (b"", b"*1\r\n$4\r\nPING\r\n"):
        parser = RespParser()
        parser.feed(prefix + frame)
        if prefix:
            assert parser.next_request() == [b"PING"]
        with pytest.raises(ProtocolError) as info:
            parser.next_request()
        assert info.value.message == PROTOCOL_PREFIX + message


def use_hiredis(monkeypatch) -> None:
    """For tests about the hiredis path itself, in either mode."""
    if HIREDIS is None:
        pytest.skip("hiredis is not installed (pip install hiredis, or make install)")
    monkeypatch.setattr(resp, "hiredis", HIREDIS)


def test_hiredis_finds_whole_arrays(monkeypatch) -> None:
    """With hiredis installed, the Python array parser never runs for
    canonical arrays already in the buffer (else the fast path is dead)."""
    use_hiredis(monkeypatch)
    parser = RespParser()
    parser.feed(b"*1\r\n$4\r\nPI")  # a partial frame: the Python parser's
    assert parser.next_request() is NEED_DATA
    parser.feed(b"NG\r\n")
    assert parser.next_request() == [b"PING"]

    def refuse(self) -> bool:
        raise AssertionError("the Python array parser ran")

    monkeypatch.setattr(RespParser, "_start_array", refuse)
    parser.feed(STREAM * 3)
    assert drain(parser) == RECORDS * 3
    assert parser.consumed == len(b"*1\r\n$4\r\nPING\r\n") + 3 * len(STREAM)


def test_hiredis_is_not_given_big_arrays(monkeypatch) -> None:
    """hiredis allocates an array's list from its header: a client sending
    "*1000000" headers must not make it do that on every read (it made the
    socket fuzzer 7x slower). Arrays of 100 elements or more go the Python way."""
    use_hiredis(monkeypatch)

    def refuse(self) -> None:
        raise AssertionError("hiredis was given a big array")

    monkeypatch.setattr(RespParser, "_next_array_fast", refuse)
    big = [b"MSET"] + [b"k"] * 99
    parser = RespParser()
    parser.feed(encode_command(big) + b"*1000000\r\n$1\r\nx\r\n")
    assert parser.next_request() == big
    assert parser.next_request() is NEED_DATA


def test_bulk_shorter_than_declared_waits_for_more() -> None:
    # "$5\r\nfoo\r\n" is not an error yet: the CRLF may be data.
    parser = RespParser()
    parser.feed(b"*1\r\n$5\r\nfoo\r\n")
    assert parser.next_request() is NEED_DATA
    parser.feed(b"\r\n")
    assert parser.next_request() == [b"foo\r\n"]


def test_too_big_count_strings() -> None:
    too_big_mbulk = "ERR Protocol error: too big mbulk count string"
    too_big_bulk = "ERR Protocol error: too big bulk count string"
    assert protocol_error(b"*" + b"1" * 11, max_inline=10) == too_big_mbulk
    assert protocol_error(b"*1\r\n$" + b"1" * 10, max_inline=10) == too_big_bulk
    parser = RespParser(max_inline=10)
    parser.feed(b"*" + b"1" * 9)  # exactly at the limit: still waiting
    assert parser.next_request() is NEED_DATA


# --- properties -----------------------------------------------------------------


_args = st.lists(st.binary(max_size=20), min_size=1, max_size=6)
_cuts = st.lists(st.integers(min_value=0, max_value=400), max_size=12)


@PROPERTY
@given(st.lists(_args, max_size=8), _cuts, st.booleans())
def test_encoded_commands_parse_back(commands: list[list[bytes]], cuts: list[int], inline: bool) -> None:
    data = b"".join(encode_command(c) for c in commands)
    parser = RespParser(inline=inline)
    got: list[object] = []
    bounds = [0, *sorted({c for c in cuts if c <= len(data)}), len(data)]
    for start, end in zip(bounds, bounds[1:]):
        parser.feed(data[start:end])
        got += drain(parser)
        assert parser.consumed + parser.buffered == end
    assert got == commands
    assert parser.consumed == len(data)
    assert parser.buffered == 0


# Streams built mostly from the pieces of RESP, so that the parser's states
# are all reached, with random bytes among them.
_resp_pieces = st.one_of(
    st.sampled_from(
        [b"*", b"$", b"\r\n", b"\r", b"\n", b"0", b"1", b"2", b"3", b"-1", b"-"]
        + [b"x", b" ", b'"', b"'", b"\\", b"PING"]
    ),
    st.binary(max_size=4),
    _args.map(encode_command),
)
_resp_streams = st.one_of(st.binary(max_size=80), st.lists(_resp_pieces, max_size=30).map(b"".join))


@PROPERTY
@given(_resp_streams, _cuts, st.booleans(), st.sampled_from([4, 16, MAX_INLINE_BYTES]))
def test_any_bytes_parse_or_raise_the_protocol_error(
    data: bytes, cuts: list[int], inline: bool, max_inline: int
) -> None:
    parser = RespParser(inline=inline, max_inline=max_inline)
    try:
        for start, end in spans(data, cuts):
            parser.feed(data[start:end])
            while (request := parser.next_request()) is not NEED_DATA:
                if isinstance(request, InvalidRequest):
                    assert inline
                    assert request.error.message == UNBALANCED
                else:
                    assert isinstance(request, list) and request
                    assert all(type(arg) is bytes for arg in request)
                assert 0 <= parser.consumed <= end
            assert parser.consumed + parser.buffered == end
    except ProtocolError as exc:
        assert exc.message.startswith(PROTOCOL_PREFIX)


@PROPERTY
@given(_resp_streams, _cuts, st.booleans())
def test_splitting_the_input_changes_nothing(data: bytes, cuts: list[int], inline: bool) -> None:
    # With the default limits; a tiny limit can turn an invalid count into a
    # "too big" one, as in Redis, though both are protocol errors.
    whole = feed_in_pieces(data, [], inline=inline)
    assert feed_in_pieces(data, cuts, inline=inline) == whole
    assert feed_in_pieces(data, list(range(len(data))), inline=inline) == whole


@PROPERTY
@given(st.lists(_args, min_size=1, max_size=6), st.data())
def test_a_torn_tail_leaves_consumed_at_the_last_whole_record(
    commands: list[list[bytes]], data: st.DataObject
) -> None:
    # What the log replay relies on: cut anywhere, consumed is a record end.
    records = [encode_command(c) for c in commands]
    stream = b"".join(records)
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    parser = RespParser(inline=False)
    parser.feed(stream[:cut])
    got = drain(parser)
    ends = [0, *record_ends(records)]
    whole = max(i for i, e in enumerate(ends) if e <= cut)
    assert got == commands[:whole]
    assert parser.consumed == ends[whole]
    assert parser.buffered == cut - ends[whole]


# --- encode_reply ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (OK, b"+OK\r\n"),
        (Status("PONG"), b"+PONG\r\n"),
        (0, b":0\r\n"),
        (42, b":42\r\n"),
        (-7, b":-7\r\n"),
        (None, b"$-1\r\n"),
        (b"", b"$0\r\n\r\n"),
        (b"value", b"$5\r\nvalue\r\n"),
        (b"a\r\nb\x00", b"$5\r\na\r\nb\x00\r\n"),
        ([], b"*0\r\n"),
        ([b"a", None, 1], b"*3\r\n$1\r\na\r\n$-1\r\n:1\r\n"),
        ([[b"a"], []], b"*2\r\n*1\r\n$1\r\na\r\n*0\r\n"),
        (CommandError("ERR syntax error"), b"-ERR syntax error\r\n"),
        (CommandError("ERR bad\r\nthing\n"), b"-ERR bad  thing \r\n"),
        (ProtocolError(INVALID_BULK), b"-" + INVALID_BULK.encode() + b"\r\n"),
        ([OK, CommandError("ERR e")], b"*2\r\n+OK\r\n-ERR e\r\n"),
    ],
)
def test_encode_reply(reply: object, expected: bytes) -> None:
    assert encode_reply(reply) == expected


@pytest.mark.parametrize("reply", [object(), (b"a",), {1, 2}])
def test_encode_reply_rejects_unknown_types(reply: object) -> None:
    with pytest.raises(TypeError):
        encode_reply(reply)


@PROPERTY
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=6))
def test_a_reply_array_of_bulks_is_a_request(values: list[bytes]) -> None:
    # A RESP2 array of bulk strings is exactly the request framing.
    assert encode_reply(values) == encode_command(values)
    parser = RespParser(inline=False)
    parser.feed(encode_reply(values))
    assert parser.next_request() == values


# -- RESP3 and the richer reply types -----------------------------------------------


@pytest.mark.parametrize(
    "reply, resp2, resp3",
    [
        (None, b"$-1\r\n", b"_\r\n"),
        (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
        (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
        ({b"a": 1}, b"*2\r\n$1\r\na\r\n:1\r\n", b"%1\r\n$1\r\na\r\n:1\r\n"),
        (SetReply([b"x"]), b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
        (True, b":1\r\n", b"#t\r\n"),
        ([None, 2.0], b"*2\r\n$-1\r\n$1\r\n2\r\n", b"*2\r\n_\r\n,2\r\n"),
    ],
)
def test_reply_types_in_resp2_and_resp3(reply, resp2, resp3):
    assert encode_reply(reply, 2) == resp2
    assert encode_reply(reply, 3) == resp3


# -- before AUTH: Redis's limits for a client that has not authenticated ---------------


def _stranger() -> RespParser:
    parser = RespParser()
    parser.set_authenticated(False)
    return parser


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*11\r\n", "ERR Protocol error: unauthenticated multibulk length"),
        (b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", "ERR Protocol error: unauthenticated bulk length"),
        (b"*1\r\n$100000000\r\n", "ERR Protocol error: unauthenticated bulk length"),
        # Past Redis's own limits the usual errors still come first.
        (b"*2000000\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n$600000000\r\n", "ERR Protocol error: invalid bulk length"),
    ],
)
def test_a_stranger_may_not_declare_big_requests(data: bytes, message: str) -> None:
    # Refused from the header alone: nothing is read or allocated for it.
    parser = _stranger()
    parser.feed(data)
    with pytest.raises(ProtocolError) as raised:
        parser.next_request()
    assert raised.value.message == message


def test_a_stranger_gets_the_limits_themselves() -> None:
    parser = _stranger()
    parser.feed(frame(*[b"x"] * 10) + frame(b"AUTH", b"p" * 16384))
    assert drain(parser) == [[b"x"] * 10, [b"AUTH", b"p" * 16384]]


def test_the_full_limits_apply_from_the_next_request_once_authenticated() -> None:
    parser = _stranger()
    big = frame(b"SET", b"k", b"v" * 100_000)
    parser.feed(frame(b"AUTH", b"pw") + big)
    assert parser.next_request() == [b"AUTH", b"pw"]
    parser.set_authenticated(True)  # what the reactor does once AUTH has run
    assert drain(parser) == [[b"SET", b"k", b"v" * 100_000]]
    parser.set_authenticated(False)  # RESET
    parser.feed(b"*11\r\n")
    with pytest.raises(ProtocolError):
        parser.next_request()
