"""Connection commands: PING, ECHO, QUIT, SELECT."""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import OK, PONG
from kvserver.session import Session


@command("ping", -1)
def ping(session: Session, args: list[bytes]) -> object:
    """PING [message]

    PONG, or ``message`` back.
    """
    if len(args) > 1:
        raise errors.wrong_arity("ping")
    return args[0] if args else PONG


@command("echo", 2)
def echo(session: Session, args: list[bytes]) -> object:
    """ECHO message"""
    return args[0]


@command("quit", -1)
def quit_(session: Session, args: list[bytes]) -> object:
    """QUIT

    OK, then the server closes the connection.
    """
    session.closing = True
    return OK


@command("select", 2)
def select(session: Session, args: list[bytes]) -> object:
    """SELECT index

    Use database ``index`` (0-15) for the rest of the connection.
    """
    index = parse_int(args[0])
    if not 0 <= index < len(session.keyspace.dbs):
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    session.db = session.keyspace.dbs[index]
    return OK
