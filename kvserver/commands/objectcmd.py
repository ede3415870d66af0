"""OBJECT and its subcommands (ENCODING, REFCOUNT, IDLETIME, FREQ, HELP):
what Redis tells about how it holds a key's value, answered from the value
model (values/__init__.py) with Redis 7.0's replies.

* ENCODING: ``values.encoding`` with the thresholds CONFIG SET changes
  (``keyspace.encodings``).
* REFCOUNT: 1, except a string that is an integer 0..9999, which Redis
  shares (OBJ_SHARED_INTEGERS) and reports as OBJ_SHARED_REFCOUNT.
* IDLETIME: 0. kvserver keeps no per-key access time: see the README
  ("What differs from Redis") for the measured cost and why.
* FREQ: Redis's error for a maxmemory-policy that is not LFU (kvserver's
  is always noeviction).
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.containers import Subcommand, container
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.protocol import Status
from kvserver.session import Session
from kvserver.values import encoding, is_int64

OBJECT = container("object")

SHARED_INTEGERS = 10000  # Redis's OBJ_SHARED_INTEGERS: strings "0".."9999" are shared
SHARED_REFCOUNT = 2**31 - 1  # Redis's OBJ_SHARED_REFCOUNT (INT_MAX)

# OBJECT HELP, byte for byte as Redis 7.0 words it (two-line descriptions
# the generic container help cannot build).
HELP_LINES = (
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
)


@command("object", -2, reads_keys=True)
def object_(session: Session, args: list[bytes]) -> object:
    """OBJECT subcommand [argument ...]

    How a key's value is held; OBJECT HELP lists the subcommands.
    """
    return OBJECT.run(session, args)


def _value(session: Session, key: bytes):
    return session.db.lookup(key, session.now)


@OBJECT.subcommand("encoding", 3, flags=("readonly",))
def object_encoding(session: Session, args: list[bytes]) -> object:
    """OBJECT ENCODING key

    The internal representation Redis would use for the value (nil if missing).
    """
    value = _value(session, args[0])
    return None if value is None else encoding(value, session.keyspace.encodings).encode()


@OBJECT.subcommand("refcount", 3, flags=("readonly",))
def object_refcount(session: Session, args: list[bytes]) -> object:
    """OBJECT REFCOUNT key

    The number of references to the value (nil if missing).
    """
    value = _value(session, args[0])
    if value is None:
        return None
    if type(value) is bytes and is_int64(value) and 0 <= int(value) < SHARED_INTEGERS:
        return SHARED_REFCOUNT
    return 1


@OBJECT.subcommand("idletime", 3, flags=("readonly",))
def object_idletime(session: Session, args: list[bytes]) -> object:
    """OBJECT IDLETIME key

    Seconds since the key was last used: always 0 here (nil if missing).
    """
    return None if _value(session, args[0]) is None else 0


@OBJECT.subcommand("freq", 3, flags=("readonly",))
def object_freq(session: Session, args: list[bytes]) -> object:
    """OBJECT FREQ key

    The access frequency under an LFU policy: refused, as Redis refuses it
    under any other policy (nil if missing).
    """
    if _value(session, args[0]) is None:
        return None
    raise CommandError(errors.OBJECT_FREQ_NOT_LFU)


def object_help(session: Session, args: list[bytes]) -> object:
    """HELP

    Prints this help.
    """
    return [Status(line) for line in HELP_LINES]


OBJECT.subcommands[b"HELP"] = Subcommand("object|help", object_help, 2, ("loading", "stale"))
