"""Server settings: one frozen dataclass, every default named with its reason."""

from __future__ import annotations

import dataclasses
import os
import re

DEFAULT_PORT = 6379  # Redis's port, as mini_redis used
DEFAULT_RESP_PORT = 6380  # the RESP port beside it, for Redis's own tools
DEFAULT_AOF_PATH = "mini_redis.aof"  # mini_redis's log name, in the current directory
DEFAULT_BIND = "127.0.0.1"  # loopback only until someone opens it up on purpose

# A line longer than any real command: it stops a client from filling memory
# with a request that never ends. Redis's PROTO_INLINE_MAX_SIZE.
MAX_INLINE_BYTES = 64 * 1024

# How many parsed requests may wait for a connection's worker before the
# reactor stops reading that socket. Bounds memory for a client that
# pipelines without reading replies; large enough that a normal pipeline
# never stalls.
MAX_QUEUED_REQUESTS = 4096

# Redis's maxclients default: past it a new connection is told so and closed
# (each client is a socket and a thread; the open file limit is raised to
# match at start-up).
MAX_CLIENTS = 10_000

# Redis's client-query-buffer-limit: input received but not yet parsed into
# requests (say, a huge bulk string still arriving) past this closes that
# client, so one connection cannot take the machine's memory.
MAX_QUERY_BUFFER_BYTES = 1024 * 1024 * 1024

# Redis's tcp-keepalive: probe idle peers after this many seconds, so a
# client that vanished without closing (a dead host) is found and dropped.
TCP_KEEPALIVE_SECONDS = 300

# Idle worker threads kept for reuse. Past this, a worker whose connection
# ends exits instead of waiting, so a burst of connections does not leave
# thousands of parked threads behind.
MAX_IDLE_WORKERS = 64

# Redis's client-output-buffer-limit, for pending output: replies produced
# for a client but not yet taken by its socket (the kernel's buffer full:
# the client is not reading). Redis's default for normal clients is none
# (0 0 0): a request/reply client's output is bounded by what it asks. But
# a client that pipelines big GETs and never reads would then hold its
# worker, and its replies, forever; issue 7 wants it disconnected. So
# kvserver applies Redis's own limits for pubsub clients (those sent output
# they may not be reading) to every client, MONITOR ones included:
# - hard: a client more than 32 MiB behind that asks for more (or, for a
#   monitor, is sent more) is disconnected at once. A single reply bigger
#   than that still goes out to a client that reads it;
# - soft: one that stays 8 MiB or more behind for over 60 seconds is
#   disconnected (a slow reader that keeps up never is).
# `CONFIG SET client-output-buffer-limit "normal <hard> <soft> <seconds>"`
# changes them live; 0 turns a limit off. With no hard limit the worker does
# not run ahead of a client more than the soft limit (or, with neither, a
# batch): it waits for the client, so memory stays bounded. With both off,
# a client that never reads is held, never disconnected (Redis's 0 0 0
# would buffer all it asked for instead).
CLIENT_OUTPUT_HARD_LIMIT_BYTES = 32 * 1024 * 1024
CLIENT_OUTPUT_SOFT_LIMIT_BYTES = 8 * 1024 * 1024
CLIENT_OUTPUT_SOFT_LIMIT_SECONDS = 60
# Redis's defaults for its other two classes, which kvserver has no clients
# of: shown by CONFIG GET, and settable, but never applied.
REPLICA_OUTPUT_BUFFER_LIMIT = (256 * 1024 * 1024, 64 * 1024 * 1024, 60)
PUBSUB_OUTPUT_BUFFER_LIMIT = (32 * 1024 * 1024, 8 * 1024 * 1024, 60)

# Redis's shutdown-timeout (its default, 10 s): the most a shutdown takes,
# whatever clients are doing. Connections get until then to finish the
# commands they sent (clients in DEBUG SLEEP are woken); workers still busy
# at the deadline are left behind, and the log is flushed, fsynced and
# closed all the same. Well within what a service manager waits before
# SIGKILL (systemd's default: 90 s).
SHUTDOWN_TIMEOUT_SECONDS = 10

# Active expiry: like Redis's activeExpireCycle, look at keys with a TTL in
# small batches ten times a second; keep going while a batch was mostly
# expired, but never for longer than the budget, so clients are not stalled.
EXPIRE_CYCLE_SECONDS = 0.1
EXPIRE_BATCH_KEYS = 20
EXPIRE_REPEAT_RATIO = 0.25  # go on while more than 25% of a batch had expired
EXPIRE_BUDGET_SECONDS = 0.005

# Redis's slow log defaults: keep the last 128 commands that took 10 ms or
# more (a command that long stalls its client; most take microseconds).
SLOWLOG_LOG_SLOWER_THAN = 10_000  # microseconds; negative: off; 0: every command
SLOWLOG_MAX_LEN = 128


# A thread writing a snapshot (BGSAVE, BGREWRITEAOF) gives the GIL up for a
# moment (time.sleep(0)) every this many keys: a client's request waiting
# for it then runs at once, rather than after the interpreter's switch
# interval (50 ms under SCHED_BATCH, cli.py). Measured on 1M keys: GETs
# served during a BGSAVE 91 -> 4,251, the longest 100 -> 10 ms.
SNAPSHOT_YIELD_EVERY_KEYS = 256


@dataclasses.dataclass(frozen=True)
class Config:
    port: int = DEFAULT_PORT
    resp_port: int | None = DEFAULT_RESP_PORT  # None: no RESP listener
    aof_path: str = DEFAULT_AOF_PATH
    # Where SAVE and BGSAVE write (Redis's dir and dbfilename; rdbsave.py):
    # rdb_dir None is the log's directory.
    rdb_dir: str | None = None
    rdb_filename: str = "dump.rdb"
    bind: str = DEFAULT_BIND  # one address, or several separated by spaces (as Redis)
    # Redis's protected-mode: with no password, refuse clients that are not
    # on this machine (it only matters when bound beyond loopback).
    protected_mode: bool = True
    max_inline_bytes: int = MAX_INLINE_BYTES
    max_queued_requests: int = MAX_QUEUED_REQUESTS
    max_clients: int = MAX_CLIENTS
    max_query_buffer_bytes: int = MAX_QUERY_BUFFER_BYTES
    tcp_keepalive_seconds: int = TCP_KEEPALIVE_SECONDS  # 0: no keepalive
    # Refuse commands that add data (Redis's denyoom ones) once the keys and
    # values take more than this (estimated, store.py); 0: no limit. The
    # policy is Redis's noeviction: reads and deletes keep working.
    maxmemory: int = 0
    # Close clients idle this long (Redis's timeout; 0: never, the default).
    timeout_seconds: float = 0
    # Clients must AUTH with this before anything else (None: no password).
    requirepass: str | None = None
    max_idle_workers: int = MAX_IDLE_WORKERS
    # Seconds a shutdown may take (Redis's shutdown-timeout; CONFIG SET
    # changes it). Replaces the old shutdown_grace_seconds, which was waited
    # up to three times over, and once more per busy worker.
    shutdown_timeout_seconds: float = SHUTDOWN_TIMEOUT_SECONDS
    active_expiry: bool = True
    # How often the log is fsynced: "always", "everysec" (Redis's default) or "no".
    appendfsync: str = "everysec"
    # Rewrite the log once it has grown this much (%) since the last rewrite
    # and is over the minimum size; Redis's defaults (see rewrite.py).
    auto_aof_rewrite_percentage: int = 100
    auto_aof_rewrite_min_size: int = 64 * 1024 * 1024
    # client-output-buffer-limit for normal clients (hard bytes, soft bytes,
    # soft seconds; 0 turns one off); see CLIENT_OUTPUT_HARD_LIMIT_BYTES.
    client_output_buffer_limit: tuple[int, int, int] = (
        CLIENT_OUTPUT_HARD_LIMIT_BYTES,
        CLIENT_OUTPUT_SOFT_LIMIT_BYTES,
        CLIENT_OUTPUT_SOFT_LIMIT_SECONDS,
    )
    # SLOWLOG (stats.py); CONFIG SET changes both while running.
    slowlog_log_slower_than: int = SLOWLOG_LOG_SLOWER_THAN
    slowlog_max_len: int = SLOWLOG_MAX_LEN
    # A script running longer than this makes the server answer BUSY
    # (Redis's busy-reply-threshold, 5000 ms; CONFIG SET changes it).
    busy_reply_threshold_ms: int = 5000  # store.DEFAULT_BUSY_REPLY_MS
    # A sparse HyperLogLog past this many bytes turns dense (Redis's
    # hll-sparse-max-bytes; CONFIG SET changes it).
    hll_sparse_max_bytes: int = 3000  # store.DEFAULT_HLL_SPARSE_MAX_BYTES
    # The --config file the settings came from ("" if none), for INFO and
    # the start-up banner.
    config_file: str = ""
    # Settings the config file gave that have no command-line option but
    # that CONFIG SET can change (hash-max-listpack-entries, ...): (name,
    # value) pairs, applied as CONFIG SET would once the server is built.
    live_settings: tuple[tuple[str, str], ...] = ()

    def rdb_directory(self) -> str:
        """CONFIG GET dir: where the RDB file goes (absolute)."""
        chosen = self.rdb_dir if self.rdb_dir is not None else os.path.dirname(os.path.abspath(self.aof_path))
        return os.path.abspath(chosen)

    def rdb_path(self) -> str:
        return os.path.join(self.rdb_directory(), self.rdb_filename)


# -- client-output-buffer-limit's value ----------------------------------------

_OBUF_CLASSES = {"normal": "normal", "slave": "slave", "replica": "slave", "pubsub": "pubsub"}

# Redis's memtoull: ASCII digits (no sign, no spaces), then an optional unit
# (k = 1000, kb = 1024...).
_MEMORY = re.compile(r"([0-9]*)(b|k|kb|m|mb|g|gb)?\Z", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
# memtoull copies the digits into a char[128] first: 128 digits or more is
# an error. Fewer but past 2**64 - 1, its strtoull saturates (and nobody
# checks ERANGE). Checked before int(), which refuses over 4,300 digits.
MEMTOULL_MAX_DIGITS = 127
ULLONG_MAX = 2**64 - 1



def parse_memory(text: str) -> int | None:
    """A memory value as Redis reads one (``100mb``, ``1gb``, ``4096``) in
    bytes; None if it is not one. For maxmemory and the output buffer
    limits, on the command line, in CONFIG SET and in a config file.

    Exactly memtoull, quirks included: no digits at all is 0, a number past
    2**64 - 1 is 2**64 - 1, and the unit's product wraps as C's does.
    """
    match = _MEMORY.match(text)
    if match is None or len(match.group(1)) > MEMTOULL_MAX_DIGITS:
        return None
    value = min(int(match.group(1) or "0"), ULLONG_MAX)
    return value * _MEMORY_UNITS[(match.group(2) or "").lower()] & ULLONG_MAX


def parse_output_buffer_limits(text: str) -> dict[str, tuple[int, int, int]]:
    """Redis's client-output-buffer-limit value, ``<class> <hard> <soft>
    <soft seconds>`` once or more (``normal 32mb 8mb 60``), as ``{class:
    (hard, soft, seconds)}`` with ``replica`` spelt ``slave``, as Redis
    reports it. Raises ValueError with Redis 7.0's reason, word for word.
    """
    fields = text.split(" ") if text else []  # single spaces, as Redis splits it
    if len(fields) % 4:
        raise ValueError("Wrong number of arguments in buffer limit configuration.")
    limits = {}
    for i in range(0, len(fields), 4):
        name, hard, soft, seconds = fields[i : i + 4]
        kind = _OBUF_CLASSES.get(name.lower())
        if kind is None:
            raise ValueError("Invalid client class specified in buffer limit configuration.")
        hard_bytes, soft_bytes = parse_memory(hard), parse_memory(soft)
        soft_seconds = _strtoll(seconds)
        if hard_bytes is None or soft_bytes is None or soft_seconds is None or soft_seconds < 0:
            raise ValueError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        limits[kind] = (
            hard_bytes,
            soft_bytes,
            (soft_seconds + 2**31) % 2**32 - 2**31,  # Redis keeps it in a C int
        )
    return limits


_DECIMAL = re.compile(r"([+-]?)0*([0-9]+)\Z")


def _strtoll(text: str) -> int | None:
    """A whole decimal number as strtoll reads it, saturating at 64 bits
    (never a Python error, however many digits); None if it is not one."""
    match = _DECIMAL.match(text)
    if match is None:
        return None
    sign, digits = match.groups()
    if len(digits) > 19:  # past 64 bits whatever the digits: saturate
        return -(2**63) if sign == "-" else 2**63 - 1
    value = -int(digits) if sign == "-" else int(digits)
    return max(-(2**63), min(value, 2**63 - 1))
