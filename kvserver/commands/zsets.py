"""Sorted-set commands: ZADD ... ZSCAN, on ``values.Zset``, as Redis 7.0.

Replies follow Redis 7.0 byte for byte: scores are doubles (``float``
replies: RESP2 bulk strings in %.17g, RESP3 doubles), WITHSCORES is a flat
member, score, ... array in RESP2 and an array of [member, score] pairs in
RESP3. Arguments are read the way Redis reads them:

* a score (ZADD, ZINCRBY, WEIGHTS) as ``string2d``: C's strtod over the
  whole argument, no leading space, "inf"/"-inf" and hex floats accepted,
  NaN and overflow refused;
* a score range bound as ``zslParseRange``: strtod after an optional "(",
  leading spaces allowed, an empty bound read as 0, overflow as +-inf;
* a lex range bound as ``zslParseLexRangeItem``: "[x", "(x", "-" or "+".

The log records what Redis 7.0's AOF records: the command as issued when
it changed something (ZADD, ZINCRBY, ZREM, ZPOPMIN/ZPOPMAX, the range
removals, the STORE commands), ZMPOP as the ZPOPMIN/ZPOPMAX of the count it
popped, nothing for a command that changed nothing or only reads
(ZRANDMEMBER included).
"""

from __future__ import annotations

import math
import random
import re
import struct
from collections.abc import Callable

from kvserver import errors
from kvserver.commands.access import changed, read, write
from kvserver.commands.glob import compile_pattern
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.keyspace import parse_cursor, scan_options
from kvserver.commands.parsing import INT64_MAX, parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import GENERIC, ZSET, notify, notify_change
from kvserver.protocol import NullArray, format_double
from kvserver.session import Session
from kvserver.values import Set, Zset

# Redis's ZRANDMEMBER refuses counts below -LONG_MAX (their negation overflows).
RANDMEMBER_MIN = -INT64_MAX
# The size up to which a lex range is found by walking from the ends, as
# Redis walks a listpack (its default zset-max-listpack-entries); past it,
# by binary search, as its skiplist descends. The two agree whenever the
# members in the set share one score, which is what lex ranges are for.
LEX_WALK_LIMIT = 128

# -- reading arguments ------------------------------------------------------------

_C_SPACE = b" \t\n\v\f\r"
_WORD = re.compile(rb"[+-]?(?:inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE)
_HEX = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?")
_DECIMAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONZERO_DIGIT = re.compile(rb"[1-9a-fA-F]")


def _strtod(text: bytes) -> tuple[float, int, bool]:
    """C's strtod on ``text``: (value, bytes consumed, ERANGE). Nothing
    converted is (0.0, 0, False), as strtod leaves its end pointer at the start."""
    start = len(text) - len(text.lstrip(_C_SPACE))
    for pattern in (_WORD, _HEX, _DECIMAL):
        found = pattern.match(text, start)
        if found:
            break
    else:
        return 0.0, 0, False
    token = found.group()
    negative = token[:1] == b"-"
    if pattern is _WORD:
        value = math.nan if token.lstrip(b"+-")[:1] in b"nN" else (-math.inf if negative else math.inf)
        return value, found.end(), False
    if pattern is _HEX:
        try:
            value = float.fromhex(token.decode())
        except OverflowError:
            return (-math.inf if negative else math.inf), found.end(), True
        mantissa = token.lower().split(b"p")[0][2 + (token[:1] in b"+-") :]
    else:
        value = float(token)
        mantissa = token.lower().split(b"e")[0]
    underflow = value == 0 and _NONZERO_DIGIT.search(mantissa) is not None
    return value, found.end(), math.isinf(value) or underflow


def parse_score(raw: bytes, message: str = errors.NOT_FLOAT) -> float:
    """A score argument as Redis's string2d reads it."""
    if raw.isdigit() and len(raw) <= 15:  # the usual score: exact as a double, strtod's value
        return float(raw)
    if not raw or raw[0] in _C_SPACE:
        raise CommandError(message)
    value, end, erange = _strtod(raw)
    if end != len(raw) or math.isnan(value) or (erange and (math.isinf(value) or value == 0)):
        raise CommandError(message)
    return value


def _score_bound(raw: bytes) -> tuple[float, bool]:
    """One end of a score range: (score, exclusive)."""
    text = raw.split(b"\0", 1)[0]  # strtod reads a C string
    exclusive = text[:1] == b"("
    if exclusive:
        text = text[1:]
    value, end, _ = _strtod(text)
    if end != len(text) or math.isnan(value):
        raise CommandError(errors.ZSET_NOT_FLOAT_RANGE)
    return value, exclusive


class ScoreRange:
    __slots__ = ("min", "minex", "max", "maxex")

    def __init__(self, low: bytes, high: bytes) -> None:
        self.min, self.minex = _score_bound(low)
        self.max, self.maxex = _score_bound(high)

    def above_min(self, score: float) -> bool:
        return score > self.min if self.minex else score >= self.min

    def below_max(self, score: float) -> bool:
        return score < self.max if self.maxex else score <= self.max

    def ranks(self, zset: Zset) -> tuple[int, int]:
        """The ranks start..stop-1 of the members in the range."""
        start = zset.first_at_least(self.min, self.minex)
        return start, max(start, zset.first_above(self.max, self.maxex))


# Redis's shared.minstring / shared.maxstring: "-" and "+" as bounds.
_MIN, _MAX = object(), object()


def _lex_bound(raw: bytes) -> tuple[object, bool]:
    first, rest = raw[:1], raw[1:]
    if first in (b"+", b"-"):
        if rest[:1] not in (b"", b"\0"):  # Redis checks the byte after the sign
            raise CommandError(errors.ZSET_NOT_LEX_RANGE)
        return (_MAX if first == b"+" else _MIN), True
    if first == b"(":
        return rest, True
    if first == b"[":
        return rest, False
    raise CommandError(errors.ZSET_NOT_LEX_RANGE)


class LexRange:
    __slots__ = ("min", "minex", "max", "maxex")

    def __init__(self, low: bytes, high: bytes) -> None:
        self.min, self.minex = _lex_bound(low)
        self.max, self.maxex = _lex_bound(high)

    def above_min(self, member: bytes) -> bool:
        if self.min is _MIN:
            return True
        if self.min is _MAX:
            return False
        return member > self.min if self.minex else member >= self.min

    def below_max(self, member: bytes) -> bool:
        if self.max is _MAX:
            return True
        if self.max is _MIN:
            return False
        return member < self.max if self.maxex else member <= self.max

    def empty(self) -> bool:
        """Redis's zslIsInLexRange's first test: a range nothing can be in."""
        low, high = self.min, self.max
        if low is high:
            cmp = 0
        elif low is _MIN or high is _MAX:
            cmp = -1
        elif low is _MAX or high is _MIN:
            cmp = 1
        else:
            cmp = (low > high) - (low < high)
        return cmp > 0 or (cmp == 0 and (self.minex or self.maxex))

    def first(self, zset: Zset) -> int | None:
        """The rank of the first member in the range (Redis's
        zslFirstInLexRange), or None."""
        n = len(zset)
        if not n or self.empty():
            return None
        if not self.above_min(zset.item(n - 1)[1]) or not self.below_max(zset.item(0)[1]):
            return None
        if n <= LEX_WALK_LIMIT:
            rank = next(i for i, (_, m) in enumerate(zset.order) if self.above_min(m))
        else:
            rank = _bisect_ranks(zset, lambda m: self.above_min(m))
        return rank if self.below_max(zset.item(rank)[1]) else None

    def last(self, zset: Zset) -> int | None:
        """The rank of the last member in the range (zslLastInLexRange), or None."""
        n = len(zset)
        if not n or self.empty():
            return None
        if not self.above_min(zset.item(n - 1)[1]) or not self.below_max(zset.item(0)[1]):
            return None
        if n <= LEX_WALK_LIMIT:
            rank = next(i for i in range(n - 1, -1, -1) if self.below_max(zset.item(i)[1]))
        else:
            rank = _bisect_ranks(zset, lambda m: not self.below_max(m)) - 1
        return rank if self.above_min(zset.item(rank)[1]) else None


def _bisect_ranks(zset: Zset, past: Callable[[bytes], bool]) -> int:
    """The first rank whose member satisfies ``past`` (false, then true)."""
    low, high = 0, len(zset)
    while low < high:
        middle = (low + high) // 2
        if past(zset.item(middle)[1]):
            high = middle
        else:
            low = middle + 1
    return low


def _positive(raw: bytes, message: str = errors.MUST_BE_POSITIVE) -> int:
    """Redis's getPositiveLongFromObjectOrReply: one message for a
    negative number and for one that is not a number at all."""
    try:
        value = parse_int(raw)
    except CommandError:
        raise CommandError(message) from None
    if value < 0:
        raise CommandError(message)
    return value


def _at_least_one(raw: bytes, message: str) -> int:
    """Redis's getRangeLongFromObjectOrReply(1, LONG_MAX, message)."""
    try:
        value = parse_int(raw)
    except CommandError:
        raise CommandError(message) from None
    if value < 1:
        raise CommandError(message)
    return value


# -- replies ------------------------------------------------------------------------


def _with_scores(session: Session, pairs: list[tuple[float, bytes]], withscores: bool) -> list:
    """(score, member) pairs as Redis replies them: members only; or with
    scores, flat in RESP2 and [member, score] pairs in RESP3."""
    if not withscores:
        return [member for _, member in pairs]
    if session.resp == 3:
        return [[member, score] for score, member in pairs]
    return [x for score, member in pairs for x in (member, score)]


# -- ZADD, ZINCRBY, ZREM ---------------------------------------------------------------


@command("zadd", -4, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def zadd(session: Session, args: list[bytes]) -> object:
    """ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]

    Add members or change their scores; the number added (with CH: added
    or changed); with INCR, the member's new score (nil if not changed).
    """
    given: tuple[bytes, ...] = ()
    at = 1
    while at < len(args) and (word := args[at].upper()) in _ZADD_FLAGS:
        given += (word,)
        at += 1
    return _zadd(
        session, b"ZADD", args, at,
        nx=b"NX" in given, xx=b"XX" in given, ch=b"CH" in given,
        incr=b"INCR" in given, gt=b"GT" in given, lt=b"LT" in given,
    )  # fmt: skip


_ZADD_FLAGS = (b"NX", b"XX", b"CH", b"INCR", b"GT", b"LT")


@command("zincrby", 4, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def zincrby(session: Session, args: list[bytes]) -> object:
    """ZINCRBY key increment member

    Add the increment to the member's score (a new member starts at 0); the new score.
    """
    return _zadd(session, b"ZINCRBY", args, 1, nx=False, xx=False, ch=False, incr=True, gt=False, lt=False)


def _zadd(session: Session, name: bytes, args: list[bytes], at: int, *, nx, xx, ch, incr, gt, lt) -> object:
    key, pairs = args[0], args[at:]
    if not pairs or len(pairs) % 2:
        raise CommandError(errors.SYNTAX)
    if nx and xx:
        raise CommandError(errors.ZSET_XX_NX)
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError(errors.ZSET_GT_LT_NX)
    if incr and len(pairs) > 2:
        raise CommandError(errors.ZSET_INCR_PAIR)
    scores = [parse_score(raw) for raw in pairs[0::2]]
    members = pairs[1::2]
    value = write(session, key, Zset)
    if value is None:
        if xx:
            return None if incr else 0
        value = Zset()
    before = value.nbytes
    settings = session.keyspace.encodings
    undos: list[Callable[[], None]] = []
    added = updated = processed = 0
    score = 0.0
    for score, member in zip(scores, members):
        current = value.score(member)
        if current is None:
            if xx:
                continue
            undos.append(value.set_score(member, _as_stored(value, member, score, settings)))
            added += 1
            processed += 1
            continue
        if nx:
            continue
        if incr:
            score += current
            if math.isnan(score):
                _undo_all(undos)
                raise CommandError(errors.ZSET_NAN)
        if (lt and score >= current) or (gt and score <= current):
            continue
        processed += 1
        if score != current:
            undos.append(value.set_score(member, _as_stored(value, member, score, settings)))
            updated += 1
    if undos:
        changed(session, key, value, before, lambda: _undo_all(undos))
        session.log(name, *args)
        notify(session, ZSET, b"zincr" if incr else b"zadd", key)
    if incr:
        return score if processed else None
    return added + updated if ch else added


def _as_stored(value: Zset, member: bytes, score: float, settings) -> float:
    """The score Redis keeps: a listpack holds scores as text (d2string),
    which writes -0.0 as "0"; a skiplist keeps the double as it is."""
    if score != 0 or value.encoding(settings) != "listpack":
        return score
    if member not in value:  # an insert that converts the set first keeps -0.0
        if max(value.peak_members, len(value) + 1) > settings.zset_max_listpack_entries:
            return score
        if len(member) > settings.zset_max_listpack_value:
            return score
    return 0.0


def _undo_all(undos: list[Callable[[], None]]) -> None:
    for undo in reversed(undos):
        undo()


@command("zrem", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def zrem(session: Session, args: list[bytes]) -> object:
    """ZREM key member [member ...]

    Remove members; how many were there.
    """
    key = args[0]
    value = write(session, key, Zset)
    if value is None:
        return 0
    before = value.nbytes
    removed, undo = value.remove_members(dict.fromkeys(args[1:]))
    if removed:
        changed(session, key, value, before, undo)
        session.log(b"ZREM", *args)
        notify_change(session, ZSET, b"zrem", key, value)
    return removed


# -- reads of one member or a count -------------------------------------------------


@command("zcard", 2, keys=(1, 1, 1), flags=("fast",))
def zcard(session: Session, args: list[bytes]) -> object:
    """ZCARD key

    The number of members (0 for a missing key).
    """
    value = read(session, args[0], Zset)
    return 0 if value is None else len(value)


@command("zscore", 3, keys=(1, 1, 1), flags=("fast",))
def zscore(session: Session, args: list[bytes]) -> object:
    """ZSCORE key member

    The member's score, or nil.
    """
    value = read(session, args[0], Zset)
    return None if value is None else value.score(args[1])


@command("zmscore", -3, keys=(1, 1, 1), flags=("fast",))
def zmscore(session: Session, args: list[bytes]) -> object:
    """ZMSCORE key member [member ...]

    Each member's score, or nil.
    """
    value = read(session, args[0], Zset)
    return [None if value is None else value.score(m) for m in args[1:]]


@command("zrank", 3, keys=(1, 1, 1), flags=("fast",))
def zrank(session: Session, args: list[bytes]) -> object:
    """ZRANK key member

    The member's 0-based rank by ascending score, or nil.
    """
    value = read(session, args[0], Zset)
    return None if value is None else value.rank(args[1])


@command("zrevrank", 3, keys=(1, 1, 1), flags=("fast",))
def zrevrank(session: Session, args: list[bytes]) -> object:
    """ZREVRANK key member

    The member's 0-based rank by descending score, or nil.
    """
    value = read(session, args[0], Zset)
    rank = None if value is None else value.rank(args[1])
    return None if rank is None else len(value) - 1 - rank


@command("zcount", 4, keys=(1, 1, 1), flags=("fast",))
def zcount(session: Session, args: list[bytes]) -> object:
    """ZCOUNT key min max

    How many members have a score in the range.
    """
    scores = ScoreRange(args[1], args[2])
    value = read(session, args[0], Zset)
    if value is None:
        return 0
    start, stop = scores.ranks(value)
    return stop - start


@command("zlexcount", 4, keys=(1, 1, 1), flags=("fast",))
def zlexcount(session: Session, args: list[bytes]) -> object:
    """ZLEXCOUNT key min max

    How many members are in the lexicographical range.
    """
    lex = LexRange(args[1], args[2])
    value = read(session, args[0], Zset)
    if value is None:
        return 0
    if len(value) <= LEX_WALK_LIMIT:  # as Redis counts in a listpack: a walk
        return len(_lex_walk(value, lex, 0, -1, reverse=False)[1])
    first = lex.first(value)  # as in its skiplist: the ranks of both ends
    if first is None:
        return 0
    last = lex.last(value)
    return len(value) - first if last is None else last - first + 1


def _lex_walk(value: Zset, lex: LexRange, offset: int, limit: int, reverse: bool) -> tuple[int, list[tuple[float, bytes]]]:
    """Redis's Z[REV]RANGEBYLEX walk: from the first member in range (the
    last, in reverse), skip ``offset``, then take members while they are
    in range, ``limit`` at most (negative: no limit). The first rank taken
    (ascending ranks) and the (score, member) pairs, in walk order."""
    start = lex.last(value) if reverse else lex.first(value)
    if start is None or offset < 0:  # a negative offset walks past the end
        return 0, []
    n = len(value)
    if reverse:
        walk = value.order.islice(0, max(start + 1 - offset, 0), reverse=True)
        inside = lex.above_min
    else:
        walk = value.order.islice(start + offset, n)
        inside = lex.below_max
    taken = []
    for pair in walk:
        if len(taken) == limit or not inside(pair[1]):
            break
        taken.append(pair)
    first = start - offset - len(taken) + 1 if reverse else start + offset
    return first, taken


# -- ZRANGE and its older forms ------------------------------------------------------


@command("zrange", -4, keys=(1, 1, 1))
def zrange(session: Session, args: list[bytes]) -> object:
    """ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]

    Members by rank, score range or lex range, optionally in reverse.
    """
    return _zrange(session, args, None, None, None)


@command("zrangestore", -5, write=True, keys=(1, 2, 1), flags=("denyoom",))
def zrangestore(session: Session, args: list[bytes]) -> object:
    """ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]

    Store what ZRANGE would return in dst; how many members it holds.
    """
    return _zrange(session, args[1:], None, None, args)


@command("zrevrange", -4, keys=(1, 1, 1))
def zrevrange(session: Session, args: list[bytes]) -> object:
    """ZREVRANGE key start stop [WITHSCORES]

    Members by rank, highest score first.
    """
    return _zrange(session, args, "rank", True, None)


@command("zrangebyscore", -4, keys=(1, 1, 1))
def zrangebyscore(session: Session, args: list[bytes]) -> object:
    """ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]

    Members with a score in the range, lowest first.
    """
    return _zrange(session, args, "score", False, None)


@command("zrevrangebyscore", -4, keys=(1, 1, 1))
def zrevrangebyscore(session: Session, args: list[bytes]) -> object:
    """ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]

    Members with a score in the range, highest first.
    """
    return _zrange(session, args, "score", True, None)


@command("zrangebylex", -4, keys=(1, 1, 1))
def zrangebylex(session: Session, args: list[bytes]) -> object:
    """ZRANGEBYLEX key min max [LIMIT offset count]

    Members in the lexicographical range.
    """
    return _zrange(session, args, "lex", False, None)


@command("zrevrangebylex", -4, keys=(1, 1, 1))
def zrevrangebylex(session: Session, args: list[bytes]) -> object:
    """ZREVRANGEBYLEX key max min [LIMIT offset count]

    Members in the lexicographical range, in reverse.
    """
    return _zrange(session, args, "lex", True, None)


def _zrange(session: Session, args: list[bytes], kind: str | None, reverse: bool | None, store: list[bytes] | None):
    """Redis's zrangeGenericCommand: ``args`` from the source key on;
    ``kind`` and ``reverse`` None where the options choose them; ``store``
    the whole ZRANGESTORE argument list (None for a reply)."""
    withscores = False
    offset, limit = 0, -1
    j = 3
    while j < len(args):
        word = args[j].upper()
        if store is None and word == b"WITHSCORES":
            withscores = True
        elif word == b"LIMIT" and len(args) - j - 1 >= 2:
            offset, limit = parse_int(args[j + 1]), parse_int(args[j + 2])
            j += 2
        elif reverse is None and word == b"REV":
            reverse = True
        elif kind is None and word == b"BYLEX":
            kind = "lex"
        elif kind is None and word == b"BYSCORE":
            kind = "score"
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    reverse = bool(reverse)
    kind = kind or "rank"
    if limit != -1 and kind == "rank":
        raise CommandError(errors.ZSET_LIMIT_NEEDS_BY)
    if withscores and kind == "lex":
        raise CommandError(errors.ZSET_WITHSCORES_BYLEX)
    low, high = (args[2], args[1]) if reverse and kind != "rank" else (args[1], args[2])
    if kind == "rank":
        start, end = parse_int(low), parse_int(high)
    elif kind == "score":
        bounds = ScoreRange(low, high)
    else:
        bounds = LexRange(low, high)

    value = read(session, args[0], Zset)
    if value is None:
        pairs = []
    elif kind == "rank":
        pairs = _by_rank(value, start, end, reverse)
    elif kind == "score":
        pairs = _by_score(value, bounds, offset, limit, reverse)
    else:
        pairs = _lex_walk(value, bounds, offset, limit, reverse)[1]
    if store is None:
        return _with_scores(session, pairs, withscores)
    return _store(session, b"ZRANGESTORE", store[0], Zset((m, s) for s, m in pairs), store)


def _by_rank(value: Zset, start: int, end: int, reverse: bool) -> list[tuple[float, bytes]]:
    n = len(value)
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = max(start, 0)
    if start > end or start >= n:
        return []
    return value.at(start, min(end, n - 1) + 1, reverse)


def _by_score(value: Zset, bounds: ScoreRange, offset: int, limit: int, reverse: bool) -> list[tuple[float, bytes]]:
    if offset < 0:  # Redis's walk skips past the end
        return []
    start, stop = bounds.ranks(value)
    if reverse:
        stop -= offset
        if limit >= 0:
            start = max(start, stop - limit)
        return value.at(len(value) - stop, len(value) - start, True) if start < stop else []
    start += offset
    if limit >= 0:
        stop = min(stop, start + limit)
    return value.at(start, stop) if start < stop else []


def _store(session: Session, name: bytes, dst: bytes, result: Zset, args: list[bytes], event: bytes = b"") -> int:
    """A STORE command's end (Redis's setKey or dbDelete): ``result`` at
    ``dst``, or ``dst`` deleted when it is empty; logged when either
    changed anything; the reply."""
    db = session.db
    if result.encoding(session.keyspace.encodings) == "listpack":
        # Redis makes a small result a listpack, whose text has no -0.0 (_as_stored)
        result = Zset((member, score + 0.0) for member, score in result.scores.items())
    if result:
        result.epoch = session.keyspace.snapshot_epoch
        db.lookup(dst, session.now)  # one past its deadline expires first, as in Redis's setKey
        db.set(dst, result, None)
        session.log(name, *args)
        notify(session, ZSET, event or name.lower(), dst)
        return len(result)
    if not (db.lookup(dst, session.now) is not None and db.delete(dst)):
        return 0
    session.log(name, *args)
    notify(session, GENERIC, b"del", dst)
    return 0


# -- removing ranges, popping ------------------------------------------------------------


def _remove_ranks(session: Session, name: bytes, args: list[bytes], ranks: Callable[[Zset], tuple[int, int]]) -> int:
    key = args[0]
    value = write(session, key, Zset)
    if value is None:
        return 0
    start, stop = ranks(value)
    if start >= stop:
        return 0
    before = value.nbytes
    removed, undo = value.remove_ranks(start, stop)
    changed(session, key, value, before, undo)
    session.log(name, *args)
    notify_change(session, ZSET, name.lower(), key, value)
    return len(removed)


@command("zremrangebyrank", 4, write=True, keys=(1, 1, 1))
def zremrangebyrank(session: Session, args: list[bytes]) -> object:
    """ZREMRANGEBYRANK key start stop

    Remove the members ranked start..stop (negative: from the end); how many.
    """
    start, end = parse_int(args[1]), parse_int(args[2])

    def ranks(value: Zset) -> tuple[int, int]:
        n = len(value)
        first = max(start + n if start < 0 else start, 0)
        last = end + n if end < 0 else end
        if first > last or first >= n:
            return 0, 0
        return first, min(last, n - 1) + 1

    return _remove_ranks(session, b"ZREMRANGEBYRANK", args, ranks)


@command("zremrangebyscore", 4, write=True, keys=(1, 1, 1))
def zremrangebyscore(session: Session, args: list[bytes]) -> object:
    """ZREMRANGEBYSCORE key min max

    Remove the members with a score in the range; how many.
    """
    scores = ScoreRange(args[1], args[2])
    return _remove_ranks(session, b"ZREMRANGEBYSCORE", args, scores.ranks)


@command("zremrangebylex", 4, write=True, keys=(1, 1, 1))
def zremrangebylex(session: Session, args: list[bytes]) -> object:
    """ZREMRANGEBYLEX key min max

    Remove the members in the lexicographical range; how many.
    """
    lex = LexRange(args[1], args[2])

    def ranks(value: Zset) -> tuple[int, int]:
        first, taken = _lex_walk(value, lex, 0, -1, reverse=False)
        return first, first + len(taken)

    return _remove_ranks(session, b"ZREMRANGEBYLEX", args, ranks)


def _pop(session: Session, key: bytes, value: Zset, count: int, highest: bool) -> list[tuple[float, bytes]]:
    """Pop ``count`` members (at most all) from the low or high end."""
    n = len(value)
    count = min(count, n)
    before = value.nbytes
    removed, undo = value.remove_ranks(n - count, n) if highest else value.remove_ranks(0, count)
    changed(session, key, value, before, undo)
    notify_change(session, ZSET, b"zpopmax" if highest else b"zpopmin", key, value)
    return removed[::-1] if highest else removed


def _zpop(session: Session, args: list[bytes], highest: bool) -> object:
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    count = _positive(args[1]) if len(args) == 2 else None
    value = write(session, args[0], Zset)
    if value is None or count == 0:
        return []
    popped = _pop(session, args[0], value, 1 if count is None else count, highest)
    session.log(b"ZPOPMAX" if highest else b"ZPOPMIN", *args)
    if session.resp == 3 and count is not None:
        return [[member, score] for score, member in popped]
    return [x for score, member in popped for x in (member, score)]


@command("zpopmin", -2, write=True, keys=(1, 1, 1), flags=("fast",))
def zpopmin(session: Session, args: list[bytes]) -> object:
    """ZPOPMIN key [count]

    Remove and return the members with the lowest scores, with their scores.
    """
    return _zpop(session, args, highest=False)


@command("zpopmax", -2, write=True, keys=(1, 1, 1), flags=("fast",))
def zpopmax(session: Session, args: list[bytes]) -> object:
    """ZPOPMAX key [count]

    Remove and return the members with the highest scores, with their scores.
    """
    return _zpop(session, args, highest=True)


@command("zmpop", -4, write=True, flags=("movablekeys",))
def zmpop(session: Session, args: list[bytes]) -> object:
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]

    Pop from the first non-empty of the keys: [key, [[member, score], ...]], or nil.
    """
    numkeys = _at_least_one(args[0], errors.NUMKEYS_NOT_POSITIVE)
    where = 1 + numkeys
    if where >= len(args):
        raise CommandError(errors.SYNTAX)
    side = args[where].upper()
    if side not in (b"MIN", b"MAX"):
        raise CommandError(errors.SYNTAX)
    count = None
    j = where + 1
    while j < len(args):
        if count is None and args[j].upper() == b"COUNT" and j + 1 < len(args):
            count = _at_least_one(args[j + 1], errors.COUNT_NOT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    count = count or 1
    for key in args[1:where]:
        value = write(session, key, Zset)
        if value is None:
            continue
        n = len(value)
        popped = _pop(session, key, value, count, side == b"MAX")
        # Redis propagates ZMPOP as the ZPOPMIN/ZPOPMAX it amounted to.
        session.log(b"ZPOPMAX" if side == b"MAX" else b"ZPOPMIN", key, b"%d" % min(count, n))
        return [key, [[member, score] for score, member in popped]]
    return NullArray


def _zmpop_keys(args: list[bytes]) -> list[bytes]:
    try:
        numkeys = int(args[0])
    except ValueError:
        return []
    return args[1 : 1 + numkeys] if numkeys > 0 else []


KEY_FINDERS["zmpop"] = _zmpop_keys


# -- ZRANDMEMBER, ZSCAN ---------------------------------------------------------------------


@command("zrandmember", -2, keys=(1, 1, 1))
def zrandmember(session: Session, args: list[bytes]) -> object:
    """ZRANDMEMBER key [count [WITHSCORES]]

    A random member (nil if missing); with a count, that many distinct
    members (at most all), or with a negative count that many picks that may repeat.
    """
    if len(args) == 1:
        value = read(session, args[0], Zset)
        return None if value is None else value.item(random.randrange(len(value)))[1]
    count = parse_int(args[1])
    if count < RANDMEMBER_MIN:
        raise errors.out_of_range(RANDMEMBER_MIN, INT64_MAX)
    if len(args) > 3 or (len(args) == 3 and args[2].upper() != b"WITHSCORES"):
        raise CommandError(errors.SYNTAX)
    withscores = len(args) == 3
    value = read(session, args[0], Zset)
    if value is None or count == 0:
        return []
    n = len(value)
    if count < 0:
        pairs = [value.item(random.randrange(n)) for _ in range(-count)]
    elif count >= n:
        pairs = value.at(0, n, reverse=True)  # the whole set, highest first, as Redis iterates it
    else:
        ranks = random.sample(range(n), count)
        if n <= LEX_WALK_LIMIT:
            ranks.sort()  # a listpack's unique picks come in its order
        pairs = [value.item(r) for r in ranks]
    return _with_scores(session, pairs, withscores)


def _scan_key(score: float) -> int:
    """A score as an unsigned 64-bit integer in the same order (-0.0 as 0.0):
    ZSCAN's cursor on a large set. Never 0 for a score (0 is "done")."""
    bits = struct.unpack(">Q", struct.pack(">d", score + 0.0))[0]
    return bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63


def _scan_score(cursor: int) -> float:
    bits = cursor ^ 0xFFFFFFFFFFFFFFFF if not cursor >> 63 else cursor & ~(1 << 63)
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


@command("zscan", -3, keys=(1, 1, 1))
def zscan(session: Session, args: list[bytes]) -> object:
    """ZSCAN key cursor [MATCH pattern] [COUNT count]

    The next cursor (0 once the walk is over) and a batch of member, score
    pairs. A small set comes whole in one batch, as in Redis; a large one in
    score order, its cursor the next batch's first score (so a member
    present throughout is returned, and members sharing a score come in
    one batch).
    """
    cursor = parse_cursor(args[1])
    value = read(session, args[0], Zset)
    if value is None:
        return [b"0", []]
    count, pattern, _ = scan_options(args[2:])
    n = len(value)
    if value.encoding(session.keyspace.encodings) == "listpack":
        pairs, cursor = value.at(0, n), 0
    else:
        score = _scan_score(cursor) if cursor else -math.inf
        start = 0 if not cursor else (n if math.isnan(score) else value.first_at_least(score, False))
        stop = min(start + count, n)
        while 0 < stop < n and value.item(stop)[0] == value.item(stop - 1)[0]:
            stop += 1  # a cursor is a score: the batch takes all of its last score
        pairs = value.at(start, stop) if start < stop else []
        cursor = _scan_key(value.item(stop)[0]) if stop < n else 0
    match = None if pattern is None or pattern == b"*" else compile_pattern(pattern)
    found = []
    for score, member in pairs:
        if match is None or match(member):
            found += (member, format_double(score))
    return [b"%d" % cursor, found]


# -- ZUNION, ZINTER, ZDIFF and their STORE forms -----------------------------------------


def _combine(session: Session, name: str, args: list[bytes], op: str, store: bool, card: bool = False):
    """Redis's zunionInterDiffGenericCommand for command ``name``: ``args``
    from numkeys on. Returns (result: dict member -> score, withscores)."""
    numkeys = parse_int(args[0])
    if numkeys < 1:
        raise errors.zset_needs_a_key(name)
    if numkeys > len(args) - 1:
        raise CommandError(errors.SYNTAX)
    sources = []
    for key in args[1 : 1 + numkeys]:
        value = session.db.lookup(key, session.now)
        if value is not None and type(value) not in (Zset, Set):
            raise CommandError(errors.WRONGTYPE)
        sources.append(value)
    weights = [1.0] * numkeys
    aggregate, withscores, limit = b"SUM", False, 0
    j = 1 + numkeys
    while j < len(args):
        word, remaining = args[j].upper(), len(args) - j
        if op != "diff" and not card and remaining >= numkeys + 1 and word == b"WEIGHTS":
            weights = [parse_score(raw, errors.ZSET_WEIGHT_NOT_FLOAT) for raw in args[j + 1 : j + 1 + numkeys]]
            j += 1 + numkeys
        elif op != "diff" and not card and remaining >= 2 and word == b"AGGREGATE":
            aggregate = args[j + 1].upper()
            if aggregate not in (b"SUM", b"MIN", b"MAX"):
                raise CommandError(errors.SYNTAX)
            j += 2
        elif not store and not card and word == b"WITHSCORES":
            withscores = True
            j += 1
        elif card and remaining >= 2 and word == b"LIMIT":
            limit = _positive(args[j + 1], errors.LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)

    inputs = [(_scores_of(v), w, v) for v, w in zip(sources, weights)]
    if op != "diff":  # Redis sorts the inputs by size first (a stable sort here)
        inputs.sort(key=lambda item: len(item[0]))
    combine = _AGGREGATES[aggregate]
    result: dict[bytes, float] = {}
    if op == "union":
        for scores, weight, _ in inputs:
            for member, score in scores.items():
                score = weight * score
                if score != score:
                    score = 0.0
                old = result.get(member)
                result[member] = score if old is None else combine(old, score)
    elif op == "inter":
        first, weight, _ = inputs[0]
        for member, raw in first.items():
            score = weight * raw
            if score != score:
                score = 0.0
            for scores, other_weight, _ in inputs[1:]:
                found = scores.get(member)
                if found is None:
                    break
                score = combine(score, found * other_weight)
            else:
                result[member] = score
                if card and limit and len(result) >= limit:
                    break
    else:
        first = inputs[0][0]
        others = [scores for scores, _, v in inputs[1:]]
        if not any(v is inputs[0][2] and v is not None for _, _, v in inputs[1:]):
            result = {m: s for m, s in first.items() if not any(m in other for other in others)}
    return result, withscores


def _scores_of(value) -> dict[bytes, float]:
    if value is None:
        return {}
    if type(value) is Set:
        return dict.fromkeys(value, 1.0)
    return value.scores


def _sum(old: float, new: float) -> float:
    total = old + new
    return 0.0 if total != total else total  # inf + -inf is 0 in Redis


_AGGREGATES = {
    b"SUM": _sum,
    b"MIN": lambda old, new: new if new < old else old,
    b"MAX": lambda old, new: new if new > old else old,
}


def _combined_reply(session: Session, args: list[bytes], op: str) -> object:
    result, withscores = _combine(session, "z" + op, args, op, store=False)
    pairs = sorted((score, member) for member, score in result.items())
    return _with_scores(session, pairs, withscores)


def _combined_store(session: Session, args: list[bytes], op: str) -> object:
    name = f"z{op}store"
    result, _ = _combine(session, name, args[1:], op, store=True)
    return _store(session, name.upper().encode(), args[0], Zset(result.items()), args)


def _numkeys_keys(args: list[bytes], skip: int = 0) -> list[bytes]:
    try:
        numkeys = int(args[skip])
    except (ValueError, IndexError):
        return []
    return args[:skip] + args[skip + 1 : skip + 1 + numkeys] if numkeys > 0 else []


@command("zunion", -3, flags=("readonly", "movablekeys"))
def zunion(session: Session, args: list[bytes]) -> object:
    """ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]

    The union of sorted sets (plain sets count as scores of 1).
    """
    return _combined_reply(session, args, "union")


@command("zinter", -3, flags=("readonly", "movablekeys"))
def zinter(session: Session, args: list[bytes]) -> object:
    """ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]

    The intersection of sorted sets (plain sets count as scores of 1).
    """
    return _combined_reply(session, args, "inter")


@command("zdiff", -3, flags=("readonly", "movablekeys"))
def zdiff(session: Session, args: list[bytes]) -> object:
    """ZDIFF numkeys key [key ...] [WITHSCORES]

    The members of the first set in none of the others.
    """
    return _combined_reply(session, args, "diff")


@command("zintercard", -3, flags=("readonly", "movablekeys"))
def zintercard(session: Session, args: list[bytes]) -> object:
    """ZINTERCARD numkeys key [key ...] [LIMIT limit]

    How many members ZINTER would return, counting no further than LIMIT (0: no limit).
    """
    result, _ = _combine(session, "zintercard", args, "inter", store=False, card=True)
    return len(result)


@command("zunionstore", -4, write=True, keys=(1, 1, 1), flags=("denyoom", "movablekeys"))
def zunionstore(session: Session, args: list[bytes]) -> object:
    """ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]

    Store the union in destination; how many members it holds.
    """
    return _combined_store(session, args, "union")


@command("zinterstore", -4, write=True, keys=(1, 1, 1), flags=("denyoom", "movablekeys"))
def zinterstore(session: Session, args: list[bytes]) -> object:
    """ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]

    Store the intersection in destination; how many members it holds.
    """
    return _combined_store(session, args, "inter")


@command("zdiffstore", -4, write=True, keys=(1, 1, 1), flags=("denyoom", "movablekeys"))
def zdiffstore(session: Session, args: list[bytes]) -> object:
    """ZDIFFSTORE destination numkeys key [key ...]

    Store the difference in destination; how many members it holds.
    """
    return _combined_store(session, args, "diff")


for _name in ("zunion", "zinter", "zdiff", "zintercard"):
    KEY_FINDERS[_name] = _numkeys_keys
for _name in ("zunionstore", "zinterstore", "zdiffstore"):
    KEY_FINDERS[_name] = lambda args: _numkeys_keys(args, 1)
