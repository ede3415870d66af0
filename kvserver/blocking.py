"""Clients blocked on keys (BLPOP, BZPOPMIN, BLMOVE..., XREAD BLOCK):
the waiting, and the serving of waiters when a write makes a key ready.

The API a blocking command uses (under the write lock, as its dispatcher
runs it: a write command, or a read flagged "blocking"):

    reply = <the non-blocking attempt>            # may raise WRONGTYPE...
    if reply is not None:
        return reply
    return wait_for_keys(session, keys, timeout_ms, try_serve, timeout_reply)

``try_serve(session, key)`` is called later, under the write lock, on the
thread of the client whose write made ``key`` (one of ``keys``) ready, with
the *blocked* client's session (its db, its RESP version; ``session.now``
set). It returns the reply (logging its effects with ``session.log``, as
any write) or None if ``key`` is not ready for it after all (missing, or
another type: Redis 7.0 leaves the client blocked then); a CommandError it
raises becomes the client's reply and ends its wait (BLMOVE onto a
destination of the wrong type). ``timeout_reply`` is what the client gets
when the time is up, on CLIENT UNBLOCK ... TIMEOUT, and at once inside
MULTI or a script, where nothing blocks (unless ``unblocked_reply`` says
otherwise). ``timeout_ms`` 0 waits forever. ``on_delete``: ``try_serve``
is called for the key deleted too (XREADGROUP's error: Redis 7.0 ends its
wait then); the others are tried only while the key exists.

``wait_for_keys`` returns a ``Blocked``; the dispatcher, once it has let go
of the write lock, calls its ``wait()`` (on the client's own worker
thread, holding no lock), which returns the reply to send.

How a key becomes ready: each Database keeps ``blocked`` (key -> FIFO of
Waiters), consulted by its writes only when non-empty (one truth test);
a write to a blocked key, its deletion or a flush appends (db, key) to
``keyspace.ready``. The
dispatcher, after the write's log append succeeded (after EXEC's or a
script's whole group), calls ``serve_ready``: for each ready key, the
waiters in the order they blocked (Redis's handleClientsBlockedOnKeys),
each pop applied and appended to the log as its own record(s) right
there, still under the lock, then the waiter woken with its reply. A pop
whose append fails is rolled back and its client stays blocked; if the
pusher's own append failed nothing is served. A served pop that pushes
(BLMOVE) may make more keys ready: they are served in the same pass.

Ending a wait otherwise: the time is up (the waiter wakes from its own
lock's timeout), CLIENT UNBLOCK (``unblock``), and the connection ending
(``hang_up``: CLIENT KILL, EOF, shutdown). The waiter always takes the
write lock to leave the queues, so serving and leaving never race.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

from kvserver import errors
from kvserver.errors import AofError, CommandError
from kvserver.protocol import NO_REPLY

LLONG_MAX = 2**63 - 1


def parse_timeout(raw: bytes) -> int:
    """A timeout in seconds, as Redis 7.0's getTimeoutFromObjectOrReply:
    strtold, times 1000, rounded up to whole ms, cast to long long (an
    overflow, inf included, comes out negative); 0 waits forever."""
    from kvserver.commands import longdouble  # the commands package imports this module

    value = longdouble.parse(raw)
    if value is None:
        raise CommandError(errors.TIMEOUT_NOT_FLOAT)
    if isinstance(value, float):  # +-inf: the cast gives LLONG_MIN
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    ms = longdouble._round(value * 1000)
    if ms is None or math.ceil(ms) > LLONG_MAX:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    ms = math.ceil(ms)
    if ms < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    return ms


class Waiter:
    """One blocked client. Its fields change under the write lock, except
    ``signal`` (released by whoever ends the wait) and the client's
    ``session.hangup`` flag."""

    __slots__ = (
        "session", "db", "keys", "deadline", "try_serve", "timeout_reply", "on_delete", "signal", "done", "reply",
        "offset",
    )  # fmt: skip

    def __init__(self, session, keys, deadline, try_serve, timeout_reply, on_delete=False) -> None:
        self.session = session
        self.db = session.db
        self.keys = keys
        self.deadline = deadline  # keyspace clock ms; 0: none
        self.try_serve = try_serve
        self.timeout_reply = timeout_reply
        self.on_delete = on_delete  # try_serve also when the key is gone
        self.signal = threading.Lock()  # locked until the wait ends
        self.signal.acquire()
        self.done = False
        self.reply = None
        self.offset = 0  # where the served pop's log record ends (fsync always)

    def finish(self, reply) -> bool:
        """End the wait with ``reply`` (write lock held); False if it had ended."""
        if self.done:
            return False
        self.done = True
        self.reply = reply
        blocked = self.db.blocked
        for key in self.keys:
            queue = blocked.get(key)
            if queue is not None:
                try:
                    queue.remove(self)
                except ValueError:
                    pass
                if not queue:
                    del blocked[key]
        self.db.keyspace.blocked_clients -= 1
        self.wake()
        return True

    def wake(self) -> None:
        try:
            self.signal.release()
        except RuntimeError:
            pass  # already woken

    def wait(self):
        """The client's worker, no lock held: wait until served, unblocked,
        hung up or timed out; the reply to send."""
        session = self.session
        keyspace = self.db.keyspace
        clock = keyspace.clock
        try:
            while not self.done:
                if session.hangup:
                    break
                if self.deadline:
                    left = self.deadline - clock()
                    if left <= 0:
                        break
                    self.signal.acquire(timeout=left / 1000)
                else:
                    self.signal.acquire()
            if not self.done:
                with keyspace.write_lock:
                    # A client hung up, killed or shut down gets nothing, as in Redis.
                    self.finish(NO_REPLY if session.hangup else self.timeout_reply)
        finally:
            session.waiter = None
        if self.offset:
            aof = session.dispatcher.aof if session.dispatcher is not None else None
            if aof is not None and aof.fsync_policy == "always":
                try:
                    aof.sync_to(self.offset)
                except AofError as exc:
                    return errors.log_write_failed(str(exc))
        return self.reply


class Blocked:
    """What a blocking command returns when it must wait (see the module
    docstring); the dispatcher calls ``wait()`` outside the lock."""

    __slots__ = ("waiter",)

    def __init__(self, waiter: Waiter) -> None:
        self.waiter = waiter

    def wait(self):
        return self.waiter.wait()


_SAME = object()


def wait_for_keys(
    session,
    keys: list[bytes],
    timeout_ms: int,
    try_serve: Callable,
    timeout_reply,
    unblocked_reply=_SAME,
    on_delete: bool = False,
) -> object:
    """Block ``session`` on ``keys`` (write lock held): a ``Blocked`` for the
    dispatcher, or, where Redis does not block (inside MULTI or a script; a
    connection already ending), ``unblocked_reply`` at once (by default the
    timeout's reply; BLMOVE's differs: nil there, a null array on timeout)."""
    if session.group is not None or session.hangup or session.loading:
        return timeout_reply if unblocked_reply is _SAME else unblocked_reply
    deadline = session.now + timeout_ms if timeout_ms else 0
    waiter = Waiter(session, list(dict.fromkeys(keys)), deadline, try_serve, timeout_reply, on_delete)
    blocked = session.db.blocked
    for key in waiter.keys:
        queue = blocked.get(key)
        if queue is None:
            queue = blocked[key] = deque()
        queue.append(waiter)
    session.keyspace.blocked_clients += 1
    session.waiter = waiter
    return Blocked(waiter)


def serve_ready(keyspace, aof, now: int) -> int:
    """Serve the waiters on the keys made ready (write lock held, after the
    write that made them ready was logged); the log offset of the last
    record appended, 0 if none."""
    offset = 0
    ready = keyspace.ready
    while ready:
        db, key = ready.pop(0)
        queue = db.blocked.get(key)
        if not queue:
            continue
        # In the order they blocked; each takes what it can while the key
        # is there (one of another kind, BZPOPMIN on a list, is passed over);
        # a key gone is news only to an XREADGROUP (``on_delete``).
        for waiter in list(queue):
            if waiter.done or waiter.session.hangup:  # a client gone leaves on its own thread
                continue
            if key not in db.data and not waiter.on_delete:
                continue
            served, end = _serve_one(keyspace, aof, waiter, key, now)
            if end < 0:
                ready.clear()  # the log cannot be written: nobody else is served
                return offset
            offset = end or offset
    return offset


def _serve_one(keyspace, aof, waiter: Waiter, key: bytes, now: int) -> tuple[object, int]:
    """Try ``waiter`` on ``key``: (its reply or None if not served, the log
    offset, 0 if nothing logged, -1 if the append failed)."""
    session = waiter.session
    session.now = now
    effects = session.effects
    journal: list = []
    outer = keyspace.journal
    keyspace.journal = journal
    try:
        try:
            reply = waiter.try_serve(session, key)
        except CommandError as exc:
            reply = exc
        if reply is None:
            keyspace.rollback(journal)
            return None, 0
        end = 0
        if effects and aof is not None:
            try:
                end = aof.write(waiter.db.index, effects)
            except AofError:
                keyspace.rollback(journal)
                return reply, -1
        waiter.offset = end
        waiter.finish(reply)
        return reply, end
    finally:
        keyspace.journal = outer
        effects.clear()


def hang_up(session) -> None:
    """The client's connection is ending (any thread, no lock): a wait it is
    in, or starts, ends at once."""
    if session is None:
        return
    session.hangup = True
    waiter = session.waiter
    if waiter is not None:
        waiter.wake()


def unblock(keyspace, session, error: bool) -> bool:
    """CLIENT UNBLOCK: end ``session``'s wait with its timeout reply or the
    UNBLOCKED error; False if it was not blocked."""
    with keyspace.write_lock:
        waiter = session.waiter
        if waiter is None:
            return False
        return waiter.finish(CommandError(errors.UNBLOCKED) if error else waiter.timeout_reply)
