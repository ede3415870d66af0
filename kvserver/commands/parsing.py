"""Argument parsing shared by commands, strict the way Redis is."""

from __future__ import annotations

import re

from kvserver import errors
from kvserver.errors import CommandError

# Redis's string2ll: optional minus, no plus, no spaces, no leading zeros.
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]*)\Z")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def parse_int(raw: bytes) -> int:
    """A signed 64-bit integer argument, or ``ERR value is not an integer...``."""
    if _INTEGER.match(raw):
        value = int(raw)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise CommandError(errors.NOT_INTEGER)
