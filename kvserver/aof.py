"""The append-only log: how writes survive a restart.

Format: Redis's appendonly.aof, a stream of RESP arrays, one per logged
effect, with a ``SELECT n`` record whenever the database changes. Values
with any bytes round-trip, and Redis's own tools can read the file.

The crash-safety story, in order:

1. A write command runs with the global write lock held (see store.py). It
   records its effects; ``AppendOnlyFile.append`` writes them with one
   ``os.write`` on a file opened ``O_APPEND``, still under that lock, so the
   order in the file is the order of the mutations. When ``append`` returns
   the bytes are in the kernel: a crash of this process loses nothing that
   was acknowledged. (Surviving power loss is the fsync policy's job: with
   ``always`` the record is fsynced before ``append`` returns.)
2. If the write fails (disk full, I/O error), ``append`` cuts the file back
   to its last whole record and raises ``AofError``; the dispatcher then
   undoes the mutation and answers with an error. A write is never
   acknowledged unless it is both applied and in the log.
3. On start-up, ``replay`` feeds every record through the same dispatcher
   clients use. A record cut short at the very end (the process died in the
   middle of an append) is dropped and the file truncated to the last whole
   record, with a warning that says where and how much. Damage anywhere
   else stops start-up with the offset and the command that repairs it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kvserver.errors import AofCorruptError, AofError, CommandError, KvError
from kvserver.protocol import NEED_DATA
from kvserver.protocol.resp import RespParser, encode_command

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("always", "everysec", "no")
DEFAULT_FSYNC = "everysec"  # Redis's default: at most ~1 s lost on power loss
REPLAY_CHUNK_BYTES = 1024 * 1024  # read the log a MiB at a time
REPLAY_PROGRESS_SECONDS = 1.0  # how often a long replay reports progress


class AppendOnlyFile:
    """The open log. ``append`` must be called with the write lock held."""

    def __init__(self, path: str, fsync: str = DEFAULT_FSYNC) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"appendfsync must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.path = path
        self.fsync_policy = fsync
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self.size = os.fstat(self._fd).st_size  # the end of the last whole record
        except OSError as exc:
            raise AofError(f"cannot open the append only file {path}: {exc.strerror}") from exc
        self._selected_db: int | None = None  # as Redis: SELECT before the first record
        self._dirty = False  # written since the last fsync
        self._lock = threading.Lock()  # orders close() against the fsync thread
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync == "everysec":
            self._syncer = threading.Thread(target=self._fsync_every_second, name="kv-aof-fsync", daemon=True)
            self._syncer.start()

    def append(self, db_index: int, records: list[list[bytes]]) -> None:
        """Write ``records`` (effects done in database ``db_index``) to the log.

        Raises ``AofError`` after cutting any partial write back off, so the
        file always ends with a whole record.
        """
        chunks = []
        if db_index != self._selected_db:
            chunks.append(encode_command([b"SELECT", b"%d" % db_index]))
        chunks.extend(encode_command(record) for record in records)
        data = b"".join(chunks)
        try:
            self._write_all(data)
            if self.fsync_policy == "always":
                os.fsync(self._fd)
            else:
                self._dirty = True
        except OSError as exc:
            self._cut_back()
            raise AofError(exc.strerror or str(exc)) from exc
        self._selected_db = db_index
        self.size += len(data)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self.size)
        except OSError as exc:
            # The file may now end in a partial record; replay will drop it
            # (a torn tail), so nothing acknowledged is affected.
            log.error("could not truncate %s back to %d bytes: %s", self.path, self.size, exc)

    def _fsync_every_second(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._dirty and self._fd >= 0:
                    self._dirty = False
                    try:
                        os.fsync(self._fd)
                    except OSError as exc:
                        log.error("fsync of %s failed: %s", self.path, exc)

    def close(self) -> None:
        """Flush everything to disk and close. Safe to call twice."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock:
            if self._fd < 0:
                return
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


@dataclass(frozen=True)
class ReplayResult:
    records: int
    seconds: float
    truncated_bytes: int  # a torn tail that was cut off (0 if none)


def replay(path: str, apply: Callable[[list[bytes]], object]) -> ReplayResult:
    """Feed every record of the log at ``path`` to ``apply``, in order.

    ``apply`` runs one command and returns its reply; an error reply means
    the record is corrupt. A missing file is an empty log.
    """
    started = time.perf_counter()
    parser = RespParser(inline=False)
    records = 0
    next_report = started + REPLAY_PROGRESS_SECONDS
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        return ReplayResult(0, 0.0, 0)
    except OSError as exc:
        raise AofError(f"cannot open the append only file {path}: {exc.strerror}") from exc
    with file:
        while chunk := file.read(REPLAY_CHUNK_BYTES):
            parser.feed(chunk)
            while True:
                offset = parser.consumed
                try:
                    request = parser.next_request()
                except KvError as exc:
                    raise AofCorruptError(path, offset, exc.message) from None
                if request is NEED_DATA:
                    break
                reply = apply(request)
                if isinstance(reply, CommandError):
                    raise AofCorruptError(path, offset, reply.message)
                records += 1
            if time.perf_counter() >= next_report:
                next_report += REPLAY_PROGRESS_SECONDS
                log.info("loading the append only file: %d records, %.1f MB", records, parser.consumed / 1e6)
    truncated = parser.buffered
    if truncated:
        _truncate_torn_tail(path, parser.consumed, truncated)
    return ReplayResult(records, time.perf_counter() - started, truncated)


def _truncate_torn_tail(path: str, good_end: int, dropped: int) -> None:
    # Redis's aof-load-truncated yes: the last append was interrupted; what
    # it wrote was never acknowledged, so dropping it loses nothing.
    log.warning(
        "!!! the append only file %s ends with an incomplete record: truncating it at "
        "byte offset %d, dropping %d bytes of an unfinished write",
        path,
        good_end,
        dropped,
    )
    try:
        os.truncate(path, good_end)
    except OSError as exc:
        raise AofError(f"cannot truncate the torn tail of {path}: {exc.strerror}") from exc
