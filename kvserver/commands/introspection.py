"""COMMAND and its subcommands: what a client learns about the commands
this server has (COMMAND COUNT / INFO / DOCS / LIST / GETKEYS).

Everything here is read from the one registry (``registry.COMMANDS``) and
the container table (``containers.CONTAINERS``); nothing is listed by hand.
Replies have Redis 7.0's shapes: redis-cli asks COMMAND DOCS at start.
"""

from __future__ import annotations

from collections.abc import Callable

from kvserver import errors
from kvserver.commands.containers import CONTAINERS, Subcommand, container, summary_of
from kvserver.commands.glob import glob_matcher
from kvserver.commands.registry import COMMANDS, Command, command
from kvserver.errors import CommandError
from kvserver.protocol import SetReply, Status
from kvserver.session import Session

COMMAND = container("command")

# The group COMMAND DOCS reports for the commands of each module.
# Modules not listed here (server, configcmd, info, introspection, ...) are "server".
_GROUPS = {
    "strings": "string",
    "keyspace": "generic",
    "connection": "connection",
    "scripting": "scripting",
    "functions": "scripting",
    "lists": "list",
    "sets": "set",
    "hyperloglog": "hyperloglog",
    "hashes": "hash",
    "zsets": "sorted-set",
    "pubsub": "pubsub",
    "streams": "stream",
    "dump": "generic",
}
# Commands whose group is not their module's (commands/blocking.py holds
# list and sorted-set commands).
COMMAND_GROUPS: dict[str, str] = {}
# Redis's ACL category for each group.
_GROUP_CATEGORIES = {
    "string": "@string",
    "generic": "@keyspace",
    "connection": "@connection",
    "scripting": "@scripting",
    "list": "@list",
    "set": "@set",
    "hyperloglog": "@hyperloglog",
    "hash": "@hash",
    "sorted-set": "@sortedset",
    "pubsub": "@pubsub",
    "stream": "@stream",
}


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


# Commands whose keys their arguments name (Redis's movablekeys: EVAL's
# numkeys): name -> (arguments after the name) -> keys. Their modules fill it.
KEY_FINDERS: dict[str, Callable[[list[bytes]], list[bytes]]] = {}


@COMMAND.subcommand("getkeys", -4, flags=("loading", "stale"))
def command_getkeys(session: Session, args: list[bytes]) -> object:
    """COMMAND GETKEYS command [argument ...]

    Which of the arguments of a command are keys.
    """
    cmd = COMMANDS.get(args[0].upper())
    if cmd is None:
        raise CommandError(errors.GETKEYS_INVALID_COMMAND)
    finder = KEY_FINDERS.get(cmd.name)
    if finder is not None:  # movablekeys: the arguments say which are keys
        if not cmd.arity_ok(len(args)):
            raise CommandError(errors.GETKEYS_WRONG_ARITY)
        keys = finder(args[1:])
        if not keys:
            raise CommandError(errors.GETKEYS_NO_KEYS)
        return keys
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
    return COMMAND_GROUPS.get(item.name) or _GROUPS.get(module, "server")


def _flags(item: Command | Subcommand) -> list[str]:
    flags: list[str] = []
    if isinstance(item, Command):
        if item.write and "readonly" not in item.flags:  # PFCOUNT: see registry.py
            flags.append("write")
        elif item.first_key and item.reads_keys:
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
    if "blocking" in flags:
        categories.append("@blocking")
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
        b"flags": SetReply(
            [Status("not_key")]  # SSUBSCRIBE, SPUBLISH: a shard channel, placed like a key
            if "pubsub" in cmd.flags
            else [Status("RW"), Status("update")] if cmd.write else [Status("RO"), Status("access")]
        ),
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
