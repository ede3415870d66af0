"""SLOWLOG and its subcommands (GET, LEN, RESET, HELP), as Redis 7.0.

The entries live in ``stats.SlowLog`` (``session.server.slowlog``); the
dispatcher records a command there once it has run for at least
slowlog-log-slower-than microseconds. As in Redis, what is logged is a
command that ran: one refused before running (unknown, wrong arity,
NOAUTH, OOM) is not, and passwords are shown as "(redacted)". kvserver
has no blocking commands, so the time logged is always the whole run.
"""

from __future__ import annotations

import dataclasses

from kvserver import errors
from kvserver.commands.containers import container
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import OK, Status
from kvserver.session import Session

SLOWLOG = container("slowlog")

DEFAULT_GET_COUNT = 10  # Redis's: SLOWLOG GET with no count

# Redis's flags for SLOWLOG GET, LEN and RESET (HELP has no "admin").
_FLAGS = ("admin", "loading", "stale")

# Redis 7.0's text, line for line: GET's entry has more to say than the
# one-line summaries Container builds HELP from.
SLOWLOG_HELP = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
]


@command("slowlog", -2)
def slowlog(session: Session, args: list[bytes]) -> object:
    """SLOWLOG subcommand [argument ...]

    The commands that took longest; SLOWLOG HELP lists the subcommands.
    """
    if len(args) > 2 and args[0].upper() == b"GET":
        # Redis's arity for slowlog|get is -2, and its own check says this.
        raise errors.subcommand_syntax(args[0], "slowlog")
    return SLOWLOG.run(session, args)


@SLOWLOG.subcommand("get", -2, flags=_FLAGS)
def slowlog_get(session: Session, args: list[bytes]) -> object:
    """SLOWLOG GET [count]

    The newest count entries (default 10, -1 for all), newest first: id,
    Unix time, microseconds, arguments, client address, client name.
    """
    count = DEFAULT_GET_COUNT
    if args:
        try:
            count = parse_int(args[0])
        except CommandError:
            raise CommandError(errors.SLOWLOG_COUNT) from None
        if count < -1:
            raise CommandError(errors.SLOWLOG_COUNT)
    log = session.server.slowlog
    entries = log.newest(len(log) if count == -1 else count)
    return [[id_, when, usec, list(argv), peer, name] for id_, when, usec, argv, peer, name in entries]


@SLOWLOG.subcommand("len", 2, flags=_FLAGS)
def slowlog_len(session: Session, args: list[bytes]) -> object:
    """SLOWLOG LEN

    How many entries the slow log holds.
    """
    return len(session.server.slowlog)


@SLOWLOG.subcommand("reset", 2, flags=_FLAGS)
def slowlog_reset(session: Session, args: list[bytes]) -> object:
    """SLOWLOG RESET

    Empty the slow log (entry ids keep counting).
    """
    session.server.slowlog.reset()
    return OK


def slowlog_help(session: Session, args: list[bytes]) -> object:
    """HELP

    Prints this help.
    """
    return [Status(line) for line in SLOWLOG_HELP]


# Redis's own HELP text in place of the one Container builds.
SLOWLOG.subcommands[b"HELP"] = dataclasses.replace(
    SLOWLOG.subcommands[b"HELP"], func=slowlog_help, flags=("loading", "stale")
)
