"""INFO: server facts and figures, one builder per section ("# Server",
"# Memory", "# Keyspace", ...), and the estimates they rest on
(``average_ttl``, ``human_bytes``).

redis-py and other clients read INFO; fields keep Redis 7.0's names.
Figures kvserver does not keep (per-client buffers, keyspace hits) are left
out rather than made up; where a field must be there, its value says what
kvserver does (no replicas, no forks, no eviction). The memory and TTL
figures are estimates from a sample of each database, read lock-free the
way every other reader reads the dictionaries.
"""

from __future__ import annotations

import itertools
import os
import resource
import selectors
import sys
import time

from kvserver import __version__, config
from kvserver.commands.registry import command
from kvserver.protocol import Verbatim
from kvserver.scripting.engine import memory_figures
from kvserver.session import Session
from kvserver.state import REDIS_VERSION, ServerState

# avg_ttl in INFO keyspace: the mean TTL of this many keys that have one.
TTL_SAMPLE_KEYS = 64

DEFAULT_SECTIONS = (
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "cluster",
    "keyspace",
)


@command("info", -1, flags=("loading", "stale"))
def info(session: Session, args: list[bytes]) -> object:
    """INFO [section ...]

    Server facts and figures as "field:value" lines under "# Section"
    headers; default, all or everything for every section.
    """
    wanted = {arg.decode("latin-1").lower() for arg in args} or {"default"}
    if wanted & {"default", "all", "everything"}:
        wanted |= set(DEFAULT_SECTIONS)
    if wanted & {"all", "everything"}:
        wanted.add("commandstats")  # as Redis: not in the default sections
    state, now = session.server, session.now
    blocks = []
    for section in _SECTIONS:  # Redis's order
        if section in wanted:
            lines = _SECTIONS[section](state, now)
            body = "".join(f"{key}:{value}\r\n" for key, value in lines)
            title = "CPU" if section == "cpu" else section.capitalize()
            blocks.append(f"# {title}\r\n{body}")
    return Verbatim("\r\n".join(blocks).encode())


def _commandstats(state: ServerState, now: int) -> list[tuple[str, object]]:
    lines = []
    for name, (calls, nanoseconds, rejected, failed) in sorted(state.command_stats.items()):
        if calls or rejected or failed:
            usec = nanoseconds // 1000
            per_call = usec / calls if calls else 0.0
            lines.append(
                (
                    f"cmdstat_{name}",
                    f"calls={calls},usec={usec},usec_per_call={per_call:.2f},"
                    f"rejected_calls={rejected},failed_calls={failed}",
                )
            )
    return lines


def _server(state: ServerState, now: int) -> list[tuple[str, object]]:
    uname = os.uname()
    uptime = max(0, now // 1000 - int(state.started_at))
    return [
        ("redis_version", REDIS_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_mode", "standalone"),
        ("os", f"{uname.sysname} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
        ("multiplexing_api", selectors.DefaultSelector.__name__.removesuffix("Selector").lower()),
        ("process_id", os.getpid()),
        ("process_supervised", "no"),
        ("run_id", state.run_id),
        ("tcp_port", state.tcp_port),
        ("server_time_usec", now * 1000),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", round(1 / config.EXPIRE_CYCLE_SECONDS)),
        ("configured_hz", round(1 / config.EXPIRE_CYCLE_SECONDS)),
        ("executable", sys.executable),
        ("config_file", os.path.abspath(state.config.config_file) if state.config.config_file else ""),
        ("io_threads_active", 0),
        ("kvserver_version", __version__),
        ("resp_port", state.resp_port),
    ]


def _clients(state: ServerState, now: int) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(state.sessions())),
        ("cluster_connections", 0),
        ("blocked_clients", state.keyspace.blocked_clients),
        ("tracking_clients", 0),
        ("clients_in_timeout_table", 0),
        ("worker_threads", state.worker_threads()),  # kvserver's: one per connection, plus idle ones
    ]


def _memory(state: ServerState, now: int) -> list[tuple[str, object]]:
    used = state.keyspace.used_bytes  # the estimate --maxmemory checks (store.py)
    scripts = memory_figures(state.keyspace)
    return [
        ("used_memory", used),
        ("used_memory_human", human_bytes(used)),
        *((name, human_bytes(value) if name.endswith("_human") else value) for name, value in scripts.items()),
        ("maxmemory", state.config.maxmemory),
        ("maxmemory_human", human_bytes(state.config.maxmemory)),
        ("maxmemory_policy", "noeviction"),
        ("mem_allocator", "pymalloc"),
    ]


def _persistence(state: ServerState, now: int) -> list[tuple[str, object]]:
    aof = state.aof
    rewriter = getattr(state, "rewriter", None)
    in_progress = bool(getattr(rewriter, "in_progress", False))
    last_seconds = getattr(rewriter, "last_seconds", -1)
    saver = state.saver
    started = saver.started_at
    return [
        ("loading", 0),
        ("async_loading", 0),
        ("rdb_changes_since_last_save", saver.changes_since_last_save()),
        ("rdb_bgsave_in_progress", int(saver.in_progress)),
        ("rdb_last_save_time", saver.last_save_time),
        ("rdb_last_bgsave_status", saver.last_status),
        ("rdb_last_bgsave_time_sec", saver.last_seconds),
        ("rdb_current_bgsave_time_sec", int(time.monotonic() - started) if started is not None else -1),
        ("rdb_saves", saver.saves),
        ("aof_enabled", 1),
        ("aof_rewrite_in_progress", int(in_progress)),
        ("aof_rewrite_scheduled", 0),
        ("aof_last_rewrite_time_sec", int(last_seconds) if last_seconds >= 0 else -1),
        ("aof_current_rewrite_time_sec", -1),
        ("aof_last_bgrewrite_status", getattr(rewriter, "last_status", "ok")),
        ("aof_rewrites", getattr(rewriter, "rewrites", 0)),
        ("aof_last_write_status", "ok" if getattr(aof, "error", None) is None else "err"),
        ("aof_current_size", aof.size),
        ("aof_base_size", getattr(aof, "rewrite_base_size", 0)),
    ]


def _stats(state: ServerState, now: int) -> list[tuple[str, object]]:
    return [
        ("total_connections_received", state.total_connections_received),
        ("total_commands_processed", state.total_commands_processed),
        ("instantaneous_ops_per_sec", state.ops_per_sec.value()),  # stats.StatsCron samples it
        ("total_net_input_bytes", state.net_input_bytes),
        ("total_net_output_bytes", state.net_output_bytes),
        ("instantaneous_input_kbps", "%.2f" % (state.input_per_sec.value() / 1024)),
        ("instantaneous_output_kbps", "%.2f" % (state.output_per_sec.value() / 1024)),
        ("rejected_connections", state.rejected_connections),
        ("evicted_keys", 0),
        ("pubsub_channels", len(state.pubsub.channels)),
        ("pubsub_patterns", len(state.pubsub.patterns)),
        ("pubsubshard_channels", len(state.pubsub.shard)),
        ("total_forks", 0),
        # Redis 7.4's counter: clients closed for passing client-output-buffer-limit.
        ("client_output_buffer_limit_disconnections", state.client_output_buffer_limit_disconnections),
        # Redis 7.2's: failed AUTH and HELLO AUTH, after the 7.4 one above as in Redis.
        ("acl_access_denied_auth", state.acl_access_denied_auth),
    ]


def _replication(state: ServerState, now: int) -> list[tuple[str, object]]:
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", state.run_id),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
    ]


def _cpu(state: ServerState, now: int) -> list[tuple[str, object]]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
    ]


def _modules(state: ServerState, now: int) -> list[tuple[str, object]]:
    return []


def _cluster(state: ServerState, now: int) -> list[tuple[str, object]]:
    return [("cluster_enabled", 0)]


def _keyspace(state: ServerState, now: int) -> list[tuple[str, object]]:
    lines = []
    for db in state.keyspace.dbs:
        keys = len(db.data)
        if keys:
            expires = len(db.expires)
            lines.append((f"db{db.index}", f"keys={keys},expires={expires},avg_ttl={average_ttl(db, now)}"))
    return lines


_SECTIONS = {
    "server": _server,
    "clients": _clients,
    "memory": _memory,
    "persistence": _persistence,
    "stats": _stats,
    "replication": _replication,
    "cpu": _cpu,
    "modules": _modules,
    "commandstats": _commandstats,  # between modules and cluster, as Redis
    "cluster": _cluster,
    "keyspace": _keyspace,
}


def _sample(mapping: dict, count: int) -> list[tuple]:
    # A writer on another thread may resize the dict while it is read: then
    # iteration raises, and reading again is the cure (readers take no lock).
    for _ in range(3):
        try:
            return list(itertools.islice(mapping.items(), count))
        except RuntimeError:
            continue
    return []


def average_ttl(db, now: int) -> int:
    """Mean milliseconds left over a sample of the keys with a TTL (0 if none)."""
    sample = _sample(db.expires, TTL_SAMPLE_KEYS)
    if not sample:
        return 0
    return sum(max(0, deadline - now) for _, deadline in sample) // len(sample)


def human_bytes(n: int) -> str:
    """Redis's bytesToHuman: 1023B, 1.00K, 3.50M, ..."""
    if n < 1024:
        return f"{n}B"
    for unit in "KMGTP":
        n /= 1024
        if n < 1024 or unit == "P":
            return f"{n:.2f}{unit}"
    raise AssertionError("unreachable")
