"""Container commands (CLIENT, CONFIG, COMMAND, MEMORY): one
registered command whose first argument picks a subcommand.

Redis 7 declares each subcommand with its own arity and reports it by its
full name (``client|setname``) in arity errors, CLIENT LIST's ``cmd=``,
COMMAND INFO and COMMAND LIST; ``Container`` keeps that table. Each
subcommand is still one small function with its syntax line first in its
docstring, and HELP is built from those docstrings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kvserver import errors
from kvserver.commands.registry import CommandFunc
from kvserver.protocol import Status
from kvserver.session import Session


@dataclass(frozen=True, slots=True)
class Subcommand:
    name: str  # full name, lower case: "client|setname"
    func: CommandFunc  # (session, arguments after the subcommand) -> reply
    # Redis's convention, counting the container and the subcommand names:
    # CLIENT SETNAME name is 3.
    arity: int
    flags: tuple[str, ...] = ()

    @property
    def syntax(self) -> str:
        return (self.func.__doc__ or self.name).strip().splitlines()[0]

    @property
    def summary(self) -> str:
        return _summary(self.func.__doc__ or "")


class Container:
    """The subcommands of one container command, by upper-case name."""

    def __init__(self, name: str) -> None:
        self.name = name  # lower case, as registered
        self.subcommands: dict[bytes, Subcommand] = {}
        self.subcommand("help", 2)(self._help)

    def subcommand(
        self, name: str, arity: int, *, flags: tuple[str, ...] = ()
    ) -> Callable[[CommandFunc], CommandFunc]:
        """Register the decorated function as ``<container> <name>``."""

        def register(func: CommandFunc) -> CommandFunc:
            key = name.upper().encode()
            if key in self.subcommands:
                raise ValueError(f"subcommand {self.name} {name} registered twice")
            self.subcommands[key] = Subcommand(f"{self.name}|{name.lower()}", func, arity, flags)
            return func

        return register

    def run(self, session: Session, args: list[bytes]) -> object:
        """Run the subcommand ``args[0]`` with the rest of ``args``."""
        sub = self.subcommands.get(args[0].upper())
        if sub is None:
            raise errors.unknown_subcommand(args[0], self.name)
        argc = len(args) + 1  # the container's name counts too
        if argc != sub.arity if sub.arity >= 0 else argc < -sub.arity:
            raise errors.wrong_arity(sub.name)
        session.last_command = sub.name
        return sub.func(session, args[1:])

    def _help(self, session: Session, args: list[bytes]) -> object:
        """HELP

        Prints this help.
        """
        upper = self.name.upper()
        lines = [f"{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
        subs = sorted(self.subcommands.values(), key=lambda s: (s.name.endswith("|help"), s.name))
        for sub in subs:
            syntax = sub.syntax
            if syntax.upper().startswith(upper + " "):
                syntax = syntax[len(upper) + 1 :]
            lines.append(syntax)
            lines.append("    " + (sub.summary or "(no description)"))
        return [Status(line) for line in lines]


def _summary(doc: str) -> str:
    """The first line of a docstring's second paragraph (the syntax line is
    the first), or ""."""
    paragraphs = [p.strip() for p in doc.strip().split("\n\n")]
    if len(paragraphs) < 2 or not paragraphs[1]:
        return ""
    text = " ".join(line.strip() for line in paragraphs[1].splitlines())
    return text.replace("``", "")  # reST literals read as plain words in help


def summary_of(func: CommandFunc) -> str:
    return _summary(func.__doc__ or "")


CONTAINERS: dict[str, Container] = {}  # container name (lower case) -> Container


def container(name: str) -> Container:
    """A new Container, filed under ``name`` for COMMAND INFO / DOCS / LIST."""
    found = Container(name)
    CONTAINERS[name] = found
    return found
