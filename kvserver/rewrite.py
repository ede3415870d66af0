"""Online log rewrite (BGREWRITEAOF): a compact log without stopping clients.

The procedure, and why each step is safe:

1. With the write lock held, copy every database's dicts (a C-speed copy:
   Redis forks instead) and tell the log to keep a copy of every write
   from now on (``begin_rewrite``). Clients wait only for the copy. The
   containers (lists, hashes, sets) are not copied: from now until the end
   the store copies one before a write changes it in place
   (``Keyspace.begin_snapshot``, copy-on-write), so what the snapshot holds
   never changes.
2. Without the lock, write the copy to a new temporary file beside the log
   (``<log>.rewrite-XXXXXXXX.tmp``, created exclusively and owner-only by
   ``tempfile.mkstemp``: a name nobody can have planted a symlink at): a
   string as one SET (``SET k v PXAT <deadline>`` with a TTL), a container
   as the commands that rebuild it, at most 64 elements each (RPUSH, HSET,
   SADD, as Redis's rewrite), then its ``PEXPIREAT``; expired keys left
   out, a SELECT before each database; and fsync it. Clients keep writing
   to the old log, which stays complete; a crash now leaves it as it was.
3. With the write lock held again, ``finish_rewrite`` appends the writes
   made meanwhile, fsyncs, renames the new file over the log, fsyncs the
   directory and switches appends to it. A crash before the rename leaves
   the old log, after it the new one: both replay to the same keyspace.

The rewrite starts on request (BGREWRITEAOF) or when the log has grown by
``auto_percentage`` since the last rewrite and is larger than
``auto_min_size`` (Redis's auto-aof-rewrite-percentage / -min-size).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time

from kvserver import config
from kvserver.aof import AppendOnlyFile
from kvserver.protocol.resp import encode_command
from kvserver.store import Keyspace
from kvserver.values import rewrite_records

log = logging.getLogger(__name__)

AUTO_REWRITE_PERCENTAGE = 100  # Redis's default: rewrite once the log doubled
AUTO_REWRITE_MIN_SIZE = 64 * 1024 * 1024  # ...and is over 64 MiB (Redis's default)
WRITE_CHUNK_BYTES = 1024 * 1024  # how much of the new log is buffered before a write


class AofRewriter:
    def __init__(
        self,
        keyspace: Keyspace,
        aof: AppendOnlyFile,
        auto_percentage: int = AUTO_REWRITE_PERCENTAGE,
        auto_min_size: int = AUTO_REWRITE_MIN_SIZE,
    ) -> None:
        self.keyspace = keyspace
        self.aof = aof
        self.auto_percentage = auto_percentage
        self.auto_min_size = auto_min_size
        self.last_status = "ok"
        self.last_seconds = -1.0
        self.rewrites = 0
        self._thread: threading.Thread | None = None
        # Guards _thread: BGREWRITEAOF and the auto trigger may race.
        self._start_lock = threading.Lock()
        aof.on_grow = self._maybe_auto_rewrite
        # Below auto-aof-rewrite-min-size no rewrite is due (nor ever, with
        # the percentage 0): the log does not call the hook until then.
        aof.grow_floor = auto_min_size if auto_percentage > 0 else sys.maxsize

    @property
    def in_progress(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> bool:
        """Begin a rewrite in the background; False if one is running."""
        with self._start_lock:
            if self.in_progress:
                return False
            self._thread = threading.Thread(target=self._run, name="kv-aof-rewrite", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _maybe_auto_rewrite(self, aof: AppendOnlyFile) -> None:
        # Called after every write with the lock held: two comparisons.
        if self.auto_percentage <= 0 or aof.size < self.auto_min_size:
            return
        if aof.size * 100 >= aof.rewrite_base_size * (100 + self.auto_percentage) and not self.in_progress:
            log.info("starting an automatic rewrite: the log grew to %d bytes", aof.size)
            self.start()

    def _run(self) -> None:
        started = time.monotonic()
        tmp_path = None
        lock = self.keyspace.write_lock
        try:
            tmp_path, file = create_temporary(self.aof.path, "rewrite")
            with file:
                with lock:
                    now = self.keyspace.clock()
                    snapshot = [(db.index, dict(db.data), dict(db.expires)) for db in self.keyspace.dbs if db.data]
                    engine = self.keyspace.scripting
                    libraries = [lib.code for lib in engine.libraries.libraries.values()] if engine else []
                    self.keyspace.begin_snapshot()
                    self.aof.begin_rewrite()
                _write_snapshot(file, snapshot, now, libraries)
            with lock:
                self.aof.finish_rewrite(tmp_path)
                self.keyspace.end_snapshot()
        except Exception as exc:  # noqa: BLE001 - reported in INFO and the log
            with lock:
                self.aof.abort_rewrite()
                self.keyspace.end_snapshot()
            self.last_status = "err"
            log.error("log rewrite failed: %s", exc)
            if tmp_path is not None:
                try:
                    os.unlink(tmp_path)
                except OSError:
                    pass
            return
        self.last_status = "ok"
        self.rewrites += 1
        self.last_seconds = time.monotonic() - started
        log.info("log rewritten: %d bytes in %.3f s", self.aof.size, self.last_seconds)


def create_temporary(beside: str, purpose: str):
    """A new file in ``beside``'s directory, ``<name>.<purpose>-XXXXXXXX.tmp``:
    its path and a binary file object open for writing.

    mkstemp creates it with O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600
    under a random name, so a symlink planted in the directory is never
    followed (a fixed name was: the rewrite wrote through it to its target,
    then renamed the symlink over the log), and only the owner can read the
    keyspace it will hold, as Redis's files are under its umask.
    """
    directory, name = os.path.split(os.path.abspath(beside))
    fd, path = tempfile.mkstemp(prefix=f"{name}.{purpose}-", suffix=".tmp", dir=directory)
    return path, os.fdopen(fd, "wb")


def encode_key(key: bytes, value: object, deadline: int | None) -> bytes:
    """The log records that rebuild one key, its TTL included."""
    if type(value) is bytes:  # a string: one SET, its TTL included
        if deadline is None:
            return encode_command([b"SET", key, value])
        return encode_command([b"SET", key, value, b"PXAT", b"%d" % deadline])
    records = [encode_command(r) for r in rewrite_records(key, value)]
    if deadline is not None:
        records.append(encode_command([b"PEXPIREAT", key, b"%d" % deadline]))
    return b"".join(records)


def _write_snapshot(file, snapshot: list[tuple[int, dict, dict]], now: int, libraries: list[bytes] = ()) -> None:
    # Function libraries first, one FUNCTION LOAD each, as Redis's rewrite
    # writes them: server-wide, before any database's keys.
    chunk: list[bytes] = [encode_command([b"FUNCTION", b"LOAD", code]) for code in libraries]
    size = sum(map(len, chunk))
    for index, data, expires in snapshot:
        chunk.append(encode_command([b"SELECT", b"%d" % index]))
        for n, (key, value) in enumerate(data.items()):
            if not n % config.SNAPSHOT_YIELD_EVERY_KEYS:
                time.sleep(0)  # let a waiting client run (config.SNAPSHOT_YIELD_EVERY_KEYS)
            deadline = expires.get(key)
            if deadline is not None and deadline < now:
                continue  # already expired: nothing to keep
            record = encode_key(key, value, deadline)
            chunk.append(record)
            size += len(record)
            if size >= WRITE_CHUNK_BYTES:
                file.write(b"".join(chunk))
                chunk, size = [], 0
    file.write(b"".join(chunk))
    file.flush()
    os.fsync(file.fileno())
