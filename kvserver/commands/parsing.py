"""Argument parsing shared by commands, strict the way Redis is."""

from __future__ import annotations

import re

from kvserver import errors
from kvserver.errors import CommandError

# Redis's string2ll: optional minus, no plus, no spaces, no leading zeros,
# and no "-0" (string2ll rejects it too).
_INTEGER = re.compile(rb"(?:0|-?[1-9][0-9]*)\Z")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# The longest text of a 64-bit integer ("-9223372036854775808"). Checked
# before int(): a longer argument is out of range anyway, and int() refuses
# more than sys.get_int_max_str_digits() digits with a ValueError that would
# become an internal error instead of Redis's "not an integer" reply.
MAX_INT64_CHARS = 20


def parse_int(raw: bytes) -> int:
    """A signed 64-bit integer argument, or ``ERR value is not an integer...``."""
    if len(raw) <= MAX_INT64_CHARS and _INTEGER.match(raw):
        value = int(raw)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise CommandError(errors.NOT_INTEGER)


def parse_int32(raw: bytes, message: str | None = None) -> int:
    """A C int argument, as Redis's getIntFromObjectOrReply: ``message`` (if
    given) for anything wrong, else "not an integer" or "out of range"."""
    try:
        value = parse_int(raw)
    except CommandError:
        if message is None:
            raise
        raise CommandError(message) from None
    if not INT32_MIN <= value <= INT32_MAX:
        raise CommandError(message) if message else errors.out_of_range(INT32_MIN, INT32_MAX)
    return value
