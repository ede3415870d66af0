"""Passwords out of what the server shows of a command (SLOWLOG, MONITOR).

Redis 7 shows AUTH's arguments, HELLO's AUTH username and password and
CONFIG SET requirepass's value as ``(redacted)``. One rule for both
places; it redacts at least what Redis does, and more where Redis would
leak (an AUTH with too many arguments, a HELLO whose other options are
bad, ``HELLO 3 AUTH x`` missing its password).
"""

from __future__ import annotations

REDACTED = b"(redacted)"  # what Redis 7 shows instead of a password


def redacted(args: list[bytes]) -> list[bytes]:
    """``args`` (name first) with passwords replaced; ``args`` itself when
    there is nothing to hide."""
    name = args[0].upper()
    if name == b"AUTH":
        return [args[0]] + [REDACTED] * (len(args) - 1)
    if name == b"HELLO":
        shown = list(args)
        for i in range(2, len(args)):  # after the protocol version
            if args[i].upper() == b"AUTH" and shown[i] is not REDACTED:
                shown[i + 1 : i + 3] = [REDACTED] * len(shown[i + 1 : i + 3])  # username, password
        return shown
    if name == b"CONFIG" and len(args) > 2 and args[1].upper() == b"SET":
        shown = list(args)
        for i in range(2, len(shown) - 1, 2):
            if shown[i].lower() == b"requirepass":
                shown[i + 1] = REDACTED
        return shown
    return args
