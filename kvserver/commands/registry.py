"""The one list of commands: name -> function, arity, flags, key positions.

A command is a plain function ``(session, args) -> reply`` whose docstring's
first line is its syntax. Its registration declares what the dispatcher
needs to know to run it: arity, whether it writes (write lock, log), where
its keys are, what it does inside MULTI, and Redis's flags (``noscript``,
``no_multi``, ``allow_busy``, ``denyoom``, ...). ``args`` holds the arguments after the command
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
    # Mutates the keyspace: runs under the write lock, is logged. One also
    # flagged "readonly" is a command Redis calls read-only that may still
    # change a value (PFCOUNT caches its count in the HyperLogLog): it runs
    # as a write here and is reported and allowed (EVAL_RO) as a read.
    write: bool
    # Which arguments are keys (Redis's first_key/last_key/step, 1-based over
    # the full argument list; last -1 means "to the end"), for COMMAND INFO
    # and COMMAND GETKEYS.
    first_key: int
    last_key: int
    key_step: int
    # Redis's command flags beyond what ``write`` and the key positions say
    # ("fast", "admin", "noscript", ...), for COMMAND INFO. Optional.
    flags: tuple[str, ...] = ()
    # Inside MULTI a command is queued for EXEC, unless it is one of the
    # few Redis runs at once there (EXEC, DISCARD, MULTI, WATCH, QUIT,
    # RESET): those say ``in_multi="run"``. One flagged "no_multi" is
    # refused inside MULTI, and that fails the transaction.
    in_multi: str = "queue"
    # May run in a subscribed RESP2 connection: only (P|S)SUBSCRIBE,
    # (P|S)UNSUBSCRIBE, PING, QUIT and RESET say ``subscribed=True``; the
    # rest are refused there (client.py). RESP3 allows every command.
    subscribed: bool = False
    # A read of the keyspace (a key, or all of them): the dispatcher keeps
    # it from observing half of a write or transaction (store.py, seqlock).
    # Derived at registration; other reads (CLIENT, INFO...) need nothing.
    reads_keys: bool = False
    # Redis's "blocking" flag (BLPOP, XREAD...): may wait for keys
    # (kvserver/blocking.py); a read so flagged runs under the write lock.
    blocking: bool = False

    @property
    def syntax(self) -> str:
        return (self.func.__doc__ or self.name).strip().splitlines()[0]

    def keys(self, args: list[bytes]) -> list[bytes]:
        """The key arguments of a call (``args`` excludes the name)."""
        if not self.first_key:
            return []
        last = len(args) + 1 + self.last_key if self.last_key < 0 else self.last_key  # -2: BLPOP's timeout is no key
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
    in_multi: str = "queue",
    subscribed: bool = False,
    reads_keys: bool | None = None,
) -> Callable[[CommandFunc], CommandFunc]:
    """Register the decorated function as command ``name``.

    ``flags``: extra Redis command flags for COMMAND INFO (see Command);
    ``in_multi``: "queue" or "run" (see Command); ``subscribed``: allowed
    in a subscribed RESP2 connection (see Command); ``reads_keys``: whether
    it reads the keyspace (default: it names keys or is flagged readonly,
    and does not write).
    """
    if in_multi not in ("queue", "run"):
        raise ValueError(f"in_multi must be 'queue' or 'run', not {in_multi!r}")

    def register(func: CommandFunc) -> CommandFunc:
        key = name.upper().encode()
        if key in COMMANDS:
            raise ValueError(f"command {name} registered twice")
        reads = not write and (keys[0] > 0 or "readonly" in flags) if reads_keys is None else reads_keys
        COMMANDS[key] = Command(
            name.lower(), func, arity, write, *keys, flags=tuple(flags), in_multi=in_multi,
            subscribed=subscribed,
            reads_keys=reads,
            blocking="blocking" in flags,
        )
        return func

    return register
