"""Reply values <-> Lua values, as Redis 7.0's script_lua.c converts them.

Into Lua (what ``redis.call`` returns), by the script's ``redis.setresp``:

=================  ============================  ==============================
reply value        RESP2 (the default)           RESP3
=================  ============================  ==============================
bytes / int        string / number               string / number
Status             ``{ok=...}``                  ``{ok=...}``
CommandError       ``{err=...}`` (pcall)         ``{err=...}`` (pcall)
None               ``false``                     ``nil``
list / SetReply    array                         array / ``{set={k=true}}``
dict               flat array k, v, ...          ``{map={k=v}}``
float              string (%.17g)                ``{double=n}``
bool               1 / 0                         ``true`` / ``false``
Verbatim           string                        ``{verbatim_string=...}``
=================  ============================  ==============================

Out of Lua (what a script returns): numbers are truncated to integers,
``false`` is nil, a table is an error (``err``), a status (``ok``), a double,
a big number, a map, a set, a verbatim string or else an array that stops
at its first nil.
"""

from __future__ import annotations

import math

import lupa.lua51 as lua51

from kvserver.errors import CommandError
from kvserver.protocol import BigNumber, DoubleText, NullArray, SetReply, Status, Verbatim, format_double

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
# Deeper than any real reply; stops a self-referencing Lua table (t[1] = t)
# from recursing until Python's stack gives out (Redis checks its C stack).
MAX_DEPTH = 100

_lua_type = lua51.lua_type


def to_lua(runtime, reply: object, resp: int) -> object:
    """The Lua value a script sees for ``reply`` (``redis.call``'s result).
    An error becomes ``{err=...}``; redis.call raises it instead."""
    kind = type(reply)
    if kind is bytes or kind is int:
        return reply
    if reply is None or reply is NullArray:
        return None if resp == 3 else False
    if kind is Status:
        return runtime.table_from({b"ok": reply.encode()})
    if kind is CommandError:
        return runtime.table_from({b"err": reply.message.encode()})
    if kind is bool:
        return reply if resp == 3 else int(reply)
    if kind is float:
        if resp == 3:
            return runtime.table_from({b"double": reply})
        return format_double(reply)
    if kind is Verbatim:
        if resp == 3:
            inner = runtime.table_from({b"format": b"txt", b"string": bytes(reply)})
            return runtime.table_from({b"verbatim_string": inner})
        return bytes(reply)
    if kind is DoubleText:  # GEOPOS's coordinates: a double in RESP3
        return runtime.table_from({b"double": float(reply)}) if resp == 3 else bytes(reply)
    if kind is BigNumber:
        return runtime.table_from({b"big_number": bytes(reply)}) if resp == 3 else bytes(reply)
    if kind is SetReply and resp == 3:
        members = runtime.table()
        for item in reply:
            members[to_lua(runtime, item, resp)] = True
        return runtime.table_from({b"set": members})
    if kind is dict:
        if resp == 3:
            fields = runtime.table()
            for key, value in reply.items():
                fields[to_lua(runtime, key, resp)] = to_lua(runtime, value, resp)
            return runtime.table_from({b"map": fields})
        flat = []
        for key, value in reply.items():
            flat.append(to_lua(runtime, key, resp))
            flat.append(to_lua(runtime, value, resp))
        return runtime.table_from(flat)
    if isinstance(reply, list):
        table = runtime.table()
        for index, item in enumerate(reply, 1):
            table[index] = to_lua(runtime, item, resp)
        return table
    if isinstance(reply, str):  # a Status subclass or plain text
        return runtime.table_from({b"ok": reply.encode()})
    if isinstance(reply, bytes):
        return bytes(reply)
    raise TypeError(f"no Lua form for reply {reply!r}")


def from_lua(value: object, resp: int, depth: int = 0) -> object:
    """The reply value for what a script returned."""
    kind = type(value)
    if kind is bytes:
        return value
    if kind is int:
        return _int64(value)
    if kind is float:
        return _truncate(value)
    if kind is bool:
        if resp == 3:
            return value
        return 1 if value else None
    if value is None or _lua_type(value) != "table" or depth > MAX_DEPTH:
        return None
    err = value[b"err"]
    if type(err) is bytes:
        return CommandError(error_text(err))
    ok = value[b"ok"]
    if type(ok) is bytes:
        return Status(_one_line(ok).decode("utf-8", "replace"))
    double = value[b"double"]
    if type(double) in (int, float):
        return float(double)
    big = value[b"big_number"]
    if type(big) is bytes:
        return BigNumber(_one_line(big))
    fields = value[b"map"]
    if _lua_type(fields) == "table":
        return {
            _hashable(from_lua(k, resp, depth + 1)): from_lua(v, resp, depth + 1)
            for k, v in fields.items()
        }
    members = value[b"set"]
    if _lua_type(members) == "table":
        return SetReply(from_lua(k, resp, depth + 1) for k in members.keys())
    verbatim = value[b"verbatim_string"]
    if _lua_type(verbatim) == "table":
        text = verbatim[b"string"]
        if type(text) is bytes:
            return Verbatim(text)
    items = []
    index = 1
    while True:
        item = value[index]
        if item is None:
            return items
        items.append(from_lua(item, resp, depth + 1))
        index += 1


def error_text(raw: bytes) -> str:
    """An error message a script gave, as a reply: one line, without the
    leading "-" that some scripts write (Redis drops it too)."""
    text = _one_line(raw).decode("utf-8", "replace")
    return text[1:] if text.startswith("-") else text


def _one_line(raw: bytes) -> bytes:
    # A CR or LF would end the reply early: Redis replaces them too.
    return raw.replace(b"\r", b" ").replace(b"\n", b" ")


def _truncate(number: float) -> int:
    """A Lua number as Redis's (long long) cast gives it: toward zero;
    NaN, infinities and what does not fit come out as INT64_MIN, as x86's
    conversion does."""
    if math.isnan(number) or math.isinf(number):
        return INT64_MIN
    return _int64(int(number))


def _int64(number: int) -> int:
    return number if INT64_MIN <= number <= INT64_MAX else INT64_MIN


def _hashable(key: object) -> object:
    # A map's key is a Lua value; the odd table key (an array) becomes a
    # tuple so that it can key a dict.
    return tuple(key) if isinstance(key, list) else key
