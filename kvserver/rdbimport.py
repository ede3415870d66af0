"""``kvserver --import-rdb PATH``: a redis-server's data turned into a kvserver log.

PATH is one of:

* an RDB file (``dump.rdb``, any version kvserver/rdb.py reads);
* a Redis 7 ``appendonlydir/``: its manifest names a base file (an RDB, or
  an AOF, possibly with an RDB preamble) and the incremental AOFs after it;
* a single AOF (Redis before 7), with or without an RDB preamble.

The log is written as a rewrite writes it (rewrite.py): per database a
SELECT, then each key as the commands that rebuild it (SET ... PXAT for a
string, RPUSH/HSET/SADD/ZADD/XADD... then PEXPIREAT for a container),
function libraries first as FUNCTION LOAD; keys already expired left out.
An AOF's records are copied as they are, after the RDB part. The log is
written to a temporary file beside the target, fsynced and renamed, and
only when the target is missing or empty: an import never mixes with, or
replaces, data kvserver already holds.

Then the new log is replayed into a scratch keyspace and its key count
compared with what was read (for an RDB alone, where the count is known),
and the figures are logged. Progress goes to the log every
``PROGRESS_EVERY_KEYS`` keys.
"""

from __future__ import annotations

import logging
import mmap
import os
import time

from kvserver import rdb
from kvserver.protocol.resp import encode_command
from kvserver.rewrite import create_temporary, encode_key

log = logging.getLogger(__name__)

PROGRESS_EVERY_KEYS = 100_000  # a line per this many keys: about a second's work
WRITE_CHUNK_BYTES = 1024 * 1024
MANIFEST_SUFFIX = ".manifest"


class ImportError_(Exception):  # noqa: N801 - not the builtin ImportError
    """The source cannot be imported; the message says why."""


class ImportReport:
    __slots__ = ("keys", "expired", "databases", "functions", "aof_bytes", "loaded_keys", "seconds")

    def __init__(self) -> None:
        self.keys = 0  # keys written
        self.expired = 0  # keys left out, already past their deadline
        self.databases: set[int] = set()
        self.functions = 0
        self.aof_bytes = 0  # AOF records copied as they are
        self.loaded_keys = -1  # what replaying the new log holds
        self.seconds = 0.0


def import_to_log(source: str, aof_path: str, now_ms: int | None = None) -> ImportReport:
    """Write the log ``aof_path`` from ``source``; raises ImportError_."""
    started = time.monotonic()
    if os.path.exists(aof_path) and os.path.getsize(aof_path) > 0:
        raise ImportError_(f"{aof_path} is not empty: import into a new log (or move this one away)")
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    parts = _parts(source)
    report = ImportReport()
    tmp_path, file = create_temporary(aof_path, "import")
    try:
        with file:
            for kind, path in parts:
                if kind == "rdb-or-aof":
                    _copy_file(path, file, now, report)
                else:
                    raise AssertionError(kind)
            file.flush()
            os.fsync(file.fileno())
        _verify(tmp_path, report)
        os.replace(tmp_path, aof_path)
        tmp_path = None
        fd = os.open(os.path.dirname(os.path.abspath(aof_path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        if tmp_path is not None:
            os.unlink(tmp_path)
    report.seconds = time.monotonic() - started
    log.info(
        "imported %s: %d keys in %d databases (%d already expired, left out), %d function libraries, "
        "%d bytes of AOF records; the log replays to %d keys; %.1f s",
        source, report.keys, len(report.databases), report.expired, report.functions,
        report.aof_bytes, report.loaded_keys, report.seconds,
    )  # fmt: skip
    return report


def _parts(source: str) -> list[tuple[str, str]]:
    """The files to read, in order."""
    if not os.path.isdir(source):
        return [("rdb-or-aof", source)]
    manifests = [name for name in os.listdir(source) if name.endswith(MANIFEST_SUFFIX)]
    if len(manifests) != 1:
        raise ImportError_(f"{source}: expected one *{MANIFEST_SUFFIX} file (a Redis 7 appendonlydir), found {len(manifests)}")
    base, increments = None, []
    with open(os.path.join(source, manifests[0]), "rb") as file:
        for number, line in enumerate(file, start=1):
            words = line.split()
            if not words or words[0].startswith(b"#"):
                continue
            fields = dict(zip(words[0::2], words[1::2]))
            name, kind = fields.get(b"file"), fields.get(b"type")
            if name is None or kind not in (b"b", b"h", b"i") or b"/" in name:
                raise ImportError_(f"{manifests[0]} line {number}: not a manifest line: {line!r}")
            if kind == b"b":
                base = name.decode()
            elif kind == b"i":
                increments.append((int(fields.get(b"seq", b"0")), name.decode()))
    parts = [] if base is None else [("rdb-or-aof", os.path.join(source, base))]
    parts += [("rdb-or-aof", os.path.join(source, name)) for _, name in sorted(increments)]
    return parts


def _copy_file(path: str, out, now: int, report: ImportReport) -> None:
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size == 0:
                return
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                rest = 0
                if data[:5] == rdb.MAGIC:
                    rest = _copy_rdb(data, out, now, report)
                if rest < size:  # AOF records (after an RDB preamble, or all of it)
                    # Redis loads each file from database 0 (a client of its own).
                    out.write(encode_command([b"SELECT", b"0"]))
                    for start in range(rest, size, WRITE_CHUNK_BYTES):
                        out.write(data[start : min(size, start + WRITE_CHUNK_BYTES)])
                    report.aof_bytes += size - rest
    except OSError as exc:
        raise ImportError_(f"cannot read {path}: {exc.strerror or exc}") from None
    except rdb.RdbError as exc:
        raise ImportError_(f"{path}: not a valid RDB file: {exc}") from None


def _copy_rdb(data, out, now: int, report: ImportReport) -> int:
    """Write the RDB's keys as log records; returns where the RDB ended."""
    position = [0]
    chunk: list[bytes] = []
    size = 0
    selected = -1

    def function(code: bytes) -> None:
        chunk.append(encode_command([b"FUNCTION", b"LOAD", b"REPLACE", code]))
        report.functions += 1

    for entry in rdb.read_file(data, on_function=function, position=position):
        if entry.deadline is not None and entry.deadline < now:
            report.expired += 1
            continue
        if entry.db != selected:
            selected = entry.db
            chunk.append(encode_command([b"SELECT", b"%d" % selected]))
            report.databases.add(selected)
        record = encode_key(entry.key, entry.value, entry.deadline)
        chunk.append(record)
        size += len(record)
        report.keys += 1
        if report.keys % PROGRESS_EVERY_KEYS == 0:
            log.info("import: %d keys, %d of %d bytes read", report.keys, position[0], len(data))
        if size >= WRITE_CHUNK_BYTES:
            out.write(b"".join(chunk))
            chunk, size = [], 0
    out.write(b"".join(chunk))
    return position[0]


def _verify(path: str, report: ImportReport) -> None:
    # Replayed into a scratch keyspace, as the server will at start-up.
    from kvserver.server import load_log
    from kvserver.store import Keyspace

    keyspace = Keyspace()
    try:
        load_log(keyspace, path, drop_expired=False)
    except Exception as exc:  # noqa: BLE001 - any failure means the import is unusable
        raise ImportError_(f"the imported log does not replay: {exc}") from None
    report.loaded_keys = sum(len(db.data) for db in keyspace.dbs)
    if not report.aof_bytes and report.loaded_keys != report.keys:
        raise ImportError_(f"read {report.keys} keys but the log replays to {report.loaded_keys}")
