"""The value model (kvserver/values/, store.Database.writable/changed):
containers keep their size estimate, undo exactly, are never stored empty,
are copied before a change while a rewrite's snapshot holds them, and
rebuild themselves from their rewrite records."""

from __future__ import annotations

import pytest

from kvserver.store import Keyspace
from kvserver.values import Hash, List, Set, duplicate, encoding, memory, rewrite_records, type_name
from kvserver.values.lists import EMPTY_SIZE as LIST_EMPTY, ITEM_OVERHEAD

NOW = 1_000


def _store(value, key=b"k"):
    keyspace = Keyspace(clock=lambda: NOW)
    db = keyspace.dbs[0]
    with keyspace.write_lock:
        db.changed(key, value, 0, None)  # a new value is stored
    return keyspace, db


def test_a_list_keeps_its_size_estimate_through_changes_and_undo():
    items = List([b"a", b"bb"])
    assert items.nbytes == LIST_EMPTY + 3 + 2 * ITEM_OVERHEAD
    undo = items.push([b"ccc"], left=True)
    assert list(items) == [b"ccc", b"a", b"bb"]
    assert items.nbytes == List(items).nbytes  # the same as measuring it afresh
    undo()
    assert list(items) == [b"a", b"bb"] and items.nbytes == List(items).nbytes
    popped, undo = items.pop_items(5, left=False)
    assert popped == [b"bb", b"a"] and not items
    undo()
    assert list(items) == [b"a", b"bb"] and items.nbytes == List(items).nbytes


@pytest.mark.parametrize("make", [lambda: Hash({b"f": b"v"}), lambda: Set({b"m"}), lambda: List([b"x"])])
def test_changed_keeps_used_bytes_and_rolls_back_exactly(make):
    value = make()
    keyspace, db = _store(value)
    used = db.used_bytes
    with keyspace.write_lock:
        journal = keyspace.journal = []
        live = db.writable(b"k", db.lookup(b"k", NOW))
        before = live.nbytes
        if type(live) is Hash:
            _, undo = live.set_field(b"g", b"w" * 100)
        elif type(live) is Set:
            _, undo = live.add_members([b"n" * 100])
        else:
            undo = live.push([b"y" * 100], left=False)
        db.changed(b"k", live, before, undo)
        assert db.used_bytes == used + live.nbytes - before > used
        keyspace.rollback(journal)
        keyspace.journal = None
    assert db.used_bytes == used
    assert db.data[b"k"] == make()


def test_a_container_left_empty_is_deleted_and_a_rollback_brings_it_back():
    keyspace, db = _store(Set({b"only"}))
    used = db.used_bytes
    with keyspace.write_lock:
        journal = keyspace.journal = []
        value = db.data[b"k"]
        before = value.nbytes
        _, undo = value.remove_members([b"only"])
        db.changed(b"k", value, before, undo)
        assert b"k" not in db.data and db.used_bytes == 0
        keyspace.rollback(journal)
        keyspace.journal = None
    assert db.data[b"k"] == {b"only"} and db.used_bytes == used


def test_an_empty_new_container_is_never_stored():
    keyspace, db = _store(List())
    assert b"k" not in db.data and db.used_bytes == 0


def test_a_change_during_a_rewrite_snapshot_copies_the_container_first():
    keyspace, db = _store(List([b"a"]))
    snapshot = dict(db.data)
    keyspace.begin_snapshot()
    with keyspace.write_lock:
        live = db.writable(b"k", db.data[b"k"])
        assert live is not snapshot[b"k"]
        before = live.nbytes
        db.changed(b"k", live, before, live.push([b"b"], left=False))
        assert db.writable(b"k", live) is live  # copied once per snapshot
    assert list(snapshot[b"k"]) == [b"a"]  # what the rewrite writes out
    assert list(db.data[b"k"]) == [b"a", b"b"]
    keyspace.end_snapshot()
    assert db.writable(b"k", db.data[b"k"]) is db.data[b"k"]


def test_a_change_to_a_watched_container_marks_its_watchers():
    from kvserver.store import Watches

    keyspace, db = _store(Hash({b"f": b"1"}))
    watches = Watches()
    with keyspace.write_lock:
        db.watch(watches, b"k", NOW)
        value = db.data[b"k"]
        before = value.nbytes
        db.changed(b"k", value, before, value.set_field(b"f", b"2")[1])
    assert watches.dirty


def test_types_encodings_copies_and_rewrite_records():
    settings = Keyspace().encodings
    long_list = List([b"%d" % i for i in range(150)])
    assert type_name(long_list) == "list" and encoding(long_list, settings) == "quicklist"
    records = list(rewrite_records(b"l", long_list))
    assert [len(r) - 2 for r in records] == [64, 64, 22]
    assert all(r[:2] == [b"RPUSH", b"l"] for r in records)
    small = Hash({b"f": b"v"})
    assert encoding(small, settings) == "listpack"
    small.set_field(b"g", b"v" * 65)
    assert encoding(small, settings) == "hashtable"
    small.delete_field(b"g")
    assert encoding(small, settings) == "hashtable"  # converted once, never back
    assert list(rewrite_records(b"h", small)) == [[b"HSET", b"h", b"f", b"v"]]
    numbers = Set({b"1", b"-2"})
    assert encoding(numbers, settings) == "intset"
    numbers.add_members([b"01"])  # not canonical: no longer an intset
    assert encoding(numbers, settings) == "hashtable"
    twin = duplicate(numbers)
    assert twin == numbers and twin is not numbers and encoding(twin, settings) == "hashtable"
    assert memory(b"abc") == 3 and memory(numbers) == numbers.nbytes
    assert [encoding(v, settings) for v in (b"12", b"012", b"x" * 44, b"x" * 45)] == ["int", "embstr", "embstr", "raw"]


def test_a_list_keeps_its_size_and_undoes_inserts_trims_and_removals():
    items = List([b"a", b"b", b"a", b"c", b"a"])
    original = list(items)
    for change in [
        lambda: items.insert_item(2, b"new"),
        lambda: items.insert_item(5, b"end"),
        lambda: items.trim(1, 2),
        lambda: items.trim(5, 0),
        lambda: items.remove_items(b"a", 2)[1],
        lambda: items.remove_items(b"a", -1)[1],
        lambda: items.remove_items(b"a", 0)[1],
    ]:
        undo = change()
        assert items.nbytes == List(items).nbytes  # the same as measuring it afresh
        undo()
        assert list(items) == original and items.nbytes == List(items).nbytes
    assert items.remove_items(b"zz", 0) == (0, None)
    removed, _ = items.remove_items(b"a", -2)
    assert removed == 2 and list(items) == [b"a", b"b", b"c"]
    assert items.range_items(1, 3) == [b"b", b"c"] and items.range_items(0, 1) == [b"a"]
