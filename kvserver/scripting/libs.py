"""The libraries Redis 7.0 gives scripts beside Lua's own: ``cjson`` and ``bit``.

Written in Python and called from Lua through thin wrappers (engine.py):
a function here returns its results, or ``(FAIL, message)`` for a Lua error
that the wrapper raises at the script's line, as the C libraries do.

* ``cjson`` follows lua-cjson 2.1 as Redis builds it: numbers printed with
  ``%.14g``, ``/`` escaped, ``cjson.null`` for JSON null, sparse arrays
  refused past lua-cjson's ratio, nesting capped at 1000.
* ``bit`` follows LuaBitOp 1.0: 32-bit two's complement, shift counts
  taken mod 32, ``tohex`` with a digit count (negative: upper case).
"""

from __future__ import annotations

import json
import math

import lupa.lua51 as lua51

FAIL = b"\x00kvserver-lua-error\x00"  # first result: "raise the second one"
_lua_type = lua51.lua_type

# lua-cjson's defaults (encode_sparse_array): an array whose highest index
# is over SPARSE_SAFE and over SPARSE_RATIO times its item count is refused.
SPARSE_RATIO = 2
SPARSE_SAFE = 10
MAX_DEPTH = 1000  # lua-cjson's encode/decode_max_depth

_ESCAPES = {ord('"'): '\\"', ord("\\"): "\\\\", ord("/"): "\\/", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t"}
for _code in range(32):
    _ESCAPES.setdefault(_code, "\\u%04x" % _code)
_ESCAPES[127] = "\\u007f"


def format_number(value: float | int) -> str:
    """A number as lua-cjson writes it (``%.14g``)."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise _Fail("Cannot serialise number: must not be NaN or Inf")
    text = "%.14g" % value
    return text


class _Fail(Exception):
    pass


class Cjson:
    """cjson.encode / cjson.decode for one Lua state (``null`` is that
    state's cjson.null)."""

    def __init__(self, runtime, null: object) -> None:
        self._runtime = runtime
        self.null = null

    def encode(self, *args):
        if len(args) != 1:
            return FAIL, b"bad argument #1 to 'encode' (expected 1 argument)"
        try:
            return "".join(self._encode(args[0], 0)).encode("latin-1")
        except _Fail as exc:
            return FAIL, str(exc).encode()

    def _encode(self, value, depth: int):
        kind = type(value)
        if kind is bytes:
            yield '"' + value.decode("latin-1").translate(_ESCAPES) + '"'
        elif kind is bool:
            yield "true" if value else "false"
        elif kind is int or kind is float:
            yield format_number(value)
        elif value is None or value == self.null:
            yield "null"
        elif _lua_type(value) == "table":
            if depth >= MAX_DEPTH:
                raise _Fail("Cannot serialise, excessive nesting (%d)" % (depth + 1))
            items = list(value.items())
            length = self._array_length(items)
            if length > 0 or not items:
                if not items:
                    yield "{}"
                    return
                by_index = dict(items)
                yield "["
                for index in range(1, length + 1):
                    if index > 1:
                        yield ","
                    yield from self._encode(by_index.get(index), depth + 1)
                yield "]"
                return
            yield "{"
            first = True
            for key, item in items:
                if type(key) is bytes:
                    name = key
                elif type(key) in (int, float):
                    name = format_number(key).encode()
                else:
                    raise _Fail("Cannot serialise table: table key must be a number or string")
                if not first:
                    yield ","
                first = False
                yield '"' + name.decode("latin-1").translate(_ESCAPES) + '":'
                yield from self._encode(item, depth + 1)
            yield "}"
        else:
            raise _Fail("Cannot serialise %s: type not supported" % (_lua_type(value) or "userdata"))

    @staticmethod
    def _array_length(items: list) -> int:
        """lua-cjson's lua_array_length: the highest index if every key is
        a positive integer, -1 if the table is an object."""
        highest = 0
        for key, _ in items:
            if type(key) is int and key >= 1:
                highest = max(highest, key)
            elif type(key) is float and key.is_integer() and key >= 1:
                highest = max(highest, int(key))
            else:
                return -1
        if highest > SPARSE_SAFE and highest > len(items) * SPARSE_RATIO:
            raise _Fail("Cannot serialise table: excessively sparse array")
        return highest

    def decode(self, *args):
        if len(args) != 1 or type(args[0]) is not bytes:
            return FAIL, b"bad argument #1 to 'decode' (string expected)"
        text = args[0]
        try:
            parsed = json.loads(text.decode("latin-1"), parse_int=float, parse_constant=_bad_constant)
        except (ValueError, RecursionError) as exc:
            position = getattr(exc, "pos", len(text)) + 1
            found = "T_END" if position > len(text) else "invalid token"
            return FAIL, f"Expected value but found {found} at character {position}".encode()
        return self._to_lua(parsed, 0)

    def _to_lua(self, value, depth: int):
        if depth > MAX_DEPTH:
            raise _Fail("Found too many nested data structures (%d)" % depth)
        if value is None:
            return self.null
        if isinstance(value, str):
            return value.encode("latin-1", "replace") if value.isascii() else value.encode("utf-8")
        if isinstance(value, float):
            return int(value) if value.is_integer() and abs(value) < 2**53 else value
        if isinstance(value, (bool, int)):
            return value
        table = self._runtime.table()
        if isinstance(value, list):
            for index, item in enumerate(value, 1):
                table[index] = self._to_lua(item, depth + 1)
        else:
            for key, item in value.items():
                table[key.encode("utf-8")] = self._to_lua(item, depth + 1)
        return table


def _bad_constant(name: str):
    raise ValueError(name)


# -- bit (LuaBitOp) -------------------------------------------------------------


def _tobit(value) -> int:
    if type(value) is bytes:
        try:
            value = float(value)
        except ValueError:
            raise _Fail("number expected") from None
    if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
        raise _Fail("number expected")
    # LuaBitOp adds 2^52 + 2^51 to the double: rounding half to even.
    bits = round(value) & 0xFFFFFFFF
    return bits - (1 << 32) if bits & 0x80000000 else bits


def _signed(bits: int) -> int:
    bits &= 0xFFFFFFFF
    return bits - (1 << 32) if bits & 0x80000000 else bits


def _bit_op(name, func):
    def run(*args):
        try:
            return func(*args)
        except _Fail as exc:
            return FAIL, f"bad argument to '{name}' ({exc})".encode()
        except TypeError:
            return FAIL, f"bad argument #1 to '{name}' (number expected, got no value)".encode()

    return run


def _tohex(value, digits=8):
    bits = _tobit(value) & 0xFFFFFFFF
    digits = _tobit(digits)
    upper = digits < 0
    digits = min(abs(digits), 8)
    text = "%0*x" % (8, bits)
    text = text[-digits:] if digits else ""
    return (text.upper() if upper else text).encode()


def _fold(op):
    def run(first, *rest):
        result = _tobit(first)
        for item in rest:
            result = op(result, _tobit(item))
        return _signed(result)

    return run


BIT_FUNCTIONS = {
    "tobit": lambda x: _tobit(x),
    "tohex": _tohex,
    "bnot": lambda x: _signed(~_tobit(x)),
    "band": _fold(lambda a, b: a & b),
    "bor": _fold(lambda a, b: a | b),
    "bxor": _fold(lambda a, b: a ^ b),
    "lshift": lambda x, n: _signed((_tobit(x) & 0xFFFFFFFF) << (_tobit(n) & 31)),
    "rshift": lambda x, n: _signed((_tobit(x) & 0xFFFFFFFF) >> (_tobit(n) & 31)),
    "arshift": lambda x, n: _signed(_tobit(x) >> (_tobit(n) & 31)),
    "rol": lambda x, n: _signed(
        ((_tobit(x) & 0xFFFFFFFF) << (_tobit(n) & 31)) | ((_tobit(x) & 0xFFFFFFFF) >> (32 - (_tobit(n) & 31)))
    ),
    "ror": lambda x, n: _signed(
        ((_tobit(x) & 0xFFFFFFFF) >> (_tobit(n) & 31)) | ((_tobit(x) & 0xFFFFFFFF) << (32 - (_tobit(n) & 31)))
    ),
    "bswap": lambda x: _signed(int.from_bytes((_tobit(x) & 0xFFFFFFFF).to_bytes(4, "little"), "big")),
}
BIT_FUNCTIONS = {name: _bit_op(name, func) for name, func in BIT_FUNCTIONS.items()}
