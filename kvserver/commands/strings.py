"""String commands: SET and its family, GET and its family, MGET/MSET,
APPEND, ranges, and the counters INCR..INCRBYFLOAT. Redis 7.0's replies and
errors, checked side by side with redis-server (tests/test_commands_strings.py).

Rules this module keeps:

* Values are bytes. A key holding anything else (a later type) gets
  WRONGTYPE from every command here but MGET, which answers nil for it.
* Arguments are checked in Redis's order (options, then numbers, then the
  key), so the first error a request meets is the one Redis reports.
* The log records the state a write left, never the request. A TTL is
  always logged absolute (``SET k v PXAT <ms>``), and a write that keeps
  the key's TTL (INCR, INCRBYFLOAT, SET KEEPTTL) logs the deadline it kept
  rather than KEEPTTL: replay runs later, on the real clock, so a key whose
  deadline passed in between is gone by then, and a KEEPTTL record would
  bring it back with no TTL at all.
* APPEND and SETRANGE on an existing key are the exception, logged as
  issued, as Redis does: their record must be the size of the request, not
  of the value (a one-byte SETRANGE on a 512 MB value must not write 512 MB
  of log under the write lock). That is safe because they keep the TTL
  without naming it: replayed, they change the bytes of the key the earlier
  records rebuilt, with the deadline those records gave it. On a missing
  key they create one, logged as the SET of a value that needs nothing
  before it (``SET k ""`` before a SETRANGE past offset 0, rather than a
  SET of all the padding). A key that expired went from the log as a DEL
  then (store.py), so the replay never adds to an old value.
* A deadline already past when it is set (``SET k v PXAT 1``): Redis 7.0
  stores the key already expired, so nobody ever sees it; here the key is
  simply removed, and logged as DEL if one was there.
"""

from __future__ import annotations

from fractions import Fraction

from kvserver import errors
from kvserver.commands import longdouble
from kvserver.commands.parsing import INT64_MAX, INT64_MIN, parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import OK
from kvserver.notify import EXPIRED, GENERIC, STRING, notify
from kvserver.session import Session

# Redis's proto-max-bulk-len default: the longest string APPEND and SETRANGE
# may build, so that one request cannot make a value no client could read.
PROTO_MAX_BULK_LEN = 512 * 1024 * 1024

# SET and GETEX options, as Redis's parseExtendedStringArgumentsOrReply flags.
_NX = 1
_XX = 2
_GET = 4
_KEEPTTL = 8
_PERSIST = 16
_EX = 32
_PX = 64
_EXAT = 128
_PXAT = 256
_EXPIRY = _EX | _PX | _EXAT | _PXAT
_NO_OPTIONS = (0, None)  # _parse_options of nothing: a plain SET skips the call
_EXPIRY_WORDS = {b"EX": _EX, b"PX": _PX, b"EXAT": _EXAT, b"PXAT": _PXAT}


# -- helpers ----------------------------------------------------------------------


def _string(session: Session, key: bytes) -> bytes | None:
    """The live string at ``key``, None if missing; WRONGTYPE for another type."""
    value = session.db.lookup(key, session.now)
    if value is not None and type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    return value


def _store(session: Session, key: bytes, value: bytes, deadline: int | None) -> None:
    """Set ``key`` with absolute ``deadline`` (None: no TTL) and log it.

    A deadline already past removes the key instead (see the module
    docstring). Replay applies the same rule to the logged SET ... PXAT, so
    a key at exactly its deadline is kept live by both, as store.py says.
    """
    db = session.db
    if deadline is not None and deadline < session.now:
        if db.lookup(key, session.now) is not None and db.delete(key):
            session.log(b"DEL", key)
        return
    db.set(key, value, deadline)
    if deadline is None:
        session.log(b"SET", key, value)
    else:
        session.log(b"SET", key, value, b"PXAT", b"%d" % deadline)


def _replace(session: Session, key: bytes, value: bytes) -> None:
    """Change ``key``'s value, keeping its TTL (a new key gets none)."""
    _store(session, key, value, session.db.expires.get(key))


def _parse_options(options: list[bytes], for_set: bool) -> tuple[int, bytes | None]:
    """SET's options (``for_set``) or GETEX's: the flags and the expiry amount.

    Redis's rules exactly: NX excludes XX, one kind of expiry excludes the
    others, KEEPTTL and PERSIST, but a repeated option is allowed (the last
    amount wins); anything else, or an expiry word with no amount, is a
    syntax error.
    """
    flags = 0
    amount = None
    i = 0
    while i < len(options):
        word = options[i].upper()
        unit = _EXPIRY_WORDS.get(word)
        if word == b"NX" and for_set and not flags & _XX:
            flags |= _NX
        elif word == b"XX" and for_set and not flags & _NX:
            flags |= _XX
        elif word == b"GET" and for_set:
            flags |= _GET
        elif word == b"KEEPTTL" and for_set and not flags & (_PERSIST | _EXPIRY):
            flags |= _KEEPTTL
        elif word == b"PERSIST" and not for_set and not flags & (_KEEPTTL | _EXPIRY):
            flags |= _PERSIST
        elif unit and i + 1 < len(options) and not flags & (_KEEPTTL | _PERSIST | (_EXPIRY & ~unit)):
            flags |= unit
            amount = options[i + 1]
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    return flags, amount


def _deadline(session: Session, flags: int, amount: bytes, name: str) -> int:
    """The absolute deadline (Unix ms) of an EX/PX/EXAT/PXAT amount.

    Redis's getExpireMillisecondsOrReply: the amount must be positive, and
    the deadline must fit in 64 bits (in C it would wrap negative).
    """
    when = parse_int(amount)
    seconds = flags & (_EX | _EXAT)
    if when <= 0 or (seconds and when > INT64_MAX // 1000):
        raise errors.invalid_expire(name)
    if seconds:
        when *= 1000
    if flags & (_EX | _PX):
        when += session.now
    if when > INT64_MAX:
        raise errors.invalid_expire(name)
    return when


# -- SET and GET ----------------------------------------------------------------------


@command("set", -3, write=True, keys=(1, 1, 1), flags=("denyoom",))
def set_(session: Session, args: list[bytes]) -> object:
    """SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]

    OK, or nil if NX/XX stopped it; with GET, the old value instead.
    Logged as SET key value [PXAT ms] when it happened.
    """
    key, value = args[0], args[1]
    flags, amount = _parse_options(args[2:], for_set=True) if len(args) > 2 else _NO_OPTIONS
    deadline = _deadline(session, flags, amount, "set") if amount is not None else None
    if flags & _GET:
        old = _string(session, key)
    else:
        old = session.db.lookup(key, session.now)
    if (flags & _NX and old is not None) or (flags & _XX and old is None):
        return old if flags & _GET else None
    if flags & _KEEPTTL:
        deadline = session.db.expires.get(key)
    _store(session, key, value, deadline)
    if session.keyspace.notify_flags:  # one test while nobody listens
        notify(session, STRING, b"set", key)
    if amount is not None:
        notify(session, GENERIC, b"expire", key)
        if deadline < session.now:
            # _store removed it at once; Redis keeps it until it expires
            # (lazily or by the sweep), with this event then.
            notify(session, EXPIRED, b"expired", key)
    return old if flags & _GET else OK


@command("setnx", 3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def setnx(session: Session, args: list[bytes]) -> object:
    """SETNX key value

    1 if the key was missing and is now set, else 0.
    """
    key, value = args
    if session.db.lookup(key, session.now) is not None:
        return 0
    _store(session, key, value, None)
    notify(session, STRING, b"set", key)
    return 1


@command("setex", 4, write=True, keys=(1, 1, 1), flags=("denyoom",))
def setex(session: Session, args: list[bytes]) -> object:
    """SETEX key seconds value

    SET key value EX seconds. Logged as SET key value PXAT ms.
    """
    key, seconds, value = args
    _store(session, key, value, _deadline(session, _EX, seconds, "setex"))
    notify(session, STRING, b"set", key)
    notify(session, GENERIC, b"expire", key)
    return OK


@command("psetex", 4, write=True, keys=(1, 1, 1), flags=("denyoom",))
def psetex(session: Session, args: list[bytes]) -> object:
    """PSETEX key milliseconds value

    SET key value PX milliseconds. Logged as SET key value PXAT ms.
    """
    key, milliseconds, value = args
    _store(session, key, value, _deadline(session, _PX, milliseconds, "psetex"))
    notify(session, STRING, b"set", key)
    notify(session, GENERIC, b"expire", key)
    return OK


@command("get", 2, keys=(1, 1, 1), flags=("fast",))
def get(session: Session, args: list[bytes]) -> object:
    """GET key

    The value of ``key``, or nil if it is missing or expired.
    """
    return _string(session, args[0])


@command("getdel", 2, write=True, keys=(1, 1, 1), flags=("fast",))
def getdel(session: Session, args: list[bytes]) -> object:
    """GETDEL key

    The value, and the key is removed (logged as DEL); nil if missing.
    """
    key = args[0]
    value = _string(session, key)
    if value is not None:
        session.db.delete(key)
        session.log(b"DEL", key)
        notify(session, GENERIC, b"del", key)
    return value


@command("getex", -2, write=True, keys=(1, 1, 1), flags=("fast",))
def getex(session: Session, args: list[bytes]) -> object:
    """GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]

    The value, after changing the TTL: logged as PEXPIREAT key ms, as DEL
    if the deadline is already reached, or as PERSIST key.
    """
    key = args[0]
    flags, amount = _parse_options(args[1:], for_set=False)
    value = _string(session, key)
    if value is None:
        return None  # before the amount is checked, as Redis
    db = session.db
    if amount is not None:
        deadline = _deadline(session, flags, amount, "getex")
        # Redis's checkAlreadyExpired: GETEX deletes at the deadline itself.
        if deadline <= session.now:
            db.delete(key)
            session.log(b"DEL", key)
            notify(session, GENERIC, b"del", key)
        else:
            db.set_deadline(key, deadline)
            session.log(b"PEXPIREAT", key, b"%d" % deadline)
            notify(session, GENERIC, b"expire", key)
    elif flags & _PERSIST and key in db.expires:
        db.set_deadline(key, None)
        session.log(b"PERSIST", key)
        notify(session, GENERIC, b"persist", key)
    return value


@command("getset", 3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def getset(session: Session, args: list[bytes]) -> object:
    """GETSET key value

    The old value (nil if missing); the key is set with no TTL.
    """
    key, value = args
    old = _string(session, key)
    _store(session, key, value, None)
    notify(session, STRING, b"set", key)
    return old


@command("mget", -2, keys=(1, -1, 1), flags=("fast",))
def mget(session: Session, args: list[bytes]) -> object:
    """MGET key [key ...]

    Each key's value; nil for a missing key or one that is not a string.
    """
    db, now = session.db, session.now
    values = []
    for key in args:
        value = db.lookup(key, now)
        values.append(value if type(value) is bytes else None)
    return values


@command("mset", -3, write=True, keys=(1, -1, 2), flags=("denyoom",))
def mset(session: Session, args: list[bytes]) -> object:
    """MSET key value [key value ...]

    Set every pair, clearing TTLs. Logged as given.
    """
    if len(args) % 2:
        raise errors.wrong_arity("mset")
    _set_pairs(session, args)
    return OK


@command("msetnx", -3, write=True, keys=(1, -1, 2), flags=("denyoom",))
def msetnx(session: Session, args: list[bytes]) -> object:
    """MSETNX key value [key value ...]

    1 and every pair set if no key existed; else 0 and nothing set.
    Logged as MSET.
    """
    if len(args) % 2:
        raise errors.wrong_arity("msetnx")
    db, now = session.db, session.now
    if any(db.lookup(key, now) is not None for key in args[::2]):
        return 0
    _set_pairs(session, args)
    return 1


def _set_pairs(session: Session, args: list[bytes]) -> None:
    db = session.db
    notifying = session.keyspace.notify_flags  # one test while nobody listens, not one call per key
    for i in range(0, len(args), 2):
        db.set(args[i], args[i + 1])
        if notifying:
            notify(session, STRING, b"set", args[i])
    session.log(b"MSET", *args)


# -- parts of a string -------------------------------------------------------------------


@command("append", 3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def append(session: Session, args: list[bytes]) -> object:
    """APPEND key value

    The length after appending; a missing key is created (logged as SET
    key value). On an existing key, logged as issued, keeping the TTL (see
    the module docstring); an empty value logs nothing.
    """
    key, suffix = args
    value = _string(session, key)
    if value is None:
        _store(session, key, suffix, None)
        notify(session, STRING, b"append", key)
        return len(suffix)
    if len(value) + len(suffix) > PROTO_MAX_BULK_LEN:
        raise CommandError(errors.STRING_TOO_LONG)
    if suffix:
        db = session.db
        value += suffix
        db.set(key, value, db.expires.get(key))
        session.log(b"APPEND", key, suffix)
    notify(session, STRING, b"append", key)  # Redis sends it for an empty suffix too
    return len(value)


@command("strlen", 2, keys=(1, 1, 1), flags=("fast",))
def strlen(session: Session, args: list[bytes]) -> object:
    """STRLEN key

    The value's length in bytes; 0 for a missing key.
    """
    value = _string(session, args[0])
    return 0 if value is None else len(value)


@command("getrange", 4, keys=(1, 1, 1))
def getrange(session: Session, args: list[bytes]) -> object:
    """GETRANGE key start end

    The bytes from ``start`` to ``end`` inclusive; negative indices count
    from the end. Empty for a missing key or an empty range.
    """
    return _range(session, args)


@command("substr", 4, keys=(1, 1, 1))
def substr(session: Session, args: list[bytes]) -> object:
    """SUBSTR key start end

    GETRANGE's old name.
    """
    return _range(session, args)


def _range(session: Session, args: list[bytes]) -> bytes:
    # Redis's getrangeCommand, step for step.
    start, end = parse_int(args[1]), parse_int(args[2])
    value = _string(session, args[0])
    if value is None:
        return b""
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start += length
    if end < 0:
        end += length
    start, end = max(start, 0), max(end, 0)
    end = min(end, length - 1)
    if start > end or not length:
        return b""
    return value[start : end + 1]


@command("setrange", 4, write=True, keys=(1, 1, 1), flags=("denyoom",))
def setrange(session: Session, args: list[bytes]) -> object:
    """SETRANGE key offset value

    Overwrite from ``offset`` on, padding with zero bytes; the new length.
    Logged as issued, keeping the TTL; a missing key is created first by a
    ``SET key ""`` record (``SET key value`` at offset 0). An empty value
    changes nothing and logs nothing. See the module docstring.
    """
    key, patch = args[0], args[2]
    offset = parse_int(args[1])
    if offset < 0:
        raise CommandError(errors.OFFSET_OUT_OF_RANGE)
    value = _string(session, key)
    if not patch:
        return 0 if value is None else len(value)  # nothing written, nothing created
    end = offset + len(patch)
    if end > PROTO_MAX_BULK_LEN:
        raise CommandError(errors.STRING_TOO_LONG)
    db = session.db
    if value is None:
        if not offset:
            _store(session, key, patch, None)
            notify(session, STRING, b"setrange", key)
            return end
        # An empty key first (module docstring); the SETRANGE record then
        # pads, as it did here.
        _store(session, key, b"", None)
        value = b""
    if len(value) < offset:
        value += bytes(offset - len(value))
    # One copy of the value (slices of a memoryview copy nothing): it is
    # made under the write lock.
    whole = memoryview(value)
    value = b"".join((whole[:offset], patch, whole[end:]))
    db.set(key, value, db.expires.get(key))
    session.log(b"SETRANGE", key, b"%d" % offset, patch)
    notify(session, STRING, b"setrange", key)
    return len(value)


# -- counters ---------------------------------------------------------------------------


@command("incr", 2, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def incr(session: Session, args: list[bytes]) -> object:
    """INCR key

    Add 1 to the integer at ``key`` (missing: 0); the new value. Logged as
    SET of the new value (with the TTL it kept).
    """
    return _increment(session, args[0], 1)


@command("decr", 2, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def decr(session: Session, args: list[bytes]) -> object:
    """DECR key"""
    return _increment(session, args[0], -1)


@command("incrby", 3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def incrby(session: Session, args: list[bytes]) -> object:
    """INCRBY key increment"""
    return _increment(session, args[0], parse_int(args[1]))


@command("decrby", 3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def decrby(session: Session, args: list[bytes]) -> object:
    """DECRBY key decrement"""
    decrement = parse_int(args[1])
    if decrement == INT64_MIN:  # its negation does not fit in 64 bits
        raise CommandError(errors.DECR_OVERFLOW)
    return _increment(session, args[0], -decrement)


def _increment(session: Session, key: bytes, delta: int) -> int:
    value = _string(session, key)
    current = 0 if value is None else parse_int(value)
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        raise CommandError(errors.INCR_OVERFLOW)
    _replace(session, key, b"%d" % result)
    notify(session, STRING, b"incrby", key)
    return result


@command("incrbyfloat", 3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def incrbyfloat(session: Session, args: list[bytes]) -> object:
    """INCRBYFLOAT key increment

    Add a decimal to the number at ``key``, in Redis's long double
    arithmetic (see longdouble.py); the new value as a bulk string. Logged
    as SET of the result (with the TTL it kept).
    """
    key = args[0]
    value = _string(session, key)
    current = Fraction(0) if value is None else longdouble.parse(value)
    if current is None:
        raise CommandError(errors.NOT_FLOAT)
    increment = longdouble.parse(args[1])
    if increment is None:
        raise CommandError(errors.NOT_FLOAT)
    result = longdouble.add(current, increment)
    if result is None:
        raise CommandError(errors.FLOAT_NAN_OR_INFINITY)
    text = longdouble.format_human(result)
    _replace(session, key, text)
    notify(session, STRING, b"incrbyfloat", key)
    return text
