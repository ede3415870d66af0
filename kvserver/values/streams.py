"""Redis streams: ``Stream``, entries ordered by ID, and its consumer groups.

An entry ID is Redis's pair of unsigned 64-bit numbers ``ms-seq``, held as
one int ``ms << 64 | seq`` so that IDs compare, sort and bisect as plain
ints (``make_id``, ``id_text``). What a stream holds, as Redis 7.0's
``stream`` struct does:

* ``entries``: a sortedcontainers ``SortedDict`` id -> the entry's fields
  and values as one flat tuple; O(log n) to seek an ID, appends at the end
  the common case;
* ``last_id`` (last-generated-id: never goes backwards by XADD, survives
  the deletion of the top entry), ``entries_added``, ``max_deleted``
  (max-deleted-entry-id); the first entry's ID is ``entries``' first key;
* ``nodes``: the shape of Redis's radix tree of listpacks, kept because it
  is observable: ``MAXLEN ~``/``MINID ~`` remove whole nodes only, and
  XINFO STREAM reports radix-tree-keys. Each ``Node`` is where a run of
  appends went (at most stream-node-max-entries = 100 entries, live or
  deleted, and about stream-node-max-bytes = 4096 bytes, measured as
  listpack element sizes); XDEL and exact trims mark entries deleted in
  their node, and a node whose live entries are all gone is removed, as in
  Redis's t_stream.c;
* ``groups``: name -> ``Group`` (last-delivered-id, entries-read, the
  pending entries list: id -> ``Nack`` (consumer, delivery time, delivery
  count), and consumers, each with its own PEL of the same ``Nack``s and
  its seen-time).

A stream is never deleted for being empty (Redis keeps an empty stream:
its last ID and groups still matter), so ``bool(stream)`` is always True.

Changes run under the write lock through the methods below; each keeps
``nbytes`` right and records how to undo itself in an ``Undo`` (a list of
closures run newest first), so a failed log append restores the stream
exactly, groups and all.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

from sortedcontainers import SortedDict

SEQ_BITS = 64
SEQ_MASK = (1 << SEQ_BITS) - 1
MAX_ID = (1 << 128) - 1  # UINT64_MAX-UINT64_MAX
# SCG_INVALID_ENTRIES_READ: a group's entries-read when it is not known.
INVALID_ENTRIES_READ = -1

# Redis's defaults for stream-node-max-entries / stream-node-max-bytes.
NODE_MAX_ENTRIES = 100
NODE_MAX_BYTES = 4096

# Size estimates (store.PER_KEY_OVERHEAD's kind): an entry's tuple, its
# slot in the sorted dict and its int key; a group, a consumer, a nack.
ENTRY_OVERHEAD = 56 + 8 + 48 + 40
ITEM_OVERHEAD = 33 + 8
GROUP_OVERHEAD = 400
CONSUMER_OVERHEAD = 300
NACK_OVERHEAD = 150
EMPTY_SIZE = 600


def make_id(ms: int, seq: int) -> int:
    return ms << SEQ_BITS | seq


def id_text(entry_id: int) -> bytes:
    return b"%d-%d" % (entry_id >> SEQ_BITS, entry_id & SEQ_MASK)


class Undo(list):
    """Closures that undo a command's changes, run newest first."""

    def __call__(self) -> None:
        for step in reversed(self):
            step()


# -- listpack sizes (for the node emulation) ---------------------------------------


def _lp_int_size(value: int) -> int:
    if 0 <= value <= 127:
        return 1
    if -4096 <= value <= 4095:
        return 2
    if -(2**15) <= value < 2**15:
        return 3
    if -(2**23) <= value < 2**23:
        return 4
    if -(2**31) <= value < 2**31:
        return 5
    return 9


def _lp_backlen(size: int) -> int:
    if size <= 127:
        return 1
    if size < 16383:
        return 2
    if size < 2097151:
        return 3
    if size < 268435455:
        return 4
    return 5


def _lp_elem(size: int) -> int:
    return size + _lp_backlen(size)


def _lp_int(value: int) -> int:
    return _lp_elem(_lp_int_size(value))


_CANONICAL_INT = re.compile(rb"(?:0|-?[1-9][0-9]{0,18})\Z")


def _lp_str(data: bytes) -> int:
    """Bytes a listpack element takes for ``data`` (stored as an integer when
    it is one in canonical form, as lpAppend does)."""
    if _CANONICAL_INT.match(data) and -(2**63) <= int(data) < 2**63:
        return _lp_int(int(data))
    size = len(data)
    header = 1 if size < 64 else 2 if size < 4096 else 5
    return _lp_elem(header + size)


class Node:
    """One of Redis's listpack nodes: where a run of appends went."""

    __slots__ = ("master", "last", "live", "deleted", "body", "fields")

    def __init__(self, master: int, fields: tuple) -> None:
        self.master = master  # its first entry's ID: the radix tree key
        self.last = master  # its last entry's ID, deleted or not
        self.live = 0
        self.deleted = 0
        self.fields = fields  # the master entry's field names
        # Listpack bytes but the header, the end byte and the two counters.
        self.body = _lp_int(len(fields)) + sum(map(_lp_str, fields)) + _lp_int(0)

    def lp_bytes(self) -> int:
        return 7 + _lp_int(self.live) + _lp_int(self.deleted) + self.body

    def state(self) -> tuple:
        return self.last, self.live, self.deleted, self.body

    def restore(self, state: tuple) -> None:
        self.last, self.live, self.deleted, self.body = state

    def copy(self) -> Node:
        twin = Node.__new__(Node)
        twin.master, twin.fields = self.master, self.fields
        twin.restore(self.state())
        return twin


class Nack:
    """A pending entry: who has it, since when, how many deliveries."""

    __slots__ = ("consumer", "delivery_time", "delivery_count")

    def __init__(self, consumer: Consumer | None, delivery_time: int, delivery_count: int) -> None:
        self.consumer = consumer
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count


class Consumer:
    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, seen_time: int) -> None:
        self.name = name
        self.seen_time = seen_time
        self.pel: SortedDict = SortedDict()  # id -> Nack (the group's own objects)


class Group:
    __slots__ = ("name", "last_id", "entries_read", "pel", "consumers")

    def __init__(self, name: bytes, last_id: int, entries_read: int) -> None:
        self.name = name
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()  # id -> Nack
        self.consumers: dict[bytes, Consumer] = {}

    def copy(self) -> Group:
        twin = Group(self.name, self.last_id, self.entries_read)
        for name, consumer in self.consumers.items():
            mate = Consumer(name, consumer.seen_time)
            twin.consumers[name] = mate
        for entry_id, nack in self.pel.items():
            owner = twin.consumers[nack.consumer.name]
            mate = Nack(owner, nack.delivery_time, nack.delivery_count)
            twin.pel[entry_id] = mate
            owner.pel[entry_id] = mate
        return twin

    def sorted_consumers(self) -> list[Consumer]:
        """By name, as Redis's radix tree lists them."""
        return [self.consumers[name] for name in sorted(self.consumers)]


def _entry_size(fields: tuple) -> int:
    return ENTRY_OVERHEAD + sum(len(item) for item in fields) + ITEM_OVERHEAD * len(fields)


class Stream:
    __slots__ = ("entries", "last_id", "entries_added", "max_deleted", "nodes", "groups", "nbytes", "epoch")

    def __init__(self) -> None:
        self.entries: SortedDict = SortedDict()
        self.last_id = 0
        self.entries_added = 0
        self.max_deleted = 0
        self.nodes: list[Node] = []
        self.groups: dict[bytes, Group] = {}
        self.nbytes = EMPTY_SIZE
        self.epoch = 0  # the rewrite's copy-on-write mark (store.Database.writable)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:  # an empty stream is still stored (module docstring)
        return True

    def __eq__(self, other: object) -> bool:  # tests compare keyspaces
        return type(other) is Stream and self.state() == other.state()

    __hash__ = None

    def state(self) -> tuple:
        """Everything a restart must rebuild, as plain data (tests compare it)."""
        groups = {
            name: (
                group.last_id,
                group.entries_read,
                {i: (n.consumer.name, n.delivery_time, n.delivery_count) for i, n in group.pel.items()},
                sorted(group.consumers),
            )
            for name, group in self.groups.items()
        }
        return dict(self.entries), self.last_id, self.entries_added, self.max_deleted, groups

    def copy(self) -> Stream:
        twin = Stream.__new__(Stream)
        twin.entries = self.entries.copy()
        twin.last_id, twin.entries_added, twin.max_deleted = self.last_id, self.entries_added, self.max_deleted
        twin.nodes = [node.copy() for node in self.nodes]
        twin.groups = {name: group.copy() for name, group in self.groups.items()}
        twin.nbytes, twin.epoch = self.nbytes, 0
        return twin

    def encoding(self, settings) -> str:
        return "stream"

    def rewrite_records(self, key: bytes, per_command: int):
        """As Redis 7.0's rewriteStreamObject: an XADD per entry (an empty
        stream as ``XADD key MAXLEN 0 0-1 x y``), XSETID with ENTRIESADDED
        and MAXDELETEDID, then per group (by name) XGROUP CREATE ...
        ENTRIESREAD, and per consumer (by name) an XCLAIM ... TIME RETRYCOUNT
        JUSTID FORCE for each pending entry (its owner, delivery time and
        count), or XGROUP CREATECONSUMER for a consumer with none."""
        if self.entries:
            for entry_id, fields in self.entries.items():
                yield [b"XADD", key, id_text(entry_id), *fields]
        else:
            yield [b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]
        yield [
            b"XSETID", key, id_text(self.last_id),
            b"ENTRIESADDED", b"%d" % self.entries_added,
            b"MAXDELETEDID", id_text(self.max_deleted),
        ]  # fmt: skip
        for name in sorted(self.groups):
            group = self.groups[name]
            yield [
                b"XGROUP", b"CREATE", key, name, id_text(group.last_id),
                b"ENTRIESREAD", b"%d" % group.entries_read,
            ]  # fmt: skip
            for consumer in group.sorted_consumers():
                if not consumer.pel:
                    yield [b"XGROUP", b"CREATECONSUMER", key, name, consumer.name]
                for entry_id, nack in consumer.pel.items():
                    yield [
                        b"XCLAIM", key, name, consumer.name, b"0", id_text(entry_id),
                        b"TIME", b"%d" % nack.delivery_time, b"RETRYCOUNT", b"%d" % nack.delivery_count,
                        b"JUSTID", b"FORCE",
                    ]  # fmt: skip

    # -- reads -------------------------------------------------------------------------

    def first_id(self) -> int:
        """recorded-first-entry-id: the first live entry's ID, 0-0 if empty."""
        return self.entries.keys()[0] if self.entries else 0

    def last_entry_id(self) -> int:
        return self.entries.keys()[-1] if self.entries else 0

    def range(self, start: int, end: int, count: int = 0, reverse: bool = False) -> list[tuple[int, tuple]]:
        """Entries with start <= id <= end, at most ``count`` (0: all), in ID
        order or reversed (a new list)."""
        if start > end:
            return []
        entries = self.entries
        keys = entries.irange(start, end, reverse=reverse)
        out = []
        for entry_id in keys:
            out.append((entry_id, entries[entry_id]))
            if count and len(out) >= count:
                break
        return out

    def after(self, entry_id: int, count: int) -> list[tuple[int, tuple]]:
        """Entries with an ID above ``entry_id`` (XREAD)."""
        if entry_id >= MAX_ID:
            return []
        return self.range(entry_id + 1, MAX_ID, count)

    def first_with_tombstones(self) -> int | None:
        """The first ID Redis's listpacks still hold, deleted or not (the
        first node's master entry); None for a stream with no nodes."""
        return self.nodes[0].master if self.nodes else None

    def distance_from_first_ever(self, entry_id: int) -> int:
        """Redis's streamEstimateDistanceFromFirstEverEntry: ``entry_id``'s
        logical read counter, or INVALID_ENTRIES_READ if it cannot be known."""
        if not self.entries_added:
            return 0
        if not self.entries and entry_id <= self.last_id:
            return self.entries_added
        if entry_id == self.last_id:
            return self.entries_added
        if entry_id > self.last_id:
            return INVALID_ENTRIES_READ
        first = self.first_id()
        if not self.max_deleted or self.max_deleted < first:
            if entry_id < first:
                return self.entries_added - len(self.entries)
            if entry_id == first:
                return self.entries_added - len(self.entries) + 1
        return INVALID_ENTRIES_READ

    def has_tombstones(self, start: int | None, end: int | None = None) -> bool:
        """Redis's streamRangeHasTombstones."""
        if not self.entries or not self.max_deleted:
            return False
        if self.first_id() > self.max_deleted:
            return False
        low = 0 if start is None else start
        high = MAX_ID if end is None else end
        return low <= self.max_deleted <= high

    def lag(self, group: Group) -> int | None:
        """XINFO's lag of ``group``, None when it cannot be known."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.distance_from_first_ever(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    # -- changes to entries (write lock held) --------------------------------------------

    def append(self, entry_id: int, fields: tuple, undo: Undo) -> None:
        """XADD's append of an entry whose ID is above ``last_id``."""
        old = self.last_id, self.entries_added
        self._append_to_node(entry_id, fields, undo)
        self.entries[entry_id] = fields
        self.last_id = entry_id
        self.entries_added += 1
        size = _entry_size(fields)
        self.nbytes += size

        def revert() -> None:
            del self.entries[entry_id]
            self.last_id, self.entries_added = old
            self.nbytes -= size

        undo.append(revert)

    def _append_to_node(self, entry_id: int, fields: tuple, undo: Undo) -> None:
        names = fields[0::2]
        total = sum(len(item) for item in fields)
        node = self.nodes[-1] if self.nodes else None
        if node is not None and (
            node.lp_bytes() + total >= NODE_MAX_BYTES or node.live + node.deleted >= NODE_MAX_ENTRIES
        ):
            node = None
        if node is None:
            node = Node(entry_id, names)
            self.nodes.append(node)
            undo.append(self.nodes.pop)
        else:
            state = node.state()
            undo.append(lambda: node.restore(state))
        same = names == node.fields
        diff_ms = (entry_id >> SEQ_BITS) - (node.master >> SEQ_BITS)
        diff_seq = (entry_id & SEQ_MASK) - (node.master & SEQ_MASK)
        size = _lp_int(2 if same else 0) + _lp_int(diff_ms) + _lp_int(diff_seq)
        count = len(names) + 3
        if not same:
            size += _lp_int(len(names)) + sum(map(_lp_str, names))
            count += len(names) + 1
        size += sum(map(_lp_str, fields[1::2])) + _lp_int(count)
        node.body += size
        node.live += 1
        node.last = entry_id

    def _node_of(self, entry_id: int) -> int:
        return bisect.bisect_right(self.nodes, entry_id, key=lambda node: node.master) - 1

    def _mark_deleted(self, entry_id: int, undo: Undo) -> None:
        """The entry's node counts it deleted (removed when none is live)."""
        index = self._node_of(entry_id)
        node = self.nodes[index]
        if node.live == 1:
            del self.nodes[index]
            undo.append(lambda: self.nodes.insert(index, node))
            return
        state = node.state()
        node.live -= 1
        node.deleted += 1
        undo.append(lambda: node.restore(state))

    def _drop_entry(self, entry_id: int, undo: Undo) -> None:
        fields = self.entries.pop(entry_id)
        size = _entry_size(fields)
        self.nbytes -= size

        def revert() -> None:
            self.entries[entry_id] = fields
            self.nbytes += size

        undo.append(revert)

    def delete(self, ids: Iterable[int], undo: Undo) -> int:
        """XDEL: how many of ``ids`` were entries; max-deleted-entry-id follows."""
        old = self.max_deleted
        undo.append(lambda: setattr(self, "max_deleted", old))
        deleted = 0
        for entry_id in ids:
            if entry_id not in self.entries:
                continue
            self._mark_deleted(entry_id, undo)
            self._drop_entry(entry_id, undo)
            self.max_deleted = max(self.max_deleted, entry_id)
            deleted += 1
        return deleted

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int, undo: Undo) -> int:
        """Redis's streamTrim: whole nodes from the head while they may go
        (at most ``limit`` entries, 0: no limit), then, unless ``approx``,
        entries one by one within the next node. Returns how many went."""
        removed = 0
        while self.nodes:
            if maxlen is not None and len(self.entries) <= maxlen:
                break
            node = self.nodes[0]
            if limit and removed + node.live > limit:
                break
            if maxlen is not None:
                whole = len(self.entries) - node.live >= maxlen
            else:
                whole = node.last < minid
            if whole:
                ids = list(self.entries.irange(node.master, node.last))
                for entry_id in ids:
                    self._drop_entry(entry_id, undo)
                del self.nodes[0]
                undo.append(lambda node=node: self.nodes.insert(0, node))
                removed += node.live
                continue
            if approx:
                break
            state = node.state()
            undo.append(lambda node=node, state=state: node.restore(state))
            for entry_id in list(self.entries.irange(node.master, node.last)):
                if maxlen is not None and len(self.entries) <= maxlen:
                    break
                if minid is not None and entry_id >= minid:
                    break
                self._drop_entry(entry_id, undo)
                node.live -= 1
                node.deleted += 1
                removed += 1
            break
        return removed

    def set_id(self, last_id: int, entries_added: int | None, max_deleted: int | None, undo: Undo) -> None:
        """XSETID (checked by the command)."""
        old = self.last_id, self.entries_added, self.max_deleted
        self.last_id = last_id
        if entries_added is not None:
            self.entries_added = entries_added
        if max_deleted:
            self.max_deleted = max_deleted

        def revert() -> None:
            self.last_id, self.entries_added, self.max_deleted = old

        undo.append(revert)

    # -- changes to groups -------------------------------------------------------------

    def create_group(self, name: bytes, last_id: int, entries_read: int, undo: Undo) -> Group:
        group = Group(name, last_id, entries_read)
        self.groups[name] = group
        self.nbytes += GROUP_OVERHEAD + len(name)

        def revert() -> None:
            del self.groups[name]
            self.nbytes -= GROUP_OVERHEAD + len(name)

        undo.append(revert)
        return group

    def destroy_group(self, name: bytes, undo: Undo) -> None:
        group = self.groups.pop(name)
        size = self._group_size(group)
        self.nbytes -= size
        # Dicts keep insertion order, which XINFO GROUPS does not show (sorted),
        # but the rewrite's order does: put it back where it was.
        order = list(self.groups)

        def revert() -> None:
            self.groups[name] = group
            for other in order:
                self.groups[other] = self.groups.pop(other)
            self.nbytes += size

        undo.append(revert)

    def _group_size(self, group: Group) -> int:
        return (
            GROUP_OVERHEAD
            + len(group.name)
            + sum(CONSUMER_OVERHEAD + len(c) for c in group.consumers)
            + NACK_OVERHEAD * len(group.pel)
        )

    def set_group_id(self, group: Group, last_id: int, entries_read: int, undo: Undo) -> None:
        old = group.last_id, group.entries_read

        def revert() -> None:
            group.last_id, group.entries_read = old

        group.last_id, group.entries_read = last_id, entries_read
        undo.append(revert)

    def create_consumer(self, group: Group, name: bytes, now: int, undo: Undo) -> Consumer:
        consumer = Consumer(name, now)
        group.consumers[name] = consumer
        self.nbytes += CONSUMER_OVERHEAD + len(name)

        def revert() -> None:
            del group.consumers[name]
            self.nbytes -= CONSUMER_OVERHEAD + len(name)

        undo.append(revert)
        return consumer

    def delete_consumer(self, group: Group, name: bytes, undo: Undo) -> int:
        """XGROUP DELCONSUMER: its pending entries go too; returns how many."""
        consumer = group.consumers.pop(name)
        pending = list(consumer.pel.items())
        for entry_id, _ in pending:
            del group.pel[entry_id]
        size = CONSUMER_OVERHEAD + len(name) + NACK_OVERHEAD * len(pending)
        self.nbytes -= size
        order = list(group.consumers)

        def revert() -> None:
            group.consumers[name] = consumer
            for other in order:
                group.consumers[other] = group.consumers.pop(other)
            for entry_id, nack in pending:
                group.pel[entry_id] = nack
            self.nbytes += size

        undo.append(revert)
        return len(pending)

    def touch_consumer(self, consumer: Consumer, now: int, undo: Undo) -> None:
        old = consumer.seen_time
        consumer.seen_time = now
        undo.append(lambda: setattr(consumer, "seen_time", old))

    def add_nack(self, group: Group, entry_id: int, nack: Nack, undo: Undo) -> None:
        """A new pending entry (its consumer's PEL too, if it has one)."""
        group.pel[entry_id] = nack
        if nack.consumer is not None:
            nack.consumer.pel[entry_id] = nack
        self.nbytes += NACK_OVERHEAD

        def revert() -> None:
            del group.pel[entry_id]
            if nack.consumer is not None:
                del nack.consumer.pel[entry_id]
            self.nbytes -= NACK_OVERHEAD

        undo.append(revert)

    def remove_nack(self, group: Group, entry_id: int, undo: Undo) -> None:
        nack = group.pel.pop(entry_id)
        consumer = nack.consumer
        del consumer.pel[entry_id]
        self.nbytes -= NACK_OVERHEAD

        def revert() -> None:
            group.pel[entry_id] = nack
            consumer.pel[entry_id] = nack
            self.nbytes += NACK_OVERHEAD

        undo.append(revert)

    def update_nack(
        self, entry_id: int, nack: Nack, consumer: Consumer, delivery_time: int, delivery_count: int, undo: Undo
    ) -> None:
        """Give a pending entry to ``consumer`` with the time and count given."""
        old = nack.consumer, nack.delivery_time, nack.delivery_count
        if nack.consumer is not consumer:
            if nack.consumer is not None:
                del nack.consumer.pel[entry_id]
            consumer.pel[entry_id] = nack
        nack.consumer, nack.delivery_time, nack.delivery_count = consumer, delivery_time, delivery_count

        def revert() -> None:
            if old[0] is not consumer:
                del consumer.pel[entry_id]
                if old[0] is not None:
                    old[0].pel[entry_id] = nack
            nack.consumer, nack.delivery_time, nack.delivery_count = old

        undo.append(revert)
