"""Redis lists: ``List``, a deque of byte strings.

Pushes and pops at either end are O(1), as in Redis; reading the first (or
last) N items walks N items, not the list. Each change that may have to be
undone returns a function that undoes it exactly (see values/__init__.py).
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable

# What one element costs beyond its bytes: a bytes object's header and the
# deque's slot for it. An estimate, as store.PER_KEY_OVERHEAD is.
ITEM_OVERHEAD = 33 + 8
EMPTY_SIZE = 64  # the deque itself (its first block is allocated lazily)


class List(collections.deque):
    __slots__ = ("nbytes", "epoch")

    def __init__(self, items: Iterable[bytes] = ()) -> None:
        super().__init__(items)
        self.nbytes = EMPTY_SIZE + sum(map(len, self)) + ITEM_OVERHEAD * len(self)
        self.epoch = 0  # the rewrite's copy-on-write mark (store.Database.writable)

    def copy(self) -> List:
        return List(self)

    def encoding(self, settings) -> str:
        return "quicklist"  # Redis 7.0 stores every list as a quicklist (listpack came in 7.2)

    def rewrite_records(self, key: bytes, per_command: int):
        items = list(self)
        for start in range(0, len(items), per_command):
            yield [b"RPUSH", key, *items[start : start + per_command]]

    # -- reads (return new lists, never the deque) ---------------------------------

    def range_items(self, start: int, stop: int) -> list[bytes]:
        """Items ``start`` up to ``stop`` (exclusive; 0 <= start < stop <=
        len), walked from the nearer end: the first (or last) 100 items of
        a long list cost 100 steps, not the list's length."""
        if start <= len(self) - stop:
            return list(itertools.islice(self, start, stop))
        items = list(itertools.islice(reversed(self), len(self) - stop, len(self) - start))
        items.reverse()
        return items

    # -- changes (write lock held) -------------------------------------------------

    def push(self, items: list[bytes], left: bool) -> Callable[[], None]:
        """LPUSH/RPUSH: add ``items`` one by one at the head or the tail."""
        if left:
            self.extendleft(items)
        else:
            self.extend(items)
        self.nbytes += sum(map(len, items)) + ITEM_OVERHEAD * len(items)
        count = len(items)
        return lambda: self._drop(count, left)

    def pop_items(self, count: int, left: bool) -> tuple[list[bytes], Callable[[], None]]:
        """LPOP/RPOP: up to ``count`` items from the head or the tail."""
        take = self.popleft if left else self.pop
        if count == 1 and self:  # LPOP/RPOP without a count: no comprehension
            popped = [take()]
        else:
            popped = [take() for _ in range(min(count, len(self)))]
        self.nbytes -= sum(map(len, popped)) + ITEM_OVERHEAD * len(popped)

        def undo() -> None:
            for item in reversed(popped):
                (self.appendleft if left else self.append)(item)
            self.nbytes += sum(map(len, popped)) + ITEM_OVERHEAD * len(popped)

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

    def insert_item(self, index: int, item: bytes) -> Callable[[], None]:
        """LINSERT: put ``item`` at ``index`` (0..len; the deque walks from
        the nearer end)."""
        self.insert(index, item)
        self.nbytes += len(item) + ITEM_OVERHEAD

        def undo() -> None:
            del self[index]
            self.nbytes -= len(item) + ITEM_OVERHEAD

        return undo

    def trim(self, head: int, tail: int) -> Callable[[], None]:
        """LTRIM: drop ``head`` items from the head and ``tail`` from the
        tail, O(items dropped), as Redis."""
        _, undo_head = self.pop_items(head, left=True)
        _, undo_tail = self.pop_items(tail, left=False)

        def undo() -> None:
            undo_tail()
            undo_head()

        return undo

    def remove_items(self, item: bytes, count: int) -> tuple[int, Callable[[], None] | None]:
        """LREM: drop up to ``count`` items equal to ``item`` from the head
        (``count`` > 0), from the tail (< 0), or all of them (0). Returns
        how many went, and the undo (None if none did)."""
        limit = abs(count) or len(self)
        kept: list[bytes] = []
        removed = 0
        for candidate in (self if count >= 0 else reversed(self)):
            if removed < limit and candidate == item:
                removed += 1
            else:
                kept.append(candidate)
        if not removed:
            return 0, None
        if count < 0:
            kept.reverse()
        return removed, self.replace_all(kept)

    def replace_all(self, items: list[bytes]) -> Callable[[], None]:
        """Make the list ``items`` (LREM, LTRIM, LINSERT: O(n) changes, as in
        Redis); undone by putting the old items back."""
        old, old_bytes = list(self), self.nbytes
        self.clear()
        self.extend(items)
        self.nbytes = EMPTY_SIZE + sum(map(len, items)) + ITEM_OVERHEAD * len(items)

        def undo() -> None:
            self.clear()
            self.extend(old)
            self.nbytes = old_bytes

        return undo

    def _drop(self, count: int, left: bool) -> None:
        take = self.popleft if left else self.pop
        dropped = [take() for _ in range(count)]
        self.nbytes -= sum(map(len, dropped)) + ITEM_OVERHEAD * count
