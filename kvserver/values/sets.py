"""Redis sets: ``Set``, a set of byte strings.

OBJECT ENCODING follows Redis 7.0: ``intset`` while every member has been a
64-bit integer in canonical form and the set has never held more than
``set-max-intset-entries`` members, ``hashtable`` from then on (listpack
sets came in Redis 7.2).

Two indexes are built on demand, for the commands a Python set cannot
serve directly, and are never counted in ``nbytes`` (MEMORY USAGE measures
the set itself):

* a random-access one (a list of the members and each one's place in it),
  so that SPOP and SRANDMEMBER pick at random in O(1) instead of copying
  the set for each pick; once built, every change keeps it up to date;
* SSCAN's: the members sorted by their hash, so that a cursor is a hash
  value and a walk returns every member present throughout exactly once
  (Redis's SCAN guarantee). It is rebuilt after any change.

Both are tagged with the ``version`` they were built at (every change bumps
it) and stored as one tuple, so that an index a reader built without the
write lock while a writer changed the set is never taken as current: a
reader may build either (its result is kept only if the set did not change
meanwhile); only writers, under the write lock, update one in place.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable

MEMBER_OVERHEAD = 33 + 40  # a bytes object's header and the set's slot
EMPTY_SIZE = 200
SCAN_HASH_MASK = 2**32 - 1  # SSCAN cursors are hash values below 2**32


class Set(set):
    __slots__ = ("nbytes", "epoch", "peak_members", "all_integers", "version", "_random", "_scan")

    def __init__(self, members=()) -> None:
        super().__init__(members)
        self.nbytes = EMPTY_SIZE + sum(len(m) + MEMBER_OVERHEAD for m in self)
        self.epoch = 0
        self.peak_members = len(self)
        self.all_integers = all(is_int64(m) for m in self)
        self.version = 0
        self._random: tuple[int, list[bytes], dict[bytes, int]] | None = None
        self._scan: tuple[int, list[int], list[bytes]] | None = None

    def copy(self) -> Set:
        twin = Set(self)
        twin.peak_members, twin.all_integers = self.peak_members, self.all_integers
        return twin

    def encoding(self, settings) -> str:
        if self.all_integers and self.peak_members <= settings.set_max_intset_entries:
            return "intset"
        return "hashtable"

    def rewrite_records(self, key: bytes, per_command: int):
        members = list(self)
        for start in range(0, len(members), per_command):
            yield [b"SADD", key, *members[start : start + per_command]]

    # -- reads (no lock needed) ----------------------------------------------------

    def random_members(self, count: int, repeat: bool) -> list[bytes]:
        """``count`` members picked at random: distinct ones (at most the
        whole set) unless ``repeat``, where each pick is independent."""
        order = self._random_order()
        if repeat:
            return random.choices(order, k=count)
        return random.sample(order, min(count, len(order)))

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """SSCAN: the members whose hash is from ``cursor`` on, at least
        ``count`` of them unless the end comes first, ending on a whole hash
        value; and the next cursor (0 at the end)."""
        index = self._scan
        if index is None or index[0] != self.version:
            version = self.version  # read first: a change during the build shows
            pairs = sorted((hash(m) & SCAN_HASH_MASK, m) for m in self)
            index = (version, [h for h, _ in pairs], [m for _, m in pairs])
            self._scan = index
        _, hashes, members = index
        start = bisect_left(hashes, cursor)
        end = min(start + count, len(hashes))
        while end < len(hashes) and hashes[end] == hashes[end - 1]:
            end += 1  # never split one hash value between two calls
        return (hashes[end] if end < len(hashes) else 0), members[start:end]

    def _random_order(self) -> list[bytes]:
        index = self._random
        if index is not None and index[0] == self.version:
            return index[1]
        version = self.version
        order = list(self)
        self._random = (version, order, {m: i for i, m in enumerate(order)})
        return order

    # -- changes (write lock held) -------------------------------------------------

    def add_members(self, members: list[bytes]) -> tuple[int, Callable[[], None]]:
        """SADD: how many were new, and the undo."""
        added = [m for m in dict.fromkeys(members) if m not in self]
        peak, integers = self.peak_members, self.all_integers
        self._insert(added)
        self.peak_members = max(peak, len(self))
        if integers and not all(is_int64(m) for m in added):
            self.all_integers = False

        def undo() -> None:
            self._delete(added)
            self.peak_members, self.all_integers = peak, integers

        return len(added), undo

    def remove_members(self, members: list[bytes]) -> tuple[list[bytes], Callable[[], None]]:
        """SREM, SPOP, SMOVE: the members that were there, and the undo."""
        removed = [m for m in dict.fromkeys(members) if m in self]
        self._delete(removed)
        return removed, lambda: self._insert(removed)

    def pop_random(self, count: int) -> tuple[list[bytes], Callable[[], None]]:
        """SPOP: ``count`` distinct members (fewer than the set holds) taken
        at random, and the undo."""
        return self.remove_members(self.random_members(count, repeat=False))

    def _insert(self, members: list[bytes]) -> None:
        if not members:
            return
        index = self._random
        current = index is not None and index[0] == self.version
        self.update(members)
        self.nbytes += sum(map(len, members)) + MEMBER_OVERHEAD * len(members)
        self.version += 1
        if current:
            _, order, place = index
            for m in members:
                place[m] = len(order)
                order.append(m)
            self._random = (self.version, order, place)

    def _delete(self, members: list[bytes]) -> None:
        if not members:
            return
        index = self._random
        current = index is not None and index[0] == self.version
        self.difference_update(members)
        self.nbytes -= sum(map(len, members)) + MEMBER_OVERHEAD * len(members)
        self.version += 1
        if current:
            _, order, place = index
            for m in members:  # swap the last member into the gap
                i = place.pop(m)
                last = order.pop()
                if i < len(order):
                    order[i] = last
                    place[last] = i
            self._random = (self.version, order, place)


def is_int64(member: bytes) -> bool:
    """A member an intset could hold: a 64-bit integer in canonical form
    (Redis's string2ll: no sign but '-', no leading zeros, no spaces)."""
    if not member or len(member) > 20:
        return False
    try:
        number = int(member)
    except ValueError:
        return False
    return b"%d" % number == member and -(2**63) <= number < 2**63
