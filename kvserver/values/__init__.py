"""The value model: what a key can hold, and what each kind knows about itself.

A stored value is one of:

* a string: plain ``bytes``, immutable, replaced whole by every write (the
  common case stays as cheap as a dict of bytes);
* a container: a ``List``, ``Hash``, ``Set``, ``Zset`` or ``Stream``
  (lists.py, hashes.py, sets.py, zsets.py, streams.py), changed in place by
  the commands of its type (a stream stays stored when empty).

Every kind answers the same questions, through the functions below, so the
store, the log rewrite, COPY, TYPE, OBJECT and MEMORY never ask "which
type is this?" themselves:

==================  =========================================================
``type_name``       Redis's TYPE name ("string", "list", "hash", "set")
``memory``          the size estimate that used_bytes, MEMORY USAGE and
                    maxmemory count (a container keeps its own, ``nbytes``,
                    up to date as it changes: O(1) to read)
``encoding``        OBJECT ENCODING, by Redis 7.0's names and thresholds
``duplicate``       a deep copy (COPY; the rewrite's copy-on-write)
``rewrite_records`` the commands that rebuild it, for the log rewrite
==================  =========================================================

The rules a container keeps, with the store (store.py) and the command
helpers (commands/access.py):

* It is changed only under the write lock, through its own methods, each of
  which keeps ``nbytes`` right and, where the change may have to be undone
  (a failed log append), returns what undoes it exactly.
* It is never empty while stored: Redis deletes a list, hash or set when
  its last element goes, and so does ``Database.changed``.
* A read command returns new objects (lists, dicts), never the stored
  container itself: the reply is encoded after the command returns, when
  another client may be changing it.
"""

from __future__ import annotations

from kvserver.values.hashes import Hash
from kvserver.values.lists import List
from kvserver.values.sets import Set, is_int64
from kvserver.values.streams import Stream
from kvserver.values.zsets import Zset

# Redis's AOF_REWRITE_ITEMS_PER_CMD: the rewrite writes a container in
# commands of at most this many elements, so no record is huge.
REWRITE_ITEMS_PER_COMMAND = 64

CONTAINERS = (List, Hash, Set, Zset, Stream)
TYPE_NAMES: dict[type, str] = {bytes: "string", List: "list", Hash: "hash", Set: "set", Zset: "zset", Stream: "stream"}


def type_name(value: object) -> str:
    """Redis's name for the type of a stored value (never None)."""
    return TYPE_NAMES[type(value)]


def memory(value: object) -> int:
    """Estimated bytes of ``value`` (not counting its key)."""
    return len(value) if type(value) is bytes else value.nbytes


def encoding(value: object, settings) -> str:
    """OBJECT ENCODING of ``value``; ``settings`` holds Redis's thresholds
    (``list_max_listpack_size``, ``hash_max_listpack_entries``, ...)."""
    if type(value) is bytes:
        return _string_encoding(value)
    return value.encoding(settings)


def duplicate(value: object) -> object:
    """A copy that shares nothing changeable with ``value``."""
    return value if type(value) is bytes else value.copy()


def rewrite_records(key: bytes, value: object):
    """The records that rebuild ``key`` (its TTL aside), for the rewrite."""
    if type(value) is bytes:
        yield [b"SET", key, value]
    else:
        yield from value.rewrite_records(key, REWRITE_ITEMS_PER_COMMAND)


def _string_encoding(value: bytes) -> str:
    # Redis: "int" for a value that is a 64-bit integer in canonical form,
    # "embstr" up to 44 bytes, "raw" past that.
    if is_int64(value):
        return "int"
    return "embstr" if len(value) <= 44 else "raw"


class EncodingSettings:
    """Redis 7.0's thresholds for OBJECT ENCODING (CONFIG SET changes them;
    as in Redis, a value already converted stays converted)."""

    __slots__ = (
        "list_max_listpack_size",
        "hash_max_listpack_entries",
        "hash_max_listpack_value",
        "set_max_intset_entries",
        "zset_max_listpack_entries",
        "zset_max_listpack_value",
    )

    def __init__(self) -> None:
        self.list_max_listpack_size = -2  # Redis's defaults
        self.hash_max_listpack_entries = 512
        self.hash_max_listpack_value = 64
        self.set_max_intset_entries = 512
        self.zset_max_listpack_entries = 128
        self.zset_max_listpack_value = 64
