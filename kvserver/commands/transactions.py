"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, as Redis 7.0.

How a transaction runs, and where each rule lives:

* MULTI starts queuing: from then on the dispatcher answers ``QUEUED`` to
  each command and keeps it on ``session.multi``, except the ones the
  registry marks ``in_multi="run"`` (those below, QUIT and RESET), which run
  at once. A command refused while queuing (unknown, wrong arity, NOAUTH,
  OOM, ``no_multi``) sets ``session.multi_failed``: EXEC then answers
  EXECABORT and runs nothing (dispatch.py).
* EXEC runs the queue as one atomic unit (``Dispatcher.run_atomic``): no
  other client's command, read or write, runs or sees anything in between;
  the effects are logged as one MULTI ... EXEC group, one append; a failed
  append undoes the whole transaction. A command that fails while EXEC runs
  fails alone and the others still run, as in Redis.
* WATCH registers keys in the store (``Database.watch``); any change to one
  of them by anyone, an expiry included, makes EXEC answer a null array.
  EXEC, DISCARD, UNWATCH, RESET and the connection's end forget them.
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import OK, NullArray
from kvserver.session import Session
from kvserver.store import Watches

_FLAGS = ("noscript", "loading", "stale", "fast", "allow_busy")


@command("multi", 1, flags=_FLAGS, in_multi="run")
def multi(session: Session, args: list[bytes]) -> object:
    """MULTI

    Start a transaction: the commands that follow are queued until EXEC.
    """
    if session.multi is not None:
        raise CommandError(errors.MULTI_NESTED)
    session.multi = []
    session.multi_failed = False
    return OK


@command("exec", 1, flags=("noscript", "loading", "stale", "skip_slowlog"), in_multi="run")
def exec_(session: Session, args: list[bytes]) -> object:
    """EXEC

    Run the queued commands atomically: an array of their replies; a null
    array if a watched key changed; EXECABORT if one was refused when queued.
    """
    queued = session.multi
    if queued is None:
        raise CommandError(errors.EXEC_WITHOUT_MULTI)
    failed = session.multi_failed
    session.multi = None
    session.multi_failed = False
    dispatcher = session.dispatcher
    if failed:
        _forget_watches(session)
        raise CommandError(errors.EXECABORT)

    def body(call):
        # Under the write lock: nothing can change a watched key between this
        # check and the last queued command.
        watches = session.watches
        if watches is not None and (watches.dirty or watches.expired_since(session.now)):
            return NullArray
        return [call(args) for _, args in queued]

    try:
        return dispatcher.run_atomic(session, body)
    finally:
        _forget_watches(session)


@command("discard", 1, flags=_FLAGS, in_multi="run")
def discard(session: Session, args: list[bytes]) -> object:
    """DISCARD

    Drop the queued commands and leave the transaction; forget the watches.
    """
    if session.multi is None:
        raise CommandError(errors.DISCARD_WITHOUT_MULTI)
    session.multi = None
    session.multi_failed = False
    _forget_watches(session)
    return OK


@command("watch", -2, keys=(1, -1, 1), flags=_FLAGS, in_multi="run", reads_keys=False)
def watch(session: Session, args: list[bytes]) -> object:
    """WATCH key [key ...]

    Make the next EXEC fail if any of these keys changes before it.
    """
    if session.multi is not None:
        raise CommandError(errors.WATCH_IN_MULTI)
    watches = session.watches
    if watches is None:
        watches = session.watches = Watches()
    db = session.db
    with session.keyspace.write_lock:  # the watched table is the writers' too
        for key in args:
            db.watch(watches, key, session.now)
    return OK


@command("unwatch", 1, flags=_FLAGS)
def unwatch(session: Session, args: list[bytes]) -> object:
    """UNWATCH

    Forget every watched key.
    """
    _forget_watches(session)
    return OK


def _forget_watches(session: Session) -> None:
    watches = session.watches
    if watches is not None and watches.keys:
        with session.keyspace.write_lock:
            watches.clear()
    if watches is not None:
        watches.dirty = False


def end_session(session: Session) -> None:
    """The client has gone (or sent RESET): no transaction, no watches."""
    session.multi = None
    session.multi_failed = False
    _forget_watches(session)
