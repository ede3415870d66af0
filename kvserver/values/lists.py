"""Redis lists: ``List``, a deque of byte strings.

Pushes and pops at either end are O(1), as in Redis; reading the first (or
last) N items walks N items, not the list. Each change that may have to be
undone returns a function that undoes it exactly (see values/__init__.py).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

# What one element costs beyond its bytes: a bytes object's header and the
# deque's slot for it. An estimate, as store.PER_KEY_OVERHEAD is.
ITEM_OVERHEAD = 33 + 8
EMPTY_SIZE = 64  # the deque itself (its first block is allocated lazily)


class List(collections.deque):
    __slots__ = ("nbytes", "epoch")

    def __init__(self, items: Iterable[bytes] = ()) -> None:
        super().__init__(items)
        self.nbytes = EMPTY_SIZE + sum(len(item) for item in self) + ITEM_OVERHEAD * len(self)
        self.epoch = 0  # the rewrite's copy-on-write mark (store.Database.writable)

    def copy(self) -> List:
        return List(self)

    def encoding(self, settings) -> str:
        return "quicklist"  # Redis 7.0 stores every list as a quicklist (listpack came in 7.2)

    def rewrite_records(self, key: bytes, per_command: int):
        items = list(self)
        for start in range(0, len(items), per_command):
            yield [b"RPUSH", key, *items[start : start + per_command]]

    # -- changes (write lock held) -------------------------------------------------

    def push(self, items: list[bytes], left: bool) -> Callable[[], None]:
        """LPUSH/RPUSH: add ``items`` one by one at the head or the tail."""
        if left:
            self.extendleft(items)
        else:
            self.extend(items)
        self.nbytes += sum(len(item) for item in items) + ITEM_OVERHEAD * len(items)
        count = len(items)
        return lambda: self._drop(count, left)

    def pop_items(self, count: int, left: bool) -> tuple[list[bytes], Callable[[], None]]:
        """LPOP/RPOP: up to ``count`` items from the head or the tail."""
        take = self.popleft if left else self.pop
        popped = [take() for _ in range(min(count, len(self)))]
        self.nbytes -= sum(len(item) for item in popped) + ITEM_OVERHEAD * len(popped)

        def undo() -> None:
            for item in reversed(popped):
                (self.appendleft if left else self.append)(item)
            self.nbytes += sum(len(item) for item in popped) + ITEM_OVERHEAD * len(popped)

        return popped, undo

    def set_item(self, index: int, item: bytes) -> Callable[[], None]:
        """LSET: replace the item at ``index`` (already checked in range)."""
        old = self[index]
        self[index] = item
        self.nbytes += len(item) - len(old)

        def undo() -> None:
            self[index] = old
            self.nbytes += len(old) - len(item)

        return undo

    def replace_all(self, items: list[bytes]) -> Callable[[], None]:
        """Make the list ``items`` (LREM, LTRIM, LINSERT: O(n) changes, as in
        Redis); undone by putting the old items back."""
        old, old_bytes = list(self), self.nbytes
        self.clear()
        self.extend(items)
        self.nbytes = EMPTY_SIZE + sum(len(item) for item in items) + ITEM_OVERHEAD * len(items)

        def undo() -> None:
            self.clear()
            self.extend(old)
            self.nbytes = old_bytes

        return undo

    def _drop(self, count: int, left: bool) -> None:
        take = self.popleft if left else self.pop
        dropped = [take() for _ in range(count)]
        self.nbytes -= sum(len(item) for item in dropped) + ITEM_OVERHEAD * count
