"""MONITOR, and the feed its clients get: a line per command run.

``monitor`` switches its connection to MONITOR mode
(``session.conn.enter_mode``); its worker then serves it as a monitor
(client.py: what it may still send, and the sending of the feed within the
output limits). ``feed_monitors`` is what
``Dispatcher.execute`` calls after each command while anyone monitors.

The line is Redis 7.0's, byte for byte but for the time and the port::

    +1339518083.107412 [0 127.0.0.1:60866] "keys" "*"

the time the command finished, the database it left the client in, the
client's address, then every argument as sent, quoted (sdscatrepr). The
text port sends the same line without the ``+``. As in Redis 7.0:

* commands refused before they run (unknown, wrong arity, NOAUTH, OOM) and
  admin commands (CONFIG, CLIENT LIST/KILL, DEBUG, MONITOR...) are not
  shown;
* AUTH's arguments and HELLO's AUTH username and password are shown as
  ``"(redacted)"`` (redact.py, the rule SLOWLOG uses too; kvserver redacts
  them even where 7.0 would not: an AUTH with too many arguments, a HELLO
  with a bad version).
"""

from __future__ import annotations

import time

from kvserver import errors
from kvserver.commands.containers import CONTAINERS
from kvserver.commands.registry import Command, command
from kvserver.errors import CommandError
from kvserver.protocol import OK, Status
from kvserver.redact import redacted
from kvserver.session import MONITOR, Session

# Redis's sdscatrepr: printable ASCII as it is, \\ \" \n \r \t \a \b, and
# \xHH (lower case) for any other byte.
_ESCAPES = {0x5C: "\\\\", 0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x07: "\\a", 0x08: "\\b"}
_REPR = [_ESCAPES.get(b, chr(b) if 0x20 <= b <= 0x7E else "\\x%02x" % b) for b in range(256)]


@command("monitor", 1, flags=("admin", "noscript", "loading", "stale"))
def monitor(session: Session, args: list[bytes]) -> object:
    """MONITOR

    Stream every command the server runs, as it runs, to this connection,
    until QUIT or RESET.
    """
    if session.group is not None:  # inside EXEC (or a script): Redis refuses
        raise CommandError(errors.MONITOR_IN_TRANSACTION)
    session.conn.enter_mode(MONITOR)  # gets the feed from now on
    return OK


def feed_monitors(monitors: tuple, cmd: Command, session: Session, args: list[bytes]) -> None:
    """Give every monitor the line for ``args``, which ``session`` has just
    run; never blocks (each monitor's worker sends its lines)."""
    flags = cmd.flags
    found = CONTAINERS.get(cmd.name)
    if found is not None:  # CLIENT, CONFIG, ...: the subcommand decides
        sub = found.subcommands.get(args[1].upper()) if len(args) > 1 else None
        if sub is None:
            return  # Redis refuses an unknown subcommand before it runs
        argc = len(args)
        if argc != sub.arity if sub.arity >= 0 else argc < -sub.arity:
            return  # and one with the wrong arity
        flags = sub.flags
    if "admin" in flags or "skip_monitor" in flags:
        return
    line = Status(monitor_line(session, args, time.time_ns() // 1000))
    size = len(line)
    for conn in monitors:
        conn.push(line, size)


def monitor_line(session: Session, args: list[bytes], now_us: int) -> str:
    """The feed's line for ``args`` run by ``session`` (without ``+``)."""
    shown = redacted(args)
    table = _REPR
    quoted = ['"' + "".join([table[b] for b in arg]) + '"' for arg in shown]
    seconds, micros = divmod(now_us, 1_000_000)
    return f"{seconds}.{micros:06d} [{session.db.index} {session.peer}] " + " ".join(quoted)
