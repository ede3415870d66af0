"""CONFIG and its subcommands (GET, SET, RESETSTAT, REWRITE), and the
``SETTINGS`` table: each parameter with Redis's name and value syntax.

What redis-benchmark and other tools ask (CONFIG GET save / appendonly)
gets Redis 7.0's replies and error texts. appendfsync (through
``ServerState.set_appendfsync``), the slowlog-* settings,
shutdown-timeout and client-output-buffer-limit change the running server; the other settings report what kvserver does and accept
only their current value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from kvserver import config, errors, notify
from kvserver.commands.containers import container
from kvserver.commands.glob import glob_matcher
from kvserver.commands.parsing import INT32_MAX, INT64_MAX, parse_int
from kvserver.config import ULLONG_MAX

INT_MAX = INT32_MAX
UINT_MAX = 2**32 - 1
from kvserver.commands.registry import ADMIN_FLAGS, command
from kvserver.errors import CommandError
from kvserver.protocol import OK
from kvserver.protocol.resp import MAX_BULK_BYTES
from kvserver.session import Session
from kvserver.state import ServerState

CONFIG = container("config")

INT_MAX = 2**31 - 1  # the bound of Redis's int settings (shutdown-timeout)
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
    refuses to change at run time; "protected" ones (dir, dbfilename)
    Redis 7 refuses unless enable-protected-configs allows it (kvserver never).
    """

    name: str
    get: Callable[[ServerState], str]
    kind: str  # "bool", "int", "memory", "enum", "save", "obuf", "keyspace-events" or "string"
    mode: str = "fixed"
    choices: tuple[str, ...] = ()
    # A live setting's hook, given the parsed value (appendfsync's is
    # ServerState.set_appendfsync, the default); the smallest int accepted.
    set: Callable[[ServerState, object], None] | None = None
    minimum: int | None = None
    # An int or memory setting's range, as Redis 7.0's config.c declares it
    # (checked before "immutable", as Redis does); unsigned: compared as C's
    # unsigned long long, so that -1 is past any maximum.
    maximum: int = INT64_MAX
    unsigned: bool = False


def _show_output_limits(limits: dict) -> str:
    # Redis's form: every class, hard and soft in bytes.
    return " ".join(f"{kind} {hard} {soft} {seconds}" for kind, (hard, soft, seconds) in limits.items())


def _encoding_settings() -> list[Setting]:
    """OBJECT ENCODING's thresholds (values.EncodingSettings), each under
    Redis 7.0's name and its pre-7 ziplist alias, with Redis's ranges."""
    table = [
        ("list-max-listpack-size", "list-max-ziplist-size", "list_max_listpack_size", "int", -(2**31), INT_MAX),
        ("hash-max-listpack-entries", "hash-max-ziplist-entries", "hash_max_listpack_entries", "int", 0, INT64_MAX),
        # A byte count: Redis takes units here ("1kb").
        ("hash-max-listpack-value", "hash-max-ziplist-value", "hash_max_listpack_value", "memory", 0, INT64_MAX),
        ("set-max-intset-entries", None, "set_max_intset_entries", "int", 0, INT64_MAX),
    ]
    found = []
    for name, alias, attribute, kind, low, high in table:
        for spelled in (name, alias) if alias else (name,):
            found.append(
                Setting(
                    spelled,
                    lambda st, a=attribute: str(getattr(st.keyspace.encodings, a)),
                    kind,
                    "live",
                    set=lambda st, value, a=attribute: setattr(st.keyspace.encodings, a, value),
                    minimum=low,
                    maximum=high,
                )
            )
    return found


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
            minimum=0,
            maximum=INT_MAX,
        ),
        Setting(
            "auto-aof-rewrite-min-size",
            lambda st: str(getattr(st.config, "auto_aof_rewrite_min_size", 64 * 1024 * 1024)),
            "memory",
            minimum=0,
        ),
        Setting("save", lambda st: "", "save"),  # no snapshots: the log is the persistence
        Setting("databases", lambda st: str(len(st.keyspace.dbs)), "int", "immutable"),
        Setting("port", lambda st: str(st.tcp_port or st.config.port), "int", minimum=0, maximum=65535),
        Setting("bind", lambda st: st.config.bind, "string"),
        Setting("dir", lambda st: st.config.rdb_directory(), "string", "protected"),
        Setting("dbfilename", lambda st: st.config.rdb_filename, "string", "protected"),
        Setting("maxmemory", lambda st: str(st.config.maxmemory), "memory", minimum=0, maximum=ULLONG_MAX, unsigned=True),
        Setting("maxmemory-policy", lambda st: "noeviction", "enum", "fixed", MAXMEMORY_POLICIES),
        Setting("timeout", lambda st: "%g" % st.config.timeout_seconds, "int", minimum=0, maximum=INT_MAX, unsigned=True),
        Setting("maxclients", lambda st: str(st.config.max_clients), "int", minimum=1, maximum=UINT_MAX, unsigned=True),
        Setting("tcp-keepalive", lambda st: str(st.config.tcp_keepalive_seconds), "int", minimum=0, maximum=INT_MAX),
        Setting("protected-mode", lambda st: "yes" if st.config.protected_mode else "no", "bool"),
        Setting("hz", lambda st: str(round(1 / config.EXPIRE_CYCLE_SECONDS)), "int", minimum=0, maximum=INT_MAX),
        Setting("requirepass", lambda st: st.config.requirepass or "", "string"),
        Setting("proto-max-bulk-len", lambda st: str(MAX_BULK_BYTES), "memory", minimum=1024 * 1024),
        Setting("daemonize", lambda st: "no", "bool", "immutable"),
        Setting("cluster-enabled", lambda st: "no", "bool", "immutable"),
        Setting("enable-debug-command", lambda st: "yes", "enum", "immutable", ("no", "yes", "local")),
        Setting(
            "slowlog-log-slower-than",
            lambda st: str(st.slowlog.log_slower_than),
            "int",
            "live",
            set=lambda st, value: st.slowlog.configure(log_slower_than=value),
            minimum=-1,
        ),
        Setting(
            "slowlog-max-len",
            lambda st: str(st.slowlog.max_len),
            "int",
            "live",
            set=lambda st, value: st.slowlog.configure(max_len=value),
            minimum=0,
            unsigned=True,
        ),
        Setting(
            "shutdown-timeout",
            lambda st: "%g" % st.shutdown_timeout,
            "int",
            "live",
            set=lambda st, value: setattr(st, "shutdown_timeout", value),
            minimum=0,
            maximum=INT_MAX,
        ),
        Setting(
            "busy-reply-threshold",
            lambda st: str(st.keyspace.busy_reply_ms),
            "int",
            "live",
            set=lambda st, value: setattr(st.keyspace, "busy_reply_ms", value),
            minimum=0,
        ),
        Setting(
            "lua-time-limit",  # Redis 7's alias of busy-reply-threshold
            lambda st: str(st.keyspace.busy_reply_ms),
            "int",
            "live",
            set=lambda st, value: setattr(st.keyspace, "busy_reply_ms", value),
            minimum=0,
        ),
        *_encoding_settings(),
        # -- HyperLogLog (commands/hyperloglog.py) --
        Setting(
            "hll-sparse-max-bytes",
            lambda st: str(st.keyspace.hll_sparse_max_bytes),
            "memory",
            "live",
            set=lambda st, value: setattr(st.keyspace, "hll_sparse_max_bytes", value),
            minimum=0,
            maximum=INT64_MAX,  # Redis's LONG_MAX
        ),
        # -- keyspace notifications (kvserver/notify.py) --
        Setting(
            "notify-keyspace-events",
            lambda st: notify.format_flags(st.keyspace.notify_config),
            "keyspace-events",
            "live",
            set=lambda st, value: notify.configure(st.keyspace, value),
        ),
        Setting(
            "client-output-buffer-limit",
            lambda st: _show_output_limits(st.client_output_buffer_limits),
            "obuf",
            "live",
            set=lambda st, value: st.client_output_buffer_limits.update(value),
        ),
    ]
}


# Sorted sets' OBJECT ENCODING thresholds (values.EncodingSettings), under
# Redis 7.0's names and their pre-7 ziplist aliases: size_t settings of
# 0..LONG_MAX, the value one read as a memory size ("1kb"), as Redis does.
for _names, _attribute, _kind in (
    (("zset-max-listpack-entries", "zset-max-ziplist-entries"), "zset_max_listpack_entries", "int"),
    (("zset-max-listpack-value", "zset-max-ziplist-value"), "zset_max_listpack_value", "memory"),
):
    for _name in _names:
        SETTINGS[_name] = Setting(
            _name,
            lambda st, a=_attribute: str(getattr(st.keyspace.encodings, a)),
            _kind,
            "live",
            set=lambda st, value, a=_attribute: setattr(st.keyspace.encodings, a, value),
            minimum=0,
            unsigned=True,
        )


@command("config", -2)
def config_(session: Session, args: list[bytes]) -> object:
    """CONFIG subcommand [argument ...]

    Read and change settings; CONFIG HELP lists the subcommands.
    """
    return CONFIG.run(session, args)


@CONFIG.subcommand("get", -3, flags=ADMIN_FLAGS)
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


@CONFIG.subcommand("set", -4, flags=ADMIN_FLAGS)
def config_set(session: Session, args: list[bytes]) -> object:
    """CONFIG SET parameter value [parameter value ...]

    Change settings, all or none. appendfsync, slowlog-*, shutdown-timeout
    and client-output-buffer-limit change the running server; other known
    settings accept their current value only.
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
            elif setting.mode == "protected":  # Redis 7's enable-protected-configs no
                problem = errors.config_set_failed(name, "can't set protected config")
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
        if setting.set is not None:
            setting.set(state, new)
        else:  # appendfsync, whose hook is in state.py
            state.set_appendfsync(new)
    return OK


def live_setting_error(name: str, text: str) -> str | None:
    """For a config file directive with no command-line option: None if
    ``name`` is a setting CONFIG SET changes and ``text`` a valid value for
    it, else what is wrong (configfile.py)."""
    setting = SETTINGS.get(name)
    if setting is None or setting.mode != "live" or setting.set is None:
        return "Bad directive or wrong number of arguments"
    try:
        _parse_setting(setting, text)
    except CommandError as exc:
        return exc.message.split(" - ", 1)[-1]
    return None


def apply_live_settings(state: ServerState, pairs) -> None:
    """Apply (name, value) pairs checked by ``live_setting_error``, as
    CONFIG SET does (the server, at start-up)."""
    for name, text in pairs:
        setting = SETTINGS[name]
        setting.set(state, _parse_setting(setting, text))


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
            value = parse_int(text.encode())
        except CommandError:
            raise errors.config_set_failed(
                setting.name, "argument couldn't be parsed into an integer"
            ) from None
        return _in_bounds(setting, value)
    if setting.kind == "memory":
        value = config.parse_memory(text)
        if value is None:
            raise errors.config_set_failed(setting.name, "argument must be a memory value")
        # memtoull's unsigned result, read as the long long Redis keeps.
        return _in_bounds(setting, value - 2**64 if value > INT64_MAX else value)
    if setting.kind == "obuf":  # client-output-buffer-limit
        try:
            return config.parse_output_buffer_limits(text)
        except ValueError as exc:
            raise errors.config_set_failed(setting.name, str(exc)) from None
    if setting.kind == "keyspace-events":
        flags = notify.parse_flags(text)
        if flags is None:
            raise errors.config_set_failed(setting.name, notify.INVALID_FLAGS)
        return flags
    if setting.kind == "save":
        fields = text.split()
        if len(fields) % 2 or not all(f.isdigit() for f in fields):
            raise errors.config_set_failed(setting.name, "Invalid save parameters")
        return fields
    return text


def _in_bounds(setting: Setting, value: int) -> int:
    """``value`` (a C long long) if in ``setting``'s range, as Redis's
    numericBoundaryCheck; else its "must be between" error."""
    if setting.minimum is None:
        return value
    compared = value & ULLONG_MAX if setting.unsigned else value
    if not setting.minimum <= compared <= setting.maximum:
        raise errors.config_set_failed(setting.name, errors.must_be_between(setting.minimum, setting.maximum))
    return compared


@CONFIG.subcommand("resetstat", 2, flags=ADMIN_FLAGS)
def config_resetstat(session: Session, args: list[bytes]) -> object:
    """CONFIG RESETSTAT

    Zero the statistics INFO reports.
    """
    session.server.reset_stats()
    return OK


@CONFIG.subcommand("rewrite", 2, flags=ADMIN_FLAGS)
def config_rewrite(session: Session, args: list[bytes]) -> object:
    """CONFIG REWRITE

    Refused: kvserver never writes its settings back to a file (with
    --config, edit the file by hand).
    """
    if session.server.config.config_file:
        raise CommandError(errors.CONFIG_REWRITE_UNSUPPORTED)
    raise CommandError(errors.CONFIG_WITHOUT_FILE)
