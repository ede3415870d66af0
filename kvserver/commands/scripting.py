"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD, EXISTS, FLUSH, KILL), as Redis 7.0.

A script runs as one atomic unit (``Dispatcher.run_atomic``): nothing
else runs meanwhile, and the log gets the writes it made, a MULTI ... EXEC
group when there are several, never the EVAL itself, so replaying the log
needs no script cache. The Lua side is ``kvserver/scripting``. These
commands are not "write" in the registry: the unit takes the write lock
itself, and SCRIPT KILL must get through while a script holds that lock.
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.containers import container
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import OK
from kvserver.scripting import engine_for
from kvserver.session import Session

# Redis 7.0's flags (COMMAND INFO): a script is refused inside a script,
# and its keys are named by numkeys.
_EVAL_FLAGS = ("noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys")

SCRIPT = container("script")


def split_keys(args: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """``numkeys key... arg...`` (after the script or sha) -> keys, args."""
    numkeys = parse_int(args[0])
    if numkeys > len(args) - 1:
        raise CommandError(errors.NUMKEYS_TOO_BIG)
    if numkeys < 0:
        raise CommandError(errors.NUMKEYS_NEGATIVE)
    return args[1 : 1 + numkeys], args[1 + numkeys :]


def _numkeys_keys(args: list[bytes]) -> list[bytes]:
    """COMMAND GETKEYS EVAL script numkeys key ...: the keys."""
    try:
        return split_keys(args[1:])[0]
    except CommandError:
        return []


def _run(session: Session, sha: bytes, args: list[bytes], readonly: bool) -> object:
    keys, argv = split_keys(args)
    engine = engine_for(session.keyspace)
    if sha not in engine.scripts:
        raise CommandError(errors.NOSCRIPT)
    flags = engine.script_flags(sha)
    if readonly and flags is not None and "no-writes" not in flags:
        raise CommandError(errors.SCRIPT_RO_WITH_WRITE_FLAG)

    def body(call):
        return engine.run_script(session, call, sha, keys, argv, readonly)

    return session.dispatcher.run_atomic(session, body)


@command("eval", -3, flags=_EVAL_FLAGS)
def eval_(session: Session, args: list[bytes]) -> object:
    """EVAL script numkeys [key ...] [arg ...]

    Run a Lua script (cached by its sha1 for EVALSHA).
    """
    split_keys(args[1:])  # numkeys is checked before the script compiles, as Redis
    sha = engine_for(session.keyspace).load_script(args[0])
    return _run(session, sha, args[1:], readonly=False)


@command("evalsha", -3, flags=_EVAL_FLAGS)
def evalsha(session: Session, args: list[bytes]) -> object:
    """EVALSHA sha1 numkeys [key ...] [arg ...]

    Run a cached script by its sha1.
    """
    return _run(session, args[0].lower(), args[1:], readonly=False)


@command("eval_ro", -3, flags=("readonly",) + _EVAL_FLAGS)
def eval_ro(session: Session, args: list[bytes]) -> object:
    """EVAL_RO script numkeys [key ...] [arg ...]

    Run a read-only Lua script.
    """
    split_keys(args[1:])
    sha = engine_for(session.keyspace).load_script(args[0])
    return _run(session, sha, args[1:], readonly=True)


@command("evalsha_ro", -3, flags=("readonly",) + _EVAL_FLAGS)
def evalsha_ro(session: Session, args: list[bytes]) -> object:
    """EVALSHA_RO sha1 numkeys [key ...] [arg ...]

    Run a cached read-only script by its sha1.
    """
    return _run(session, args[0].lower(), args[1:], readonly=True)


for _name in ("eval", "evalsha", "eval_ro", "evalsha_ro"):
    KEY_FINDERS[_name] = _numkeys_keys


@command("script", -2)
def script(session: Session, args: list[bytes]) -> object:
    """SCRIPT subcommand [argument ...]

    The script cache; SCRIPT HELP lists the subcommands.
    """
    return SCRIPT.run(session, args)


@SCRIPT.subcommand("load", 3, flags=("noscript", "stale"))
def script_load(session: Session, args: list[bytes]) -> object:
    """SCRIPT LOAD script

    Load a script into the scripts cache without executing it.
    """
    return engine_for(session.keyspace).load_script(args[0])


@SCRIPT.subcommand("exists", -3, flags=("noscript",))
def script_exists(session: Session, args: list[bytes]) -> object:
    """SCRIPT EXISTS sha1 [sha1 ...]

    Return information about the existence of the scripts in the script cache.
    """
    scripts = engine_for(session.keyspace).scripts
    return [int(sha.lower() in scripts) for sha in args]


@SCRIPT.subcommand("flush", -2, flags=("noscript",))
def script_flush(session: Session, args: list[bytes]) -> object:
    """SCRIPT FLUSH [ASYNC|SYNC]

    Flush the Lua scripts cache.
    """
    if len(args) > 1 or (args and args[0].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(errors.SCRIPT_FLUSH_OPTION)
    engine_for(session.keyspace).flush_scripts()
    return OK


@SCRIPT.subcommand("kill", 2, flags=("noscript", "allow_busy"))
def script_kill(session: Session, args: list[bytes]) -> object:
    """SCRIPT KILL

    Kill the currently executing Lua script.
    """
    return kill(session, "script")


def kill(session: Session, asked: str) -> object:
    """SCRIPT KILL / FUNCTION KILL: stop the running script if it has not
    written (runs without the write lock, which the script holds)."""
    busy = session.keyspace.busy_script
    if busy is None:
        raise CommandError(errors.NOTBUSY)
    if busy.wrote:
        raise CommandError(errors.UNKILLABLE)
    if asked != busy.kind:  # Redis's order: UNKILLABLE first, then the kind
        raise CommandError(errors.BUSY_FUNCTION if busy.kind == "function" else errors.BUSY_SCRIPT)
    busy.killed = True
    return OK
