"""Stream commands: XADD ... XSETID, on ``values.Stream``, as Redis 7.0.

Replies and errors follow Redis 7.0's t_stream.c byte for byte: an entry is
``[id, [field, value, ...]]``; XREAD/XREADGROUP answer an array of
``[key, entries]`` pairs in RESP2 and a map key -> entries in RESP3, a null
array when nothing was there; XINFO answers maps. IDs are read as Redis
reads them (``parse_id``: ``ms[-seq]`` with strtoull's leniency, ``-``,
``+``, ``(`` for an exclusive range bound, ``ms-*`` for XADD).

The log records what Redis 7.0 propagates:

* XADD with the ID it generated; a ``~`` trim as the exact trim it did
  (``MAXLEN = <length after>`` / ``MINID = <first ID left>``), LIMIT kept
  (the replay ignores LIMIT, as Redis does for its AOF client);
* XTRIM as issued (``~`` rewritten the same way), nothing if it removed nothing;
* XREADGROUP as one ``XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n
  FORCE JUSTID LASTID id`` per entry it delivered; with NOACK as ``XGROUP
  SETID key group id ENTRIESREAD n`` (after ``XGROUP CREATECONSUMER`` when
  it made the consumer); reading the consumer's history logs nothing;
* XCLAIM and XAUTOCLAIM the same XCLAIM records, one per entry claimed or
  dropped (an entry deleted from the stream), or XGROUP SETID when only
  XCLAIM's LASTID moved the group;
* the other writes (XDEL, XGROUP, XACK, XSETID) as issued, when they changed
  something.

Several records of one command go inside MULTI ... EXEC, as Redis 7.0
writes them. IDs never go backwards: ``*`` takes ``session.now`` or, when
the clock is behind the last ID, the last ID's ms with the next sequence.

BLOCK (XREAD, XREADGROUP) answers at once when there is something to
serve, inside EXEC the null reply, and in a script is refused, as Redis
(which spells the command as it was typed there, kvserver in capitals);
otherwise the client waits (kvserver/blocking.py) until a write
to one of its streams gives it something, as Redis 7.0's
serveClientsBlockedOnStreamKey: XREAD gets the entries after the IDs it
asked for (``$`` read when it blocked) from the first stream served, every
waiter on a stream alike; XREADGROUP ``>`` waiters take turns, in the order
they blocked, each the entries after the group's last ID then (logged as
above), and end with an error when the stream or the group goes away. As
Redis, only a write that adds an entry (XADD) serves: a waiter is tried
when ``entries_added`` moved since it was last tried, so XGROUP SETID,
XSETID, XDEL and XTRIM leave it waiting.
"""

from __future__ import annotations

import re

from kvserver import errors
from kvserver.blocking import wait_for_keys
from kvserver.commands.access import changed, read, write
from kvserver.commands.containers import container
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.parsing import INT64_MAX, parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import STREAM, notify
from kvserver.protocol import NullArray, Status
from kvserver.session import Session
from kvserver.values.streams import (
    INVALID_ENTRIES_READ,
    MAX_ID,
    NODE_MAX_ENTRIES,
    SEQ_BITS,
    SEQ_MASK,
    Group,
    Nack,
    Stream,
    Undo,
    id_text,
    make_id,
)

UINT64_MAX = 2**64 - 1
# Redis reads an ID into a 128-byte buffer: anything longer is invalid.
MAX_ID_CHARS = 127
# XADD/XTRIM's LIMIT when ~ is given without one: 100 nodes' worth (Redis's
# 100 * stream-node-max-entries), so an approximate trim does bounded work.
DEFAULT_TRIM_LIMIT = 100 * NODE_MAX_ENTRIES
# XINFO STREAM FULL's COUNT when none is given (entries and PEL items shown).
DEFAULT_FULL_COUNT = 10
# XAUTOCLAIM: its default COUNT, and how many PEL items it may look at per
# entry it may claim (Redis's attempts_factor).
AUTOCLAIM_DEFAULT_COUNT = 100
AUTOCLAIM_ATTEMPTS_FACTOR = 10
AUTOCLAIM_MAX_COUNT = INT64_MAX // 16  # LONG_MAX / max(sizeof(streamID), factor)

XGROUP = container("xgroup")


class _SubcommandSyntax(Exception):
    """Raised by a subcommand for Redis's addReplySubcommandSyntaxError,
    which names the subcommand as the client typed it."""

XINFO = container("xinfo")

# -- IDs -----------------------------------------------------------------------------

_SPACE = b" \t\n\v\f\r"
_DIGITS = re.compile(rb"[+-]?[0-9]+\Z")
_INTEGER = re.compile(rb"(?:0|-?[1-9][0-9]*)\Z")


def _string2ull(text: bytes) -> int | None:
    """Redis's string2ull: string2ll, else C's strtoull (base 10: leading
    spaces, a sign, leading zeros; a minus wraps around), or None."""
    if _INTEGER.match(text) and len(text) <= 20:
        value = int(text)
        if -(2**63) <= value < 2**63:
            return value if value >= 0 else None
    body = text.lstrip(_SPACE)
    if not _DIGITS.match(body):
        return None
    value = int(body.lstrip(b"+-"))
    if value > UINT64_MAX:
        return None  # ERANGE
    return (-value) % 2**64 if body[:1] == b"-" else value


def parse_id(raw: bytes, missing_seq: int = 0, strict: bool = False, star: bool = False):
    """An ID argument as Redis's streamGenericParseIDOrReply: the ID as an
    int, or (ms, None) for XADD's ``ms-*`` when ``star``."""
    if len(raw) > MAX_ID_CHARS:
        raise CommandError(errors.STREAM_INVALID_ID)
    text = raw.split(b"\0", 1)[0]  # Redis parses a C string
    if text in (b"-", b"+"):
        if strict:
            raise CommandError(errors.STREAM_INVALID_ID)
        return 0 if text == b"-" else MAX_ID
    head, dash, tail = text.partition(b"-")
    ms = _string2ull(head)
    if ms is None:
        raise CommandError(errors.STREAM_INVALID_ID)
    if not dash:
        return make_id(ms, missing_seq)
    if star and tail == b"*":
        return ms, None
    seq = _string2ull(tail)
    if seq is None:
        raise CommandError(errors.STREAM_INVALID_ID)
    return make_id(ms, seq)


def parse_strict_id(raw: bytes, missing_seq: int = 0) -> int:
    return parse_id(raw, missing_seq, strict=True)


def _interval_start(raw: bytes) -> int:
    """A range's start: inclusive, or ``(id`` exclusive (the next ID)."""
    if len(raw) > 1 and raw[:1] == b"(":
        value = parse_strict_id(raw[1:], 0)
        if value >= MAX_ID:
            raise CommandError(errors.STREAM_INVALID_START)
        return value + 1
    return parse_id(raw, 0)


def _interval_end(raw: bytes) -> int:
    if len(raw) > 1 and raw[:1] == b"(":
        value = parse_strict_id(raw[1:], SEQ_MASK)
        if value == 0:
            raise CommandError(errors.STREAM_INVALID_END)
        return value - 1
    return parse_id(raw, SEQ_MASK)


def _entry(entry_id: int, fields: tuple) -> list:
    return [id_text(entry_id), list(fields)]


def _entries(items: list[tuple[int, tuple]]) -> list:
    return [_entry(entry_id, fields) for entry_id, fields in items]


def _log(session: Session, records: list[list[bytes]]) -> None:
    """One command's records: several go inside MULTI ... EXEC (unless an
    EXEC or a script already groups them), as Redis 7.0 writes them."""
    if len(records) > 1 and session.group is None:
        records = [[b"MULTI"], *records, [b"EXEC"]]
    for record in records:
        session.log(*record)


def _done(session: Session, key: bytes, stream: Stream, before: int, undo: Undo) -> None:
    changed(session, key, stream, before, undo)


def _group_or_nogroup(session: Session, key: bytes, name: bytes, suffix: str = "") -> tuple[Stream, Group]:
    stream = write(session, key, Stream)
    group = stream.groups.get(name) if stream is not None else None
    if group is None:
        raise CommandError(errors.stream_nogroup(key, name, suffix))
    return stream, group


def _count(raw: bytes) -> int:
    return max(parse_int(raw), 0)


# -- XADD, XTRIM ---------------------------------------------------------------------


class TrimArgs:
    __slots__ = ("maxlen", "minid", "approx", "limit", "arg_index", "no_mkstream", "id", "id_index")

    def __init__(self) -> None:
        self.maxlen = self.minid = None
        self.approx = False
        self.limit = 0
        self.arg_index = -1  # where the threshold is (in args, the key being 0)
        self.no_mkstream = False
        self.id = None
        self.id_index = -1


def _parse_trim(session: Session, args: list[bytes], xadd: bool) -> TrimArgs:
    """Redis's streamParseAddOrTrimArgsOrReply (args[0] is the key)."""
    parsed = TrimArgs()
    limit_given = False
    i = 1
    while i < len(args):
        more = len(args) - 1 - i
        opt = args[i].upper()
        if xadd and args[i] == b"*":
            break
        if opt in (b"MAXLEN", b"MINID") and more:
            if parsed.maxlen is not None or parsed.minid is not None:
                raise CommandError(errors.STREAM_MAXLEN_AND_MINID)
            parsed.approx = False
            after = args[i + 1]
            if more >= 2 and after in (b"~", b"="):
                parsed.approx = after == b"~"
                i += 1
            if opt == b"MAXLEN":
                value = parse_int(args[i + 1])
                if value < 0:
                    raise CommandError(errors.STREAM_MAXLEN_NEGATIVE)
                parsed.maxlen = value
            else:
                parsed.minid = parse_strict_id(args[i + 1])
            i += 1
            parsed.arg_index = i
        elif opt == b"LIMIT" and more:
            value = parse_int(args[i + 1])
            if value < 0:
                raise CommandError(errors.STREAM_LIMIT_NEGATIVE)
            parsed.limit = value
            limit_given = True
            i += 1
        elif xadd and opt == b"NOMKSTREAM":
            parsed.no_mkstream = True
        elif xadd:
            parsed.id = parse_id(args[i], star=True)
            parsed.id_index = i
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if xadd and parsed.id_index < 0:
        parsed.id_index = i
    strategy = parsed.maxlen is not None or parsed.minid is not None
    if parsed.limit and not strategy:
        raise CommandError(errors.STREAM_LIMIT_WITHOUT_STRATEGY)
    if not xadd and not strategy:
        raise CommandError(errors.STREAM_XTRIM_NEEDS_STRATEGY)
    if session.loading:
        parsed.limit = 0  # the log says what the trim did exactly (Redis's AOF client too)
    elif limit_given:
        if not parsed.approx:
            raise CommandError(errors.STREAM_LIMIT_WITHOUT_APPROX)
    else:
        parsed.limit = DEFAULT_TRIM_LIMIT if parsed.approx else 0
    return parsed


def _trim(stream: Stream, parsed: TrimArgs, undo: Undo) -> int:
    return stream.trim(parsed.maxlen, parsed.minid, parsed.approx, parsed.limit, undo)


def _rewrite_trim(stream: Stream, parsed: TrimArgs, record: list[bytes]) -> None:
    """An approximate trim as the exact one it did (record[0] is the name)."""
    record[parsed.arg_index] = b"="  # where "~" was
    if parsed.maxlen is not None:
        record[parsed.arg_index + 1] = b"%d" % len(stream)
    else:
        first = stream.first_with_tombstones()
        record[parsed.arg_index + 1] = id_text(MAX_ID if first is None else first)


@command("xadd", -5, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def xadd(session: Session, args: list[bytes]) -> object:
    """XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]"""
    key = args[0]
    parsed = _parse_trim(session, args, xadd=True)
    fields = args[parsed.id_index + 1 :]
    if len(fields) < 2 or len(fields) % 2:
        raise errors.wrong_arity("xadd")
    given = parsed.id
    if type(given) is int and given == 0:
        raise CommandError(errors.STREAM_ID_ZERO)
    stream = write(session, key, Stream)
    if stream is None:
        if parsed.no_mkstream:
            return None
        stream = Stream()
    if stream.last_id == MAX_ID:
        raise CommandError(errors.STREAM_EXHAUSTED)
    last = stream.last_id
    if given is None:  # "*": the clock, but never behind the last ID
        now = session.now
        new_id = make_id(now, 0) if now > last >> SEQ_BITS else last + 1
    elif type(given) is tuple:  # "ms-*"
        ms = given[0]
        if ms == last >> SEQ_BITS:
            if last & SEQ_MASK == SEQ_MASK:
                raise CommandError(errors.STREAM_ID_TOO_SMALL)
            new_id = last + 1
        else:
            new_id = make_id(ms, 0)
    else:
        new_id = given
    if new_id <= last:
        raise CommandError(errors.STREAM_ID_TOO_SMALL)
    before = stream.nbytes
    undo = Undo()
    stream.append(new_id, tuple(fields), undo)
    record = [b"XADD", *args]
    trimmed = 0
    if parsed.maxlen is not None or parsed.minid is not None:
        trimmed = _trim(stream, parsed, undo)
        if parsed.approx:
            _rewrite_trim(stream, parsed, record)
    record[parsed.id_index + 1] = id_text(new_id)
    _done(session, key, stream, before, undo)
    session.log(*record)
    notify(session, STREAM, b"xadd", key)
    if trimmed:
        notify(session, STREAM, b"xtrim", key)
    return id_text(new_id)


@command("xtrim", -4, write=True, keys=(1, 1, 1))
def xtrim(session: Session, args: list[bytes]) -> object:
    """XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]"""
    key = args[0]
    stream = write(session, key, Stream)
    if stream is None:
        return 0
    parsed = _parse_trim(session, args, xadd=False)
    before = stream.nbytes
    undo = Undo()
    removed = _trim(stream, parsed, undo)
    if removed:
        record = [b"XTRIM", *args]
        if parsed.approx:
            _rewrite_trim(stream, parsed, record)
        _done(session, key, stream, before, undo)
        session.log(*record)
        notify(session, STREAM, b"xtrim", key)
    return removed


# -- reads: XLEN, XRANGE, XREVRANGE ----------------------------------------------------


@command("xlen", 2, keys=(1, 1, 1), flags=("fast",))
def xlen(session: Session, args: list[bytes]) -> object:
    """XLEN key"""
    stream = read(session, args[0], Stream)
    return 0 if stream is None else len(stream)


def _xrange(session: Session, args: list[bytes], reverse: bool) -> object:
    key = args[0]
    low, high = (args[2], args[1]) if reverse else (args[1], args[2])
    start = _interval_start(low)
    end = _interval_end(high)
    count = -1
    i = 3
    while i < len(args):
        if args[i].upper() == b"COUNT" and i + 1 < len(args):
            count = _count(args[i + 1])
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    stream = read(session, key, Stream)
    if stream is None:
        return []
    if count == 0:
        return NullArray
    return _entries(stream.range(start, end, max(count, 0), reverse))


@command("xrange", -4, keys=(1, 1, 1))
def xrange(session: Session, args: list[bytes]) -> object:
    """XRANGE key start end [COUNT count]"""
    return _xrange(session, args, reverse=False)


@command("xrevrange", -4, keys=(1, 1, 1))
def xrevrange(session: Session, args: list[bytes]) -> object:
    """XREVRANGE key end start [COUNT count]"""
    return _xrange(session, args, reverse=True)


# -- XDEL, XSETID --------------------------------------------------------------------


@command("xdel", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def xdel(session: Session, args: list[bytes]) -> object:
    """XDEL key id [id ...]"""
    key = args[0]
    stream = write(session, key, Stream)
    if stream is None:
        return 0
    ids = [parse_strict_id(raw) for raw in args[1:]]
    before = stream.nbytes
    undo = Undo()
    deleted = stream.delete(ids, undo)
    if deleted:
        _done(session, key, stream, before, undo)
        session.log(b"XDEL", *args)
        notify(session, STREAM, b"xdel", key)
    return deleted


@command("xsetid", -3, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def xsetid(session: Session, args: list[bytes]) -> object:
    """XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]"""
    key = args[0]
    new_id = parse_strict_id(args[1])
    entries_added = None
    max_deleted = 0
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"ENTRIESADDED" and i + 1 < len(args):
            entries_added = parse_int(args[i + 1])
            if entries_added < 0:
                raise CommandError(errors.STREAM_ENTRIES_ADDED_NEGATIVE)
        elif opt == b"MAXDELETEDID" and i + 1 < len(args):
            max_deleted = parse_strict_id(args[i + 1])
            if new_id < max_deleted:
                raise CommandError(errors.STREAM_SETID_BELOW_GIVEN_MAX_DELETED)
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    stream = write(session, key, Stream)
    if stream is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if len(stream):
        if new_id < stream.last_entry_id():
            raise CommandError(errors.STREAM_SETID_TOO_SMALL)
        if entries_added is not None and len(stream) > entries_added:
            raise CommandError(errors.STREAM_SETID_ENTRIES_ADDED_SMALL)
    before = stream.nbytes
    undo = Undo()
    stream.set_id(new_id, entries_added, max_deleted, undo)
    _done(session, key, stream, before, undo)
    session.log(b"XSETID", *args)
    notify(session, STREAM, b"xsetid", key)
    return Status("OK")


# -- XREAD, XREADGROUP -----------------------------------------------------------------

GREATER = object()  # the ">" ID of XREADGROUP


def _xread(session: Session, args: list[bytes], group_read: bool) -> object:
    count = 0
    block = None
    group_name = consumer_name = None
    noack = False
    streams_at = 0
    i = 0
    while i < len(args):
        more = len(args) - i - 1
        opt = args[i].upper()
        if opt == b"BLOCK" and more:
            if session.group is not None and session.keyspace.busy_script is not None:
                # Redis refuses it in a script (but answers the null reply in MULTI).
                raise CommandError(errors.stream_block_in_script("XREADGROUP" if group_read else "XREAD"))
            i += 1
            block = _parse_timeout(args[i])
        elif opt == b"COUNT" and more:
            i += 1
            count = _count(args[i])
        elif opt == b"STREAMS" and more:
            streams_at = i + 1
            if (len(args) - streams_at) % 2:
                raise CommandError(errors.STREAM_UNBALANCED)
            break
        elif opt == b"GROUP" and more >= 2:
            if not group_read:
                raise CommandError(errors.STREAM_GROUP_IN_XREAD)
            group_name, consumer_name = args[i + 1], args[i + 2]
            i += 2
        elif opt == b"NOACK":
            if not group_read:
                raise CommandError(errors.STREAM_NOACK_IN_XREAD)
            noack = True
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if not streams_at:
        raise CommandError(errors.SYNTAX)
    if group_read and group_name is None:
        raise CommandError(errors.STREAM_MISSING_GROUP)
    half = (len(args) - streams_at) // 2
    keys = args[streams_at : streams_at + half]
    targets = []  # (key, stream, group, after-id or GREATER)
    for key, raw in zip(keys, args[streams_at + half :]):
        stream = (write if group_read else read)(session, key, Stream)
        group = None
        if group_read:
            group = stream.groups.get(group_name) if stream is not None else None
            if group is None:
                raise CommandError(errors.stream_nogroup(key, group_name, " in XREADGROUP with GROUP option"))
        if raw == b"$":
            if group_read:
                raise CommandError(errors.STREAM_DOLLAR_IN_XREADGROUP)
            after = stream.last_id if stream is not None else 0
        elif raw == b">":
            if not group_read:
                raise CommandError(errors.STREAM_GREATER_IN_XREAD)
            after = GREATER
        else:
            after = parse_strict_id(raw)
        targets.append((key, stream, group, after))
    served = []
    records: list[list[bytes]] = []
    for key, stream, group, after in targets:
        if stream is None:
            continue
        if group is None:
            if stream.entries and stream.last_entry_id() > after:
                served.append((key, _entries(stream.after(after, count))))
            continue
        served_now = _serve_group(session, key, stream, group, consumer_name, after, count, noack, records)
        if served_now is not None:
            served.append((key, served_now))
    _log(session, records)
    if served:
        return _read_reply(session, served)
    if block is None:
        return NullArray
    return wait_for_keys(
        session, keys, block, _serve_later(targets, group_name, consumer_name, count, noack), NullArray,
        on_delete=group_read,
    )  # fmt: skip


def _read_reply(session: Session, served: list) -> object:
    if session.resp == 3:
        return dict(served)
    return [[key, entries] for key, entries in served]


def _serve_later(targets: list, group_name, consumer_name, count: int, noack: bool):
    """The ``try_serve`` of a blocked XREAD / XREADGROUP (blocking.py): the
    reply for the one stream ``key`` that got new entries, or None."""
    afters = {key: after for key, _, _, after in targets}
    # key -> (the stream, its entries_added) when it blocked or was last tried
    # (the stream is held: a new one at the same address must not pass for it).
    seen = {key: (stream, stream.entries_added) for key, stream, _, _ in targets if stream is not None}

    def serve(s: Session, key: bytes) -> object:
        stream = s.db.lookup(key, s.now)
        if type(stream) is not Stream:
            if group_name is not None:  # deleted, flushed or overwritten
                raise CommandError(errors.STREAM_BLOCKED_KEY_DELETED)
            return None  # XREAD waits on, as Redis
        if group_name is not None:
            group = stream.groups.get(group_name)
            if group is None:  # XGROUP DESTROY
                raise CommandError(errors.STREAM_BLOCKED_NOGROUP)
        # Only an XADD serves (Redis signals the key for it alone): its mark
        # is entries_added moving, on the stream seen last time.
        mark = (stream, stream.entries_added)
        last = seen.get(key)
        seen[key] = mark
        if last is not None and last[0] is stream and last[1] == mark[1]:
            return None
        if group_name is None:
            after = afters[key]
            if stream.last_id <= after:
                return None
            return _read_reply(s, [(key, _entries(stream.after(after, count)))])
        if stream.last_id <= group.last_id:
            return None
        stream = write(s, key, Stream)
        group = stream.groups[group_name]
        records: list[list[bytes]] = []
        entries = _serve_group(s, key, stream, group, consumer_name, GREATER, count, noack, records)
        _log(s, records)
        return _read_reply(s, [(key, entries or [])])

    return serve


def _parse_timeout(raw: bytes) -> int:
    try:
        value = parse_int(raw)
    except CommandError:
        raise CommandError(errors.STREAM_TIMEOUT_NOT_INTEGER) from None
    if value < 0:
        raise CommandError(errors.STREAM_TIMEOUT_NEGATIVE)
    return value


def _serve_group(session, key, stream, group, consumer_name, after, count, noack, records):
    """One stream of an XREADGROUP: the entries to answer, or None when
    there is nothing to serve (``>`` with nothing new)."""
    now = session.now
    before = stream.nbytes
    undo = Undo()
    history = after is not GREATER
    serve = history or (stream.entries and stream.last_entry_id() > group.last_id)
    if not serve:  # as Redis 7.0: the consumer is made (or seen) only when served
        return None
    consumer = group.consumers.get(consumer_name)
    if consumer is None:
        consumer = stream.create_consumer(group, consumer_name, now, undo)
        notify(session, STREAM, b"xgroup-createconsumer", key)
        if noack:
            records.append([b"XGROUP", b"CREATECONSUMER", key, group.name, consumer_name])
    else:
        stream.touch_consumer(consumer, now, undo)
    reply = None
    if serve and history:
        reply = []
        start = after + 1 if after < MAX_ID else MAX_ID
        for entry_id in list(consumer.pel.irange(start, None)):
            if count and len(reply) >= count:
                break
            nack = consumer.pel[entry_id]
            fields = stream.entries.get(entry_id)
            if fields is None:
                reply.append([id_text(entry_id), NullArray])
                continue
            stream.update_nack(entry_id, nack, consumer, now, nack.delivery_count + 1, undo)
            reply.append(_entry(entry_id, fields))
    elif serve:
        reply = []
        moved = False
        for entry_id, fields in stream.after(group.last_id, count):
            if group.entries_read != INVALID_ENTRIES_READ and not stream.has_tombstones(entry_id):
                entries_read = group.entries_read + 1  # a valid count, no tombstone ahead
            elif stream.entries_added:
                entries_read = stream.distance_from_first_ever(entry_id)
            else:
                entries_read = group.entries_read
            stream.set_group_id(group, entry_id, entries_read, undo)
            moved = True
            reply.append(_entry(entry_id, fields))
            if noack:
                continue
            nack = group.pel.get(entry_id)
            if nack is not None:  # delivered before (SETID moved back): it is this consumer's now
                stream.update_nack(entry_id, nack, consumer, now, 1, undo)
            else:
                nack = Nack(consumer, now, 1)
                stream.add_nack(group, entry_id, nack, undo)
            records.append(_xclaim_record(key, group, entry_id, nack))
        if noack and moved:
            records.append(_setid_record(key, group))
    _done(session, key, stream, before, undo)
    return reply


def _xclaim_record(key: bytes, group: Group, entry_id: int, nack: Nack) -> list[bytes]:
    """Redis's streamPropagateXCLAIM."""
    return [
        b"XCLAIM", key, group.name, nack.consumer.name, b"0", id_text(entry_id),
        b"TIME", b"%d" % nack.delivery_time, b"RETRYCOUNT", b"%d" % nack.delivery_count,
        b"FORCE", b"JUSTID", b"LASTID", id_text(group.last_id),
    ]  # fmt: skip


def _setid_record(key: bytes, group: Group) -> list[bytes]:
    """Redis's streamPropagateGroupID."""
    return [
        b"XGROUP", b"SETID", key, group.name, id_text(group.last_id),
        b"ENTRIESREAD", b"%d" % group.entries_read,
    ]  # fmt: skip


def _streams_keys(args: list[bytes]) -> list[bytes]:
    """XREAD/XREADGROUP's keys: the first half of what follows STREAMS."""
    for i, arg in enumerate(args):
        if arg.upper() == b"STREAMS":
            rest = args[i + 1 :]
            return rest[: len(rest) // 2]
    return []


@command("xread", -4, reads_keys=True, flags=("readonly", "blocking", "movablekeys"))
def xread(session: Session, args: list[bytes]) -> object:
    """XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]"""
    return _xread(session, args, group_read=False)


@command("xreadgroup", -7, write=True, flags=("blocking", "movablekeys"))
def xreadgroup(session: Session, args: list[bytes]) -> object:
    """XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]"""
    return _xread(session, args, group_read=True)


KEY_FINDERS["xread"] = KEY_FINDERS["xreadgroup"] = _streams_keys


# -- XGROUP --------------------------------------------------------------------------


@command("xgroup", -2, write=True)
def xgroup(session: Session, args: list[bytes]) -> object:
    """XGROUP subcommand [argument ...]

    Consumer groups; XGROUP HELP lists the subcommands.
    """
    try:
        return XGROUP.run(session, args)
    except _SubcommandSyntax:
        raise errors.subcommand_syntax(args[0], "xgroup") from None


XGROUP_HELP = (
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
)


def xgroup_help(session: Session, args: list[bytes]) -> object:
    """HELP"""
    return [Status(line) for line in XGROUP_HELP]


XGROUP.subcommands.pop(b"HELP")
XGROUP.subcommand("help", 2)(xgroup_help)


def _group_target(session: Session, args: list[bytes], mkstream: bool = False) -> Stream | None:
    stream = write(session, args[0], Stream)
    if stream is None and not mkstream:
        raise CommandError(errors.STREAM_XGROUP_NEEDS_KEY)
    return stream


def _entries_read(raw: bytes) -> int:
    value = parse_int(raw)
    if value < 0 and value != INVALID_ENTRIES_READ:
        raise CommandError(errors.STREAM_ENTRIES_READ_INVALID)
    return value


def _group_id(stream: Stream, raw: bytes) -> int:
    return stream.last_id if raw == b"$" else parse_strict_id(raw)


@XGROUP.subcommand("create", -5)
def xgroup_create(session: Session, args: list[bytes]) -> object:
    """CREATE key group id|$ [MKSTREAM] [ENTRIESREAD entries-read]"""
    key, name, raw_id = args[0], args[1], args[2]
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if opt == b"MKSTREAM":
            mkstream = True
            i += 1
        elif opt == b"ENTRIESREAD" and i + 1 < len(args):
            entries_read = _entries_read(args[i + 1])
            i += 2
        else:
            raise _SubcommandSyntax
    stream = _group_target(session, args, mkstream)
    fresh = stream is None
    new_id = 0 if raw_id == b"$" and fresh else None
    if new_id is None:
        new_id = _group_id(stream, raw_id)
    if fresh:
        stream = Stream()
    if name in stream.groups:
        raise CommandError(errors.STREAM_BUSYGROUP)
    before = stream.nbytes
    undo = Undo()
    stream.create_group(name, new_id, entries_read, undo)
    _done(session, key, stream, before, undo)
    session.log(b"XGROUP", b"CREATE", *args)
    notify(session, STREAM, b"xgroup-create", key)
    return Status("OK")


@XGROUP.subcommand("setid", -5)
def xgroup_setid(session: Session, args: list[bytes]) -> object:
    """SETID key group id|$ [ENTRIESREAD entries-read]"""
    key, name, raw_id = args[0], args[1], args[2]
    entries_read = INVALID_ENTRIES_READ
    if len(args) == 5 and args[3].upper() == b"ENTRIESREAD":
        entries_read = _entries_read(args[4])
    elif len(args) > 3:
        raise _SubcommandSyntax
    stream = _group_target(session, args)
    group = stream.groups.get(name)
    if group is None:
        raise CommandError(errors.stream_xgroup_nogroup(name, key))
    new_id = _group_id(stream, raw_id)
    before = stream.nbytes
    undo = Undo()
    stream.set_group_id(group, new_id, entries_read, undo)
    _done(session, key, stream, before, undo)
    session.log(b"XGROUP", b"SETID", *args)
    notify(session, STREAM, b"xgroup-setid", key)
    return Status("OK")


@XGROUP.subcommand("destroy", 4)
def xgroup_destroy(session: Session, args: list[bytes]) -> object:
    """DESTROY key group"""
    key, name = args
    stream = _group_target(session, args)
    if name not in stream.groups:
        return 0
    before = stream.nbytes
    undo = Undo()
    stream.destroy_group(name, undo)
    _done(session, key, stream, before, undo)
    session.log(b"XGROUP", b"DESTROY", *args)
    notify(session, STREAM, b"xgroup-destroy", key)
    return 1


def _group_of(stream: Stream, key: bytes, name: bytes) -> Group:
    group = stream.groups.get(name)
    if group is None:
        raise CommandError(errors.stream_xgroup_nogroup(name, key))
    return group


@XGROUP.subcommand("createconsumer", 5)
def xgroup_createconsumer(session: Session, args: list[bytes]) -> object:
    """CREATECONSUMER key group consumer"""
    key, name, consumer = args
    stream = _group_target(session, args)
    group = _group_of(stream, key, name)
    if consumer in group.consumers:
        return 0
    before = stream.nbytes
    undo = Undo()
    stream.create_consumer(group, consumer, session.now, undo)
    _done(session, key, stream, before, undo)
    session.log(b"XGROUP", b"CREATECONSUMER", *args)
    notify(session, STREAM, b"xgroup-createconsumer", key)
    return 1


@XGROUP.subcommand("delconsumer", 5)
def xgroup_delconsumer(session: Session, args: list[bytes]) -> object:
    """DELCONSUMER key group consumer"""
    key, name, consumer = args
    stream = _group_target(session, args)
    group = _group_of(stream, key, name)
    if consumer not in group.consumers:
        return 0
    before = stream.nbytes
    undo = Undo()
    pending = stream.delete_consumer(group, consumer, undo)
    _done(session, key, stream, before, undo)
    session.log(b"XGROUP", b"DELCONSUMER", *args)
    notify(session, STREAM, b"xgroup-delconsumer", key)
    return pending


# -- XACK, XPENDING ------------------------------------------------------------------


@command("xack", -4, write=True, keys=(1, 1, 1), flags=("fast",))
def xack(session: Session, args: list[bytes]) -> object:
    """XACK key group id [id ...]"""
    key, name = args[0], args[1]
    stream = write(session, key, Stream)
    group = stream.groups.get(name) if stream is not None else None
    ids = [parse_strict_id(raw) for raw in args[2:]]
    if group is None:
        return 0
    before = stream.nbytes
    undo = Undo()
    acked = 0
    for entry_id in ids:
        if entry_id in group.pel:
            stream.remove_nack(group, entry_id, undo)
            acked += 1
    if acked:
        _done(session, key, stream, before, undo)
        session.log(b"XACK", *args)
    return acked


@command("xpending", -3, keys=(1, 1, 1))
def xpending(session: Session, args: list[bytes]) -> object:
    """XPENDING key group [[IDLE min-idle-time] start end count [consumer]]"""
    key, name = args[0], args[1]
    argc = len(args) + 1
    justinfo = argc == 3
    if argc != 3 and not 6 <= argc <= 9:
        raise CommandError(errors.SYNTAX)
    min_idle = 0
    if not justinfo:
        at = 2
        if args[2].upper() == b"IDLE":
            min_idle = parse_int(args[3])
            if argc < 8:
                raise CommandError(errors.SYNTAX)
            at += 2
        count = _count(args[at + 2])
        start = _interval_start(args[at])
        end = _interval_end(args[at + 1])
        consumer_name = args[at + 3] if at + 3 < len(args) else None
    stream = read(session, key, Stream)
    group = stream.groups.get(name) if stream is not None else None
    if group is None:
        raise CommandError(errors.stream_nogroup(key, name))
    if justinfo:
        if not group.pel:
            return [0, None, None, NullArray]
        ids = group.pel.keys()
        owners = [
            [consumer.name, b"%d" % len(consumer.pel)] for consumer in group.sorted_consumers() if consumer.pel
        ]
        return [len(group.pel), id_text(ids[0]), id_text(ids[-1]), owners]
    pel = group.pel
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    now = session.now
    out = []
    if count:
        for entry_id in pel.irange(start, end):
            nack = pel[entry_id]
            idle = max(now - nack.delivery_time, 0)
            if min_idle and idle < min_idle:
                continue
            out.append([id_text(entry_id), nack.consumer.name, idle, nack.delivery_count])
            if len(out) >= count:
                break
    return out


# -- XCLAIM, XAUTOCLAIM ----------------------------------------------------------------


def _option_int(raw: bytes, message: str) -> int:
    try:
        return parse_int(raw)
    except CommandError:
        raise CommandError(message) from None


@command("xclaim", -6, write=True, keys=(1, 1, 1), flags=("fast",))
def xclaim(session: Session, args: list[bytes]) -> object:
    """XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]"""
    key, name, consumer_name = args[0], args[1], args[2]
    stream, group = _group_or_nogroup(session, key, name)
    min_idle = max(_option_int(args[3], errors.XCLAIM_BAD_MIN_IDLE), 0)
    ids = []
    i = 4
    while i < len(args):
        try:
            ids.append((parse_strict_id(args[i]), args[i]))
        except CommandError:
            break
        i += 1
    now = session.now
    delivery_time = None
    retry_count = None
    force = justid = False
    last_id = 0
    while i < len(args):
        more = len(args) - 1 - i
        opt = args[i].upper()
        if opt == b"FORCE":
            force = True
        elif opt == b"JUSTID":
            justid = True
        elif opt == b"IDLE" and more:
            i += 1
            delivery_time = now - _option_int(args[i], errors.XCLAIM_BAD_IDLE)
        elif opt == b"TIME" and more:
            i += 1
            delivery_time = _option_int(args[i], errors.XCLAIM_BAD_TIME)
        elif opt == b"RETRYCOUNT" and more:
            i += 1
            retry_count = _option_int(args[i], errors.XCLAIM_BAD_RETRYCOUNT)
        elif opt == b"LASTID" and more:
            i += 1
            last_id = parse_strict_id(args[i])
        else:
            raise CommandError(errors.xclaim_unrecognized(args[i]))
        i += 1
    before = stream.nbytes
    undo = Undo()
    records: list[list[bytes]] = []
    propagate_last_id = False
    if last_id > group.last_id:
        stream.set_group_id(group, last_id, group.entries_read, undo)
        propagate_last_id = True
    if delivery_time is None:
        delivery_time = now
    elif (delivery_time < 0 or delivery_time > now) and not session.loading:
        # A time in the future (a client's clock ahead of ours) is now, as in
        # Redis; the replay's clock is not the time the record was written.
        delivery_time = now
    consumer = None
    reply = []
    for entry_id, raw in ids:
        nack = group.pel.get(entry_id)
        if entry_id not in stream.entries:
            if nack is not None:  # gone from the stream: drop it from the PEL
                records.append(_xclaim_record(key, group, entry_id, nack))
                propagate_last_id = False
                stream.remove_nack(group, entry_id, undo)
            continue
        fresh = False
        if force and nack is None:
            nack = Nack(None, now, 1)  # streamCreateNACK: delivered once, now
            stream.add_nack(group, entry_id, nack, undo)
            fresh = True
        if nack is None:
            continue
        if not fresh and min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = _lookup_consumer(session, key, stream, group, consumer_name, now, undo)
        count = retry_count if retry_count is not None and retry_count >= 0 else (
            nack.delivery_count if justid else nack.delivery_count + 1
        )
        stream.update_nack(entry_id, nack, consumer, delivery_time, count, undo)
        reply.append(id_text(entry_id) if justid else _entry(entry_id, stream.entries[entry_id]))
        records.append(_xclaim_record(key, group, entry_id, nack))
        propagate_last_id = False
    if propagate_last_id:
        records.append(_setid_record(key, group))
    _done(session, key, stream, before, undo)
    _log(session, records)
    return reply


def _lookup_consumer(session: Session, key: bytes, stream: Stream, group: Group, name: bytes, now: int, undo: Undo):
    consumer = group.consumers.get(name)
    if consumer is None:
        consumer = stream.create_consumer(group, name, now, undo)
        notify(session, STREAM, b"xgroup-createconsumer", key)
        return consumer
    stream.touch_consumer(consumer, now, undo)
    return consumer


@command("xautoclaim", -6, write=True, keys=(1, 1, 1), flags=("fast",))
def xautoclaim(session: Session, args: list[bytes]) -> object:
    """XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]"""
    key, name, consumer_name = args[0], args[1], args[2]
    min_idle = max(_option_int(args[3], errors.XAUTOCLAIM_BAD_MIN_IDLE), 0)
    start = _interval_start(args[4])
    count = AUTOCLAIM_DEFAULT_COUNT
    justid = False
    i = 5
    while i < len(args):
        more = len(args) - 1 - i
        opt = args[i].upper()
        if opt == b"COUNT" and more:
            try:
                count = parse_int(args[i + 1])
            except CommandError:
                raise CommandError(errors.XAUTOCLAIM_COUNT) from None
            if not 1 <= count <= AUTOCLAIM_MAX_COUNT:
                raise CommandError(errors.XAUTOCLAIM_COUNT)
            i += 1
        elif opt == b"JUSTID":
            justid = True
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    stream, group = _group_or_nogroup(session, key, name)
    now = session.now
    attempts = count * AUTOCLAIM_ATTEMPTS_FACTOR
    before = stream.nbytes
    undo = Undo()
    records: list[list[bytes]] = []
    consumer = None
    claimed = []
    deleted = []
    cursor = 0
    walk = iter(list(group.pel.irange(start, None)))
    for entry_id in walk:
        if not attempts or not count:
            cursor = entry_id
            break
        attempts -= 1
        nack = group.pel[entry_id]
        if entry_id not in stream.entries:
            records.append(_xclaim_record(key, group, entry_id, nack))
            stream.remove_nack(group, entry_id, undo)
            deleted.append(id_text(entry_id))
            count -= 1
            continue
        if min_idle and now - nack.delivery_time < min_idle:
            continue
        if consumer is None:
            consumer = _lookup_consumer(session, key, stream, group, consumer_name, now, undo)
        delivered = nack.delivery_count if justid else nack.delivery_count + 1
        stream.update_nack(entry_id, nack, consumer, now, delivered, undo)
        claimed.append(id_text(entry_id) if justid else _entry(entry_id, stream.entries[entry_id]))
        records.append(_xclaim_record(key, group, entry_id, nack))
        count -= 1
    _done(session, key, stream, before, undo)
    _log(session, records)
    return [id_text(cursor), claimed, deleted]


# -- XINFO ---------------------------------------------------------------------------


@command("xinfo", -2, reads_keys=True)
def xinfo(session: Session, args: list[bytes]) -> object:
    """XINFO subcommand [argument ...]

    Stream introspection; XINFO HELP lists the subcommands.
    """
    try:
        return XINFO.run(session, args)
    except _SubcommandSyntax:
        raise errors.subcommand_syntax(args[0], "xinfo") from None


XINFO_HELP = (
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
)


def xinfo_help(session: Session, args: list[bytes]) -> object:
    """HELP"""
    return [Status(line) for line in XINFO_HELP]


XINFO.subcommands.pop(b"HELP")
XINFO.subcommand("help", 2)(xinfo_help)


def _info_stream(session: Session, key: bytes) -> Stream:
    stream = read(session, key, Stream)
    if stream is None:
        raise CommandError(errors.NO_SUCH_KEY)
    return stream


def _radix_nodes(stream: Stream) -> int:
    # Redis's radix-tree-nodes counts the rax's internal nodes, which depend on
    # how the 128-bit keys share prefixes: an estimate, as MEMORY USAGE is.
    keys = len(stream.nodes)
    return 1 if keys == 0 else keys + 1


def _stream_head(stream: Stream) -> dict:
    return {
        b"length": len(stream),
        b"radix-tree-keys": len(stream.nodes),
        b"radix-tree-nodes": _radix_nodes(stream),
        b"last-generated-id": id_text(stream.last_id),
        b"max-deleted-entry-id": id_text(stream.max_deleted),
        b"entries-added": stream.entries_added,
        b"recorded-first-entry-id": id_text(stream.first_id()),
    }


def _entries_read_reply(group: Group):
    return None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read


@XINFO.subcommand("stream", -3)
def xinfo_stream(session: Session, args: list[bytes]) -> object:
    """STREAM key [FULL [COUNT count]]"""
    key = args[0]
    full = False
    count = DEFAULT_FULL_COUNT
    rest = args[1:]
    if rest:
        if rest[0].upper() != b"FULL" or len(rest) not in (1, 3):
            raise _SubcommandSyntax
        full = True
        if len(rest) == 3:
            if rest[1].upper() != b"COUNT":
                raise _SubcommandSyntax
            count = parse_int(rest[2])
            if count < 0:
                count = 0
    stream = _info_stream(session, key)
    reply = _stream_head(stream)
    if not full:
        first = stream.range(0, MAX_ID, 1)
        last = stream.range(0, MAX_ID, 1, reverse=True)
        reply[b"groups"] = len(stream.groups)
        reply[b"first-entry"] = _entry(*first[0]) if first else None
        reply[b"last-entry"] = _entry(*last[0]) if last else None
        return reply
    reply[b"entries"] = _entries(stream.range(0, MAX_ID, count))
    groups = []
    for name in sorted(stream.groups):
        group = stream.groups[name]
        pel = list(group.pel.items())
        consumers = []
        for consumer in group.sorted_consumers():
            mine = list(consumer.pel.items())
            consumers.append(
                {
                    b"name": consumer.name,
                    b"seen-time": consumer.seen_time,
                    b"pel-count": len(mine),
                    b"pending": [
                        [id_text(i), n.delivery_time, n.delivery_count] for i, n in (mine[:count] if count else mine)
                    ],
                }
            )
        groups.append(
            {
                b"name": name,
                b"last-delivered-id": id_text(group.last_id),
                b"entries-read": _entries_read_reply(group),
                b"lag": stream.lag(group),
                b"pel-count": len(pel),
                b"pending": [
                    [id_text(i), n.consumer.name, n.delivery_time, n.delivery_count]
                    for i, n in (pel[:count] if count else pel)
                ],
                b"consumers": consumers,
            }
        )
    reply[b"groups"] = groups
    return reply


@XINFO.subcommand("groups", 3)
def xinfo_groups(session: Session, args: list[bytes]) -> object:
    """GROUPS key"""
    stream = _info_stream(session, args[0])
    out = []
    for name in sorted(stream.groups):
        group = stream.groups[name]
        out.append(
            {
                b"name": name,
                b"consumers": len(group.consumers),
                b"pending": len(group.pel),
                b"last-delivered-id": id_text(group.last_id),
                b"entries-read": _entries_read_reply(group),
                b"lag": stream.lag(group),
            }
        )
    return out


@XINFO.subcommand("consumers", 4)
def xinfo_consumers(session: Session, args: list[bytes]) -> object:
    """CONSUMERS key group"""
    key, name = args
    stream = _info_stream(session, key)
    group = stream.groups.get(name)
    if group is None:
        raise CommandError(errors.stream_xinfo_nogroup(name, key))
    now = session.now
    return [
        {b"name": c.name, b"pending": len(c.pel), b"idle": max(now - c.seen_time, 0)}
        for c in group.sorted_consumers()
    ]
