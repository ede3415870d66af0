"""Blocking list and sorted-set commands: BLPOP BRPOP BLMOVE BRPOPLPUSH
BLMPOP BZPOPMIN BZPOPMAX BZMPOP, as Redis 7.0 (t_list.c, t_zset.c).

Each first does what its non-blocking form does (reusing lists.py and
zsets.py, so replies, errors and log records are theirs); if nothing was
there it waits (kvserver/blocking.py ``wait_for_keys``). The log gets what
Redis 7.0's AOF gets, for an immediate pop and for a served one alike: the
LPOP / RPOP / LMOVE / RPOPLPUSH / ZPOPMIN / ZPOPMAX it amounted to (a
served BLMOVE's LMOVE spells its ends in lower case, as Redis's shared
strings do; BLMPOP / BZMPOP give the count actually popped). Arguments are
checked in Redis's order: BLMOVE's ends, then the timeout, then the keys.

Served later, a command looks only at the key that became ready, and only
if it holds its type: Redis 7.0 leaves a client blocked when its key is
deleted, flushed or set to another type. Inside MULTI or a script nothing
blocks: the reply is the timeout's, a null array (BLMOVE: nil there, but a
null array on a timeout, as Redis).
"""

from __future__ import annotations

from kvserver.blocking import parse_timeout, wait_for_keys
from kvserver.commands.introspection import COMMAND_GROUPS, KEY_FINDERS
from kvserver.commands.lists import _lmpop_keys, _move, _where, lmove, lmpop, lpop, rpop, rpoplpush
from kvserver.commands.registry import command
from kvserver.commands.zsets import _zmpop_keys, _zpop, zmpop
from kvserver.protocol import NullArray
from kvserver.session import Session
from kvserver.values import List, Zset


def _holds(session: Session, key: bytes, kind: type) -> bool:
    """``key`` holds a ``kind`` (a served command's check: never WRONGTYPE)."""
    return type(session.db.lookup(key, session.now)) is kind


# -- lists ------------------------------------------------------------------------


def _bpop(session: Session, args: list[bytes], left: bool) -> object:
    timeout = parse_timeout(args[-1])
    keys = args[:-1]
    pop = lpop if left else rpop
    for key in keys:
        item = pop(session, [key])  # WRONGTYPE for the first key of another type
        if item is not None:
            return [key, item]

    def serve(s: Session, key: bytes) -> object:
        if not _holds(s, key, List):
            return None
        return [key, pop(s, [key])]

    return wait_for_keys(session, keys, timeout, serve, NullArray)


@command("blpop", -3, write=True, keys=(1, -2, 1), flags=("noscript", "blocking"))
def blpop(session: Session, args: list[bytes]) -> object:
    """BLPOP key [key ...] timeout

    LPOP the first non-empty list of the keys, waiting up to timeout
    seconds (0: forever) for one: [key, element], or a null array.
    """
    return _bpop(session, args, True)


@command("brpop", -3, write=True, keys=(1, -2, 1), flags=("noscript", "blocking"))
def brpop(session: Session, args: list[bytes]) -> object:
    """BRPOP key [key ...] timeout

    RPOP the first non-empty list of the keys, waiting for one as BLPOP.
    """
    return _bpop(session, args, False)


def _bmove(session: Session, args: list[bytes], from_left: bool, to_left: bool, timeout: int, item, record):
    """BLMOVE / BRPOPLPUSH once checked: ``item`` what LMOVE / RPOPLPUSH
    gave at once; ``record`` the effect logged when served later."""
    if item is not None:
        return item
    source, destination = args[0], args[1]

    def serve(s: Session, key: bytes) -> object:
        if not _holds(s, source, List):
            return None
        return _move(s, source, destination, from_left, to_left, record)  # WRONGTYPE destination: the reply

    # As Redis: nil inside MULTI, but the null array of the list commands on a timeout.
    return wait_for_keys(session, [source], timeout, serve, NullArray, None)


@command("blmove", 6, write=True, keys=(1, 2, 1), flags=("denyoom", "noscript", "blocking"))
def blmove(session: Session, args: list[bytes]) -> object:
    """BLMOVE source destination LEFT | RIGHT LEFT | RIGHT timeout

    LMOVE, waiting up to timeout seconds for source to exist: the element, or nil.
    """
    from_left, to_left = _where(args[2]), _where(args[3])
    timeout = parse_timeout(args[4])
    item = lmove(session, args[:4])  # logged as LMOVE, as issued
    ends = [b"left" if from_left else b"right", b"left" if to_left else b"right"]
    return _bmove(session, args, from_left, to_left, timeout, item, [b"LMOVE", *args[:2], *ends])


@command("brpoplpush", 4, write=True, keys=(1, 2, 1), flags=("denyoom", "noscript", "blocking"))
def brpoplpush(session: Session, args: list[bytes]) -> object:
    """BRPOPLPUSH source destination timeout

    RPOPLPUSH, waiting up to timeout seconds for source to exist.
    """
    timeout = parse_timeout(args[2])
    item = rpoplpush(session, args[:2])
    return _bmove(session, args, False, True, timeout, item, [b"RPOPLPUSH", *args[:2]])


def _bmpop(session: Session, args: list[bytes], kind: type, mpop) -> object:
    """BLMPOP / BZMPOP: the timeout, then LMPOP's / ZMPOP's own checks."""
    timeout = parse_timeout(args[0])
    reply = mpop(session, args[1:])
    if reply is not NullArray:
        return reply
    numkeys = int(args[1])  # LMPOP / ZMPOP checked it
    keys = args[2 : 2 + numkeys]
    options = args[2 + numkeys :]  # the end, [COUNT count]

    def serve(s: Session, key: bytes) -> object:
        if not _holds(s, key, kind):
            return None
        return mpop(s, [b"1", key, *options])

    return wait_for_keys(session, keys, timeout, serve, NullArray)


@command("blmpop", -5, write=True, flags=("blocking", "movablekeys"))
def blmpop(session: Session, args: list[bytes]) -> object:
    """BLMPOP timeout numkeys key [key ...] LEFT | RIGHT [COUNT count]

    LMPOP, waiting up to timeout seconds for one of the lists: [key, [elements]], or a null array.
    """
    return _bmpop(session, args, List, lmpop)


KEY_FINDERS["blmpop"] = lambda args: _lmpop_keys(args[1:])


# -- sorted sets ----------------------------------------------------------------------


def _bzpop(session: Session, args: list[bytes], highest: bool) -> object:
    timeout = parse_timeout(args[-1])
    keys = args[:-1]
    for key in keys:
        popped = _zpop(session, [key], highest)  # WRONGTYPE for the first key of another type
        if popped:
            return [key, *popped]

    def serve(s: Session, key: bytes) -> object:
        if not _holds(s, key, Zset):
            return None
        return [key, *_zpop(s, [key], highest)]

    return wait_for_keys(session, keys, timeout, serve, NullArray)


@command("bzpopmin", -3, write=True, keys=(1, -2, 1), flags=("noscript", "blocking", "fast"))
def bzpopmin(session: Session, args: list[bytes]) -> object:
    """BZPOPMIN key [key ...] timeout

    ZPOPMIN the first non-empty sorted set of the keys, waiting up to
    timeout seconds for one: [key, member, score], or a null array.
    """
    return _bzpop(session, args, False)


@command("bzpopmax", -3, write=True, keys=(1, -2, 1), flags=("noscript", "blocking", "fast"))
def bzpopmax(session: Session, args: list[bytes]) -> object:
    """BZPOPMAX key [key ...] timeout

    ZPOPMAX the first non-empty sorted set of the keys, waiting as BZPOPMIN.
    """
    return _bzpop(session, args, True)


@command("bzmpop", -5, write=True, flags=("blocking", "movablekeys"))
def bzmpop(session: Session, args: list[bytes]) -> object:
    """BZMPOP timeout numkeys key [key ...] MIN | MAX [COUNT count]

    ZMPOP, waiting up to timeout seconds for one of the sorted sets.
    """
    return _bmpop(session, args, Zset, zmpop)


KEY_FINDERS["bzmpop"] = lambda args: _zmpop_keys(args[1:])


COMMAND_GROUPS.update(
    {name: "list" for name in ("blpop", "brpop", "blmove", "brpoplpush", "blmpop")},
    **{name: "sorted-set" for name in ("bzpopmin", "bzpopmax", "bzmpop")},
)
