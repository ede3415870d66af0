"""Redis sorted sets: ``Zset``, members (byte strings) ordered by score.

The order is Redis's: by score, then by member bytes (memcmp, a prefix
first), which is Python's order of ``(score, member)`` tuples. Two
structures hold it:

* ``scores``: a dict member -> score, for ZSCORE and membership in O(1);
* ``order``: a sortedcontainers ``SortedList`` of ``(score, member)``,
  for ZADD, ZREM, ZRANK and the range reads in O(log n) (+ the range).
  bench/RESULTS.md ("Sorted sets: which structure") has the measurement
  that chose it over a hand-rolled skiplist and ``bisect.insort``.

Scores are never NaN (the commands refuse it, as Redis does). -0.0 and
0.0 are equal in the order, as in Redis, but each is kept as given.

OBJECT ENCODING follows Redis 7.0: ``listpack`` while the set has never held
more than ``zset-max-listpack-entries`` members nor a member longer than
``zset-max-listpack-value`` bytes, ``skiplist`` from then on (Redis converts
once and never back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sortedcontainers import SortedList

# A member: its bytes object's header, the float, the (score, member) tuple,
# its slot in the sorted list and the dict entry.
MEMBER_OVERHEAD = 33 + 24 + 56 + 8 + 48
EMPTY_SIZE = 400


class _Top:
    """Compares greater than every member: ``(score, TOP)`` sorts after all
    the members with that score (b"" sorts before them all)."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __le__(self, other: object) -> bool:
        return other is self

    def __ge__(self, other: object) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0


TOP = _Top()


class Zset:
    __slots__ = ("scores", "order", "nbytes", "epoch", "peak_members", "longest")

    def __init__(self, pairs: Iterable[tuple[bytes, float]] = ()) -> None:
        self.scores: dict[bytes, float] = dict(pairs)
        self.order = SortedList((score, member) for member, score in self.scores.items())
        self.nbytes = EMPTY_SIZE + sum(len(m) + MEMBER_OVERHEAD for m in self.scores)
        self.epoch = 0
        self.peak_members = len(self.scores)  # for OBJECT ENCODING: the most it ever held
        self.longest = max(map(len, self.scores), default=0)

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member: bytes) -> bool:
        return member in self.scores

    def __eq__(self, other: object) -> bool:  # the same members and scores (tests compare keyspaces)
        return type(other) is Zset and self.scores == other.scores

    __hash__ = None  # changeable, as list, dict and set are

    def copy(self) -> Zset:
        twin = Zset.__new__(Zset)
        twin.scores = dict(self.scores)
        twin.order = SortedList(self.order)  # already sorted: Timsort's O(n) case
        twin.nbytes, twin.epoch = self.nbytes, 0
        twin.peak_members, twin.longest = self.peak_members, self.longest
        return twin

    def encoding(self, settings) -> str:
        small = self.peak_members <= settings.zset_max_listpack_entries
        short = self.longest <= settings.zset_max_listpack_value
        return "listpack" if small and short else "skiplist"

    def rewrite_records(self, key: bytes, per_command: int):
        """ZADD key score member ..., ``per_command`` members a record, each
        score in the shortest text that reads back as the same double
        (``repr``: Redis's strtod reads it to the same bits; -0.0 stays "-0.0")."""
        items = list(self.order)
        for start in range(0, len(items), per_command):
            record = [b"ZADD", key]
            for score, member in items[start : start + per_command]:
                record += (score_text(score), member)
            yield record

    # -- reads -----------------------------------------------------------------

    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def rank(self, member: bytes) -> int | None:
        """0-based rank by ascending score, or None if not a member."""
        score = self.scores.get(member)
        return None if score is None else self.order.bisect_left((score, member))

    def at(self, start: int, stop: int, reverse: bool = False) -> list[tuple[float, bytes]]:
        """The (score, member) pairs at ranks start..stop-1 (0 <= start <=
        stop <= len), ascending, or descending ranks counted from the top."""
        if reverse:
            n = len(self.order)
            return list(self.order.islice(n - stop, n - start, reverse=True))
        return list(self.order.islice(start, stop))

    def first_at_least(self, score: float, exclusive: bool) -> int:
        """The rank of the first member whose score is >= ``score`` (> if
        ``exclusive``)."""
        if exclusive:
            return self.order.bisect_right((score, TOP))
        return self.order.bisect_left((score, b""))

    def first_above(self, score: float, exclusive: bool) -> int:
        """One past the rank of the last member whose score is <= ``score``
        (< if ``exclusive``)."""
        if exclusive:
            return self.order.bisect_left((score, b""))
        return self.order.bisect_right((score, TOP))

    def item(self, rank: int) -> tuple[float, bytes]:
        return self.order[rank]

    def items(self) -> list[tuple[bytes, float]]:
        """(member, score) pairs, ascending (a new list)."""
        return [(member, score) for score, member in self.order]

    # -- changes (write lock held) -------------------------------------------------

    def set_score(self, member: bytes, score: float) -> Callable[[], None]:
        """Add ``member`` or move it to ``score``; the undo."""
        old = self.scores.get(member)
        marks = self.peak_members, self.longest  # the undo puts them back too
        if old is not None:
            self.order.remove((old, member))
        else:
            self.nbytes += len(member) + MEMBER_OVERHEAD
            self.peak_members = max(self.peak_members, len(self.scores) + 1)
            self.longest = max(self.longest, len(member))
        self.scores[member] = score
        self.order.add((score, member))
        return lambda: self._restore(member, score, old, marks)

    def remove_members(self, members: Iterable[bytes]) -> tuple[int, Callable[[], None]]:
        """ZREM: how many were there, and the undo."""
        removed = []
        for member in members:
            score = self.scores.pop(member, None)
            if score is not None:
                self.order.remove((score, member))
                removed.append((score, member))
        self.nbytes -= sum(len(m) + MEMBER_OVERHEAD for _, m in removed)
        return len(removed), lambda: self._put_back(removed)

    def remove_ranks(self, start: int, stop: int) -> tuple[list[tuple[float, bytes]], Callable[[], None]]:
        """Remove ranks start..stop-1 (ZREMRANGEBY*, ZPOPMIN/MAX): the
        (score, member) pairs removed, ascending, and the undo."""
        removed = list(self.order.islice(start, stop))
        del self.order[start:stop]
        for _, member in removed:
            del self.scores[member]
        self.nbytes -= sum(len(m) + MEMBER_OVERHEAD for _, m in removed)
        return removed, lambda: self._put_back(removed)

    def _restore(self, member: bytes, score: float, old: float | None, marks: tuple[int, int]) -> None:
        self.order.remove((score, member))
        self.peak_members, self.longest = marks
        if old is None:
            del self.scores[member]
            self.nbytes -= len(member) + MEMBER_OVERHEAD
        else:
            self.scores[member] = old
            self.order.add((old, member))

    def _put_back(self, removed: list[tuple[float, bytes]]) -> None:
        for score, member in removed:
            self.scores[member] = score
        self.order.update(removed)
        self.nbytes += sum(len(m) + MEMBER_OVERHEAD for _, m in removed)


def score_text(score: float) -> bytes:
    """A score as text that parses back to the same double, bit for bit:
    Python's shortest round-trip repr ("0.1", "1e-300", "-0.0", "inf")."""
    return repr(score).encode()
