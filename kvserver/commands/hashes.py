"""Hash commands: HSET and its family, the field reads, the counters
HINCRBY/HINCRBYFLOAT, HRANDFIELD and HSCAN. Redis 7.0's replies and errors,
checked side by side with redis-server (tests/test_commands_hashes.py).

Rules this module keeps:

* Every command gets at its hash through commands/access.py (WRONGTYPE for
  another type; ``changed`` after a change, which deletes a hash left
  empty). Reads answer with new lists and dicts, never the stored hash.
* Arguments are checked in Redis's order, so the first error a request
  meets is the one Redis reports: HSET's odd argument count before the key,
  HINCRBY's increment before the key, HRANDFIELD's count before the key.
* The log gets what Redis 7.0's AOF gets: HSET, HMSET, HSETNX (when it
  sets), HDEL (when it deletes, with every field named), HINCRBY as issued;
  HINCRBYFLOAT as ``HSET key field <result>``, so that replay never redoes
  float arithmetic. HRANDFIELD and the reads log nothing, nor does a write
  that changes nothing.
* A hash that expires is logged as a DEL when it goes (store.py, as Redis
  propagates it), so a write that creates it again replays onto nothing,
  as it ran here.
* Field order is the dict's, the order fields were first set: Redis's
  order for a listpack hash (one of up to 512 short fields), so HGETALL,
  HKEYS and HSCAN of a small hash answer as Redis does, byte for byte.
"""

from __future__ import annotations

import random
from fractions import Fraction

from kvserver import errors
from kvserver.commands import longdouble
from kvserver.commands.access import changed, read, write
from kvserver.commands.glob import compile_pattern
from kvserver.commands.keyspace import parse_cursor, scan_options  # SCAN's, as Redis reads them
from kvserver.commands.parsing import INT64_MAX, INT64_MIN, parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import HASH, notify, notify_change
from kvserver.protocol import OK
from kvserver.session import Session
from kvserver.values import Hash

# Redis's HRANDFIELD takes counts in -LONG_MAX..LONG_MAX, and with
# WITHVALUES in -LONG_MAX/2..LONG_MAX/2 (so that the reply's length, twice
# the count, fits in a long).
LONG_MAX = INT64_MAX
# The most fields a negative HRANDFIELD count may ask for (it repeats
# fields, so the hash does not bound it). Redis 7.0 builds whatever reply
# is asked for: HRANDFIELD h -9223372036854775807 runs it out of memory.
# Four million fields is a reply of tens of MB, built in about a second.
MAX_RANDOM_FIELDS = 1 << 22


# -- helpers ----------------------------------------------------------------------


def _writable(session: Session, key: bytes) -> Hash:
    """The hash at ``key``, to change in place; a new one if missing."""
    value = write(session, key, Hash)
    return Hash() if value is None else value


def _set_pairs(session: Session, args: list[bytes], name: str) -> int:
    """HSET/HMSET: set the pairs after the key; how many fields are new."""
    if len(args) % 2 == 0:  # key plus pairs is odd: Redis's arity error
        raise errors.wrong_arity(name)
    key = args[0]
    value = _writable(session, key)
    before = value.nbytes
    created, undo = value.set_fields(args[1:])
    changed(session, key, value, before, undo)
    session.log(b"HSET" if name == "hset" else b"HMSET", *args)
    if session.keyspace.notify_flags:
        notify(session, HASH, b"hset", key)
    return created


# -- writes -----------------------------------------------------------------------------


@command("hset", -4, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def hset(session: Session, args: list[bytes]) -> object:
    """HSET key field value [field value ...]

    Set each field (a field named twice ends with its last value); how many
    fields are new. Logged as issued, even when no value changed (as Redis).
    """
    return _set_pairs(session, args, "hset")


@command("hmset", -4, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def hmset(session: Session, args: list[bytes]) -> object:
    """HMSET key field value [field value ...]

    HSET answering OK (Redis keeps it for old clients).
    """
    _set_pairs(session, args, "hmset")
    return OK


@command("hsetnx", 4, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def hsetnx(session: Session, args: list[bytes]) -> object:
    """HSETNX key field value

    Set the field only if it is not there: 1 if set, 0 (nothing logged) if not.
    """
    key, field, new = args
    value = write(session, key, Hash)
    if value is not None and field in value:
        return 0
    if value is None:
        value = Hash()
    before = value.nbytes
    _, undo = value.set_field(field, new)
    changed(session, key, value, before, undo)
    session.log(b"HSETNX", *args)
    notify(session, HASH, b"hset", key)
    return 1


@command("hdel", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def hdel(session: Session, args: list[bytes]) -> object:
    """HDEL key field [field ...]

    Remove the fields; how many were there. The hash goes with its last
    field. Logged as issued when anything was removed.
    """
    key = args[0]
    value = write(session, key, Hash)
    if value is None:
        return 0
    before = value.nbytes
    removed, undo = value.delete_fields(args[1:])
    if removed:
        changed(session, key, value, before, undo)
        session.log(b"HDEL", *args)
        notify_change(session, HASH, b"hdel", key, value)
    return removed


@command("hincrby", 4, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def hincrby(session: Session, args: list[bytes]) -> object:
    """HINCRBY key field increment

    Add to the integer in the field (missing: 0); the new value. Logged as issued.
    """
    key, field = args[0], args[1]
    increment = parse_int(args[2])
    value = read(session, key, Hash)
    old = None if value is None else value.get(field)
    if old is None:
        current = 0
    else:
        try:
            current = parse_int(old)
        except CommandError:
            raise CommandError(errors.HASH_NOT_INTEGER) from None
    result = current + increment
    if not INT64_MIN <= result <= INT64_MAX:
        raise CommandError(errors.INCR_OVERFLOW)
    _set_one(session, key, field, b"%d" % result)
    session.log(b"HINCRBY", *args)
    notify(session, HASH, b"hincrby", key)
    return result


@command("hincrbyfloat", 4, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def hincrbyfloat(session: Session, args: list[bytes]) -> object:
    """HINCRBYFLOAT key field increment

    Add a decimal to the number in the field (missing: 0), in INCRBYFLOAT's
    long double arithmetic and format (longdouble.py); the new value as a
    bulk string. Logged as ``HSET key field <new value>``, as Redis does.
    """
    key, field = args[0], args[1]
    increment = longdouble.parse(args[2])
    if increment is None:
        raise CommandError(errors.NOT_FLOAT)
    if isinstance(increment, float):  # an explicit infinity
        raise CommandError(errors.NAN_OR_INFINITY)
    value = read(session, key, Hash)
    old = None if value is None else value.get(field)
    current = Fraction(0) if old is None else longdouble.parse(old)
    if current is None:
        raise CommandError(errors.HASH_NOT_FLOAT)
    result = longdouble.add(current, increment)
    if result is None:
        raise CommandError(errors.FLOAT_NAN_OR_INFINITY)
    text = longdouble.format_human(result)
    _set_one(session, key, field, text)
    session.log(b"HSET", key, field, text)
    notify(session, HASH, b"hincrbyfloat", key)
    return text


def _set_one(session: Session, key: bytes, field: bytes, new: bytes) -> None:
    value = _writable(session, key)
    before = value.nbytes
    _, undo = value.set_field(field, new)
    changed(session, key, value, before, undo)


# -- reads --------------------------------------------------------------------------------


@command("hget", 3, keys=(1, 1, 1), flags=("readonly", "fast"))
def hget(session: Session, args: list[bytes]) -> object:
    """HGET key field

    The field's value, or nil.
    """
    value = read(session, args[0], Hash)
    return None if value is None else value.get(args[1])


@command("hmget", -3, keys=(1, 1, 1), flags=("readonly", "fast"))
def hmget(session: Session, args: list[bytes]) -> object:
    """HMGET key field [field ...]

    Each field's value, nil for one missing (all nil for a missing key).
    """
    value = read(session, args[0], Hash)
    if value is None:
        return [None] * (len(args) - 1)
    return [value.get(field) for field in args[1:]]


@command("hlen", 2, keys=(1, 1, 1), flags=("readonly", "fast"))
def hlen(session: Session, args: list[bytes]) -> object:
    """HLEN key

    How many fields (0 for a missing key).
    """
    value = read(session, args[0], Hash)
    return 0 if value is None else len(value)


@command("hstrlen", 3, keys=(1, 1, 1), flags=("readonly", "fast"))
def hstrlen(session: Session, args: list[bytes]) -> object:
    """HSTRLEN key field

    The length of the field's value (0 if missing).
    """
    value = read(session, args[0], Hash)
    found = None if value is None else value.get(args[1])
    return 0 if found is None else len(found)


@command("hexists", 3, keys=(1, 1, 1), flags=("readonly", "fast"))
def hexists(session: Session, args: list[bytes]) -> object:
    """HEXISTS key field

    1 if the field is there, else 0.
    """
    value = read(session, args[0], Hash)
    return int(value is not None and args[1] in value)


@command("hkeys", 2, keys=(1, 1, 1), flags=("readonly",))
def hkeys(session: Session, args: list[bytes]) -> object:
    """HKEYS key

    Every field.
    """
    value = read(session, args[0], Hash)
    return [] if value is None else list(value)


@command("hvals", 2, keys=(1, 1, 1), flags=("readonly",))
def hvals(session: Session, args: list[bytes]) -> object:
    """HVALS key

    Every value.
    """
    value = read(session, args[0], Hash)
    return [] if value is None else list(value.values())


@command("hgetall", 2, keys=(1, 1, 1), flags=("readonly",))
def hgetall(session: Session, args: list[bytes]) -> object:
    """HGETALL key

    Every field and its value: a map in RESP3, field value ... in RESP2.
    """
    value = read(session, args[0], Hash)
    return {} if value is None else dict(value)


@command("hrandfield", -2, keys=(1, 1, 1), flags=("readonly",))
def hrandfield(session: Session, args: list[bytes]) -> object:
    """HRANDFIELD key [count [WITHVALUES]]

    A random field (nil for a missing key); with a count, up to that many
    distinct fields, or with a negative count exactly that many, repeats
    allowed. WITHVALUES adds each value: field value ... in RESP2, a
    [field, value] pair each in RESP3, as Redis. Logs nothing.
    """
    key = args[0]
    if len(args) == 1:
        value = read(session, key, Hash)
        return None if value is None else value.random_field()
    count = parse_int(args[1])
    if count < -LONG_MAX:
        raise errors.out_of_range(-LONG_MAX, LONG_MAX)
    if len(args) > 3 or (len(args) == 3 and args[2].split(b"\0", 1)[0].lower() != b"withvalues"):
        raise CommandError(errors.SYNTAX)
    with_values = len(args) == 3
    if with_values and not -LONG_MAX // 2 <= count <= LONG_MAX // 2:
        raise CommandError(errors.VALUE_OUT_OF_RANGE)
    value = read(session, key, Hash)
    if value is None or count == 0:
        return []
    if count < 0 or count == 1:  # Redis's case 1: repeats allowed, any order
        if -count > MAX_RANDOM_FIELDS:
            raise CommandError(errors.RANDOM_COUNT_TOO_LARGE)
        if count == 1:
            fields = [value.random_field()]
        else:
            fields = random.choices(list(value), k=-count)
        pairs = [(field, value[field]) for field in fields] if with_values else None
    elif count >= len(value):  # the whole hash, in its order, as Redis's case 2
        pairs = list(value.items())
        fields = [field for field, _ in pairs]
    else:
        pairs = random.sample(list(value.items()), count)
        fields = [field for field, _ in pairs]
    if not with_values:
        return fields
    if session.resp == 3:
        return [[field, found] for field, found in pairs]
    return [x for pair in pairs for x in pair]


@command("hscan", -3, keys=(1, 1, 1), flags=("readonly",))
def hscan(session: Session, args: list[bytes]) -> object:
    """HSCAN key cursor [MATCH pattern] [COUNT count]

    The next cursor (0 once the walk is over) and a batch of fields and
    values. A field present from the first call to the last is returned at
    least once; a small hash comes whole, with cursor 0, as in Redis (see
    values/hashes.py). MATCH filters each batch after it is taken.
    """
    key = args[0]
    cursor = parse_cursor(args[1])
    value = read(session, key, Hash)
    if value is None:
        return [b"0", []]
    count, pattern, _ = scan_options(args[2:])
    cursor, fields = value.scan(cursor, count)
    match = None if pattern is None or pattern == b"*" else compile_pattern(pattern)
    found = []
    for field in fields:
        if match is None or match(field):
            found += (field, value[field])
    return [b"%d" % cursor, found]
