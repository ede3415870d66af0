"""Redis hashes: ``Hash``, a dict of field -> value (both byte strings).

OBJECT ENCODING follows Redis 7.0: ``listpack`` while the hash has never
held more than ``hash-max-listpack-entries`` fields nor a field or value
longer than ``hash-max-listpack-value`` bytes, ``hashtable`` from then on
(Redis converts once and never back).
"""

from __future__ import annotations

from collections.abc import Callable

# A field and its value: two bytes objects' headers and the dict entry.
FIELD_OVERHEAD = 2 * 33 + 48
EMPTY_SIZE = 64

_MISSING = object()


class Hash(dict):
    __slots__ = ("nbytes", "epoch", "peak_fields", "longest")

    def __init__(self, pairs=()) -> None:
        super().__init__(pairs)
        self.nbytes = EMPTY_SIZE + sum(len(f) + len(v) + FIELD_OVERHEAD for f, v in self.items())
        self.epoch = 0
        self.peak_fields = len(self)  # for OBJECT ENCODING: the most it ever held
        self.longest = max((max(len(f), len(v)) for f, v in self.items()), default=0)

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

    # -- changes (write lock held) -------------------------------------------------

    def set_field(self, field: bytes, value: bytes) -> tuple[bool, Callable[[], None]]:
        """HSET one field: True if it is new."""
        old = self.get(field, _MISSING)
        self[field] = value
        if old is _MISSING:
            self.nbytes += len(field) + len(value) + FIELD_OVERHEAD
            self.peak_fields = max(self.peak_fields, len(self))
        else:
            self.nbytes += len(value) - len(old)
        self.longest = max(self.longest, len(field), len(value))
        return old is _MISSING, lambda: self._restore(field, old, value)

    def delete_field(self, field: bytes) -> Callable[[], None] | None:
        """HDEL one field: its undo, or None if it was not there."""
        old = self.pop(field, _MISSING)
        if old is _MISSING:
            return None
        self.nbytes -= len(field) + len(old) + FIELD_OVERHEAD
        return lambda: self._restore(field, old, None)

    def _restore(self, field: bytes, old: object, current: bytes | None) -> None:
        if current is not None:  # undo a set: the field holds ``current``
            if old is _MISSING:
                del self[field]
                self.nbytes -= len(field) + len(current) + FIELD_OVERHEAD
            else:
                self[field] = old
                self.nbytes += len(old) - len(current)
        else:  # undo a delete
            self[field] = old
            self.nbytes += len(field) + len(old) + FIELD_OVERHEAD
