"""Server settings: one frozen dataclass, every default named with its reason."""

from __future__ import annotations

import dataclasses

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

# Grace period on shutdown for connections to finish the commands they sent.
SHUTDOWN_GRACE_SECONDS = 5.0

# Active expiry: like Redis's activeExpireCycle, look at keys with a TTL in
# small batches ten times a second; keep going while a batch was mostly
# expired, but never for longer than the budget, so clients are not stalled.
EXPIRE_CYCLE_SECONDS = 0.1
EXPIRE_BATCH_KEYS = 20
EXPIRE_REPEAT_RATIO = 0.25  # go on while more than 25% of a batch had expired
EXPIRE_BUDGET_SECONDS = 0.005


@dataclasses.dataclass(frozen=True)
class Config:
    port: int = DEFAULT_PORT
    resp_port: int | None = DEFAULT_RESP_PORT  # None: no RESP listener
    aof_path: str = DEFAULT_AOF_PATH
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
    shutdown_grace_seconds: float = SHUTDOWN_GRACE_SECONDS
    active_expiry: bool = True
    # How often the log is fsynced: "always", "everysec" (Redis's default) or "no".
    appendfsync: str = "everysec"
    # Rewrite the log once it has grown this much (%) since the last rewrite
    # and is over the minimum size; Redis's defaults (see rewrite.py).
    auto_aof_rewrite_percentage: int = 100
    auto_aof_rewrite_min_size: int = 64 * 1024 * 1024
