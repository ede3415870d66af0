"""String commands: SET, GET."""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import OK
from kvserver.session import Session


@command("set", -3, write=True, keys=(1, 1, 1))
def set_(session: Session, args: list[bytes]) -> object:
    """SET key value

    Store ``value`` under ``key``, replacing any value and clearing any TTL.
    """
    if len(args) != 2:
        raise CommandError(errors.SYNTAX)  # SET's options come with RESP (issue 4)
    key, value = args
    session.db.set(key, value)
    session.log(b"SET", key, value)
    return OK


@command("get", 2, keys=(1, 1, 1))
def get(session: Session, args: list[bytes]) -> object:
    """GET key

    The value of ``key``, or nil if it is missing or expired.
    """
    return session.db.lookup(args[0], session.now)
