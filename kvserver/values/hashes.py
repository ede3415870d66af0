"""Redis hashes: ``Hash``, a dict of field -> value (both byte strings).

OBJECT ENCODING follows Redis 7.0: ``listpack`` while the hash has never
held more than ``hash-max-listpack-entries`` fields nor a field or value
longer than ``hash-max-listpack-value`` bytes, ``hashtable`` from then on
(Redis converts once and never back).

HSCAN's cursor, and HRANDFIELD on a big hash, use a second view of the
fields, kept only while the hash is big (over ``INDEX_MIN_FIELDS``):
``_buckets``, the fields filed by ``hash(field) & _mask`` in a table that
only ever doubles. A cursor walks the buckets in Redis's reverse-binary
order (dict.c's dictScan), so a field present from the first call to the
last is returned whatever grew in between, as Redis promises. A small hash
has no index: HSCAN returns it whole with cursor 0, as Redis does for a
listpack. The index is not counted in ``nbytes``: it is a few pointers per
field of a hash that already costs ``FIELD_OVERHEAD`` plus its bytes each.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# A field and its value: two bytes objects' headers and the dict entry.
FIELD_OVERHEAD = 2 * 33 + 48
EMPTY_SIZE = 64

# The index (see the module docstring) is built once a hash holds more than
# this many fields (Redis's default hash-max-listpack-entries: below it,
# Redis too returns a hash whole from HSCAN), and dropped when a hash shrinks
# under half of it (hysteresis: a hash hovering near the line is not
# re-indexed on every change).
INDEX_MIN_FIELDS = 512
INDEX_DROP_FIELDS = INDEX_MIN_FIELDS // 2
# Fields per bucket, on average, before the table doubles: a cursor step
# returns a bucket whole, so buckets stay small.
INDEX_MAX_LOAD = 4
_U64 = (1 << 64) - 1

_MISSING = object()


class Hash(dict):
    __slots__ = ("nbytes", "epoch", "peak_fields", "longest", "_buckets", "_mask")

    def __init__(self, pairs=()) -> None:
        super().__init__(pairs)
        self.nbytes = EMPTY_SIZE + sum(len(f) + len(v) + FIELD_OVERHEAD for f, v in self.items())
        self.epoch = 0
        self.peak_fields = len(self)  # for OBJECT ENCODING: the most it ever held
        self.longest = max((max(len(f), len(v)) for f, v in self.items()), default=0)
        self._buckets: dict[int, set[bytes]] | None = None
        self._mask = 0
        if len(self) > INDEX_MIN_FIELDS:
            self._build_index()

    def copy(self) -> Hash:
        twin = Hash(self)
        twin.peak_fields, twin.longest = self.peak_fields, self.longest
        return twin

    def encoding(self, settings) -> str:
        small = self.peak_fields <= settings.hash_max_listpack_entries
        short = self.longest <= settings.hash_max_listpack_value
        return "listpack" if small and short else "hashtable"

    def rewrite_records(self, key: bytes, per_command: int):
        pairs = [x for pair in self.items() for x in pair]
        step = 2 * per_command
        for start in range(0, len(pairs), step):
            yield [b"HSET", key, *pairs[start : start + step]]

    # -- reads (no lock: a writer may change the hash meanwhile; the seqlock
    # has the read done again if so, dispatch.py) ------------------------------------

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """HSCAN's walk: the next cursor (0: done) and the fields of the
        buckets visited from ``cursor``, about ``count`` fields and values;
        a hash with no index whole, with cursor 0."""
        buckets, mask = self._buckets, self._mask
        if buckets is None:
            return 0, list(self)
        found: list[bytes] = []
        steps = count * 10  # Redis's bound on empty buckets visited per call
        while True:
            fields = buckets.get(cursor & mask)
            if fields:
                found.extend(fields)
            # dictScan's step: increment the reversed cursor's bucket bits.
            cursor = _reverse64(((_reverse64(cursor | (~mask & _U64))) + 1) & _U64)
            steps -= 1
            if not cursor or steps <= 0 or 2 * len(found) >= count:
                return cursor, found

    def random_field(self) -> bytes:
        """One field at random (the hash is not empty): O(1) on average for
        a big hash, by a random non-empty bucket, as Redis's dictGetRandomKey
        picks one (a field in a fuller bucket comes up a little less often)."""
        buckets = self._buckets
        if buckets is None:
            return random.choice(list(self))
        mask = self._mask
        while True:
            fields = buckets.get(random.getrandbits(64) & mask)
            if fields:
                return random.choice(tuple(fields))

    # -- changes (write lock held) -------------------------------------------------

    def set_field(self, field: bytes, value: bytes) -> tuple[bool, Callable[[], None]]:
        """HSET one field: True if it is new."""
        indexed = self._buckets is not None
        old = self.get(field, _MISSING)
        self[field] = value
        if old is _MISSING:
            self.nbytes += len(field) + len(value) + FIELD_OVERHEAD
            self.peak_fields = max(self.peak_fields, len(self))
            self._indexed(field)
        else:
            self.nbytes += len(value) - len(old)
        self.longest = max(self.longest, len(field), len(value))
        return old is _MISSING, lambda: self._restore(field, old, value, indexed)

    def set_fields(self, pairs: list[bytes]) -> tuple[int, Callable[[], None]]:
        """HSET field value [field value ...] (a flat list, in order): how
        many fields are new, and the undo of all of them."""
        if len(pairs) == 2:  # one field, the usual HSET: its own undo
            new, undo = self.set_field(pairs[0], pairs[1])
            return int(new), undo
        created, undos = 0, []
        for i in range(0, len(pairs), 2):
            new, undo = self.set_field(pairs[i], pairs[i + 1])
            created += new
            undos.append(undo)
        return created, _undo_all(undos)

    def delete_field(self, field: bytes) -> Callable[[], None] | None:
        """HDEL one field: its undo, or None if it was not there."""
        indexed = self._buckets is not None
        old = self.pop(field, _MISSING)
        if old is _MISSING:
            return None
        self.nbytes -= len(field) + len(old) + FIELD_OVERHEAD
        self._unindexed(field)
        return lambda: self._restore(field, old, None, indexed)

    def delete_fields(self, fields: list[bytes]) -> tuple[int, Callable[[], None]]:
        """HDEL field [field ...]: how many were there, and the undo."""
        undos = [undo for undo in map(self.delete_field, fields) if undo is not None]
        return len(undos), _undo_all(undos)

    def _restore(self, field: bytes, old: object, current: bytes | None, indexed: bool) -> None:
        # ``indexed``: whether the hash had its index before the change, which
        # the undo puts back as it was too (HSCAN answers as before).
        if current is not None:  # undo a set: the field holds ``current``
            if old is _MISSING:
                del self[field]
                self.nbytes -= len(field) + len(current) + FIELD_OVERHEAD
                self._unindexed(field)
            else:
                self[field] = old
                self.nbytes += len(old) - len(current)
        else:  # undo a delete
            self[field] = old
            self.nbytes += len(field) + len(old) + FIELD_OVERHEAD
            self._indexed(field)
        if not indexed:
            self._buckets, self._mask = None, 0
        elif self._buckets is None:
            self._build_index()

    # -- the index (see the module docstring) ------------------------------------

    def _indexed(self, field: bytes) -> None:
        """``field`` was added: file it, building or growing the index."""
        buckets = self._buckets
        if buckets is None:
            if len(self) > INDEX_MIN_FIELDS:
                self._build_index()
            return
        if len(self) > INDEX_MAX_LOAD * (self._mask + 1):
            self._build_index()  # doubles the table; files ``field`` too
            return
        bucket = hash(field) & self._mask
        fields = buckets.get(bucket)
        if fields is None:
            buckets[bucket] = {field}
        else:
            fields.add(field)

    def _unindexed(self, field: bytes) -> None:
        """``field`` was removed: take it out, or drop a small hash's index."""
        buckets = self._buckets
        if buckets is None:
            return
        if len(self) < INDEX_DROP_FIELDS:
            self._buckets, self._mask = None, 0
            return
        bucket = hash(field) & self._mask
        fields = buckets[bucket]
        fields.discard(field)
        if not fields:
            del buckets[bucket]

    def _build_index(self) -> None:
        # The table size: a power of two, never smaller than before (a
        # cursor from a bigger table would still be right on a smaller one,
        # but a table that only grows keeps each step's bucket small).
        size = max(self._mask + 1, 1)
        while INDEX_MAX_LOAD * size < len(self):
            size *= 2
        mask = size - 1
        buckets: dict[int, set[bytes]] = {}
        for field in self:
            bucket = hash(field) & mask
            fields = buckets.get(bucket)
            if fields is None:
                buckets[bucket] = {field}
            else:
                fields.add(field)
        # Replaced whole, never half-built: a reader without the lock sees the
        # old table or the new one (and the seqlock has it read again).
        self._buckets, self._mask = buckets, mask


def _undo_all(undos: list[Callable[[], None]]) -> Callable[[], None]:
    def undo() -> None:
        for one in reversed(undos):
            one()

    return undo


def _reverse64(value: int) -> int:
    return int(f"{value:064b}"[::-1], 2)
