"""Run one command: look it up, check it, apply it, log it.

Clients on every port and the start-up log replay all come through
``Dispatcher.execute``. The rules it keeps:

* Unknown commands and wrong arity are replies, never exceptions.
* A read command runs without the write lock. One that reads keys is kept
  from seeing half of a write by the keyspace's seqlock count (store.py):
  if a write ran meanwhile, the read is done again under the lock.
* A write command runs under the global write lock, and so does the
  append of its effects to the log. Every change it makes is noted in the
  keyspace's undo journal; if the append fails, the journal is rolled back
  and the client gets an error: a write is acknowledged only once it is
  applied *and* logged.
* An atomic unit (EXEC, a script: ``run_atomic``) holds the write lock
  from its first command to its last, with the clock frozen, and writes
  the effects of all its commands as one append, a MULTI ... EXEC group
  when there is more than one record (as Redis 7 propagates them). A failed
  append rolls back the whole unit.
* A client's pipelined requests (``begin_batch``/``end_batch``, around a
  worker's batch) run as one **batch**: the write lock is taken at its
  first write and held until the batch ends (reads of keys after it run
  under it too), and the effects of all of them are written with one append. Until then
  nobody else sees what they changed; if the append fails, all of them are
  rolled back and every reply from the first change on becomes the error.
  A command that cannot run with the lock held (blocking, EXEC, scripts,
  anything that is neither a read nor a write of keys) ends the batch
  first and runs as usual.
* Inside MULTI, a command is queued (``QUEUED``) rather than run, unless the
  registry says it runs at once (``in_multi="run"``); one refused while
  queuing (unknown, wrong arity, no_multi, OOM...) fails the transaction.
* A client with CLIENT TRACKING on has the keys of its reads remembered
  (kvserver/tracking.py): such a read runs under the write lock, so that
  no write falls between it and the remembering. Everyone else pays one
  test per command.
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
from kvserver.blocking import Blocked, serve_ready
from kvserver.commands import COMMANDS
from kvserver.commands.containers import CONTAINERS
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.monitor import feed_monitors
from kvserver.commands.transactions import end_session
from kvserver.errors import AofError, CommandError
from kvserver.protocol import Status
from kvserver.session import Session
from kvserver.stats import NEVER
from kvserver.store import Keyspace

log = logging.getLogger(__name__)

CALLS, NANOSECONDS, REJECTED, FAILED = range(4)  # fields of command_stats
QUEUED = Status("QUEUED")
# The read-only script commands: flagged as reads of keys, but what they read
# is their scripts' commands' business (tracking, batches), not their own.
_SCRIPT_READS = ("eval_ro", "evalsha_ro", "fcall_ro")

# A batch holds the write lock: it ends after this many commands (and a
# new one begins), so that a client pipelining thousands of requests
# makes the others wait for at most this many commands at a time, as
# Redis serves a client's query buffer a read (16 KiB) at a time. Eight of
# the 16-command pipelines redis-benchmark -P 16 sends fit in. Its bytes
# are bounded already: a worker's batch ends at 64 KiB of replies
# (client.REPLY_BATCH_BYTES), and the requests it runs at the reactor's
# read-ahead limit (reactor.MAX_READ_AHEAD_BYTES).
MAX_BATCH_COMMANDS = 128


class Batch:
    """The commands one client pipelined, run together (``begin_batch``).

    ``out`` is the worker's list of encoded replies; ``positions`` the
    index in it of each reply of the batch run so far, and ``changed`` the
    number of them before the first that changed anything: if the log
    append fails, ``positions[changed:]`` are answered with the error.
    """

    __slots__ = ("out", "encode", "positions", "changed", "entries", "active")

    def __init__(self, out: list, encode: Callable[[object, int], bytes]) -> None:
        self.out = out
        self.encode = encode
        self.positions: list[int] = []
        self.changed = -1  # -1: nothing changed yet
        # The effects of its commands so far, as (database index, records).
        self.entries: list[tuple[int, list[list[bytes]]]] = []
        self.active = False  # holds the write lock


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
        if aof is not None:
            keyspace.on_expired = self._log_expiry  # store.py: an expiry is logged as a DEL
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
        # The connections in MONITOR mode (client.py replaces the tuple
        # as they come and go); each gets a line per command run.
        self.monitors: tuple = ()
        # CLIENT TRACKING remembers the keys of these commands: those Redis
        # flags readonly (PFCOUNT too), except the read-only script commands
        # (the commands their scripts run count instead) and SSUBSCRIBE's kin.
        self._tracked_reads = frozenset(
            c.name
            for c in COMMANDS.values()
            if (c.reads_keys or "readonly" in c.flags)
            and (c.first_key or c.name in KEY_FINDERS)
            and "pubsub" not in c.flags
            and c.name not in _SCRIPT_READS
        )
        # What may run inside a batch, the write lock held: plain reads and
        # writes of keys. Not a blocking command (it waits), nor one that
        # runs a script (run_atomic has its own unit).
        self._batched = frozenset(
            c.name
            for c in COMMANDS.values()
            if (c.write or c.reads_keys) and not c.blocking and c.name not in _SCRIPT_READS
        )
        # The batch holding the write lock now, if any: an expiry inside it
        # joins its append (_log_expiry), to stay in the mutation order.
        self._batch: Batch | None = None

    def _log_expiry(self, db, key: bytes) -> bool:
        # Keyspace.on_expired (write lock held): a key's expiry, as Redis
        # propagates it; the fsync policy covers it like any write. Inside
        # a batch, after the records the batch has not written yet.
        if self._batch is not None:
            self._batch.entries.append((db.index, [[b"DEL", key]]))
            return True
        try:
            self.aof.write(db.index, [[b"DEL", key]])
        except AofError:
            return False  # the log said why; the key stays, invisible
        return True

    def execute(self, session: Session, args: list[bytes]) -> object:
        """Run ``args`` (name first) for ``session``; returns the reply value."""
        name = args[0]
        # Most clients send names in upper case, as the registry has them:
        # the upper() (a new bytes object) only when that look-up misses.
        cmd = COMMANDS.get(name) or COMMANDS.get(name.upper())
        if cmd is None:
            return _refuse(session, None, errors.unknown_command(name, args[1:]))
        stats = self.command_stats.get(cmd.name) or self.command_stats.setdefault(cmd.name, [0, 0, 0, 0])
        arity = cmd.arity  # Command.arity_ok, inlined on the hot path
        if len(args) != arity and (arity >= 0 or len(args) < -arity):
            stats[REJECTED] += 1
            return _refuse(session, cmd, errors.wrong_arity(cmd.name))
        if not session.authenticated and "no_auth" not in cmd.flags:
            stats[REJECTED] += 1
            return _refuse(session, cmd, CommandError(errors.NOAUTH))  # as Redis: after the arity check
        if self.maxmemory and self._out_of_memory(cmd, session):
            stats[REJECTED] += 1
            return _refuse(session, cmd, CommandError(errors.OOM))  # noeviction: refuse what adds data
        busy = self.keyspace.busy_script
        if busy is not None and "allow_busy" not in cmd.flags:  # one load while no script runs
            refused = self._wait_out_script(busy, cmd, args)
            if refused is not None:
                stats[REJECTED] += 1
                return _refuse(session, cmd, refused)
        if session.multi is not None and cmd.in_multi == "queue":
            if "no_multi" in cmd.flags:
                stats[REJECTED] += 1
                return _refuse(session, cmd, CommandError(errors.NOT_IN_MULTI))
            session.multi.append((cmd, args))
            return QUEUED
        return self._invoke(cmd, stats, session, args)

    def _out_of_memory(self, cmd, session: Session) -> bool:
        """Past maxmemory, Redis (noeviction) refuses what adds data; inside
        MULTI it refuses queuing anything, since the queue itself grows,
        and an EXEC whose queue holds a command that adds data."""
        if "denyoom" not in cmd.flags:
            if session.multi is None:
                return False
            if cmd.name == "exec":
                if not any("denyoom" in queued.flags for queued, _ in session.multi):
                    return False
            elif cmd.in_multi == "run" and cmd.name != "multi" and cmd.name != "watch":
                return False  # DISCARD, QUIT, RESET always run
        return self.keyspace.used_bytes > self.maxmemory

    def _invoke(self, cmd, stats: list[int], session: Session, args: list[bytes]) -> object:
        """Run a checked command, with what every run gets: the figures for
        INFO commandstats and SLOWLOG, and the MONITOR feed."""
        session.last_command = cmd.name  # for CLIENT LIST's cmd=
        started = perf_counter_ns()
        if session.tracking is None:  # CLIENT TRACKING: one test otherwise
            reply = self._run(cmd, session, args[1:])
        else:
            reply = self._run_tracking(cmd, session, args[1:])
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

    def _run_tracking(self, cmd, session: Session, argv: list[bytes]) -> object:
        """A command of a client with CLIENT TRACKING on. A read of keys runs
        under the write lock and its keys are remembered before the lock
        goes (tracking.py), so no write can change one unseen in between;
        then CACHING's one-command opt-in/out ends, as in Redis, unless this
        was a CLIENT subcommand or inside MULTI ... EXEC."""
        mine = session.tracking
        if cmd.name in self._tracked_reads and not mine.bcast and mine.remembers():
            with self._lock:
                reply = self._run(cmd, session, argv)
                tracking = self.keyspace.tracking
                if tracking is not None and session.tracking is mine:
                    tracking.remember(session.id, _keys_of(cmd, argv))
        else:
            reply = self._run(cmd, session, argv)
        if mine.caching and session.group is None and session.multi is None and cmd.name != "client":
            mine.caching = False
        return reply

    def _wait_out_script(self, busy, cmd, args: list[bytes]) -> CommandError | None:
        """A script holds the write lock (keyspace.busy_script): wait for it
        while it is within busy-reply-threshold, then answer BUSY, as Redis
        answers every command but the allow_busy ones (SCRIPT KILL...)
        during a long script. Waits on the lock with a timeout, so a client
        already waiting gets BUSY as soon as the threshold passes."""
        container = CONTAINERS.get(cmd.name)
        if container is not None and len(args) > 1:  # SCRIPT KILL, FUNCTION STATS...
            sub = container.subcommands.get(args[1].upper())
            if sub is not None and "allow_busy" in sub.flags:
                return None
        keyspace = self.keyspace
        lock = self._lock
        while keyspace.busy_script is busy:
            left_ms = keyspace.busy_reply_ms - busy.elapsed_ms()
            if left_ms <= 0:
                return CommandError(errors.BUSY_FUNCTION if busy.kind == "function" else errors.BUSY_SCRIPT)
            if lock.acquire(timeout=left_ms / 1000):
                lock.release()  # the script is over: run as usual
                return None
        return None

    def _run(self, cmd, session: Session, argv: list[bytes]) -> object:
        batch = session.batch
        # A read before the batch's first write sees only what is logged:
        # it needs no lock, so it goes the usual way.
        if batch is not None and (batch.active or cmd.write):
            if cmd.name in self._batched and session.tracking is None and session.group is None:
                return self._run_batched(batch, cmd, session, argv)
            if batch.active:  # it cannot run with the lock held: the batch so far goes first
                self._close_batch(batch, session)
        try:
            if session.group is not None:  # inside run_atomic: lock held, clock frozen
                return self._run_grouped(cmd, session, argv)
            if not cmd.write:
                if not cmd.reads_keys:
                    session.now = self._clock()
                    return cmd.func(session, argv)
                # A read of keys, without the lock: valid if no write began
                # or ended meanwhile (the seqlock; see store.py).
                keyspace = self.keyspace
                if cmd.blocking:  # XREAD BLOCK: tries, then blocks, under the lock
                    with self._lock:
                        session.now = self._clock()
                        reply = cmd.func(session, argv)
                    return reply.wait() if type(reply) is Blocked else reply
                seq = keyspace.seq
                if not seq & 1:
                    session.now = self._clock()
                    try:
                        reply = cmd.func(session, argv)
                    except Exception:
                        if keyspace.seq == seq:
                            raise
                    else:
                        if keyspace.seq == seq:
                            return reply
                # A write was under way: read again once it is done.
                with self._lock:
                    session.now = self._clock()
                    return cmd.func(session, argv)
            with self._lock:
                # The clock is read under the lock so that deadlines in the
                # log never go backwards relative to the log order.
                session.now = self._clock()
                reply, offset = self._write(cmd, session, argv)
                tracking = self.keyspace.tracking
                if tracking is not None and tracking.pending:  # BCAST: once the command is done
                    tracking.broadcast()
            if type(reply) is Blocked:  # BLPOP...: wait, holding no lock
                return reply.wait()
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
        keyspace.seq += 1  # odd: readers that overlap this will read again
        try:
            reply = cmd.func(session, argv)
            if not effects:
                return reply, 0
            try:
                offset = aof.write(session.db.index, effects)
            except AofError as exc:
                keyspace.rollback(journal)
                log.error("write refused, the log cannot be written: %s", exc)
                return errors.log_write_failed(str(exc)), 0
            if keyspace.ready:  # it made keys that clients wait on ready: serve them
                offset = serve_ready(keyspace, aof, session.now) or offset
            return reply, offset
        except BaseException:
            # A CommandError is raised before a command changes anything; an
            # unexpected exception may come after: undo rather than leave
            # memory ahead of the log.
            keyspace.rollback(journal)
            raise
        finally:
            keyspace.seq += 1
            keyspace.journal = None
            effects.clear()
            if keyspace.ready:  # a write refused: nobody is served
                keyspace.ready.clear()

    # -- batches: a client's pipelined commands, one log append -------------------

    def begin_batch(self, session: Session, out: list, encode: Callable[[object, int], bytes]) -> None:
        """The commands ``session`` runs until ``end_batch`` are one batch
        (see the module docstring): their replies go on ``out``, encoded
        with ``encode``, each appended right after its ``execute``."""
        if self.aof is not None:
            session.batch = Batch(out, encode)

    def end_batch(self, session: Session) -> None:
        """Write what the batch changed, release the lock, and if the log
        refused it, replace the replies it covered with the error."""
        batch = session.batch
        if batch is not None:
            session.batch = None
            if batch.active:
                self._close_batch(batch, session)

    def _run_batched(self, batch: Batch, cmd, session: Session, argv: list[bytes]) -> object:
        keyspace = self.keyspace
        if not batch.active:
            self._lock.acquire()
            batch.active = True
            self._batch = batch
            keyspace.journal = []
            keyspace.seq += 1  # odd until the batch is written: readers wait for it
        batch.positions.append(len(batch.out))
        session.now = self._clock()
        try:
            reply = self._run_undoable(cmd, session, argv, batch.entries)
        except CommandError as exc:
            reply = exc
        except Exception:
            log.exception("internal error running %r", cmd.name)
            reply = CommandError(errors.INTERNAL_ERROR)
        if batch.changed < 0 and keyspace.journal:  # its first change (the journal notes every one)
            batch.changed = len(batch.positions) - 1
        tracking = keyspace.tracking
        if (
            keyspace.ready  # made keys that clients wait on ready: write, then serve them, now
            or (tracking is not None and tracking.pending)  # BCAST: once the command is done
            or len(batch.positions) >= MAX_BATCH_COMMANDS
        ):
            # This reply is not on ``out`` yet: it is returned, the error
            # instead if the append covering it failed.
            batch.positions.pop()
            covered = 0 <= batch.changed <= len(batch.positions)
            error = self._close_batch(batch, session)
            if error is not None and covered:
                return error
        return reply

    def _close_batch(self, batch: Batch, session: Session) -> CommandError | None:
        """Write the batch's effects with one append (write lock held, by
        this batch) and release the lock. If the log refused them, every
        reply on ``out`` the append covered becomes the error, which is
        returned (None if all went well)."""
        keyspace = self.keyspace
        aof = self.aof
        offset = 0
        error = None
        try:
            if batch.entries:
                try:
                    offset = aof.write_batch(batch.entries)
                except AofError as exc:
                    keyspace.rollback(keyspace.journal)
                    log.error("writes refused, the log cannot be written: %s", exc)
                    error = errors.log_write_failed(str(exc))
                else:
                    if keyspace.ready:
                        offset = serve_ready(keyspace, aof, session.now) or offset
        finally:
            self._end_unit()
            self._batch = None
            batch.active = False
            self._lock.release()
        error = self._synced(offset) or error
        if error is not None and batch.changed >= 0:
            out, encoded = batch.out, batch.encode(error, session.resp)
            for position in batch.positions[batch.changed :]:
                out[position] = encoded
        batch.positions.clear()
        batch.entries.clear()
        batch.changed = -1
        return error

    def _end_unit(self) -> None:
        """The end of a unit that held the write lock with the journal open
        (run_atomic, a batch), lock still held: readers may read without it
        again (the seqlock count even), blocked clients not served by now
        are not (the append was refused), and BCAST tracking clients hear
        of the keys it changed, once it is done."""
        keyspace = self.keyspace
        keyspace.seq += 1
        keyspace.journal = None
        if keyspace.ready:
            keyspace.ready.clear()
        tracking = keyspace.tracking
        if tracking is not None and tracking.pending:
            tracking.broadcast()

    def _synced(self, offset: int) -> CommandError | None:
        """Under appendfsync always, wait until an fsync covers ``offset``
        (lock released, so that concurrent writers share fsyncs); the
        error to answer if it failed, else None."""
        if offset and self.aof.fsync_policy == "always":
            try:
                self.aof.sync_to(offset)
            except AofError as exc:
                return errors.log_write_failed(str(exc))
        return None

    # -- atomic units: EXEC, scripts -------------------------------------------

    def run_atomic(self, session: Session, body: Callable[[Callable[[list[bytes]], object]], object]) -> object:
        """Run ``body(call)`` as one atomic unit and return what it returns.

        ``call(args)`` runs one command (name first) and returns its reply
        value; an error comes back as a ``CommandError`` instance, never
        raised. Throughout, the global write lock is held, so no other
        client's command runs or observes anything until the unit is done,
        and ``session.now`` stays what it was at the start. The effects of
        every write are written to the log as one append at the end (a
        MULTI ... EXEC group if more than one record). If that append fails,
        every change made inside is rolled back, and the log-write error is
        returned instead of body's value. A unit inside a unit (EVAL within
        EXEC) simply runs as part of the outer one.
        """
        call = self._caller(session)
        if session.group is not None:
            return body(call)
        keyspace = self.keyspace
        aof = self.aof
        offset = 0
        with self._lock:
            session.now = self._clock()
            journal: list = []
            keyspace.journal = journal
            keyspace.seq += 1
            group = session.group = []
            try:
                reply = body(call)
                if group and aof is not None:
                    try:
                        offset = aof.write_group(group)
                    except AofError as exc:
                        keyspace.rollback(journal)
                        log.error("transaction refused, the log cannot be written: %s", exc)
                        return errors.log_write_failed(str(exc))
                    if keyspace.ready:  # as Redis, blocked clients are served after EXEC
                        offset = serve_ready(keyspace, aof, session.now) or offset
            except BaseException:
                keyspace.rollback(journal)
                raise
            finally:
                session.group = None
                self._end_unit()
        refused = self._synced(offset)
        return reply if refused is None else refused

    def _caller(self, session: Session) -> Callable[[list[bytes]], object]:
        def call(args: list[bytes]) -> object:
            cmd = COMMANDS.get(args[0].upper())
            if cmd is None:
                return errors.unknown_command(args[0], args[1:])
            stats = self.command_stats.get(cmd.name) or self.command_stats.setdefault(cmd.name, [0, 0, 0, 0])
            if not cmd.arity_ok(len(args)):
                stats[REJECTED] += 1
                return errors.wrong_arity(cmd.name)
            return self._invoke(cmd, stats, session, args)

        return call

    def _run_grouped(self, cmd, session: Session, argv: list[bytes]) -> object:
        """One command of an atomic unit: its changes join the unit's journal
        and its effects the unit's group (run_atomic writes them)."""
        if not cmd.write:
            return cmd.func(session, argv)
        return self._run_undoable(cmd, session, argv, session.group)

    def _run_undoable(self, cmd, session: Session, argv: list[bytes], effects_into: list) -> object:
        """Run one command inside an open unit (an atomic unit or a batch:
        write lock held, journal open): its effects join ``effects_into`` as
        (database index, records). If it raises, its own changes alone are
        undone (the unit's other commands stand) and the exception goes on."""
        journal = self.keyspace.journal
        mark = len(journal)
        effects = session.effects
        try:
            reply = cmd.func(session, argv)
            if effects:
                effects_into.append((session.db.index, list(effects)))
            return reply
        except BaseException:
            # A CommandError comes before any change, but be exact.
            self.keyspace.rollback(journal[mark:])
            del journal[mark:]
            raise
        finally:
            effects.clear()


def _keys_of(cmd, argv: list[bytes]) -> list[bytes]:
    """The keys a call names (COMMAND GETKEYS's answer), [] if it cannot say."""
    finder = KEY_FINDERS.get(cmd.name)
    if finder is None:
        return cmd.keys(argv)
    try:
        return finder(argv)
    except CommandError:
        return []


def _refuse(session: Session, cmd, error: CommandError) -> CommandError:
    """A command refused before it ran. Inside MULTI that dooms the
    transaction, as Redis's flagTransaction: EXEC will answer EXECABORT;
    and an EXEC refused itself ends the transaction with the reason."""
    if session.multi is not None:
        if cmd is not None and cmd.name == "exec":
            end_session(session)
            return errors.exec_aborted(error.message)
        session.multi_failed = True
    return error
