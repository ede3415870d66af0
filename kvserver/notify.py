"""Keyspace notifications (Redis's notify.c): ``notify-keyspace-events``.

A write command that changed a key calls, after its change,

    notify(session, LIST, b"lpush", key)

which, when the event's class is enabled, publishes through the pub/sub
registry ``__keyspace@<db>__:<key>`` (message: the event) and/or
``__keyevent@<db>__:<event>`` (message: the key), as Redis does: at once,
inside MULTI/EXEC and scripts too, in the order the changes happen. The
store publishes two events itself: ``new`` when a key is added
(Database.set, Redis's dbAdd: before the command's own event) and
``expired`` when a key past its deadline goes (lazily or by the sweep).

Notifications are off by default; then ``notify`` costs one truth test
(``Keyspace.notify_flags`` is 0 whenever nothing would be published: no
class enabled, or neither K nor E), so the hot path stays as it was.

A command rolled back because its log append failed has already
published its events (Redis has no such rollback to compare with).
"""

from __future__ import annotations

# Redis 7.0's flag bits (server.h NOTIFY_*), and the letters that name them.
KEYSPACE = 1 << 0  # K
KEYEVENT = 1 << 1  # E
GENERIC = 1 << 2  # g
STRING = 1 << 3  # $
LIST = 1 << 4  # l
SET = 1 << 5  # s
HASH = 1 << 6  # h
ZSET = 1 << 7  # z
EXPIRED = 1 << 8  # x
EVICTED = 1 << 9  # e (nothing is evicted here: never sent)
STREAM = 1 << 10  # t
KEY_MISS = 1 << 11  # m (not part of A, as in Redis)
MODULE = 1 << 13  # d (no modules here: never sent)
NEW = 1 << 14  # n (not part of A, as in Redis)
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

_LETTERS = {
    "A": ALL,
    "g": GENERIC,
    "$": STRING,
    "l": LIST,
    "s": SET,
    "h": HASH,
    "z": ZSET,
    "x": EXPIRED,
    "e": EVICTED,
    "K": KEYSPACE,
    "E": KEYEVENT,
    "t": STREAM,
    "m": KEY_MISS,
    "d": MODULE,
    "n": NEW,
}
# keyspaceEventsFlagsToString's order for the classes (when not all of A).
_CLASS_ORDER = ("g", "$", "l", "s", "h", "z", "x", "e", "t", "d", "n")

INVALID_FLAGS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def parse_flags(text: str) -> int | None:
    """The flags a ``notify-keyspace-events`` value names; None if it has a
    character Redis does not know (keyspaceEventsStringToFlags)."""
    flags = 0
    for char in text:
        bit = _LETTERS.get(char)
        if bit is None:
            return None
        flags |= bit
    return flags


def format_flags(flags: int) -> str:
    """CONFIG GET's display, as Redis's keyspaceEventsFlagsToString builds
    it: with every class of A set, "A" alone stands for the classes, and
    (as in Redis 7.0) hides an "n" set beside it."""
    if flags & ALL == ALL:
        text = "A"
    else:
        text = "".join(letter for letter in _CLASS_ORDER if flags & _LETTERS[letter])
    for letter in ("K", "E", "m"):
        if flags & _LETTERS[letter]:
            text += letter
    return text


def configure(keyspace, flags: int) -> None:
    """Set the flags (CONFIG SET, the config file). ``notify_flags`` is 0
    unless something would be published, for ``notify``'s one test."""
    keyspace.notify_config = flags
    keyspace.notify_flags = flags if flags & (KEYSPACE | KEYEVENT) and flags & ~(KEYSPACE | KEYEVENT) else 0


def notify(session, flag: int, event: bytes, key: bytes) -> None:
    """Publish ``event`` on ``key`` (in the session's database) if its
    class ``flag`` is enabled: the call every write command makes."""
    if session.keyspace.notify_flags & flag:
        publish(session.keyspace, session.db.index, event, key)


def notify_change(session, flag: int, event: bytes, key: bytes, value) -> None:
    """``notify`` for a container command, after ``changed``: then "del"
    if it left ``value`` empty (so deleted), as Redis sends it."""
    if session.keyspace.notify_flags:
        notify(session, flag, event, key)
        if not value:
            notify(session, GENERIC, b"del", key)


def notify_db(session, db, flag: int, event: bytes, key: bytes) -> None:
    """``notify`` for a key of another database ``db`` (COPY ... DB, MOVE)."""
    if session.keyspace.notify_flags & flag:
        publish(session.keyspace, db.index, event, key)


def publish(keyspace, db_index: int, event: bytes, key: bytes) -> None:
    """Send the event's messages (its class is enabled): notifyKeyspaceEvent."""
    deliver = keyspace.publish
    if deliver is None:  # no server: the log replay, the harness without pub/sub
        return
    flags = keyspace.notify_flags
    if flags & KEYSPACE:
        deliver(b"__keyspace@%d__:%s" % (db_index, key), event)
    if flags & KEYEVENT:
        deliver(b"__keyevent@%d__:%s" % (db_index, event), key)
