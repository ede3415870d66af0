"""List commands: pushes and pops at either end, ranges and indexes, LINSERT,
LREM, LTRIM, LPOS, and the moves LMOVE, RPOPLPUSH and LMPOP. Redis 7.0's
replies and errors, checked side by side with redis-server
(tests/test_commands_lists.py). The value is values/lists.List, a deque.

Rules this module keeps:

* Arguments are checked in Redis's order (t_list.c): some commands parse
  their numbers before looking at the key (LRANGE, LTRIM, LREM, LPOP's
  count), others after (LINDEX, LSET), so a request with two faults gets
  the error Redis gives.
* Costs are Redis's: a push or pop at either end is O(1); LRANGE and
  LINDEX walk from the nearer end, so the first or last 100 items of a
  long list cost 100 steps; LTRIM costs the items it drops; LINSERT, LREM
  and LPOS are O(n), as in Redis.
* The log gets what Redis 7.0's AOF gets: every change as issued (all of
  these are deterministic), except LMPOP, which Redis propagates as the
  LPOP or RPOP (with the count actually popped) that it amounted to. A
  command that changes nothing (a pop of a missing key, LPOP k 0, LREM
  that finds nothing, LTRIM that keeps everything, LINSERT without its
  pivot, LPUSHX on a missing key) logs nothing.
* A push onto a list that expired finds a new, empty list: the expiry was
  logged as a DEL (store.py), so the replay does the same.
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.access import changed, read, write
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.parsing import INT64_MIN, parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import GENERIC, LIST, notify, notify_change
from kvserver.protocol import OK, NullArray
from kvserver.session import Session
from kvserver.values import List

_WHERE = {b"LEFT": True, b"RIGHT": False}  # True: the head


# -- helpers ----------------------------------------------------------------------


def _bounded(raw: bytes, low: int, message: str) -> int:
    """A long from ``low`` to LONG_MAX, as Redis's getRangeLongFromObjectOrReply
    with a message: ``message`` for anything else, not an integer included."""
    try:
        value = parse_int(raw)
    except CommandError:
        raise CommandError(message) from None
    if value < low:
        raise CommandError(message)
    return value


def _where(raw: bytes) -> bool:
    """LEFT or RIGHT (any case): True for the head; else a syntax error."""
    left = _WHERE.get(raw.upper())
    if left is None:
        raise CommandError(errors.SYNTAX)
    return left


def _span(start: int, end: int, length: int) -> tuple[int, int] | None:
    """Redis's index range rules (LRANGE, LTRIM): negative counts from the
    end, then clamped; the half-open (start, stop), or None if empty."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    start = max(start, 0)
    if start > end or start >= length:
        return None
    return start, min(end, length - 1) + 1


# -- pushes ---------------------------------------------------------------------------


def _push(session: Session, args: list[bytes], left: bool, existing_only: bool, name: bytes) -> int:
    key, items = args[0], args[1:]
    value = write(session, key, List)
    if value is None:
        if existing_only:
            return 0
        value = List()
    before = value.nbytes
    undo = value.push(items, left)
    changed(session, key, value, before, undo)
    session.log(name, key, *items)
    if session.keyspace.notify_flags:
        notify(session, LIST, b"lpush" if left else b"rpush", key)
    return len(value)


@command("lpush", -3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def lpush(session: Session, args: list[bytes]) -> object:
    """LPUSH key element [element ...]

    Push each element at the head in turn (the last ends up first); the
    new length.
    """
    return _push(session, args, True, False, b"LPUSH")


@command("rpush", -3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def rpush(session: Session, args: list[bytes]) -> object:
    """RPUSH key element [element ...]

    Push the elements at the tail; the new length.
    """
    return _push(session, args, False, False, b"RPUSH")


@command("lpushx", -3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def lpushx(session: Session, args: list[bytes]) -> object:
    """LPUSHX key element [element ...]

    LPUSH, only if the list exists; the new length, 0 if it does not.
    """
    return _push(session, args, True, True, b"LPUSHX")


@command("rpushx", -3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def rpushx(session: Session, args: list[bytes]) -> object:
    """RPUSHX key element [element ...]

    RPUSH, only if the list exists; the new length, 0 if it does not.
    """
    return _push(session, args, False, True, b"RPUSHX")


# -- pops -------------------------------------------------------------------------------


def _pop(session: Session, args: list[bytes], left: bool, name: str) -> object:
    if len(args) > 2:
        raise errors.wrong_arity(name)
    count = _bounded(args[1], 0, errors.MUST_BE_POSITIVE) if len(args) == 2 else None
    key = args[0]
    value = write(session, key, List)
    if value is None:  # nil without a count; the null array with one
        return None if count is None else NullArray
    if count == 0:
        return []
    before = value.nbytes
    popped, undo = value.pop_items(1 if count is None else count, left)
    changed(session, key, value, before, undo)
    session.log(b"LPOP" if left else b"RPOP", *args)
    if session.keyspace.notify_flags:
        notify_change(session, LIST, b"lpop" if left else b"rpop", key, value)
    return popped[0] if count is None else popped


@command("lpop", -2, write=True, keys=(1, 1, 1), flags=("fast",))
def lpop(session: Session, args: list[bytes]) -> object:
    """LPOP key [count]

    The first element (nil if none); with a count, up to that many as an
    array (a null array if the key is missing).
    """
    return _pop(session, args, True, "lpop")


@command("rpop", -2, write=True, keys=(1, 1, 1), flags=("fast",))
def rpop(session: Session, args: list[bytes]) -> object:
    """RPOP key [count]

    The last element (nil if none); with a count, up to that many from the
    tail as an array (a null array if the key is missing).
    """
    return _pop(session, args, False, "rpop")


# -- reads ------------------------------------------------------------------------------


@command("llen", 2, keys=(1, 1, 1), flags=("fast",))
def llen(session: Session, args: list[bytes]) -> object:
    """LLEN key

    The length of the list, 0 if the key is missing.
    """
    value = read(session, args[0], List)
    return 0 if value is None else len(value)


@command("lrange", 4, keys=(1, 1, 1))
def lrange(session: Session, args: list[bytes]) -> object:
    """LRANGE key start stop

    The elements from start to stop, both included; negative indexes count
    from the end.
    """
    start, end = parse_int(args[1]), parse_int(args[2])
    value = read(session, args[0], List)
    if value is None:
        return []
    span = _span(start, end, len(value))
    return value.range_items(*span) if span else []


@command("lindex", 3, keys=(1, 1, 1))
def lindex(session: Session, args: list[bytes]) -> object:
    """LINDEX key index

    The element at index (negative counts from the end), nil if none.
    """
    value = read(session, args[0], List)
    if value is None:  # before the index is parsed, as Redis
        return None
    index = parse_int(args[1])
    if index < 0:
        index += len(value)
    if not 0 <= index < len(value):
        return None
    return value[index]  # a deque walks to it from the nearer end


@command("lpos", -3, keys=(1, 1, 1))
def lpos(session: Session, args: list[bytes]) -> object:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]

    The index of the first match (nil if none); RANK n starts from the
    n-th match (negative: from the tail); COUNT n gives up to n indexes as
    an array (0: all); MAXLEN n compares only n elements.
    """
    key, element = args[0], args[1]
    rank, count, maxlen = 1, None, 0
    options = args[2:]
    for i in range(0, len(options), 2):
        word = options[i].upper()
        if i + 1 >= len(options):
            raise CommandError(errors.SYNTAX)
        amount = options[i + 1]
        if word == b"RANK":
            rank = parse_int(amount)
            if rank == 0:
                raise CommandError(errors.LPOS_RANK_ZERO)
        elif word == b"COUNT":
            count = _bounded(amount, 0, errors.LPOS_COUNT_NEGATIVE)
        elif word == b"MAXLEN":
            maxlen = _bounded(amount, 0, errors.LPOS_MAXLEN_NEGATIVE)
        else:
            raise CommandError(errors.SYNTAX)
    value = read(session, key, List)
    if value is None:
        return None if count is None else []
    from_tail = rank < 0
    skip = abs(rank) - 1  # matches passed over before the first one reported
    # Redis negates the rank in a C long: -LONG_MIN stays LONG_MIN, so every
    # match qualifies and its COUNT test (which overflows) never stops it.
    unlimited = count == 0 or rank == INT64_MIN
    if rank == INT64_MIN:
        skip = 0
    length = len(value)
    walked = reversed(value) if from_tail else iter(value)
    found: list[int] = []
    matches = 0
    for index, item in enumerate(walked):
        if maxlen and index >= maxlen:
            break
        if item == element:
            matches += 1
            if matches > skip:
                found.append(length - 1 - index if from_tail else index)
                if count is None or (not unlimited and len(found) >= count):
                    break
    if count is None:
        return found[0] if found else None
    return found


# -- changes in place ---------------------------------------------------------------


@command("lset", 4, write=True, keys=(1, 1, 1), flags=("denyoom",))
def lset(session: Session, args: list[bytes]) -> object:
    """LSET key index element

    Replace the element at index; an error if the key is missing or the
    index is out of range.
    """
    key, element = args[0], args[2]
    value = write(session, key, List)
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    index = parse_int(args[1])
    if index < 0:
        index += len(value)
    if not 0 <= index < len(value):
        raise CommandError(errors.INDEX_OUT_OF_RANGE)
    before = value.nbytes
    undo = value.set_item(index, element)
    changed(session, key, value, before, undo)
    session.log(b"LSET", *args)
    notify(session, LIST, b"lset", key)
    return OK


@command("linsert", 5, write=True, keys=(1, 1, 1), flags=("denyoom",))
def linsert(session: Session, args: list[bytes]) -> object:
    """LINSERT key BEFORE | AFTER pivot element

    Insert element next to the first pivot from the head; the new length,
    -1 if there is no pivot, 0 if the key is missing.
    """
    key, where, pivot, element = args
    place = where.upper()
    if place not in (b"BEFORE", b"AFTER"):
        raise CommandError(errors.SYNTAX)
    value = write(session, key, List)
    if value is None:
        return 0
    try:
        index = value.index(pivot)
    except ValueError:
        return -1
    before = value.nbytes
    undo = value.insert_item(index + (place == b"AFTER"), element)
    changed(session, key, value, before, undo)
    session.log(b"LINSERT", *args)
    notify(session, LIST, b"linsert", key)
    return len(value)


@command("lrem", 4, write=True, keys=(1, 1, 1))
def lrem(session: Session, args: list[bytes]) -> object:
    """LREM key count element

    Remove up to count elements equal to element: from the head if count
    is positive, from the tail if negative, all if 0; how many went.
    """
    key, element = args[0], args[2]
    count = parse_int(args[1])
    value = write(session, key, List)
    if value is None:
        return 0
    before = value.nbytes
    removed, undo = value.remove_items(element, count)
    if removed:
        changed(session, key, value, before, undo)
        session.log(b"LREM", *args)
        notify_change(session, LIST, b"lrem", key, value)
    return removed


@command("ltrim", 4, write=True, keys=(1, 1, 1))
def ltrim(session: Session, args: list[bytes]) -> object:
    """LTRIM key start stop

    Keep only the elements from start to stop, both included (negative
    indexes count from the end); OK.
    """
    key = args[0]
    start, end = parse_int(args[1]), parse_int(args[2])
    value = write(session, key, List)
    if value is None:
        return OK
    length = len(value)
    span = _span(start, end, length)
    head, tail = (span[0], length - span[1]) if span else (length, 0)
    if head or tail:
        before = value.nbytes
        undo = value.trim(head, tail)
        changed(session, key, value, before, undo)
        session.log(b"LTRIM", *args)
        notify_change(session, LIST, b"ltrim", key, value)
    return OK


# -- moves -------------------------------------------------------------------------------


def _move(
    session: Session, source: bytes, destination: bytes, from_left: bool, to_left: bool, record: list
) -> object:
    """Pop one element off ``source`` and push it onto ``destination`` (the
    same key rotates the list); the element, nil if ``source`` is missing."""
    src = write(session, source, List)
    if src is None:
        return None
    dst = src if destination == source else write(session, destination, List)  # WRONGTYPE before any change
    if dst is None:
        dst = List()
    src_before, dst_before = src.nbytes, dst.nbytes
    [item], undo_pop = src.pop_items(1, from_left)
    undo_push = dst.push([item], to_left)
    if dst is src:

        def undo() -> None:
            undo_push()
            undo_pop()

        changed(session, source, src, src_before, undo)
    else:
        changed(session, source, src, src_before, undo_pop)
        changed(session, destination, dst, dst_before, undo_push)
    session.log(*record)
    # Redis's order: the push onto the destination, then the pop.
    notify(session, LIST, b"lpush" if to_left else b"rpush", destination)
    notify_change(session, LIST, b"lpop" if from_left else b"rpop", source, src)
    return item


@command("lmove", 5, write=True, keys=(1, 2, 1), flags=("denyoom",))
def lmove(session: Session, args: list[bytes]) -> object:
    """LMOVE source destination LEFT | RIGHT LEFT | RIGHT

    Pop an element from one end of source and push it at one end of
    destination; the element, nil if source is missing.
    """
    from_left, to_left = _where(args[2]), _where(args[3])
    return _move(session, args[0], args[1], from_left, to_left, [b"LMOVE", *args])


@command("rpoplpush", 3, write=True, keys=(1, 2, 1), flags=("denyoom",))
def rpoplpush(session: Session, args: list[bytes]) -> object:
    """RPOPLPUSH source destination

    LMOVE source destination RIGHT LEFT.
    """
    return _move(session, args[0], args[1], False, True, [b"RPOPLPUSH", *args])


@command("lmpop", -4, write=True, flags=("movablekeys",))
def lmpop(session: Session, args: list[bytes]) -> object:
    """LMPOP numkeys key [key ...] LEFT | RIGHT [COUNT count]

    Pop up to count elements (default 1) from the first of the keys that
    holds a list: [key, [elements]], or a null array if none does.
    """
    numkeys = _bounded(args[0], 1, errors.NUMKEYS_NOT_POSITIVE)
    if numkeys >= len(args) - 1:  # no room left for LEFT | RIGHT
        raise CommandError(errors.SYNTAX)
    left = _where(args[numkeys + 1])
    count = None
    options = args[numkeys + 2 :]
    for i in range(0, len(options), 2):
        if count is not None or options[i].upper() != b"COUNT" or i + 1 >= len(options):
            raise CommandError(errors.SYNTAX)
        count = _bounded(options[i + 1], 1, errors.COUNT_NOT_POSITIVE)
    for key in args[1 : numkeys + 1]:
        value = write(session, key, List)
        if value is None:
            continue
        before = value.nbytes
        popped, undo = value.pop_items(count or 1, left)
        changed(session, key, value, before, undo)
        # As Redis propagates it: the pop it amounted to, with the count popped.
        session.log(b"LPOP" if left else b"RPOP", key, b"%d" % len(popped))
        notify_change(session, LIST, b"lpop" if left else b"rpop", key, value)
        return [key, popped]
    return NullArray


def _lmpop_keys(args: list[bytes]) -> list[bytes]:
    """COMMAND GETKEYS LMPOP numkeys key ...: the keys (Redis's error if
    numkeys is not a count of the arguments that follow)."""
    numkeys = _bounded(args[0], 1, errors.GETKEYS_INVALID_ARGUMENTS)
    if numkeys >= len(args):
        raise CommandError(errors.GETKEYS_INVALID_ARGUMENTS)
    return args[1 : numkeys + 1]


KEY_FINDERS["lmpop"] = _lmpop_keys
