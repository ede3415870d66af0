"""Server commands: TIME, LASTSAVE, SAVE, BGSAVE, WAIT, ROLE, DEBUG, MEMORY.

Small commands about the server process itself, with Redis 7.0's reply
shapes. The larger server-side groups live next door: COMMAND in
``introspection.py``, CONFIG in ``configcmd.py``, INFO in ``info.py``.

These commands read ``session.server`` (state.py) and take no locks of
their own.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading

from kvserver import errors
from kvserver.commands.containers import container
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import ADMIN_FLAGS, command
from kvserver.errors import CommandError
from kvserver.protocol import NO_REPLY, OK, Status
from kvserver.rdbsave import SaveInProgress
from kvserver.session import Session
from kvserver.values import memory as memory_estimate

log = logging.getLogger(__name__)

# -- TIME, LASTSAVE, SAVE, BGSAVE, WAIT, ROLE -------------------------------------------------


@command("time", 1, flags=("loading", "stale", "fast"))
def time_(session: Session, args: list[bytes]) -> object:
    """TIME

    The server's clock: Unix seconds and microseconds (to the millisecond).
    """
    seconds, ms = divmod(session.now, 1000)
    return [b"%d" % seconds, b"%d" % (ms * 1000)]


@command("lastsave", 1, flags=("loading", "stale", "fast"))
def lastsave(session: Session, args: list[bytes]) -> object:
    """LASTSAVE

    Unix time of the last successful SAVE or BGSAVE (start-up time if none).
    """
    return session.server.saver.last_save_time


@command("save", 1, flags=("admin", "noscript", "no_async_loading", "no_multi"))
def save(session: Session, args: list[bytes]) -> object:
    """SAVE

    Write the RDB file (dir/dbfilename) now and reply once it is on disk
    (kvserver/rdbsave.py). Only this client waits: the others go on, the
    file holds the keyspace as it was when the save began.
    """
    saver = session.server.saver
    try:
        saver.save()
    except SaveInProgress:
        raise CommandError(errors.BGSAVE_IN_PROGRESS) from None
    except OSError:
        raise CommandError(errors.SAVE_FAILED) from None
    return OK


@command("bgsave", -1, flags=("admin", "noscript", "no_async_loading"))
def bgsave(session: Session, args: list[bytes]) -> object:
    """BGSAVE [SCHEDULE]

    Write the RDB file in the background ("Background saving started");
    INFO persistence shows its progress and outcome. A save under way is
    refused; SCHEDULE is accepted and, as nothing else blocks a save here
    (a log rewrite may run meanwhile), starts it at once.
    """
    if len(args) > 1 or (args and args[0].upper() != b"SCHEDULE"):
        raise CommandError(errors.SYNTAX)
    try:
        session.server.saver.start()
    except SaveInProgress:
        raise CommandError(errors.BGSAVE_IN_PROGRESS) from None
    return Status("Background saving started")


@command("wait", 3, flags=("noscript",))
def wait(session: Session, args: list[bytes]) -> object:
    """WAIT numreplicas timeout

    0 at once: there are no replicas to wait for. (Redis would block for
    ``timeout`` when asked for more than it has.)
    """
    parse_int(args[0])
    try:
        timeout = parse_int(args[1])
    except CommandError:
        raise CommandError(errors.TIMEOUT_NOT_INTEGER) from None
    if timeout < 0:
        raise CommandError(errors.TIMEOUT_NEGATIVE)
    return 0


@command("role", 1, flags=("noscript", "loading", "stale", "fast"))
def role(session: Session, args: list[bytes]) -> object:
    """ROLE

    Always a master with no replicas: master, replication offset 0, [].
    """
    return [b"master", 0, []]


# -- SHUTDOWN ------------------------------------------------------------------------------


@command(
    "shutdown",
    -1,
    flags=("admin", "noscript", "loading", "stale", "no_multi", "allow_busy"),
)
def shutdown(session: Session, args: list[bytes]) -> object:
    """SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]

    With SAVE, write the RDB file first (refused if that fails, unless
    FORCE); without, no RDB file is written (there are no save points).
    Then stop the server as SIGTERM does: stop accepting, finish within
    shutdown-timeout, flush, fsync and close the log, exit 0. The caller
    gets no reply: the connection closes. It works while a script is busy
    (the way out of an -UNKILLABLE script): that script's writes were never
    acknowledged nor logged, and are dropped.
    """
    words = {arg.upper() for arg in args}
    if len(words) != len(args) or not words <= {b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"}:
        raise CommandError(errors.SYNTAX)
    if {b"NOSAVE", b"SAVE"} <= words or (b"ABORT" in words and len(words) > 1):
        raise CommandError(errors.SYNTAX)
    if b"ABORT" in words:
        raise CommandError(errors.NO_SHUTDOWN_IN_PROGRESS)  # ours never waits for replicas
    server = session.server
    if server is None or server.request_shutdown is None:
        raise CommandError(errors.SHUTDOWN_FAILED)
    if b"SAVE" in words:
        # Save first, as Redis's prepareForShutdown (a BGSAVE under way is
        # let finish, then the file is written again, with the latest writes).
        log.warning("Saving the final RDB snapshot before exiting.")
        server.saver.wait()
        try:
            server.saver.save()
        except (SaveInProgress, OSError) as exc:
            log.warning("Error trying to save the DB, can't exit: %s", exc)
            if b"FORCE" not in words:
                raise CommandError(errors.SHUTDOWN_FAILED) from None
    log.warning("User requested shutdown...")
    server.request_shutdown()
    session.conn.close_after_reply()  # no reply: the connection ends with the server
    return NO_REPLY


# -- DEBUG ---------------------------------------------------------------------------------

# strtod's leading number, which is all DEBUG SLEEP reads of its argument.
_STRTOD = re.compile(
    rb"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE
)
DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "SLEEP <seconds>",
    "    Stop this connection for <seconds> (a decimal number); other clients go on.",
    "HELP",
    "    Prints this help.",
]


@command("debug", -2, flags=ADMIN_FLAGS)
def debug(session: Session, args: list[bytes]) -> object:
    """DEBUG SLEEP seconds | HELP

    Only SLEEP: it stops this connection's worker, holding no lock, so
    unlike Redis's it does not stop the other clients; and a shutdown
    wakes it.
    """
    sub = args[0].upper()
    if sub == b"HELP" and len(args) == 1:
        return [Status(line) for line in DEBUG_HELP]
    if sub == b"SLEEP" and len(args) == 2:
        match = _STRTOD.match(args[1])
        seconds = float(match.group()) if match else 0.0
        if not math.isnan(seconds) and seconds > 0:
            # The one command that waits: a debugging aid, on this
            # connection's own thread (see the docstring). A shutdown ends
            # the wait: unlike Redis's, this one would otherwise hold the
            # shutdown up (Redis's shutdown does not wait for clients).
            (session.server.stopping if session.server else threading.Event()).wait(
                min(seconds, DEBUG_SLEEP_MAX_SECONDS)
            )
        return OK
    raise errors.subcommand_syntax(args[0], "debug")


# A wait must be finite (threading.TIMEOUT_MAX): "DEBUG SLEEP inf" sleeps this long.
DEBUG_SLEEP_MAX_SECONDS = 365 * 24 * 3600.0


# -- MEMORY --------------------------------------------------------------------------------

MEMORY = container("memory")


@command("memory", -2)
def memory(session: Session, args: list[bytes]) -> object:
    """MEMORY subcommand [argument ...]

    Memory figures; MEMORY HELP lists the subcommands.
    """
    return MEMORY.run(session, args)


@MEMORY.subcommand("usage", -3, flags=("readonly",))
def memory_usage(session: Session, args: list[bytes]) -> object:
    """MEMORY USAGE key [SAMPLES count]

    Estimated bytes held for a key and its value (nil if missing). Values
    are measured whole; SAMPLES is accepted and has nothing to sample.
    """
    key, options = args[0], args[1:]
    i = 0
    while i < len(options):
        if options[i].upper() == b"SAMPLES" and i + 1 < len(options):
            if parse_int(options[i + 1]) < 0:
                raise CommandError(errors.SYNTAX)
            i += 2
        else:
            raise CommandError(errors.SYNTAX)
    value = session.db.lookup(key, session.now)
    if value is None:
        return None
    # A string as CPython holds it; a container by its own estimate.
    size = sys.getsizeof(key) + (sys.getsizeof(value) if type(value) is bytes else memory_estimate(value))
    if key in session.db.expires:
        size += sys.getsizeof(2**40)
    return size
