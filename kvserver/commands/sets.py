"""Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP,
SRANDMEMBER, SMOVE, SINTER/SUNION/SDIFF with their STORE forms,
SINTERCARD and SSCAN. Redis 7.0's replies and errors, checked side by side
with redis-server (tests/test_commands_sets.py).

Rules this module keeps:

* Every command takes its key through commands/access.py (``read``,
  ``write``, ``changed``) and changes a set only through ``Set``'s methods
  (values/sets.py), which keep its size estimate and return the undo.
* Replies that are sets in RESP3 (SMEMBERS, SINTER, SUNION, SDIFF, SPOP
  with a count) are ``SetReply``. A set Redis would hold as an intset
  (every member an integer, few enough) Redis walks in numeric order, so
  such replies come sorted here too; any other order is Redis's "any".
* What is logged, as Redis 7.0 writes its AOF: SADD, SREM, SMOVE and the
  STORE commands as issued, only when they changed something; SPOP as the
  SREM of each member it took (a MULTI ... EXEC group for more than one,
  unless the command already runs inside one), or DEL when it took the
  whole set; SRANDMEMBER nothing.
* A record logged as issued replays against the keys the earlier records
  rebuilt; a key that expired here was logged as a DEL when it went
  (store.py), so the replay finds it missing too.
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.access import changed, read, write
from kvserver.commands.glob import compile_pattern
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.keyspace import parse_cursor, scan_options
from kvserver.commands.parsing import INT64_MAX, parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import GENERIC, SET, notify, notify_change
from kvserver.protocol import SetReply
from kvserver.session import Session
from kvserver.values import Set, is_int64

# SRANDMEMBER's count range, as Redis's getRangeLongFromObjectOrReply
# (-LONG_MAX..LONG_MAX: a negative count is negated, so LONG_MIN is out).
RANDMEMBER_MIN = -INT64_MAX


# -- helpers -------------------------------------------------------------------


def _members_in_order(session: Session, members) -> list[bytes]:
    """``members`` (a new list) in the order Redis would walk them: numeric
    order if they would form an intset, otherwise as they come."""
    found = list(members)
    if len(found) <= session.keyspace.encodings.set_max_intset_entries and all(is_int64(m) for m in found):
        found.sort(key=int)
    return found


def _sources(session: Session, keys: list[bytes]) -> list[Set | None]:
    """Each key's set (None if missing), WRONGTYPE if any holds another
    type (Redis checks them all first)."""
    return [read(session, key, Set) for key in keys]


def _inter(sets: list[Set | None], limit: int = 0) -> list[bytes]:
    if any(found is None for found in sets):
        return []
    smallest, *others = sorted(sets, key=len)
    result = []
    for member in list(smallest):
        if all(member in other for other in others):
            result.append(member)
            if len(result) == limit:
                break
    return result


def _union(sets: list[Set | None]) -> list[bytes]:
    result: set[bytes] = set()
    for found in sets:
        if found is not None:
            result.update(found)
    return list(result)


def _diff(sets: list[Set | None]) -> list[bytes]:
    first, *others = sets
    if first is None:
        return []
    result = set(first)
    for found in others:
        if found is not None:
            result.difference_update(found)
    return list(result)


def _store(session: Session, name: bytes, args: list[bytes], operation) -> int:
    """SINTERSTORE / SUNIONSTORE / SDIFFSTORE: the result replaces whatever
    ``args[0]`` held (TTL too); an empty one deletes it."""
    destination, keys = args[0], args[1:]
    sets = _sources(session, keys)
    result = operation(sets)
    db = session.db
    if result:
        value = Set(result)
        # Replaces any type, and its TTL, as Redis's setKey: an existing
        # key is overwritten (no "new" event), one past its deadline expires first.
        db.lookup(destination, session.now)
        changed(session, destination, value, 0, None)
        session.log(name, *args)
        notify(session, SET, name.lower(), destination)
        return len(result)
    if not (db.lookup(destination, session.now) is not None and db.delete(destination)):
        return 0  # nothing there and nothing to store: nothing changed
    session.log(name, *args)
    notify(session, GENERIC, b"del", destination)
    return 0


# -- adding and removing ---------------------------------------------------------


@command("sadd", -3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def sadd(session: Session, args: list[bytes]) -> object:
    """SADD key member [member ...]

    Add the members; how many were not there yet. Creates the key.
    """
    key, members = args[0], args[1:]
    value = write(session, key, Set)
    if value is None:
        value = Set()
    before = value.nbytes
    added, undo = value.add_members(members)
    changed(session, key, value, before, undo)
    if added:
        session.log(b"SADD", *args)
        notify(session, SET, b"sadd", key)
    return added


@command("srem", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def srem(session: Session, args: list[bytes]) -> object:
    """SREM key member [member ...]

    Remove the members; how many were there. The last one deletes the key.
    """
    key, members = args[0], args[1:]
    value = write(session, key, Set)
    if value is None:
        return 0
    before = value.nbytes
    removed, undo = value.remove_members(members)
    changed(session, key, value, before, undo)
    if removed:
        session.log(b"SREM", *args)
        notify_change(session, SET, b"srem", key, value)
    return len(removed)


@command("spop", -2, write=True, keys=(1, 1, 1), flags=("fast",))
def spop(session: Session, args: list[bytes]) -> object:
    """SPOP key [count]

    Remove and return a random member (nil if missing), or ``count``
    distinct ones (never more than the set holds).
    """
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    key = args[0]
    if len(args) == 1:
        value = write(session, key, Set)
        if value is None:
            return None
        before = value.nbytes
        removed, undo = value.pop_random(1)
        changed(session, key, value, before, undo)
        session.log(b"SREM", key, removed[0])
        notify_change(session, SET, b"spop", key, value)
        return removed[0]
    count = _positive_count(args[1])
    value = write(session, key, Set)
    if value is None or count == 0:
        return SetReply()
    if count >= len(value):
        members = _members_in_order(session, value)
        session.db.delete(key)
        session.log(b"DEL", key)
        notify(session, SET, b"spop", key)
        notify(session, GENERIC, b"del", key)
        return SetReply(members)
    before = value.nbytes
    removed, undo = value.pop_random(count)
    changed(session, key, value, before, undo)
    grouped = session.group is not None  # EXEC or a script: already one group
    if not grouped:
        session.log(b"MULTI")
    for member in removed:
        session.log(b"SREM", key, member)
    if not grouped:
        session.log(b"EXEC")
    notify(session, SET, b"spop", key)
    return SetReply(removed)


def _positive_count(raw: bytes) -> int:
    # Redis's getPositiveLongFromObjectOrReply: one message for anything wrong.
    try:
        count = parse_int(raw)
    except CommandError:
        raise CommandError(errors.MUST_BE_POSITIVE) from None
    if count < 0:
        raise CommandError(errors.MUST_BE_POSITIVE)
    return count


@command("smove", 4, write=True, keys=(1, 2, 1), flags=("fast",))
def smove(session: Session, args: list[bytes]) -> object:
    """SMOVE source destination member

    Move the member from one set to another: 1 if it was in the source.
    """
    source_key, destination_key, member = args
    db = session.db
    # Redis's order: a missing source answers 0 before any type is checked.
    if db.lookup(source_key, session.now) is None:
        return 0
    source = write(session, source_key, Set)
    destination = write(session, destination_key, Set)
    if source_key == destination_key:
        return int(member in source)
    before = source.nbytes
    removed, undo = source.remove_members([member])
    if not removed:
        return 0
    changed(session, source_key, source, before, undo)
    notify_change(session, SET, b"srem", source_key, source)  # before the destination's "new", as Redis
    if destination is None:
        destination = Set()
    before = destination.nbytes
    added, undo = destination.add_members([member])
    changed(session, destination_key, destination, before, undo)
    session.log(b"SMOVE", *args)
    if added:
        notify(session, SET, b"sadd", destination_key)
    return 1


# -- reading -------------------------------------------------------------------


@command("smembers", 2, keys=(1, 1, 1))
def smembers(session: Session, args: list[bytes]) -> object:
    """SMEMBERS key

    Every member (an empty set for a missing key).
    """
    value = read(session, args[0], Set)
    return SetReply() if value is None else SetReply(_members_in_order(session, value))


@command("sismember", 3, keys=(1, 1, 1), flags=("fast",))
def sismember(session: Session, args: list[bytes]) -> object:
    """SISMEMBER key member

    1 if the member is in the set, else 0.
    """
    value = read(session, args[0], Set)
    return int(value is not None and args[1] in value)


@command("smismember", -3, keys=(1, 1, 1), flags=("fast",))
def smismember(session: Session, args: list[bytes]) -> object:
    """SMISMEMBER key member [member ...]

    1 or 0 for each member, in the order asked.
    """
    value = read(session, args[0], Set) or ()
    return [int(member in value) for member in args[1:]]


@command("scard", 2, keys=(1, 1, 1), flags=("fast",))
def scard(session: Session, args: list[bytes]) -> object:
    """SCARD key

    How many members (0 for a missing key).
    """
    value = read(session, args[0], Set)
    return 0 if value is None else len(value)


@command("srandmember", -2, keys=(1, 1, 1))
def srandmember(session: Session, args: list[bytes]) -> object:
    """SRANDMEMBER key [count]

    A random member (nil if missing); with a count, that many distinct
    members (at most the whole set), or with a negative count that many
    picks that may repeat.
    """
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    if len(args) == 1:
        value = read(session, args[0], Set)
        return None if value is None else value.random_members(1, repeat=False)[0]
    count = parse_int(args[1])
    if count < RANDMEMBER_MIN:
        raise errors.out_of_range(RANDMEMBER_MIN, INT64_MAX)
    value = read(session, args[0], Set)
    if value is None or count == 0:
        return []
    if count >= len(value):
        return _members_in_order(session, value)
    return value.random_members(abs(count), repeat=count < 0)


@command("sinter", -2, keys=(1, -1, 1))
def sinter(session: Session, args: list[bytes]) -> object:
    """SINTER key [key ...]

    The members in every one of the sets (a missing key is an empty set).
    """
    sets = _sources(session, args)
    return SetReply(_members_in_order(session, _inter(sets)))


@command("sintercard", -3, flags=("readonly", "movablekeys"))
def sintercard(session: Session, args: list[bytes]) -> object:
    """SINTERCARD numkeys key [key ...] [LIMIT limit]

    How many members SINTER would return, counting no further than LIMIT
    (0: no limit).
    """
    keys, limit = _sintercard_arguments(args)
    sets = _sources(session, keys)
    return len(_inter(sets, limit))


def _sintercard_arguments(args: list[bytes]) -> tuple[list[bytes], int]:
    try:
        numkeys = parse_int(args[0])
    except CommandError:
        numkeys = 0
    if numkeys < 1:
        raise CommandError(errors.NUMKEYS_NOT_POSITIVE)
    if numkeys > len(args) - 1:
        raise CommandError(errors.NUMKEYS_TOO_BIG)
    keys, options = args[1 : 1 + numkeys], args[1 + numkeys :]
    limit = 0
    i = 0
    while i < len(options):
        if options[i].upper() == b"LIMIT" and i + 1 < len(options):
            try:
                limit = parse_int(options[i + 1])
            except CommandError:
                limit = -1
            if limit < 0:
                raise CommandError(errors.LIMIT_NEGATIVE)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    return keys, limit


def _sintercard_keys(args: list[bytes]) -> list[bytes]:
    # COMMAND GETKEYS: the numkeys keys after numkeys.
    try:
        numkeys = parse_int(args[0])
    except CommandError:
        return []
    return args[1 : 1 + numkeys] if 0 < numkeys <= len(args) - 1 else []


KEY_FINDERS["sintercard"] = _sintercard_keys


@command("sunion", -2, keys=(1, -1, 1))
def sunion(session: Session, args: list[bytes]) -> object:
    """SUNION key [key ...]

    The members in any of the sets.
    """
    sets = _sources(session, args)
    return SetReply(_members_in_order(session, _union(sets)))


@command("sdiff", -2, keys=(1, -1, 1))
def sdiff(session: Session, args: list[bytes]) -> object:
    """SDIFF key [key ...]

    The members of the first set that are in none of the others.
    """
    sets = _sources(session, args)
    return SetReply(_members_in_order(session, _diff(sets)))


@command("sinterstore", -3, write=True, keys=(1, -1, 1), flags=("denyoom",))
def sinterstore(session: Session, args: list[bytes]) -> object:
    """SINTERSTORE destination key [key ...]

    SINTER, stored at destination (replacing it; an empty result deletes
    it); the result's size.
    """
    return _store(session, b"SINTERSTORE", args, _inter)


@command("sunionstore", -3, write=True, keys=(1, -1, 1), flags=("denyoom",))
def sunionstore(session: Session, args: list[bytes]) -> object:
    """SUNIONSTORE destination key [key ...]

    SUNION, stored at destination, as SINTERSTORE.
    """
    return _store(session, b"SUNIONSTORE", args, _union)


@command("sdiffstore", -3, write=True, keys=(1, -1, 1), flags=("denyoom",))
def sdiffstore(session: Session, args: list[bytes]) -> object:
    """SDIFFSTORE destination key [key ...]

    SDIFF, stored at destination, as SINTERSTORE.
    """
    return _store(session, b"SDIFFSTORE", args, _diff)


@command("sscan", -3, keys=(1, 1, 1))
def sscan(session: Session, args: list[bytes]) -> object:
    """SSCAN key cursor [MATCH pattern] [COUNT count]

    The next cursor (0 once the walk is over) and a batch of members. A
    member present from the first call to the last is returned once; a
    small set of integers (an intset) comes whole, with cursor 0, as in
    Redis.
    """
    cursor = parse_cursor(args[1])
    value = read(session, args[0], Set)
    if value is None:  # Redis answers before it looks at the options
        return [b"0", []]
    count, pattern, _ = scan_options(args[2:])
    if value.encoding(session.keyspace.encodings) == "intset":
        cursor, batch = 0, _members_in_order(session, value)
    else:
        cursor, batch = value.scan(cursor, count)
    if pattern is not None and pattern != b"*":
        match = compile_pattern(pattern)
        batch = [member for member in batch if match(member)]
    return [b"%d" % cursor, batch]
