"""Tests for kvserver/protocol/text.py: the mini_redis text protocol.

The parser is fed input whole, byte by byte and with trailing data (h11's
test_io.py does the same); the splitting rules are checked against a
transliteration of Redis's ``sdssplitargs`` and the quoting against
``sdscatrepr``, so "as redis-cli does it" is tested, not just asserted.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvserver.config import MAX_INLINE_BYTES
from kvserver.errors import CommandError, ProtocolError
from kvserver.protocol import NEED_DATA, OK, Status
from kvserver.protocol.text import InvalidRequest, TextParser, encode_reply, quote, split_args
from tests.support import drain, feed_split, normal, spans

UNBALANCED = "ERR Protocol error: unbalanced quotes in request"
TOO_BIG = "ERR Protocol error: too big inline request"

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- references: Redis's C code, transliterated --------------------------------

_ISSPACE = b" \t\n\r\x0b\x0c"
_HEXDIGITS = b"0123456789abcdefABCDEF"
_ESCAPED = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def sdssplitargs(line: bytes) -> list[bytes] | None:
    """Redis's sdssplitargs (src/sds.c) line for line; None where it fails.

    The end of ``line`` plays the part of C's terminating NUL; a NUL byte
    inside the line is kept as a literal byte (the one intended difference).
    """
    n = len(line)

    def at(k: int) -> int | None:
        return line[k] if k < n else None

    p = 0
    args: list[bytes] = []
    while True:
        while p < n and line[p] in _ISSPACE:
            p += 1
        if p >= n:
            return args
        inq = insq = done = False
        current = bytearray()
        while not done:
            c = at(p)
            if inq:
                nxt = at(p + 1)
                if (
                    c == ord("\\")
                    and nxt == ord("x")
                    and at(p + 2) is not None
                    and at(p + 2) in _HEXDIGITS
                    and at(p + 3) is not None
                    and at(p + 3) in _HEXDIGITS
                ):
                    current.append(int(line[p + 2 : p + 4], 16))
                    p += 3
                elif c == ord("\\") and nxt is not None:
                    p += 1
                    current.append(_ESCAPED.get(line[p], line[p]))
                elif c == ord('"'):
                    if nxt is not None and nxt not in _ISSPACE:
                        return None
                    done = True
                elif c is None:
                    return None
                else:
                    current.append(c)
            elif insq:
                nxt = at(p + 1)
                if c == ord("\\") and nxt == ord("'"):
                    p += 1
                    current.append(ord("'"))
                elif c == ord("'"):
                    if nxt is not None and nxt not in _ISSPACE:
                        return None
                    done = True
                elif c is None:
                    return None
                else:
                    current.append(c)
            else:
                # Only these end an unquoted token: not \v or \f, although
                # the skip of leading blanks above (isspace) passes them.
                if c is None or c in b" \n\r\t":
                    done = True
                elif c == ord('"'):
                    inq = True
                elif c == ord("'"):
                    insq = True
                else:
                    current.append(c)
            if at(p) is not None:
                p += 1
        args.append(bytes(current))


def sdscatrepr(value: bytes) -> bytes:
    """Redis's sdscatrepr (src/sds.c): how redis-cli prints a string."""
    out = bytearray(b'"')
    for b in value:
        if b in b'\\"':
            out += b"\\" + bytes([b])
        elif b in b"\n\r\t\a\b":
            out += {10: b"\\n", 13: b"\\r", 9: b"\\t", 7: b"\\a", 8: b"\\b"}[b]
        elif 0x20 <= b <= 0x7E:  # isprint() in the C locale
            out.append(b)
        else:
            out += b"\\x%02x" % b
    return bytes(out + b'"')


def feed_in_pieces(data: bytes, cuts: list[int], **kwargs: int) -> tuple[list[object], str | None]:
    """Feed ``data`` split at ``cuts``; the outcomes and the protocol error, if any."""
    outcomes, error = feed_split(TextParser(**kwargs), data, cuts)
    return outcomes, None if error is None else error.message


# --- split_args ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"SET k v", [b"SET", b"k", b"v"]),
        (b"  SET   k\tv  ", [b"SET", b"k", b"v"]),
        (b"GET k\r", [b"GET", b"k"]),
        (b"", []),
        (b" \t\r ", []),
        (b'SET k "hello world"', [b"SET", b"k", b"hello world"]),
        (b"SET k 'hello world'", [b"SET", b"k", b"hello world"]),
        (b'SET k ""', [b"SET", b"k", b""]),
        (b"SET k ''", [b"SET", b"k", b""]),
        (b'"a" "b"', [b"a", b"b"]),
        (b'"a"\t"b"\r', [b"a", b"b"]),
        # Escapes inside double quotes.
        (rb'"a\nb"', [b"a\nb"]),
        (rb'"\r\t\b\a"', [b"\r\t\x08\x07"]),
        (rb'"\"q\""', [b'"q"']),
        (rb'"back\\slash"', [b"back\\slash"]),
        (rb'"\x41\x6a\x6A\xff\x00"', [b"Ajj\xff\x00"]),
        # \x with fewer than two hex digits is just an escaped 'x'.
        (rb'"\x4"', [b"x4"]),
        (rb'"\xg1"', [b"xg1"]),
        (rb'"\x"', [b"x"]),
        # Any other escaped byte stands for itself.
        (rb'"\q\'\ "', [b"q' "]),
        # Single quotes: only \' is an escape; everything else is literal.
        (rb"'it\'s'", [b"it's"]),
        (rb"'a\nb\\c\x41'", [b"a\\nb\\\\c\\x41"]),
        (b"'say \"hi\"'", [b'say "hi"']),
        (b"\"it's\"", [b"it's"]),
        # A quote may start in the middle of a token.
        (b'foo"bar baz"', [b"foobar baz"]),
        (b"foo'bar baz' x", [b"foobar baz", b"x"]),
        # A closing quote followed by whitespace, \v and \f included (isspace).
        (b'"a"\x0bb', [b"a", b"b"]),
        (b'"a"\x0cb', [b"a", b"b"]),
        # NUL and bytes >= 0x80 are kept as they are.
        (b"a\x00b \xff\xfe", [b"a\x00b", b"\xff\xfe"]),
        (b'"a\x00b" \xc3\xa9', [b"a\x00b", b"\xc3\xa9"]),
    ],
)
def test_split_args(line: bytes, expected: list[bytes]) -> None:
    assert split_args(line) == expected
    assert sdssplitargs(line) == expected  # the reference agrees


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Unquoted, only space, \t, \r and \n end a token; \v and \f are
        # skipped between tokens but are part of a token they are inside.
        (b"SET k a\x0bb", [b"SET", b"k", b"a\x0bb"]),
        (b"SET k a\x0cb", [b"SET", b"k", b"a\x0cb"]),
        (b"\x0b\x0cSET \x0b k\x0c \x0b", [b"SET", b"k\x0c"]),
        (b'SET "k" a\x0bb', [b"SET", b"k", b"a\x0bb"]),
    ],
)
def test_split_args_vertical_tab_and_form_feed(line: bytes, expected: list[bytes]) -> None:
    assert split_args(line) == expected
    assert sdssplitargs(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        b'SET k "abc',  # unterminated
        b"SET k 'abc",
        b'"',
        b"'",
        b'SET k "abc\\"',  # the closing quote is escaped
        b"SET k 'abc\\'",
        b'SET k "a\\',  # a backslash as the last byte
        b'SET k "\\x4',  # a \x escape cut short by the end of the line
        b'SET k "\\x',
        b'SET k "\\x4f',
        b'"foo"bar',  # a closing quote must be followed by whitespace or the end
        b"'foo'bar",
        b'"foo""bar"',
        b"'foo''bar'",
        b'"foo"\x00',  # NUL is a byte like any other, not the end of the line
        b'"a" "b"c d',
    ],
)
def test_split_args_unbalanced_quotes(line: bytes) -> None:
    with pytest.raises(CommandError) as info:
        split_args(line)
    assert info.value.message == UNBALANCED
    assert sdssplitargs(line) is None


# Lines built mostly from the bytes that matter to the splitter.
_special_lines = st.lists(
    st.sampled_from(
        [b" ", b"\t", b"\r", b"\n", b"\x0b", b"\x0c", b"\x00", b'"', b"'", b"\\"]
        + [b"x", b"A", b"f", b"0", b"n", b"\xff", b"ab", b'"\\x4']
    ),
    max_size=24,
).map(b"".join)


@PROPERTY
@given(st.one_of(_special_lines, st.binary(max_size=40)))
def test_split_args_matches_sdssplitargs(line: bytes) -> None:
    expected = sdssplitargs(line)
    if expected is None:
        with pytest.raises(CommandError):
            split_args(line)
    else:
        assert split_args(line) == expected


# --- TextParser ----------------------------------------------------------------


STREAM = b'SET k "hello world"\r\nGET k\nDEL  a b\r\n'
STREAM_REQUESTS = [[b"SET", b"k", b"hello world"], [b"GET", b"k"], [b"DEL", b"a", b"b"]]


def test_parser_whole() -> None:
    parser = TextParser()
    parser.feed(STREAM)
    assert drain(parser) == STREAM_REQUESTS
    assert parser.next_request() is NEED_DATA
    assert parser.buffered == 0


def test_parser_byte_by_byte() -> None:
    parser = TextParser()
    got = []
    for i in range(len(STREAM)):
        parser.feed(STREAM[i : i + 1])
        got += drain(parser)
        # Nothing comes out before its line end has arrived.
        assert len(got) == STREAM[: i + 1].count(b"\n")
    assert got == STREAM_REQUESTS
    assert parser.buffered == 0


def test_parser_trailing_partial_request_stays_buffered() -> None:
    parser = TextParser()
    parser.feed(b"GET a\r\nSET b \"x y")
    assert parser.next_request() == [b"GET", b"a"]
    assert parser.next_request() is NEED_DATA
    assert parser.buffered == len(b'SET b "x y')
    parser.feed(b'"\r')
    assert parser.next_request() is NEED_DATA
    parser.feed(b"\nGET")
    assert parser.next_request() == [b"SET", b"b", b"x y"]
    assert parser.next_request() is NEED_DATA
    assert parser.buffered == 3


def test_parser_next_request_on_nothing() -> None:
    parser = TextParser()
    assert parser.next_request() is NEED_DATA
    parser.feed(b"")
    assert parser.next_request() is NEED_DATA
    assert parser.buffered == 0


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_parser_line_endings(ending: bytes) -> None:
    parser = TextParser()
    parser.feed(b"PING" + ending + b"ECHO 'a b'" + ending)
    assert drain(parser) == [[b"PING"], [b"ECHO", b"a b"]]


def test_parser_cr_alone_is_not_a_line_end() -> None:
    parser = TextParser()
    parser.feed(b"PING\rECHO x\r")
    assert parser.next_request() is NEED_DATA
    parser.feed(b"\n")
    assert parser.next_request() == [b"PING", b"ECHO", b"x"]


def test_parser_skips_empty_and_blank_lines() -> None:
    parser = TextParser()
    parser.feed(b"\n\r\n   \r\n\t\t\n \x0b\x0c \r\n")
    assert parser.next_request() is NEED_DATA
    assert parser.buffered == 0
    parser.feed(b"\r\n\nPING\r\n\r\n")
    assert drain(parser) == [[b"PING"]]
    assert parser.buffered == 0


def test_parser_many_requests_in_one_feed() -> None:
    parser = TextParser()
    parser.feed(b"".join(b"SET key:%d %d\r\n" % (i, i) for i in range(2000)))
    got = drain(parser)
    assert got == [[b"SET", b"key:%d" % i, b"%d" % i] for i in range(2000)]
    assert parser.buffered == 0


def test_parser_unbalanced_quotes_is_an_invalid_request_and_parsing_goes_on() -> None:
    parser = TextParser()
    parser.feed(b'SET k "abc\r\nSET k "a"b\nGET k\r\n')
    for _ in range(2):
        request = parser.next_request()
        assert isinstance(request, InvalidRequest)
        assert isinstance(request.error, CommandError)
        assert not isinstance(request.error, ProtocolError)
        assert request.error.message == UNBALANCED
    assert parser.next_request() == [b"GET", b"k"]
    assert parser.next_request() is NEED_DATA


def test_parser_keeps_nul_and_high_bytes() -> None:
    parser = TextParser()
    parser.feed(b"SET k\x00 \xff\xfe\x80\r\n")
    assert parser.next_request() == [b"SET", b"k\x00", b"\xff\xfe\x80"]


# -- the line limit --


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_line_at_the_limit_is_accepted(ending: bytes) -> None:
    parser = TextParser(max_line=10)
    parser.feed(b"x" * 10 + ending)
    assert parser.next_request() == [b"x" * 10]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_line_at_the_limit_is_accepted_byte_by_byte(ending: bytes) -> None:
    parser = TextParser(max_line=10)
    data = b"x" * 10 + ending
    for i in range(len(data) - 1):
        parser.feed(data[i : i + 1])
        assert parser.next_request() is NEED_DATA
    parser.feed(data[-1:])
    assert parser.next_request() == [b"x" * 10]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_line_over_the_limit_with_its_line_end(ending: bytes) -> None:
    parser = TextParser(max_line=10)
    parser.feed(b"x" * 11 + ending)
    with pytest.raises(ProtocolError) as info:
        parser.next_request()
    assert info.value.message == TOO_BIG


def test_line_over_the_limit_without_a_line_end() -> None:
    parser = TextParser(max_line=10)
    parser.feed(b"x" * 10)
    assert parser.next_request() is NEED_DATA
    parser.feed(b"x")
    with pytest.raises(ProtocolError) as info:
        parser.next_request()
    assert info.value.message == TOO_BIG


def test_line_over_the_limit_fed_byte_by_byte_fails_at_the_first_byte_past_it() -> None:
    parser = TextParser(max_line=10)
    for _ in range(10):
        parser.feed(b"y")
        assert parser.next_request() is NEED_DATA
    parser.feed(b"y")
    with pytest.raises(ProtocolError):
        parser.next_request()


def test_cr_past_the_limit_is_still_too_big() -> None:
    # A CR right after max_line bytes may end the line; one after more may not.
    parser = TextParser(max_line=10)
    parser.feed(b"x" * 11 + b"\r")
    with pytest.raises(ProtocolError):
        parser.next_request()
    parser = TextParser(max_line=10)
    parser.feed(b"x" * 10 + b"\r")
    assert parser.next_request() is NEED_DATA
    parser.feed(b"x")
    with pytest.raises(ProtocolError):
        parser.next_request()


def test_requests_before_a_too_long_line_are_returned_first() -> None:
    parser = TextParser(max_line=10)
    parser.feed(b"PING\r\nGET k\r\n" + b"z" * 20)
    assert parser.next_request() == [b"PING"]
    assert parser.next_request() == [b"GET", b"k"]
    with pytest.raises(ProtocolError):
        parser.next_request()


def test_the_limit_is_per_line_not_per_buffer() -> None:
    parser = TextParser(max_line=10)
    parser.feed((b"a" * 10 + b"\r\n") * 5 + b"b" * 10)
    assert drain(parser) == [[b"a" * 10]] * 5
    assert parser.buffered == 10
    parser.feed(b"\n")
    assert parser.next_request() == [b"b" * 10]


def test_default_limit_is_max_inline_bytes() -> None:
    parser = TextParser()
    parser.feed(b"a" * MAX_INLINE_BYTES + b"\r\n")
    assert parser.next_request() == [b"a" * MAX_INLINE_BYTES]
    parser.feed(b"a" * (MAX_INLINE_BYTES + 1))
    with pytest.raises(ProtocolError):
        parser.next_request()


# -- properties --


_text_streams = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.sampled_from(
            [b"SET", b"GET", b" ", b"\t", b"\r", b"\n", b"\r\n", b'"', b"'", b"\\", b"\\x4", b"k", b"\xff", b"\x00"]
        ),
        max_size=40,
    ).map(b"".join),
)


_cuts = st.lists(st.integers(min_value=0, max_value=80), max_size=10)
_max_lines = st.sampled_from([4, 16, 1000])


@PROPERTY
@given(_text_streams, _cuts, _max_lines)
def test_any_bytes_parse_or_raise_the_protocol_error(data: bytes, cuts: list[int], max_line: int) -> None:
    parser = TextParser(max_line=max_line)
    try:
        for start, end in spans(data, cuts):
            parser.feed(data[start:end])
            while (request := parser.next_request()) is not NEED_DATA:
                if isinstance(request, InvalidRequest):
                    assert request.error.message == UNBALANCED
                else:
                    assert isinstance(request, list) and request
                    assert all(type(arg) is bytes for arg in request)
    except ProtocolError as exc:
        assert exc.message == TOO_BIG


@PROPERTY
@given(_text_streams, _cuts, _max_lines)
def test_splitting_the_input_changes_nothing(data: bytes, cuts: list[int], max_line: int) -> None:
    assert feed_in_pieces(data, cuts, max_line=max_line) == feed_in_pieces(data, [], max_line=max_line)
    byte_by_byte = feed_in_pieces(data, list(range(len(data))), max_line=max_line)
    assert byte_by_byte == feed_in_pieces(data, [], max_line=max_line)


@PROPERTY
@given(
    st.lists(_special_lines.filter(lambda line: b"\n" not in line), min_size=1, max_size=5),
    st.sampled_from([b"\n", b"\r\n"]),
)
def test_parser_splits_each_line_like_redis(lines: list[bytes], ending: bytes) -> None:
    # Redis drops the CR of a CRLF and splits the rest with sdssplitargs.
    expected: list[object] = []
    for line in lines:
        args = sdssplitargs(line)
        if args is None:
            expected.append(("invalid", UNBALANCED))
        elif args:
            expected.append(args)
    parser = TextParser()
    parser.feed(b"".join(line + ending for line in lines))
    assert [normal(o) for o in drain(parser)] == expected


# --- quote ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [b"hello", b"42", b"-1", b"a:b-c_d.e", b"NIL", b"nil2", b"~!#$%&()*+,/;<=>?@[]^`{|}", b"x" * 1000]
)
def test_quote_leaves_plain_values_alone(value: bytes) -> None:
    assert quote(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"", b'""'),
        (b"nil", b'"nil"'),
        (b"hello world", b'"hello world"'),
        (b" ", b'" "'),
        (b"a\tb", b'"a\\tb"'),
        (b"\n\r\t\a\b", b'"\\n\\r\\t\\a\\b"'),
        (b'say "hi"', b'"say \\"hi\\""'),
        (b"it's", b'"it\'s"'),
        (b"back\\slash", b'"back\\\\slash"'),
        (b"\x00", b'"\\x00"'),
        (b"\x0b\x0c\x1b\x7f", b'"\\x0b\\x0c\\x1b\\x7f"'),
        (b"\x80\xab\xff", b'"\\x80\\xab\\xff"'),
        (b"caf\xc3\xa9", b'"caf\\xc3\\xa9"'),
    ],
)
def test_quote_escapes_like_redis_cli(value: bytes, expected: bytes) -> None:
    assert quote(value) == expected
    assert sdscatrepr(value) == expected


def test_quote_every_single_byte() -> None:
    for byte in range(256):
        value = bytes([byte])
        if 0x21 <= byte <= 0x7E and value not in (b'"', b"'", b"\\"):
            assert quote(value) == value
        else:
            assert quote(value) == sdscatrepr(value)
        assert split_args(b"SET k " + quote(value)) == [b"SET", b"k", value]


@PROPERTY
@given(st.binary(max_size=64))
def test_quote_is_plain_or_sdscatrepr(value: bytes) -> None:
    quoted = quote(value)
    assert quoted == value or quoted == sdscatrepr(value)
    if quoted == value:
        assert value and value != b"nil"
        assert b" " not in value and b'"' not in value and b"'" not in value and b"\\" not in value


@PROPERTY
@given(st.one_of(st.binary(max_size=64), _special_lines))
def test_quote_round_trips_through_split_args(value: bytes) -> None:
    assert split_args(b"SET k " + quote(value)) == [b"SET", b"k", value]
    parser = TextParser()
    parser.feed(b"SET k " + quote(value) + b"\r\n")
    assert parser.next_request() == [b"SET", b"k", value]


# --- encode_reply --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (OK, b"OK\r\n"),
        (Status("PONG"), b"PONG\r\n"),
        (0, b"0\r\n"),
        (42, b"42\r\n"),
        (-7, b"-7\r\n"),
        (2**70, b"1180591620717411303424\r\n"),
        (None, b"nil\r\n"),
        (b"value", b"value\r\n"),
        (b"", b'""\r\n'),
        (b"nil", b'"nil"\r\n'),
        (b"two words", b'"two words"\r\n'),
        (b"line\r\nbreak", b'"line\\r\\nbreak"\r\n'),
        ([], b"\r\n"),
        ([b"a", b"b c", None, 3, OK], b'a "b c" nil 3 OK\r\n'),
        ([b"a", [b"b", [b"c"]], b"d"], b"a b c d\r\n"),
        ([[], b"a", [], [[]], b"b", []], b"a b\r\n"),
        ([b"", b"x"], b'"" x\r\n'),
        (CommandError("ERR syntax error"), b"ERR syntax error\r\n"),
        (CommandError("ERR bad\r\nthing\nhere\r"), b"ERR bad  thing here \r\n"),
        (ProtocolError(TOO_BIG), TOO_BIG.encode() + b"\r\n"),
        ([b"x", CommandError("ERR e")], b"x ERR e\r\n"),
    ],
)
def test_encode_reply(reply: object, expected: bytes) -> None:
    assert encode_reply(reply) == expected


@PROPERTY
@given(
    st.recursive(
        st.one_of(st.binary(max_size=8), st.integers(), st.none()),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=12,
    )
)
def test_encode_reply_is_one_line(reply: object) -> None:
    line = encode_reply(reply)
    assert line.endswith(b"\r\n")
    assert b"\n" not in line[:-2] and b"\r" not in line[:-2]


@PROPERTY
@given(st.lists(st.binary(min_size=0, max_size=10), min_size=1, max_size=6))
def test_encoded_flat_list_of_strings_splits_back(values: list[bytes]) -> None:
    # What a multi-value reply prints can be pasted back as arguments.
    assert split_args(encode_reply(values)) == values


@pytest.mark.parametrize("reply", [object(), {"a": 1}, (b"a",)])
def test_encode_reply_rejects_unknown_types(reply: object) -> None:
    with pytest.raises(TypeError):
        encode_reply(reply)


def test_before_auth_lines_are_limited_to_16_kib() -> None:
    parser = TextParser()
    parser.set_authenticated(False)
    parser.feed(b"AUTH " + b"p" * (16 * 1024 - 5) + b"\r\n")  # 16384 bytes: allowed
    assert drain(parser) == [[b"AUTH", b"p" * (16 * 1024 - 5)]]
    parser.feed(b"x" * (16 * 1024 + 1))  # no line end yet, and already too long
    with pytest.raises(ProtocolError) as raised:
        parser.next_request()
    assert raised.value.message == "ERR Protocol error: too big inline request"
    parser = TextParser()
    parser.set_authenticated(False)
    parser.set_authenticated(True)
    parser.feed(b"SET k " + b"v" * 60_000 + b"\n")
    assert drain(parser) == [[b"SET", b"k", b"v" * 60_000]]
