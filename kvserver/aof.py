"""The append-only log: how writes survive a restart.

Format: Redis's appendonly.aof, a stream of RESP arrays, one per logged
effect, with a ``SELECT n`` record whenever the database changes. Values
with any bytes round-trip, and Redis's own tools can read the file.

The crash-safety story, in order:

1. A write command runs with the global write lock held (see store.py). It
   records its effects; ``AppendOnlyFile.write`` writes them with one
   ``os.write`` on a file opened ``O_APPEND``, still under that lock, so the
   order in the file is the order of the mutations. When ``write`` returns
   the bytes are in the kernel: a crash of this process loses nothing that
   was acknowledged.
2. Power loss is the fsync policy's business. ``always``: after releasing
   the lock the writer waits in ``sync_to`` until an fsync covers its
   record, and only then is the client answered; concurrent writers share
   one fsync (group commit). ``everysec``: a background thread fsyncs once
   a second. ``no``: the kernel decides. Shutdown always fsyncs.
3. If the write fails (disk full, I/O error), ``write`` cuts the file back
   to its last whole record and raises ``AofError``; the dispatcher then
   undoes the mutation and answers with an error. A write is never
   acknowledged unless it is both applied and in the log. If an fsync
   fails, the writes it covered get an error too (they stay in memory, as
   in Redis, but are not acknowledged), and every later write is refused
   until an fsync succeeds again: ``error`` says why, INFO shows it.
4. A transaction or a script writes all its effects in one append, inside
   MULTI ... EXEC when there is more than one record (``write_group``); the
   dispatcher holds the lock across the whole unit and rolls all of it back
   if the append fails. A client's pipelined batch of commands is written
   the same way, as one append of their records without MULTI/EXEC
   (``write_batch``): the lock is held across the batch, so nobody sees its
   changes before they are in the log, and if the append fails every
   command of the batch is rolled back and answered with the error.
5. On start-up, ``replay`` feeds every record through the same dispatcher
   clients use. A record cut short at the very end (the process died in the
   middle of an append) is dropped and the file truncated to the last whole
   record, with a warning that says where and how much; a MULTI group with
   no EXEC at the very end is the same torn append, and is dropped whole
   (Redis's "Revert incomplete MULTI/EXEC transaction"), so a transaction is
   in the log completely or not at all. Damage anywhere else (a MULTI inside
   a group, an EXEC without one) stops start-up with the offset and the
   command that repairs it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kvserver import errors
from kvserver.errors import AofCorruptError, AofError, CommandError, KvError
from kvserver.protocol import NEED_DATA
from kvserver.protocol.resp import RespParser, encode_command

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("always", "everysec", "no")
DEFAULT_FSYNC = "everysec"  # Redis's default: at most ~1 s lost on power loss
REPLAY_CHUNK_BYTES = 1024 * 1024  # read the log a MiB at a time
REPLAY_PROGRESS_SECONDS = 1.0  # how often a long replay reports progress
_MULTI = encode_command([b"MULTI"])
_EXEC = encode_command([b"EXEC"])
# The log holds every key and value: readable by the server's user only
# (Redis's files get the same from its umask). The rewrite's temporaries
# are 0600 too (rewrite.create_temporary).
LOG_FILE_MODE = 0o600


class AppendOnlyFile:
    """The open log.

    ``write`` is called with the global write lock held; ``sync_to`` after it
    is released (so that writers share fsyncs); both may raise ``AofError``.
    """

    def __init__(self, path: str, fsync: str = DEFAULT_FSYNC) -> None:
        if fsync not in FSYNC_POLICIES:  # before anything is opened
            raise ValueError(f"appendfsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, LOG_FILE_MODE)
            self.size = os.fstat(self._fd).st_size  # the end of the last whole record
        except OSError as exc:
            raise AofError(f"cannot open the append only file {path}: {exc.strerror}") from exc
        # Bytes ever written through this object, across rewrites: the
        # offsets sync_to waits for (a rewrite replaces the file, so file
        # positions cannot serve).
        self.written = 0
        # Records written since start-up (SELECT aside): what INFO's
        # rdb_changes_since_last_save counts from (Redis's server.dirty,
        # which counts per element; this is per effect logged).
        self.changes = 0
        self._selected_db: int | None = None  # as Redis: SELECT before the first record
        # While a rewrite runs, what is written is also kept here, to be
        # appended to the new file before it replaces this one.
        self._rewrite_buffer: list[bytes] | None = None
        self.rewrite_base_size = self.size  # size after the last rewrite (auto rewrite)
        # The auto rewrite's hook, called (lock held) after a write once the
        # log is at least grow_floor bytes (below that it cannot be due: one
        # comparison per write instead of a call). The rewriter sets both.
        self.on_grow = None
        self.grow_floor = sys.maxsize
        # Set while the log cannot be trusted to take writes (a write or an
        # fsync failed); writes are refused until one succeeds. INFO shows it.
        self.error: str | None = None
        # Group commit. _synced: bytes known to be on disk. _failed_upto:
        # bytes that an fsync failed to make durable; after a failed fsync
        # Linux may drop those pages and report success next time, so the
        # writes behind them must never be acknowledged.
        self._sync_cond = threading.Condition(threading.Lock())
        self._synced = 0
        self._syncing = False
        self._failed_upto = 0
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        self.set_fsync_policy(fsync)

    def set_fsync_policy(self, policy: str) -> None:
        """Change the policy (CONFIG SET appendfsync): in force from the next
        write. The once-a-second thread starts the first time it is needed
        and idles while the policy is something else."""
        if policy not in FSYNC_POLICIES:
            raise ValueError(f"appendfsync must be one of {FSYNC_POLICIES}, not {policy!r}")
        self.fsync_policy = policy
        if policy == "everysec" and self._syncer is None:
            self._syncer = threading.Thread(target=self._fsync_every_second, name="kv-aof-fsync", daemon=True)
            self._syncer.start()

    def write(self, db_index: int, records: list[list[bytes]]) -> int:
        """Write ``records`` (effects done in database ``db_index``) to the log
        and return the offset ``sync_to`` must reach for them to be durable.

        Raises ``AofError`` after cutting any partial write back off, so the
        file always ends with a whole record.
        """
        self.changes += len(records)
        if db_index == self._selected_db and len(records) == 1:
            return self._append(encode_command(records[0]), db_index)  # nearly every write
        chunks = []
        if db_index != self._selected_db:
            chunks.append(encode_command([b"SELECT", b"%d" % db_index]))
        chunks.extend([encode_command(record) for record in records])
        return self._append(b"".join(chunks), db_index)

    def write_group(self, group: list[tuple[int, list[list[bytes]]]]) -> int:
        """Write the effects of an atomic unit (EXEC, a script) as one append:
        ``group`` holds (database index, records) in the order they were
        done. More than one record goes inside MULTI ... EXEC, so that a
        replay applies all of them or, if the append was torn, none (see
        ``replay``); one record goes as it is, as Redis 7 propagates them.
        Returns and raises as ``write``."""
        return self._write_records(group, atomic=True)

    def write_batch(self, batch: list[tuple[int, list[list[bytes]]]]) -> int:
        """Write the effects of several commands (a client's pipelined batch,
        dispatch.Batch) as one append, ``batch`` as for ``write_group``, but
        as the separate records they are: no MULTI ... EXEC, the same bytes
        as one ``write`` each. A torn append may keep the first of them on
        replay; none was acknowledged, and each is whole or absent.
        Returns and raises as ``write``."""
        return self._write_records(batch, atomic=False)

    def _write_records(self, group: list[tuple[int, list[list[bytes]]]], atomic: bool) -> int:
        count = sum(len(records) for _, records in group)
        self.changes += count
        chunks = []
        selected = self._selected_db
        wrap = atomic and count > 1
        if group[0][0] != selected:
            selected = group[0][0]
            chunks.append(encode_command([b"SELECT", b"%d" % selected]))
        if wrap:
            chunks.append(_MULTI)
        for db_index, records in group:
            if db_index != selected:
                selected = db_index
                chunks.append(encode_command([b"SELECT", b"%d" % db_index]))
            chunks.extend([encode_command(record) for record in records])
        if wrap:
            chunks.append(_EXEC)
        return self._append(b"".join(chunks), selected)

    def _append(self, data: bytes, selected_db: int) -> int:
        # The one place bytes reach the file: one os.write of whole records,
        # which leaves database ``selected_db`` selected.
        if self._fd < 0:  # closed (by shutdown, which holds the write lock to close)
            raise AofError(errors.AOF_CLOSED)
        if self.error is not None:
            self._recover()
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # a short write: the disk is filling up
                self._write_all(memoryview(data)[written:])
        except OSError as exc:
            self._cut_back()
            self.error = exc.strerror or str(exc)
            log.error("cannot write the append only file %s: %s", self.path, self.error)
            raise AofError(self.error) from exc
        self._selected_db = selected_db
        self.size += len(data)
        self.written += len(data)
        if self._rewrite_buffer is not None:
            self._rewrite_buffer.append(data)
        if self.size >= self.grow_floor:
            self.on_grow(self)
        return self.written

    def append(self, db_index: int, records: list[list[bytes]]) -> None:
        """``write`` then, with ``always``, ``sync_to``: for callers that hold
        no lock worth releasing in between (tests, tools)."""
        offset = self.write(db_index, records)
        if self.fsync_policy == "always":
            self.sync_to(offset)

    def sync_to(self, offset: int) -> None:
        """Return once the log is on disk up to ``offset`` (group commit).

        A caller that finds an fsync in flight waits for it instead of
        issuing its own; if that fsync did not cover its offset, one of the
        waiters issues the next. So N concurrent writers cost about two
        fsyncs, not N.
        """
        cond = self._sync_cond
        with cond:
            while self._synced < offset:
                if offset <= self._failed_upto:
                    raise AofError(self.error or "fsync failed")
                if self._syncing:
                    cond.wait()
                    continue
                self._syncing = True
                target = self.written
                cond.release()
                try:
                    os.fsync(self._fd)
                    failure = None
                except OSError as exc:
                    failure = exc
                finally:
                    cond.acquire()
                    self._syncing = False
                    cond.notify_all()
                if failure is not None:
                    self._failed_upto = max(self._failed_upto, target)
                    self.error = failure.strerror or str(failure)
                    log.error("cannot fsync the append only file %s: %s", self.path, self.error)
                    raise AofError(self.error)
                self._synced = max(self._synced, target)

    def _recover(self) -> None:
        # The last write or fsync failed. Before taking new writes, make
        # sure the disk takes data again: an fsync of what is in the file.
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self.error = exc.strerror or str(exc)
            raise AofError(self.error) from exc
        with self._sync_cond:
            self._synced = max(self._synced, self.written)
        log.warning("the append only file %s can be written again", self.path)
        self.error = None

    def _write_all(self, view: memoryview) -> None:
        _write_all(self._fd, view)

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self.size)
        except OSError as exc:
            # The file may now end in a partial record; replay will drop it
            # (a torn tail), so nothing acknowledged is affected.
            log.error("could not truncate %s back to %d bytes: %s", self.path, self.size, exc)

    def _fsync_every_second(self) -> None:
        while not self._stop.wait(1.0):
            if self.fsync_policy == "everysec" and self._synced < self.written and self._fd >= 0:
                try:
                    self.sync_to(self.written)
                except AofError:
                    pass  # logged; writes are refused until the disk recovers

    # -- rewrite (see rewrite.py for the whole procedure) -----------------------

    @property
    def rewrite_in_progress(self) -> bool:
        return self._rewrite_buffer is not None

    def begin_rewrite(self) -> None:
        """Start keeping a copy of every write (write lock held, at the
        moment the keyspace is snapshotted)."""
        self._rewrite_buffer = []
        # The new file's last SELECT is whatever the snapshot wrote last:
        # make the first buffered write name its database again.
        self._selected_db = None

    def abort_rewrite(self) -> None:
        self._rewrite_buffer = None

    def finish_rewrite(self, new_path: str) -> None:
        """Replace the log with ``new_path`` (write lock held): append the
        writes made during the rewrite, fsync, rename over the log, fsync
        the directory, and carry on appending to the new file.

        A crash before the rename leaves the old log, complete; after it,
        the new one, complete: no write can slip in between (the lock).
        """
        if self._fd < 0:  # shutdown closed the log while the snapshot was written
            raise AofError(errors.AOF_CLOSED)
        buffered = b"".join(self._rewrite_buffer or [])
        # O_NOFOLLOW: the rewriter created new_path itself (exclusively);
        # whatever is there now, a symlink is never written through. The
        # same descriptor then becomes the log's: the log is never reopened
        # by name, which someone could have changed after the rename.
        fd = os.open(new_path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _write_all(fd, memoryview(buffered))
            os.fsync(fd)
            os.replace(new_path, self.path)
            _fsync_directory(self.path)
        except BaseException:
            os.close(fd)
            raise
        with self._sync_cond:
            while self._syncing:  # never swap the fd under an fsync in flight
                self._sync_cond.wait()
            old, self._fd = self._fd, fd
            os.close(old)
            self.size = os.fstat(fd).st_size
            self.rewrite_base_size = self.size
            # Everything written so far is in the new file, fsynced.
            self._synced = self.written
            self._sync_cond.notify_all()
        self._rewrite_buffer = None

    def close(self) -> None:
        """Flush everything to disk and close. Safe to call twice."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._sync_cond:
            if self._fd < 0:
                return
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(path: str) -> None:
    # A rename is durable only once the directory entry is on disk.
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ReplayResult:
    records: int
    seconds: float
    truncated_bytes: int  # a torn tail that was cut off (0 if none)


class LogReader:
    """The records of a log file, in order: ``for offset, args in reader``.

    Raises ``AofCorruptError`` (with the byte offset) where the bytes do not
    parse, or where MULTI and EXEC do not pair up. After the loop,
    ``torn_bytes`` says how many bytes at the end form an incomplete record,
    ``good_end`` where the last whole record ends, and ``open_group`` where
    a MULTI group that never reached its EXEC starts (None if every group
    was closed). Used by the replay and by kv-check-aof, which must agree.
    """

    def __init__(self, path: str, file) -> None:
        self.path = path
        self._file = file
        self._parser = RespParser(inline=False)
        self.open_group: int | None = None

    @property
    def good_end(self) -> int:
        return self._parser.consumed

    @property
    def torn_bytes(self) -> int:
        return self._parser.buffered

    def __iter__(self):
        parser, read = self._parser, self._file.read
        while chunk := read(REPLAY_CHUNK_BYTES):
            parser.feed(chunk)
            while True:
                offset = parser.consumed
                try:
                    request = parser.next_request()
                except KvError as exc:
                    raise AofCorruptError(self.path, offset, exc.message) from None
                if request is NEED_DATA:
                    break
                if len(request) == 1:  # MULTI and EXEC take no arguments
                    self._track_group(offset, request[0].upper())
                yield offset, request

    def _track_group(self, offset: int, name: bytes) -> None:
        if name == b"MULTI":
            if self.open_group is not None:
                raise AofCorruptError(self.path, offset, "MULTI inside a MULTI group")
            self.open_group = offset
        elif name == b"EXEC":
            if self.open_group is None:
                raise AofCorruptError(self.path, offset, "EXEC without MULTI")
            self.open_group = None


def replay(path: str, apply: Callable[[list[bytes]], object]) -> ReplayResult:
    """Feed every record of the log at ``path`` to ``apply``, in order.

    ``apply`` runs one command and returns its reply; an error reply means
    the record is corrupt. A missing file is an empty log.
    """
    started = time.perf_counter()
    records = 0
    next_report = started + REPLAY_PROGRESS_SECONDS
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return ReplayResult(0, 0.0, 0)
    except OSError as exc:
        raise AofError(f"cannot open the append only file {path}: {exc.strerror}") from exc
    with file:
        reader = LogReader(path, file)
        for offset, request in reader:
            reply = apply(request)
            if isinstance(reply, CommandError):
                raise AofCorruptError(path, offset, reply.message)
            records += 1
            if not records & 0xFFF:  # look at the time every 4096 records
                now = time.perf_counter()
                if now >= next_report:
                    next_report = now + REPLAY_PROGRESS_SECONDS
                    _report_progress(records, reader.good_end, now - started)
    if reader.open_group is not None:
        # The last append was a transaction's, cut short: none of it was
        # applied (its commands were only queued) and none acknowledged.
        dropped = reader.good_end + reader.torn_bytes - reader.open_group
        _truncate_torn_tail(path, reader.open_group, dropped, "an incomplete MULTI/EXEC transaction")
        return ReplayResult(records, time.perf_counter() - started, dropped)
    if reader.torn_bytes:
        _truncate_torn_tail(path, reader.good_end, reader.torn_bytes, "an incomplete record")
    return ReplayResult(records, time.perf_counter() - started, reader.torn_bytes)


def _report_progress(records: int, offset: int, elapsed: float) -> None:
    log.info(
        "loading the append only file: %d records, %.1f MB (%.0f records/s, %.1f MB/s)",
        records,
        offset / 1e6,
        records / elapsed,
        offset / 1e6 / elapsed,
    )


def _truncate_torn_tail(path: str, good_end: int, dropped: int, what: str) -> None:
    # Redis's aof-load-truncated yes: the last append was interrupted; what
    # it wrote was never acknowledged, so dropping it loses nothing.
    log.warning(
        "!!! the append only file %s ends with %s: truncating it at "
        "byte offset %d, dropping %d bytes of an unfinished write",
        path,
        what,
        good_end,
        dropped,
    )
    try:
        os.truncate(path, good_end)
    except OSError as exc:
        raise AofError(f"cannot truncate the torn tail of {path}: {exc.strerror}") from exc
