"""Which structure should hold a sorted set? Candidates timed per operation.

    .venv/bin/python bench/zset_structures.py            # 1k, 100k, 1M members
    .venv/bin/python bench/zset_structures.py --sizes 1000 100000

Each candidate keeps members ordered by (score, member bytes), as Redis
does, beside a dict member -> score, and answers ZADD (a new member),
ZREM, ZRANK and ZRANGE (10 members from a random rank). Each set is first
filled with ``size`` members (bulk, not timed), then OPS of each operation
are timed; the figure is microseconds per operation (median of 3 rounds).

* ``sortedlist``: sortedcontainers.SortedList of (score, member) tuples;
* ``insort``: bisect.insort into one plain list: O(n) memmove per insert;
* ``skiplist``: a hand-rolled skiplist with spans (Redis's zskiplist) in
  pure Python.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import time

from sortedcontainers import SortedList

OPS = 2000
ROUNDS = 3
RANGE_LENGTH = 10


class SortedListZ:
    def __init__(self, items):
        self.order = SortedList(items)

    def add(self, item):
        self.order.add(item)

    def remove(self, item):
        self.order.remove(item)

    def rank(self, item):
        return self.order.bisect_left(item)

    def range(self, start, count):
        return list(self.order.islice(start, start + count))


class InsortZ:
    def __init__(self, items):
        self.order = sorted(items)

    def add(self, item):
        bisect.insort(self.order, item)

    def remove(self, item):
        del self.order[bisect.bisect_left(self.order, item)]

    def rank(self, item):
        return bisect.bisect_left(self.order, item)

    def range(self, start, count):
        return self.order[start : start + count]


MAX_LEVEL = 32


class _Node:
    __slots__ = ("item", "forward", "span")

    def __init__(self, item, level):
        self.item = item
        self.forward = [None] * level
        self.span = [0] * level


class SkiplistZ:
    """Redis's zskiplist: each level's forward pointer and span (how many
    nodes it jumps), so rank and by-rank lookups are O(log n)."""

    def __init__(self, items):
        self.head = _Node(None, MAX_LEVEL)
        self.level = 1
        self.length = 0
        for item in sorted(items):
            self._append(item)

    @staticmethod
    def _random_level():
        level = 1
        while level < MAX_LEVEL and random.random() < 0.25:
            level += 1
        return level

    def _append(self, item):
        # Bulk build from sorted input: the last node at each level is kept
        # in self._tails (O(1) per append).
        if self.length == 0:
            self._tails = [self.head] * MAX_LEVEL
            self._tail_rank = [0] * MAX_LEVEL
        level = self._random_level()
        self.level = max(self.level, level)
        node = _Node(item, level)
        self.length += 1
        for i in range(level):
            tail = self._tails[i]
            tail.forward[i] = node
            tail.span[i] = self.length - self._tail_rank[i]
            self._tails[i] = node
            self._tail_rank[i] = self.length

    def _path(self, item):
        update = [None] * MAX_LEVEL
        rank = [0] * MAX_LEVEL
        x = self.head
        for i in range(self.level - 1, -1, -1):
            rank[i] = 0 if i == self.level - 1 else rank[i + 1]
            while x.forward[i] is not None and x.forward[i].item < item:
                rank[i] += x.span[i]
                x = x.forward[i]
            update[i] = x
        return update, rank

    def add(self, item):
        update, rank = self._path(item)
        level = self._random_level()
        if level > self.level:
            for i in range(self.level, level):
                rank[i] = 0
                update[i] = self.head
                self.head.span[i] = self.length
            self.level = level
        node = _Node(item, level)
        for i in range(level):
            node.forward[i] = update[i].forward[i]
            update[i].forward[i] = node
            node.span[i] = update[i].span[i] - (rank[0] - rank[i])
            update[i].span[i] = (rank[0] - rank[i]) + 1
        for i in range(level, self.level):
            update[i].span[i] += 1
        self.length += 1

    def remove(self, item):
        update, _ = self._path(item)
        x = update[0].forward[0]
        for i in range(self.level):
            if update[i].forward[i] is x:
                update[i].span[i] += x.span[i] - 1
                update[i].forward[i] = x.forward[i]
            else:
                update[i].span[i] -= 1
        self.length -= 1

    def rank(self, item):
        x, rank = self.head, 0
        for i in range(self.level - 1, -1, -1):
            while x.forward[i] is not None and x.forward[i].item < item:
                rank += x.span[i]
                x = x.forward[i]
        return rank

    def range(self, start, count):
        x, traversed = self.head, 0
        target = start + 1
        for i in range(self.level - 1, -1, -1):
            while x.forward[i] is not None and traversed + x.span[i] <= target:
                traversed += x.span[i]
                x = x.forward[i]
        out = []
        while x is not None and len(out) < count:
            out.append(x.item)
            x = x.forward[0]
        return out


CANDIDATES = {"sortedlist": SortedListZ, "insort": InsortZ, "skiplist": SkiplistZ}


def member(i: int) -> bytes:
    return b"member:%d" % i


def time_ops(structure, size: int, rng: random.Random) -> dict[str, float]:
    fresh = [(rng.random() * size, member(size + i)) for i in range(OPS)]
    existing = [(float(i), member(i)) for i in (rng.randrange(size) for _ in range(OPS))]
    starts = [rng.randrange(max(size - RANGE_LENGTH, 1)) for _ in range(OPS)]
    timings = {}
    began = time.perf_counter()
    for item in fresh:
        structure.add(item)
    timings["zadd"] = time.perf_counter() - began
    began = time.perf_counter()
    for item in existing:
        structure.rank(item)
    timings["zrank"] = time.perf_counter() - began
    began = time.perf_counter()
    for start in starts:
        structure.range(start, RANGE_LENGTH)
    timings["zrange"] = time.perf_counter() - began
    began = time.perf_counter()
    for item in fresh:
        structure.remove(item)
    timings["zrem"] = time.perf_counter() - began
    return {name: seconds / OPS * 1e6 for name, seconds in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print(f"| structure | members | ZADD µs | ZREM µs | ZRANK µs | ZRANGE 10 µs |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        base = [(float(i), member(i)) for i in range(size)]
        for name, kind in CANDIDATES.items():
            structure = kind(base)
            rounds = [time_ops(structure, size, random.Random(seed)) for seed in range(ROUNDS)]
            med = {op: statistics.median(r[op] for r in rounds) for op in rounds[0]}
            print(
                f"| {name} | {size:,} | {med['zadd']:.1f} | {med['zrem']:.1f} | "
                f"{med['zrank']:.1f} | {med['zrange']:.1f} |",
                flush=True,
            )
            del structure


if __name__ == "__main__":
    main()
