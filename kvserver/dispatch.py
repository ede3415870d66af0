"""Run one command: look it up, check it, apply it, log it.

Clients on every port and the start-up log replay all come through
``Dispatcher.execute``. The rules it keeps:

* Unknown commands and wrong arity are replies, never exceptions.
* A read command runs without the write lock.
* A write command runs under the global write lock, and so does the
  append of its effects to the log. Every change it makes is noted in the
  keyspace's undo journal; if the append fails, the journal is rolled back
  and the client gets an error: a write is acknowledged only once it is
  applied *and* logged.
* Only ``CommandError`` is part of the contract; any other exception is a
  bug, logged with its traceback and answered with a generic error so that
  one bad request never takes the connection, or the server, down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter_ns

from kvserver import errors
from kvserver.aof import AppendOnlyFile
from kvserver.commands import COMMANDS
from kvserver.commands.monitor import feed_monitors
from kvserver.errors import AofError, CommandError
from kvserver.session import Session
from kvserver.stats import NEVER
from kvserver.store import Keyspace

log = logging.getLogger(__name__)

CALLS, NANOSECONDS, REJECTED, FAILED = range(4)  # fields of command_stats


class Dispatcher:
    def __init__(
        self,
        keyspace: Keyspace,
        aof: AppendOnlyFile | None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.keyspace = keyspace
        self.aof = aof  # None while replaying: nothing is logged then
        # What commands see as session.now: the keyspace's clock, unless the
        # caller gives another (the log replay does: see server.load_log).
        self._clock = clock if clock is not None else keyspace.clock
        self._lock = keyspace.write_lock
        self.maxmemory = 0  # bytes; 0: no limit (the server sets it from Config)
        # name -> [calls, nanoseconds, rejected, failed], for INFO commandstats.
        self.command_stats: dict[str, list[int]] = {cmd.name: [0, 0, 0, 0] for cmd in COMMANDS.values()}
        # SLOWLOG: a command that ran for slow_ns or more goes to
        # slowlog.record (stats.SlowLog.attach sets both; NEVER: off, as
        # for the log replay).
        self.slow_ns = NEVER
        self.slowlog = None
        # The connections in MONITOR mode (connection.py replaces the tuple
        # as they come and go); each gets a line per command run.
        self.monitors: tuple = ()

    def execute(self, session: Session, args: list[bytes]) -> object:
        """Run ``args`` (name first) for ``session``; returns the reply value."""
        cmd = COMMANDS.get(args[0].upper())
        if cmd is None:
            return errors.unknown_command(args[0], args[1:])
        stats = self.command_stats.get(cmd.name) or self.command_stats.setdefault(cmd.name, [0, 0, 0, 0])
        if not cmd.arity_ok(len(args)):
            stats[REJECTED] += 1
            return errors.wrong_arity(cmd.name)
        if not session.authenticated and "no_auth" not in cmd.flags:
            stats[REJECTED] += 1
            return CommandError(errors.NOAUTH)  # as Redis: after the arity check
        if self.maxmemory and "denyoom" in cmd.flags and self.keyspace.used_bytes > self.maxmemory:
            stats[REJECTED] += 1
            return CommandError(errors.OOM)  # noeviction: refuse what adds data
        session.last_command = cmd.name  # for CLIENT LIST's cmd=
        started = perf_counter_ns()
        reply = self._run(cmd, session, args[1:])
        # INFO commandstats. Unlocked increments can lose a count when two
        # threads race; the figures are for people, as Redis's sampled ones.
        stats[CALLS] += 1
        elapsed = perf_counter_ns() - started
        stats[NANOSECONDS] += elapsed
        if elapsed >= self.slow_ns:  # SLOWLOG: one comparison unless slow
            self.slowlog.record(session, args, elapsed)
        if type(reply) is CommandError:
            stats[FAILED] += 1
        if self.monitors:  # MONITOR: one truth test while nobody watches
            feed_monitors(self.monitors, cmd, session, args)
        return reply

    def _run(self, cmd, session: Session, argv: list[bytes]) -> object:
        try:
            if not cmd.write:
                session.now = self._clock()
                return cmd.func(session, argv)
            with self._lock:
                # The clock is read under the lock so that deadlines in the
                # log never go backwards relative to the log order.
                session.now = self._clock()
                reply, offset = self._write(cmd, session, argv)
            if offset and self.aof.fsync_policy == "always":
                # Outside the lock, so that concurrent writers share fsyncs.
                self.aof.sync_to(offset)
            return reply
        except CommandError as exc:
            return exc
        except AofError as exc:  # the fsync under "always" failed: not acknowledged
            return errors.log_write_failed(str(exc))
        except Exception:
            log.exception("internal error running %r", cmd.name)
            return CommandError(errors.INTERNAL_ERROR)

    def _write(self, cmd, session: Session, argv: list[bytes]) -> tuple[object, int]:
        """Run a write command (write lock held); returns the reply and the
        log offset its record ends at (0 if it logged nothing)."""
        effects = session.effects
        aof = self.aof
        if aof is None:  # replaying the log: apply only
            try:
                return cmd.func(session, argv), 0
            finally:
                effects.clear()
        keyspace = self.keyspace
        journal: list = []
        keyspace.journal = journal  # every change the command makes is noted
        try:
            reply = cmd.func(session, argv)
            if not effects:
                return reply, 0
            try:
                return reply, aof.write(session.db.index, effects)
            except AofError as exc:
                keyspace.rollback(journal)
                log.error("write refused, the log cannot be written: %s", exc)
                return errors.log_write_failed(str(exc)), 0
        except BaseException:
            # A CommandError is raised before a command changes anything; an
            # unexpected exception may come after: undo rather than leave
            # memory ahead of the log.
            keyspace.rollback(journal)
            raise
        finally:
            keyspace.journal = None
            effects.clear()
