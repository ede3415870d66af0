"""SAVE and BGSAVE: the keyspace written as a Redis 7.0 RDB file.

kvserver's persistence is the append-only log; the RDB file is a snapshot
for Redis's tools (redis-check-rdb, a redis-server started on it, backups).
Where it goes: ``--dir`` and ``--dbfilename`` (or the config file), fixed
at start-up as in Redis (CONFIG SET refuses both; letting a client move
where the server writes is what CVE-2022-24834-style attacks use).

The procedure, rewrite.py's:

1. With the write lock held, copy every database's dicts and turn on the
   keyspace's copy-on-write (``Keyspace.begin_snapshot``): clients wait
   only for the copy; the containers the copy shares never change again.
2. Without the lock, encode the copy (kvserver/rdb.py) into a temporary
   file beside the target, created exclusively and owner-only
   (``rewrite.create_temporary``), fsync it, rename it over the target and
   fsync the directory: a crash leaves the old file or the new one, whole.
3. End the copy-on-write. On failure the temporary file goes and the old
   file stays; ``last_status`` says "err" (INFO's rdb_last_bgsave_status).

BGSAVE runs step 2 in a background thread; SAVE runs it in the caller's
thread (its client waits; the others do not, unlike Redis's SAVE, which
stops the server). One save at a time: a second is refused.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from kvserver import config, rdb
from kvserver.rewrite import create_temporary
from kvserver.state import REDIS_VERSION

log = logging.getLogger(__name__)

DEFAULT_DBFILENAME = "dump.rdb"  # Redis's default dbfilename
WRITE_CHUNK_BYTES = 1024 * 1024  # buffered before each write to the file
YIELD_EVERY_KEYS = config.SNAPSHOT_YIELD_EVERY_KEYS


class SaveInProgress(Exception):
    """A save is already running."""


class RdbSaver:
    def __init__(self, keyspace, path: str, changes=lambda: 0, clock=time.time) -> None:
        """``changes``: () -> writes so far (the log's record count)."""
        self.keyspace = keyspace
        self.path = path
        self._changes = changes
        self._wall = clock
        self.last_save_time = int(clock())  # LASTSAVE: start-up time until a save
        self.last_status = "ok"
        self.last_seconds = -1
        self.saves = 0
        self.changes_at_last_save = 0
        self.started_at: float | None = None  # monotonic, while a save runs
        self._thread: threading.Thread | None = None
        # Guards the "one save at a time" check and start.
        self._start_lock = threading.Lock()
        self._running = False

    @property
    def in_progress(self) -> bool:
        return self._running

    def _begin(self) -> list:
        with self._start_lock:
            if self._running:
                raise SaveInProgress
            self._running = True
        self.started_at = time.monotonic()
        try:
            with self.keyspace.write_lock:
                snapshot = self._snapshot()
                self.keyspace.begin_snapshot()
        except BaseException:
            self._running = False
            raise
        return snapshot

    def _snapshot(self) -> list:
        # Write lock held: C-speed dict copies, as rewrite.py takes them.
        keyspace = self.keyspace
        now = keyspace.clock()
        engine = keyspace.scripting
        libraries = [lib.code for lib in engine.libraries.libraries.values()] if engine else []
        dbs = [(db.index, dict(db.data), dict(db.expires)) for db in keyspace.dbs if db.data]
        changes = self._changes()
        return [now, libraries, dbs, changes]

    def save(self) -> None:
        """SAVE: write the file now, in this thread. Raises SaveInProgress,
        or OSError if the file could not be written."""
        snapshot = self._begin()
        self._run(snapshot, raise_errors=True)

    def start(self) -> None:
        """BGSAVE: write the file in a background thread. Raises SaveInProgress."""
        snapshot = self._begin()
        self._thread = threading.Thread(target=self._run, args=(snapshot,), name="kv-bgsave", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, snapshot: list, raise_errors: bool = False) -> None:
        now, libraries, dbs, changes = snapshot
        tmp_path = None
        error = None
        try:
            tmp_path, file = create_temporary(self.path, "save")
            with file:
                write_rdb(file, now, libraries, dbs, self.keyspace.encodings)
            os.replace(tmp_path, self.path)
            tmp_path = None
            _fsync_directory(os.path.dirname(os.path.abspath(self.path)))
        except Exception as exc:  # noqa: BLE001 - reported in INFO and the log
            error = exc
            log.error("background saving error: %s", exc)
            if tmp_path is not None:
                try:
                    os.unlink(tmp_path)
                except OSError:
                    pass
        with self.keyspace.write_lock:
            self.keyspace.end_snapshot()
        self.last_seconds = int(time.monotonic() - self.started_at)
        if error is None:
            self.saves += 1
            self.changes_at_last_save = changes
            self.last_save_time = int(self._wall())
            log.info("DB saved on disk: %s", self.path)
        self.last_status = "ok" if error is None else "err"
        self.started_at = None
        self._running = False  # last: INFO sees the outcome before "not in progress"
        if error is not None and raise_errors:
            raise error

    def changes_since_last_save(self) -> int:
        return self._changes() - self.changes_at_last_save


def write_rdb(file, now: int, libraries: list[bytes], dbs: list[tuple[int, dict, dict]], settings) -> None:
    """The RDB file of a snapshot, written to ``file`` and fsynced. Keys
    already past their deadline at ``now`` are left out."""
    writer = rdb.FileWriter(settings)
    aux = {
        b"redis-ver": REDIS_VERSION.encode(),
        b"redis-bits": b"64",
        b"ctime": b"%d" % (now // 1000),
        b"used-mem": b"0",
        b"aof-base": b"0",
    }
    chunk = [writer.header(aux)]
    chunk += [writer.function(code) for code in libraries]
    size = sum(map(len, chunk))
    for index, data, expires in dbs:
        live_expires = sum(1 for deadline in expires.values() if deadline >= now)
        chunk.append(writer.select(index, len(data), live_expires))
        for n, (key, value) in enumerate(data.items()):
            if not n % YIELD_EVERY_KEYS:
                time.sleep(0)  # see YIELD_EVERY_KEYS
            deadline = expires.get(key)
            if deadline is not None and deadline < now:
                continue
            piece = writer.key(key, value, deadline)
            chunk.append(piece)
            size += len(piece)
            if size >= WRITE_CHUNK_BYTES:
                file.write(b"".join(chunk))
                chunk, size = [], 0
    chunk.append(writer.footer())
    file.write(b"".join(chunk))
    file.flush()
    os.fsync(file.fileno())


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
