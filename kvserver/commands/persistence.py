"""Persistence commands: BGREWRITEAOF."""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import Status
from kvserver.session import Session

REWRITE_STARTED = Status("Background append only file rewriting started")


@command("bgrewriteaof", 1)
def bgrewriteaof(session: Session, args: list[bytes]) -> object:
    """BGREWRITEAOF

    Rewrite the log as one SET per key, in the background (see rewrite.py).
    """
    rewriter = session.server.rewriter
    if not rewriter.start():
        raise CommandError(errors.REWRITE_IN_PROGRESS)
    return REWRITE_STARTED
