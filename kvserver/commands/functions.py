"""FUNCTION (LOAD, LIST, DELETE, FLUSH, STATS, KILL, DUMP, RESTORE), FCALL and FCALL_RO, as Redis 7.0.

Libraries live on the keyspace's scripting engine (kvserver/scripting/
functions.py), server-wide. LOAD, DELETE, FLUSH and RESTORE change them
inside ``Dispatcher.run_atomic`` (write lock, undo journal) and are logged
as the client sent them, as Redis's AOF has them; the rewrite writes one
FUNCTION LOAD per library. FCALL runs a function as one atomic unit, like
EVAL (commands/scripting.py).
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.containers import container
from kvserver.commands.glob import matches as glob_match
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.registry import command
from kvserver.commands.scripting import _EVAL_FLAGS, _numkeys_keys, kill, split_keys
from kvserver.errors import CommandError
from kvserver.protocol import OK, SetReply, Status
from kvserver.scripting import engine_for
from kvserver.session import Session

FUNCTION = container("function")

_WRITE_FLAGS = ("write", "noscript")


def _fcall(session: Session, args: list[bytes], readonly: bool) -> object:
    keys, argv = split_keys(args[1:])
    engine = engine_for(session.keyspace)
    function = engine.libraries.functions.get(args[0].decode("utf-8", "replace"))
    if function is None:
        raise CommandError(errors.FUNCTION_NOT_FOUND)
    if readonly and "no-writes" not in function.flags:
        raise CommandError(errors.SCRIPT_RO_WITH_WRITE_FLAG)
    name = b"fcall_ro" if readonly else b"fcall"

    def body(call):
        return engine.run_function(session, call, function, keys, argv, readonly, [name, *args])

    return session.dispatcher.run_atomic(session, body)


@command("fcall", -3, flags=_EVAL_FLAGS)
def fcall(session: Session, args: list[bytes]) -> object:
    """FCALL function numkeys [key ...] [arg ...]

    Invoke a function.
    """
    return _fcall(session, args, readonly=False)


@command("fcall_ro", -3, flags=("readonly",) + _EVAL_FLAGS)
def fcall_ro(session: Session, args: list[bytes]) -> object:
    """FCALL_RO function numkeys [key ...] [arg ...]

    Invoke a read-only function.
    """
    return _fcall(session, args, readonly=True)


KEY_FINDERS["fcall"] = KEY_FINDERS["fcall_ro"] = _numkeys_keys


@command("function", -2)
def function_(session: Session, args: list[bytes]) -> object:
    """FUNCTION subcommand [argument ...]

    Function libraries; FUNCTION HELP lists the subcommands.
    """
    return FUNCTION.run(session, args)


def _change(session: Session, record: list[bytes], change) -> object:
    """Run ``change()`` on the libraries as an atomic unit that logs
    ``record``: rolled back if the log cannot be written."""

    def body(call):
        reply = change()
        # The unit's effects, in run_atomic's (database, records) form.
        session.group.append((session.db.index, [record]))
        return reply

    return session.dispatcher.run_atomic(session, body)


@FUNCTION.subcommand("load", -3, flags=("write", "denyoom", "noscript"))
def function_load(session: Session, args: list[bytes]) -> object:
    """FUNCTION LOAD [REPLACE] function-code

    Create a new library with the given library name and code.
    """
    replace = False
    if len(args) == 2:
        if args[0].upper() != b"REPLACE":
            raise errors.function_list_unknown(args[0])
        replace = True
    elif len(args) != 1:
        raise CommandError(errors.SYNTAX)
    libraries = engine_for(session.keyspace).libraries
    code = args[-1]
    return _change(
        session,
        [b"FUNCTION", b"LOAD", *args],
        lambda: libraries.load(code, replace).encode(),
    )


@FUNCTION.subcommand("delete", 3, flags=_WRITE_FLAGS)
def function_delete(session: Session, args: list[bytes]) -> object:
    """FUNCTION DELETE library-name

    Delete the given library.
    """
    libraries = engine_for(session.keyspace).libraries
    name = args[0].decode("utf-8", "replace")
    if name not in libraries.libraries:
        raise CommandError(errors.LIBRARY_NOT_FOUND)

    def change():
        libraries.delete(name)
        return OK

    return _change(session, [b"FUNCTION", b"DELETE", args[0]], change)


@FUNCTION.subcommand("flush", -2, flags=_WRITE_FLAGS)
def function_flush(session: Session, args: list[bytes]) -> object:
    """FUNCTION FLUSH [ASYNC|SYNC]

    Delete all the libraries.
    """
    if len(args) > 1 or (args and args[0].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(errors.FUNCTION_FLUSH_OPTION)
    libraries = engine_for(session.keyspace).libraries

    def change():
        libraries.flush()
        return OK

    return _change(session, [b"FUNCTION", b"FLUSH", *args], change)


@FUNCTION.subcommand("restore", -3, flags=("write", "denyoom", "noscript"))
def function_restore(session: Session, args: list[bytes]) -> object:
    """FUNCTION RESTORE serialized-value [FLUSH|APPEND|REPLACE]

    Restore the libraries represented by the given payload (default APPEND).
    """
    if len(args) > 2:
        raise CommandError(errors.SYNTAX)
    policy = args[1].upper().decode("latin-1") if len(args) == 2 else "APPEND"
    if policy not in ("FLUSH", "APPEND", "REPLACE"):
        raise CommandError(errors.FUNCTION_RESTORE_POLICY)
    libraries = engine_for(session.keyspace).libraries

    def change():
        libraries.restore(args[0], policy)
        return OK

    return _change(session, [b"FUNCTION", b"RESTORE", *args], change)


@FUNCTION.subcommand("dump", 2, flags=("noscript",))
def function_dump(session: Session, args: list[bytes]) -> object:
    """FUNCTION DUMP

    Return a serialized payload representing the current libraries.
    """
    return engine_for(session.keyspace).libraries.dump()


@FUNCTION.subcommand("list", -2, flags=("noscript",))
def function_list(session: Session, args: list[bytes]) -> object:
    """FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]

    Return general information on all the libraries.
    """
    with_code = False
    pattern = None
    index = 0
    while index < len(args):
        arg = args[index].upper()
        if arg == b"WITHCODE" and not with_code:
            with_code = True
        elif arg == b"LIBRARYNAME" and pattern is None:
            if index + 1 >= len(args):
                raise CommandError(errors.FUNCTION_LIST_NO_PATTERN)
            index += 1
            pattern = args[index]
        else:
            raise errors.function_list_unknown(args[index])
        index += 1
    found = []
    for library in engine_for(session.keyspace).libraries.libraries.values():
        name = library.name.encode()
        if pattern is not None and not glob_match(pattern, name):
            continue
        entry = {
            b"library_name": name,
            b"engine": b"LUA",
            b"functions": [
                {
                    b"name": function.name.encode(),
                    b"description": function.description,
                    b"flags": SetReply(Status(flag) for flag in function.flags),
                }
                for function in library.functions.values()
            ],
        }
        if with_code:
            entry[b"library_code"] = library.code
        found.append(entry)
    return found


@FUNCTION.subcommand("stats", 2, flags=("noscript", "allow_busy"))
def function_stats(session: Session, args: list[bytes]) -> object:
    """FUNCTION STATS

    Return information about the function running now and the engines.
    """
    busy = session.keyspace.busy_script
    if busy is not None and busy.kind == "script":
        raise CommandError(errors.BUSY_SCRIPT)  # as Redis: an EVAL is not a function
    running = None
    if busy is not None:
        running = {
            b"name": busy.name.encode(),
            b"command": list(busy.argv),
            b"duration_ms": int(busy.elapsed_ms()),
        }
    libraries = engine_for(session.keyspace).libraries
    counts = {b"libraries_count": len(libraries.libraries), b"functions_count": len(libraries.functions)}
    return {b"running_script": running, b"engines": {b"LUA": counts}}


@FUNCTION.subcommand("kill", 2, flags=("noscript", "allow_busy"))
def function_kill(session: Session, args: list[bytes]) -> object:
    """FUNCTION KILL

    Kill the function currently in execution.
    """
    return kill(session, "function")
