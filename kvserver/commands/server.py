"""Server commands: COMMAND, CONFIG, INFO, TIME, LASTSAVE, SAVE, BGSAVE,
DEBUG, WAIT, ROLE, MEMORY.

What Redis's own tools ask a server before they start (redis-cli: COMMAND
DOCS; redis-benchmark: CONFIG GET save / appendonly; redis-py: INFO) gets
Redis 7.0's reply shapes and error texts. Figures kvserver does not keep
(per-client buffers, keyspace hits) are left out of INFO rather than made
up; where a field must be there, its value says what kvserver does (no
replicas, no forks, no eviction).

These commands read ``session.server`` (state.py) and take no locks of
their own: the few shared lists they read are copied under the server
state's lock by its methods, and the dictionaries sampled for INFO's
estimates are read the way every other reader reads them, lock-free.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import resource
import selectors
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from kvserver import __version__, config, errors
from kvserver.commands.containers import CONTAINERS, Subcommand, container, summary_of
from kvserver.commands.glob import compile_pattern
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import COMMANDS, Command, command
from kvserver.errors import CommandError
from kvserver.protocol import OK, SetReply, Status, Verbatim
from kvserver.protocol.resp import MAX_BULK_BYTES
from kvserver.session import Session
from kvserver.state import REDIS_VERSION, ServerState

_ADMIN = ("admin", "noscript", "loading", "stale")

# -- COMMAND ------------------------------------------------------------------------------

COMMAND = container("command")

# The group COMMAND DOCS reports for the commands of each module.
_GROUPS = {"strings": "string", "keyspace": "generic", "connection": "connection"}
# Redis's ACL category for each group.
_GROUP_CATEGORIES = {"string": "@string", "generic": "@keyspace", "connection": "@connection"}


@command("command", -1, flags=("loading", "stale"))
def command_(session: Session, args: list[bytes]) -> object:
    """COMMAND [subcommand [argument ...]]

    With no argument, COMMAND INFO for every command; COMMAND HELP lists
    the subcommands.
    """
    if not args:
        return [_info(cmd) for cmd in COMMANDS.values()]
    return COMMAND.run(session, args)


@COMMAND.subcommand("count", 2, flags=("loading", "stale"))
def command_count(session: Session, args: list[bytes]) -> object:
    """COMMAND COUNT

    How many commands this server has (subcommands not counted).
    """
    return len(COMMANDS)


@COMMAND.subcommand("info", -2, flags=("loading", "stale"))
def command_info(session: Session, args: list[bytes]) -> object:
    """COMMAND INFO [command-name ...]

    Name, arity, flags, key positions, ACL categories, key specs and
    subcommands of each command (nil for an unknown one); all if none named.
    """
    if not args:
        return [_info(cmd) for cmd in COMMANDS.values()]
    return [_info(found) if (found := _find(name)) else None for name in args]


@COMMAND.subcommand("docs", -2, flags=("loading", "stale"))
def command_docs(session: Session, args: list[bytes]) -> object:
    """COMMAND DOCS [command-name ...]

    Summary and group of each command, for clients' help (redis-cli asks
    at start); unknown names are left out.
    """
    chosen = COMMANDS.values() if not args else [c for a in args if (c := _find(a))]
    return {item.name.encode(): _docs(item) for item in chosen}


@COMMAND.subcommand("list", -2, flags=("loading", "stale"))
def command_list(session: Session, args: list[bytes]) -> object:
    """COMMAND LIST [FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]

    The names of the commands and subcommands, optionally filtered.
    """
    everything: list[Command | Subcommand] = []
    for cmd in COMMANDS.values():
        everything.append(cmd)
        everything.extend(_subcommands(cmd))
    if not args:
        return [item.name.encode() for item in everything]
    if len(args) != 3 or args[0].upper() != b"FILTERBY":
        raise CommandError(errors.SYNTAX)
    kind, value = args[1].upper(), args[2]
    if kind == b"MODULE":
        return []  # kvserver loads no modules
    if kind == b"ACLCAT":
        wanted = "@" + value.decode("utf-8", "replace").lower()
        return [item.name.encode() for item in everything if wanted in _categories(item)]
    if kind == b"PATTERN":
        match = glob_matcher(value)
        return [item.name.encode() for item in everything if match(item.name.encode())]
    raise CommandError(errors.SYNTAX)


@COMMAND.subcommand("getkeys", -4, flags=("loading", "stale"))
def command_getkeys(session: Session, args: list[bytes]) -> object:
    """COMMAND GETKEYS command [argument ...]

    Which of the arguments of a command are keys.
    """
    cmd = COMMANDS.get(args[0].upper())
    if cmd is None:
        raise CommandError(errors.GETKEYS_INVALID_COMMAND)
    if not cmd.first_key:
        raise CommandError(errors.GETKEYS_NO_KEYS)
    if not cmd.arity_ok(len(args)):
        raise CommandError(errors.GETKEYS_WRONG_ARITY)
    return cmd.keys(args[1:])


def _find(name: bytes) -> Command | Subcommand | None:
    """A command by name, or a subcommand by its full name (``client|list``)."""
    head, bar, tail = name.partition(b"|")
    cmd = COMMANDS.get(head.upper())
    if cmd is None or not bar:
        return cmd
    found = CONTAINERS.get(cmd.name)
    return found.subcommands.get(tail.upper()) if found else None


def _subcommands(cmd: Command) -> list[Subcommand]:
    found = CONTAINERS.get(cmd.name)
    return list(found.subcommands.values()) if found else []


def _group(item: Command | Subcommand) -> str:
    if isinstance(item, Subcommand):  # its container's group
        item = COMMANDS[item.name.partition("|")[0].upper().encode()]
    module = item.func.__module__.rsplit(".", 1)[-1]
    return _GROUPS.get(module, "server")


def _flags(item: Command | Subcommand) -> list[str]:
    flags: list[str] = []
    if isinstance(item, Command):
        if item.write:
            flags.append("write")
        elif item.first_key:
            flags.append("readonly")
    return flags + [f for f in item.flags if f not in flags]


def _categories(item: Command | Subcommand) -> list[str]:
    flags = _flags(item)
    categories = []
    if "write" in flags:
        categories.append("@write")
    if "readonly" in flags:
        categories.append("@read")
    group = _GROUP_CATEGORIES.get(_group(item))
    if group:
        categories.append(group)
    if "admin" in flags:
        categories += ["@admin", "@dangerous"]
    categories.append("@fast" if "fast" in flags else "@slow")
    return categories


def _info(item: Command | Subcommand) -> list:
    """One command as COMMAND INFO describes it (Redis 7's ten fields)."""
    if isinstance(item, Subcommand):
        positions, specs, subs = (0, 0, 0), SetReply(), SetReply()
    else:
        positions = (item.first_key, item.last_key, item.key_step)
        specs = SetReply([_key_spec(item)] if item.first_key else [])
        subs = [_info(sub) for sub in _subcommands(item)] or SetReply()
    return [
        item.name.encode(),
        item.arity,
        SetReply(Status(flag) for flag in _flags(item)),
        *positions,
        SetReply(Status(category) for category in _categories(item)),
        SetReply(),  # tips
        specs,
        subs,
    ]


def _key_spec(cmd: Command) -> dict:
    # The one key spec the registry's (first, last, step) describes; the
    # flags are the broad RW/RO ones, not Redis's per-command detail.
    last = -1 if cmd.last_key < 0 else cmd.last_key - cmd.first_key
    return {
        b"flags": SetReply([Status("RW"), Status("update")] if cmd.write else [Status("RO"), Status("access")]),
        b"begin_search": {b"type": b"index", b"spec": {b"index": cmd.first_key}},
        b"find_keys": {
            b"type": b"range",
            b"spec": {b"lastkey": last, b"keystep": cmd.key_step, b"limit": 0},
        },
    }


def _docs(item: Command | Subcommand) -> dict:
    # redis-cli reads summary and group of every entry: both always present.
    doc: dict = {
        b"summary": (summary_of(item.func) or item.syntax).encode(),
        b"group": _group(item).encode(),
    }
    if isinstance(item, Command) and (subs := _subcommands(item)):
        doc[b"subcommands"] = {sub.name.encode(): _docs(sub) for sub in subs}
    return doc


# -- glob patterns ----------------------------------------------------------------------------


def glob_matcher(pattern: bytes) -> Callable[[bytes], bool]:
    """Redis's stringmatchlen with nocase set, as CONFIG GET and COMMAND LIST
    use it: its tolower on both sides is lower-casing pattern and text."""
    match = compile_pattern(pattern.lower())
    return lambda text: match(text.lower())


# -- CONFIG -------------------------------------------------------------------------------

CONFIG = container("config")

FSYNC_CHOICES = ("everysec", "always", "no")  # in the order Redis lists them
MAXMEMORY_POLICIES = (
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
)


@dataclass(frozen=True)
class Setting:
    """One CONFIG parameter, with Redis's name and value syntax.

    ``mode``: "live" settings change the running server (through the
    server state); "fixed" ones are what kvserver does and can only be
    "set" to their current value (a no-op, so scripts that pin a value
    Redis would accept keep working); "immutable" ones Redis itself
    refuses to change at run time.
    """

    name: str
    get: Callable[[ServerState], str]
    kind: str  # "bool", "int", "memory", "enum", "save" or "string"
    mode: str = "fixed"
    choices: tuple[str, ...] = ()


def _aof_dir(state: ServerState) -> str:
    return os.path.dirname(os.path.abspath(state.config.aof_path))


SETTINGS = {
    s.name: s
    for s in [
        Setting("appendonly", lambda st: "yes", "bool"),
        Setting("appendfsync", lambda st: st.aof.fsync_policy, "enum", "live", FSYNC_CHOICES),
        Setting("appendfilename", lambda st: os.path.basename(st.config.aof_path), "string", "immutable"),
        Setting(
            "auto-aof-rewrite-percentage",
            lambda st: str(getattr(st.config, "auto_aof_rewrite_percentage", 100)),
            "int",
        ),
        Setting(
            "auto-aof-rewrite-min-size",
            lambda st: str(getattr(st.config, "auto_aof_rewrite_min_size", 64 * 1024 * 1024)),
            "memory",
        ),
        Setting("save", lambda st: "", "save"),  # no snapshots: the log is the persistence
        Setting("databases", lambda st: str(len(st.keyspace.dbs)), "int", "immutable"),
        Setting("port", lambda st: str(st.tcp_port or st.config.port), "int"),
        Setting("bind", lambda st: st.config.bind, "string"),
        Setting("dir", _aof_dir, "string"),
        Setting("maxmemory", lambda st: "0", "memory"),
        Setting("maxmemory-policy", lambda st: "noeviction", "enum", "fixed", MAXMEMORY_POLICIES),
        Setting("timeout", lambda st: "0", "int"),  # idle clients are never closed
        Setting("hz", lambda st: str(round(1 / config.EXPIRE_CYCLE_SECONDS)), "int"),
        Setting("requirepass", lambda st: "", "string"),
        Setting("proto-max-bulk-len", lambda st: str(MAX_BULK_BYTES), "memory"),
        Setting("daemonize", lambda st: "no", "bool", "immutable"),
        Setting("cluster-enabled", lambda st: "no", "bool", "immutable"),
        Setting("enable-debug-command", lambda st: "yes", "enum", "immutable", ("no", "yes", "local")),
    ]
}


@command("config", -2)
def config_(session: Session, args: list[bytes]) -> object:
    """CONFIG subcommand [argument ...]

    Read and change settings; CONFIG HELP lists the subcommands.
    """
    return CONFIG.run(session, args)


@CONFIG.subcommand("get", -3, flags=_ADMIN)
def config_get(session: Session, args: list[bytes]) -> object:
    """CONFIG GET parameter [parameter ...]

    Each matching parameter and its value; glob patterns allowed. A name
    given without a pattern comes back spelt as it was asked for.
    """
    state = session.server
    found: dict[bytes, bytes] = {}
    seen: set[str] = set()
    for wanted in args:
        if not any(c in wanted for c in b"[*?"):
            setting = SETTINGS.get(wanted.decode("latin-1").lower())
            if setting is not None and setting.name not in seen:
                seen.add(setting.name)
                found[wanted] = setting.get(state).encode()
            continue
        match = glob_matcher(wanted)
        for setting in SETTINGS.values():
            if setting.name not in seen and match(setting.name.encode()):
                seen.add(setting.name)
                found[setting.name.encode()] = setting.get(state).encode()
    return found


@CONFIG.subcommand("set", -4, flags=_ADMIN)
def config_set(session: Session, args: list[bytes]) -> object:
    """CONFIG SET parameter value [parameter value ...]

    Change settings, all or none. Only appendfsync changes the running
    server; other known settings accept their current value only.
    """
    if len(args) % 2:
        raise CommandError(errors.SYNTAX)
    # Redis's configSetCommand: first every name (unknown, immutable,
    # repeated: the first problem is reported), then every value, then apply.
    chosen: list[tuple[Setting, bytes]] = []
    unknown: bytes | None = None
    problem: CommandError | None = None
    for name, value in zip(args[::2], args[1::2]):
        setting = SETTINGS.get(name.decode("latin-1").lower())
        if setting is None:
            if unknown is None and problem is None:
                unknown = name
            continue
        if problem is None and unknown is None:
            if setting.mode == "immutable":
                problem = errors.config_set_failed(name, "can't set immutable config")
            elif any(setting is earlier for earlier, _ in chosen):
                problem = errors.config_set_failed(name, "duplicate parameter")
            chosen.append((setting, value))
    if unknown is not None:
        raise errors.config_set_unknown(unknown)
    if problem is not None:
        raise problem
    state = session.server
    changes = []
    for setting, value in chosen:
        new = _parse_setting(setting, value.decode("latin-1"))
        if setting.mode == "live":
            changes.append((setting, new))
        elif new != _parse_setting(setting, setting.get(state)):
            raise errors.config_set_failed(setting.name, "can't set immutable config")
    for setting, new in changes:
        # appendfsync is the only live setting; its hook is in state.py.
        state.set_appendfsync(new)
    return OK


_MEMORY_VALUE = re.compile(r"(\d+)(b|k|kb|m|mb|g|gb)?\Z", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def _parse_setting(setting: Setting, text: str) -> object:
    """The value of ``text`` for ``setting``, compared to tell a change from
    a no-op; raises Redis's error for a malformed value."""
    if setting.kind == "bool":
        if text.lower() not in ("yes", "no"):
            raise errors.config_set_failed(setting.name, "argument must be 'yes' or 'no'")
        return text.lower()
    if setting.kind == "enum":
        if text.lower() not in setting.choices:
            raise errors.config_set_failed(
                setting.name,
                "argument(s) must be one of the following: " + ", ".join(setting.choices),
            )
        return text.lower()
    if setting.kind == "int":
        try:
            return parse_int(text.encode())
        except CommandError:
            raise errors.config_set_failed(
                setting.name, "argument couldn't be parsed into an integer"
            ) from None
    if setting.kind == "memory":
        match = _MEMORY_VALUE.match(text)
        if not match:
            raise errors.config_set_failed(setting.name, "argument must be a memory value")
        return int(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "").lower()]
    if setting.kind == "save":
        fields = text.split()
        if len(fields) % 2 or not all(f.isdigit() for f in fields):
            raise errors.config_set_failed(setting.name, "Invalid save parameters")
        return fields
    return text


@CONFIG.subcommand("resetstat", 2, flags=_ADMIN)
def config_resetstat(session: Session, args: list[bytes]) -> object:
    """CONFIG RESETSTAT

    Zero the statistics INFO reports.
    """
    session.server.reset_stats()
    return OK


@CONFIG.subcommand("rewrite", 2, flags=_ADMIN)
def config_rewrite(session: Session, args: list[bytes]) -> object:
    """CONFIG REWRITE

    Refused: kvserver takes its settings from the command line, not a file.
    """
    raise CommandError(errors.CONFIG_WITHOUT_FILE)


# -- INFO ----------------------------------------------------------------------------------

# INFO's memory figures are estimates from a sample of each database: the
# sizes of this many keys and values stand for all of them.
MEMORY_SAMPLE_KEYS = 64
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
    state, now = session.server, session.now
    blocks = []
    for section in DEFAULT_SECTIONS:
        if section in wanted:
            lines = _SECTIONS[section](state, now)
            body = "".join(f"{key}:{value}\r\n" for key, value in lines)
            title = "CPU" if section == "cpu" else section.capitalize()
            blocks.append(f"# {title}\r\n{body}")
    return Verbatim("\r\n".join(blocks).encode())


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
        ("config_file", ""),
        ("io_threads_active", 0),
        ("kvserver_version", __version__),
        ("resp_port", state.resp_port),
    ]


def _clients(state: ServerState, now: int) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(state.sessions())),
        ("cluster_connections", 0),
        ("blocked_clients", 0),
        ("tracking_clients", 0),
        ("clients_in_timeout_table", 0),
    ]


def _memory(state: ServerState, now: int) -> list[tuple[str, object]]:
    used = sum(dataset_bytes(db) for db in state.keyspace.dbs)
    return [
        ("used_memory", used),
        ("used_memory_human", human_bytes(used)),
        ("maxmemory", 0),
        ("maxmemory_human", "0B"),
        ("maxmemory_policy", "noeviction"),
        ("mem_allocator", "pymalloc"),
    ]


def _persistence(state: ServerState, now: int) -> list[tuple[str, object]]:
    aof = state.aof
    rewriter = getattr(state, "rewriter", None)
    in_progress = bool(getattr(rewriter, "in_progress", False))
    last_seconds = getattr(rewriter, "last_seconds", -1)
    return [
        ("loading", 0),
        ("async_loading", 0),
        ("rdb_bgsave_in_progress", 0),
        ("rdb_last_save_time", state.last_save_time),
        ("rdb_last_bgsave_status", "ok"),
        ("rdb_last_bgsave_time_sec", -1),
        ("rdb_current_bgsave_time_sec", -1),
        ("rdb_saves", 0),
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
        ("instantaneous_ops_per_sec", 0),  # not sampled
        ("rejected_connections", 0),
        ("evicted_keys", 0),
        ("pubsub_channels", 0),
        ("pubsub_patterns", 0),
        ("total_forks", 0),
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


def dataset_bytes(db) -> int:
    """An estimate of the memory one database holds: its tables, plus its
    key count times the mean size of a sample of keys and values."""
    total = sys.getsizeof(db.data) + sys.getsizeof(db.expires)
    count = len(db.data)
    if count:
        sample = _sample(db.data, MEMORY_SAMPLE_KEYS)
        if sample:
            per_key = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in sample) / len(sample)
            total += int(count * per_key)
        total += len(db.expires) * sys.getsizeof(2**40)  # a deadline: one int each
    return total


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


# -- TIME, LASTSAVE, SAVE, BGSAVE, WAIT, ROLE -------------------------------------------------


@command("time", 1, flags=("loading", "stale", "fast"))
def time_(session: Session, args: list[bytes]) -> object:
    """TIME

    The server's clock: Unix seconds and microseconds (to the millisecond).
    """
    seconds, ms = divmod(session.now, 1000)
    return [b"%d" % seconds, b"%d" % (ms * 1000)]


@command("lastsave", 1, flags=("loading", "stale", "fast"))
def lastsave(session: Session, args: list[bytes]) -> object:
    """LASTSAVE

    Unix time of the last SAVE or BGSAVE (start-up time if none).
    """
    return session.server.last_save_time


@command("save", 1, flags=("admin", "noscript", "no_async_loading", "no_multi"))
def save(session: Session, args: list[bytes]) -> object:
    """SAVE

    OK at once. kvserver makes no snapshot: every acknowledged write is
    already in the append-only log (fsynced per appendfsync), so there is
    nothing left to save. LASTSAVE moves to now.
    """
    session.server.last_save_time = session.now // 1000
    return OK


@command("bgsave", -1, flags=("admin", "noscript", "no_async_loading"))
def bgsave(session: Session, args: list[bytes]) -> object:
    """BGSAVE [SCHEDULE]

    OK at once, as SAVE, rather than "Background saving started": no
    background save ever runs here.
    """
    if len(args) > 1 or (args and args[0].upper() != b"SCHEDULE"):
        raise CommandError(errors.SYNTAX)
    session.server.last_save_time = session.now // 1000
    return OK


@command("wait", 3, flags=("noscript",))
def wait(session: Session, args: list[bytes]) -> object:
    """WAIT numreplicas timeout

    0 at once: there are no replicas to wait for. (Redis would block for
    ``timeout`` when asked for more than it has.)
    """
    parse_int(args[0])
    try:
        timeout = parse_int(args[1])
    except CommandError:
        raise CommandError(errors.TIMEOUT_NOT_INTEGER) from None
    if timeout < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    return 0


@command("role", 1, flags=("noscript", "loading", "stale", "fast"))
def role(session: Session, args: list[bytes]) -> object:
    """ROLE

    Always a master with no replicas: master, replication offset 0, [].
    """
    return [b"master", 0, []]


# -- DEBUG ---------------------------------------------------------------------------------

# strtod's leading number, which is all DEBUG SLEEP reads of its argument.
_STRTOD = re.compile(
    rb"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE
)
DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "SLEEP <seconds>",
    "    Stop this connection for <seconds> (a decimal number); other clients go on.",
    "HELP",
    "    Prints this help.",
]


@command("debug", -2, flags=_ADMIN)
def debug(session: Session, args: list[bytes]) -> object:
    """DEBUG SLEEP seconds | HELP

    Only SLEEP: it stops this connection's worker, holding no lock, so
    unlike Redis's it does not stop the other clients.
    """
    sub = args[0].upper()
    if sub == b"HELP" and len(args) == 1:
        return [Status(line) for line in DEBUG_HELP]
    if sub == b"SLEEP" and len(args) == 2:
        match = _STRTOD.match(args[1])
        seconds = float(match.group()) if match else 0.0
        if not math.isnan(seconds) and seconds > 0:
            # The one command that waits: a debugging aid, on this
            # connection's own thread (see the docstring).
            time.sleep(min(seconds, DEBUG_SLEEP_MAX_SECONDS))
        return OK
    raise errors.subcommand_syntax(args[0], "debug")


# time.sleep refuses an infinite wait: "DEBUG SLEEP inf" sleeps this long.
DEBUG_SLEEP_MAX_SECONDS = 365 * 24 * 3600.0


# -- MEMORY --------------------------------------------------------------------------------

MEMORY = container("memory")


@command("memory", -2)
def memory(session: Session, args: list[bytes]) -> object:
    """MEMORY subcommand [argument ...]

    Memory figures; MEMORY HELP lists the subcommands.
    """
    return MEMORY.run(session, args)


@MEMORY.subcommand("usage", -3, flags=("readonly",))
def memory_usage(session: Session, args: list[bytes]) -> object:
    """MEMORY USAGE key [SAMPLES count]

    Estimated bytes held for a key and its value (nil if missing). Values
    are measured whole; SAMPLES is accepted and has nothing to sample.
    """
    key, options = args[0], args[1:]
    i = 0
    while i < len(options):
        if options[i].upper() == b"SAMPLES" and i + 1 < len(options):
            if parse_int(options[i + 1]) < 0:
                raise CommandError(errors.SYNTAX)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    value = session.db.lookup(key, session.now)
    if value is None:
        return None
    size = sys.getsizeof(key) + sys.getsizeof(value)
    if key in session.db.expires:
        size += sys.getsizeof(2**40)
    return size
