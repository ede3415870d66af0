"""The one list of commands: name -> function, arity, flags, key positions.

A command is a plain function ``(session, args) -> reply`` whose docstring's
first line is its syntax. ``args`` holds the arguments after the command
name. It reads the database through ``session.db`` and the time through
``session.now``; a write command records what must be logged with
``session.log(...)``. Errors are raised as ``CommandError``. Commands do no
I/O and take no locks: the dispatcher does both around them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kvserver.session import Session

CommandFunc = Callable[[Session, list[bytes]], object]


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # lower case, as Redis reports it
    func: CommandFunc
    # Redis's convention, counting the name itself: N means exactly N
    # arguments, -N means at least N.
    arity: int
    write: bool  # mutates the keyspace: runs under the write lock, is logged
    # Which arguments are keys (Redis's first_key/last_key/step, 1-based over
    # the full argument list; last -1 means "to the end"), for COMMAND INFO
    # and COMMAND GETKEYS.
    first_key: int
    last_key: int
    key_step: int
    # Redis's command flags beyond what ``write`` and the key positions say
    # ("fast", "admin", "noscript", ...), for COMMAND INFO. Optional.
    flags: tuple[str, ...] = ()

    @property
    def syntax(self) -> str:
        return (self.func.__doc__ or self.name).strip().splitlines()[0]

    def keys(self, args: list[bytes]) -> list[bytes]:
        """The key arguments of a call (``args`` excludes the name)."""
        if not self.first_key:
            return []
        last = len(args) if self.last_key < 0 else self.last_key
        return args[self.first_key - 1 : last : self.key_step]

    def arity_ok(self, argc: int) -> bool:
        """``argc`` counts the command name, as arity does."""
        return argc == self.arity if self.arity >= 0 else argc >= -self.arity


# Redis's flags for its admin commands (CONFIG's subcommands, DEBUG).
ADMIN_FLAGS = ("admin", "noscript", "loading", "stale")

COMMANDS: dict[bytes, Command] = {}  # upper-case name -> Command


def command(
    name: str,
    arity: int,
    *,
    write: bool = False,
    keys: tuple[int, int, int] = (0, 0, 0),
    flags: tuple[str, ...] = (),
) -> Callable[[CommandFunc], CommandFunc]:
    """Register the decorated function as command ``name``.

    ``flags``: extra Redis command flags for COMMAND INFO (see Command).
    """

    def register(func: CommandFunc) -> CommandFunc:
        key = name.upper().encode()
        if key in COMMANDS:
            raise ValueError(f"command {name} registered twice")
        COMMANDS[key] = Command(name.lower(), func, arity, write, *keys, flags=tuple(flags))
        return func

    return register
