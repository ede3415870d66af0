"""Every error kvserver can report, and every message string it uses.

Two kinds of error, as in Redis:

* ``CommandError``: the request was understood but cannot be carried out
  (wrong arity, not an integer, unknown command...). It becomes an error reply
  and the connection goes on.
* ``ProtocolError``: the byte stream itself is unusable (a line past the size
  limit, a RESP frame that does not parse). It gets one error reply and then
  that connection, and only that one, is closed.

Messages are Redis 7's wording so that clients and people who know Redis see
what they expect. They live here and nowhere else; code refers to the
constants or the small builder functions below.
"""

from __future__ import annotations


class KvError(Exception):
    """Base for errors whose text is sent to a client as an error reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message  # full text with its prefix, e.g. "ERR syntax error"


class CommandError(KvError):
    """A reply-level error: answered, and the connection continues."""


class ProtocolError(KvError):
    """A stream-level error: answered, then the connection is closed."""


class AofError(Exception):
    """The append-only log cannot be opened, read or written."""


class AofCorruptError(AofError):
    """A record in the middle of the log is damaged: start-up must stop."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(
            f"Bad file format reading the append only file {path!s} at byte offset "
            f"{offset}: {reason}. Make a backup of the file, then repair it with "
            f"'kv-check-aof --fix {path!s}'"
        )
        self.path = path
        self.offset = offset
        self.reason = reason


# --- command errors (replies) ---------------------------------------------

SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
UNBALANCED_QUOTES = "ERR Protocol error: unbalanced quotes in request"
INTERNAL_ERROR = "ERR internal error, see the server log"
DB_INDEX_OUT_OF_RANGE = "ERR DB index is out of range"
EXPIRE_NX_CONFLICT = "ERR NX and XX, GT or LT options at the same time are not compatible"
EXPIRE_GT_LT_CONFLICT = "ERR GT and LT options at the same time are not compatible"


def unsupported_option(option: bytes) -> str:
    return f"ERR Unsupported option {_text(option)}"


def unknown_command(name: bytes, args: list[bytes]) -> CommandError:
    """Redis 7's text, byte for byte: each argument quoted and followed by a
    space, the list cut once it passes 128 characters, CR/LF blanked out."""
    shown = ""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += "'" + _text(arg)[: 128 - len(shown)] + "' "
    message = f"ERR unknown command '{_text(name)[:128]}', with args beginning with: {shown}"
    return CommandError(message.replace("\r", " ").replace("\n", " "))


def wrong_arity(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def invalid_expire(name: str) -> CommandError:
    return CommandError(f"ERR invalid expire time in '{name}' command")


def log_write_failed(reason: str) -> CommandError:
    # Redis answers writes with -MISCONF when it cannot persist; the reason
    # tells the operator what the disk said.
    return CommandError(
        "MISCONF Errors writing to the AOF file: " + reason
    )


# --- protocol errors (reply, then close) ----------------------------------

TOO_BIG_INLINE = "ERR Protocol error: too big inline request"


def protocol_error(detail: str) -> ProtocolError:
    return ProtocolError(f"ERR Protocol error: {detail}")


def _text(raw: bytes) -> str:
    """Bytes as Redis prints them inside an error message (lossy, for humans)."""
    return raw.decode("utf-8", "replace")
