"""Tests for kvserver/store.py: databases, lazy and active expiry, undo state.

Time is a fake clock (an int of Unix ms the test moves by hand): nothing here
sleeps, and every deadline is exact.
"""

from __future__ import annotations

import pytest

from kvserver import config
from kvserver.store import DEFAULT_DATABASES, Database, Keyspace
from tests.support import T0, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keyspace(clock: FakeClock) -> Keyspace:
    return Keyspace(clock=clock)


@pytest.fixture
def db(keyspace: Keyspace) -> Database:
    return keyspace.dbs[0]


def set_locked(db: Database, key: bytes, value: object, deadline: int | None = None) -> None:
    # Writers hold the write lock, as the dispatcher does.
    with db.lock:
        db.set(key, value, deadline)


# -- the keyspace ---------------------------------------------------------------


def test_keyspace_has_redis_default_database_count_sharing_one_lock(keyspace):
    assert len(keyspace.dbs) == DEFAULT_DATABASES == 16
    assert [d.index for d in keyspace.dbs] == list(range(16))
    assert all(d.lock is keyspace.write_lock for d in keyspace.dbs)


def test_keyspace_database_count_is_configurable(clock):
    assert len(Keyspace(clock=clock, databases=2).dbs) == 2


def test_keyspace_uses_the_injected_clock(keyspace, clock):
    assert keyspace.clock() == T0
    clock.advance(5)
    assert keyspace.clock() == T0 + 5


def test_databases_are_independent(keyspace):
    set_locked(keyspace.dbs[0], b"k", b"zero")
    set_locked(keyspace.dbs[3], b"k", b"three")
    assert keyspace.dbs[0].lookup(b"k", T0) == b"zero"
    assert keyspace.dbs[3].lookup(b"k", T0) == b"three"
    assert keyspace.dbs[1].lookup(b"k", T0) is None


# -- lookup / set / delete / ttl_ms ---------------------------------------------------


def test_lookup_missing_key_is_none(db):
    assert db.lookup(b"nope", T0) is None
    assert len(db) == 0


def test_set_then_lookup(db):
    set_locked(db, b"k", b"v")
    assert db.lookup(b"k", T0) == b"v"
    assert len(db) == 1


def test_set_replaces_value(db):
    set_locked(db, b"k", b"v1")
    set_locked(db, b"k", b"v2")
    assert db.lookup(b"k", T0) == b"v2"
    assert len(db) == 1


def test_empty_value_is_a_value_not_missing(db):
    set_locked(db, b"k", b"")
    assert db.lookup(b"k", T0) == b""
    assert db.ttl_ms(b"k", T0) == -1


def test_delete_reports_whether_key_existed(db):
    set_locked(db, b"k", b"v", T0 + 1000)
    with db.lock:
        assert db.delete(b"k") is True
        assert db.delete(b"k") is False
    assert b"k" not in db.data
    assert b"k" not in db.expires
    assert db.lookup(b"k", T0) is None


def test_ttl_ms_missing_key_is_minus_two(db):
    assert db.ttl_ms(b"k", T0) == -2


def test_ttl_ms_key_without_ttl_is_minus_one(db):
    set_locked(db, b"k", b"v")
    assert db.ttl_ms(b"k", T0) == -1


def test_ttl_ms_counts_down_with_the_clock(db):
    set_locked(db, b"k", b"v", T0 + 1500)
    assert db.ttl_ms(b"k", T0) == 1500
    assert db.ttl_ms(b"k", T0 + 1499) == 1
    # At the deadline itself the key is still live (Redis's keyIsExpired:
    # expired only when now > deadline); one millisecond later it is gone.
    assert db.ttl_ms(b"k", T0 + 1500) == 0
    assert db.ttl_ms(b"k", T0 + 1501) == -2


def test_set_with_deadline_records_it(db):
    set_locked(db, b"k", b"v", T0 + 10)
    assert db.expires == {b"k": T0 + 10}


def test_set_without_deadline_clears_ttl(db):
    set_locked(db, b"k", b"v", T0 + 10)
    set_locked(db, b"k", b"v2")
    assert b"k" not in db.expires
    assert db.ttl_ms(b"k", T0 + 1_000_000) == -1
    assert db.lookup(b"k", T0 + 1_000_000) == b"v2"


def test_set_deadline_on_existing_key(db):
    set_locked(db, b"k", b"v")
    with db.lock:
        db.set_deadline(b"k", T0 + 250)
    assert db.ttl_ms(b"k", T0) == 250
    assert db.lookup(b"k", T0 + 250) == b"v"
    assert db.lookup(b"k", T0 + 251) is None


# -- lazy expiry ------------------------------------------------------------------


def test_lookup_before_deadline_sees_the_value(db):
    set_locked(db, b"k", b"v", T0 + 100)
    assert db.lookup(b"k", T0 + 99) == b"v"
    assert b"k" in db.data and b"k" in db.expires


def test_lookup_at_the_deadline_still_sees_the_value(db):
    # Redis's keyIsExpired: a key is expired only when now > deadline.
    set_locked(db, b"k", b"v", T0 + 100)
    assert db.lookup(b"k", T0 + 100) == b"v"
    assert db.ttl_ms(b"k", T0 + 100) == 0
    assert db.data == {b"k": b"v"}
    assert db.expires == {b"k": T0 + 100}


@pytest.mark.parametrize("late_ms", [1, 2, 10**9])
def test_expired_key_reads_as_missing_and_is_removed_from_both_dicts(db, late_ms):
    set_locked(db, b"k", b"v", T0 + 100)
    assert db.lookup(b"k", T0 + 100 + late_ms) is None
    assert b"k" not in db.data
    assert b"k" not in db.expires
    assert len(db) == 0


def test_ttl_ms_of_expired_key_removes_it(db):
    set_locked(db, b"k", b"v", T0 + 100)
    assert db.ttl_ms(b"k", T0 + 100) == 0  # at the deadline: still live
    assert b"k" in db.data and b"k" in db.expires
    assert db.ttl_ms(b"k", T0 + 101) == -2
    assert b"k" not in db.data and b"k" not in db.expires


def test_lazy_expiry_leaves_other_keys_alone(db):
    set_locked(db, b"old", b"v", T0 + 100)
    set_locked(db, b"young", b"v", T0 + 200)
    set_locked(db, b"forever", b"v")
    assert db.lookup(b"old", T0 + 150) is None
    assert db.data == {b"young": b"v", b"forever": b"v"}
    assert db.expires == {b"young": T0 + 200}


def test_an_expired_key_set_again_lives(db):
    set_locked(db, b"k", b"v", T0 + 100)
    set_locked(db, b"k", b"new")  # replaced before anyone read it
    assert db.lookup(b"k", T0 + 200) == b"new"


def test_lookup_does_not_take_the_lock_for_live_keys(db):
    # Reads take no lock (a reader must not wait behind a writer's log
    # append); a lock that fails when used shows none is taken.
    class NoLock:
        def __enter__(self):
            raise AssertionError("lookup of a live key took the lock")

        def __exit__(self, *exc):
            return False

    set_locked(db, b"k", b"v", T0 + 100)
    db.lock = NoLock()
    assert db.lookup(b"k", T0) == b"v"
    assert db.ttl_ms(b"k", T0) == 100


# -- the undo journal ----------------------------------------------------------------


def journaled(db: Database, change) -> list:
    """Run ``change`` with a journal open, as the dispatcher does; return it."""
    journal: list = []
    with db.lock:
        db.keyspace.journal = journal
        try:
            change()
        finally:
            db.keyspace.journal = None
    return journal


def test_rollback_of_a_new_key_removes_it(db):
    journal = journaled(db, lambda: db.set(b"k", b"v", T0 + 5))
    with db.lock:
        db.keyspace.rollback(journal)
    assert b"k" not in db.data and b"k" not in db.expires
    assert db.scan(0, 100) == (0, [])


def test_rollback_brings_back_value_and_ttl(db):
    set_locked(db, b"k", b"old", T0 + 5000)
    journal = journaled(db, lambda: (db.set(b"k", b"new"), db.set(b"k", b"newer", T0 + 1)))
    with db.lock:
        db.keyspace.rollback(journal)
    assert db.data[b"k"] == b"old"
    assert db.expires[b"k"] == T0 + 5000


def test_rollback_of_a_new_ttl_and_of_persist(db):
    set_locked(db, b"plain", b"v")
    set_locked(db, b"timed", b"v", T0 + 9)
    journal = journaled(db, lambda: (db.set_deadline(b"plain", T0 + 5), db.set_deadline(b"timed", None)))
    assert db.expires == {b"plain": T0 + 5}
    with db.lock:
        db.keyspace.rollback(journal)
    assert db.expires == {b"timed": T0 + 9}


def test_rollback_after_delete(db):
    set_locked(db, b"k", b"v", T0 + 7)
    journal = journaled(db, lambda: db.delete(b"k"))
    with db.lock:
        db.keyspace.rollback(journal)
    assert db.data == {b"k": b"v"}
    assert db.expires == {b"k": T0 + 7}
    assert db.scan(0, 100)[1] == [b"k"]


def test_rollback_of_flush_and_swap(keyspace):
    zero, one = keyspace.dbs[0], keyspace.dbs[1]
    set_locked(zero, b"a", b"1", T0 + 3)
    set_locked(one, b"b", b"2")
    journal = journaled(zero, lambda: (zero.swap_with(one), one.flush()))
    assert zero.data == {b"b": b"2"} and one.data == {}
    with zero.lock:
        keyspace.rollback(journal)
    assert zero.data == {b"a": b"1"} and zero.expires == {b"a": T0 + 3}
    assert one.data == {b"b": b"2"}


def test_no_journal_outside_a_write_command(db):
    set_locked(db, b"k", b"v")
    assert db.keyspace.journal is None


# -- SCAN ------------------------------------------------------------------------------


def full_scan(db: Database, count: int, between_calls=lambda: None) -> list[bytes]:
    keys, cursor = [], 0
    while True:
        cursor, found = db.scan(cursor, count)
        keys.extend(found)
        if cursor == 0:
            return keys
        between_calls()


@pytest.mark.parametrize("count", [1, 10, 1000])
def test_scan_returns_every_key_once(db, count):
    for i in range(500):
        set_locked(db, b"key%d" % i, b"v")
    keys = full_scan(db, count)
    assert sorted(keys) == sorted(db.data)
    assert len(keys) == len(set(keys))


def test_scan_returns_every_key_present_throughout_despite_writes(db):
    for i in range(300):
        set_locked(db, b"stable%d" % i, b"v")
    counter = iter(range(10**6))

    def churn() -> None:
        n = next(counter)
        set_locked(db, b"new%d" % n, b"v")
        with db.lock:
            db.delete(b"new%d" % (n // 2))

    keys = set(full_scan(db, 7, churn))
    assert {b"stable%d" % i for i in range(300)} <= keys


def test_scan_of_an_empty_database(db):
    assert db.scan(0, 10) == (0, [])


# -- active expiry -----------------------------------------------------------------


def fill(db: Database, count: int, deadline_of) -> None:
    for i in range(count):
        set_locked(db, b"key:%d" % i, b"v", deadline_of(i))


def test_active_expiry_removes_expired_keys_nobody_touches(keyspace, clock, db):
    set_locked(db, b"gone", b"v", T0 + 10)
    set_locked(db, b"live", b"v", T0 + 10_000)
    set_locked(db, b"forever", b"v")
    clock.advance(10)
    # At the deadline the key is still live: active expiry deletes only
    # keys with deadline < now.
    assert keyspace.active_expire_cycle() == 0
    assert db.data == {b"gone": b"v", b"live": b"v", b"forever": b"v"}
    clock.advance(1)
    assert keyspace.active_expire_cycle() == 1
    assert db.data == {b"live": b"v", b"forever": b"v"}
    assert db.expires == {b"live": T0 + 10_000}


def test_active_expiry_with_nothing_to_do(keyspace, db):
    set_locked(db, b"forever", b"v")
    assert keyspace.active_expire_cycle() == 0
    assert keyspace.active_expire_cycle(budget_s=0) == 0
    assert db.data == {b"forever": b"v"}


def test_active_expiry_reads_the_injected_clock_not_the_wall_clock(keyspace, clock, db):
    # The fake "now" is far behind the real time: a deadline long past on the
    # wall clock is still in the future for the keyspace.
    clock.now = 1_000
    set_locked(db, b"k", b"v", 2_000)
    assert keyspace.active_expire_cycle() == 0
    assert db.lookup(b"k", clock()) == b"v"
    clock.now = 2_000
    assert keyspace.active_expire_cycle() == 0  # at the deadline: still live
    assert db.lookup(b"k", clock()) == b"v"
    clock.now = 2_001
    assert keyspace.active_expire_cycle() == 1


def test_active_expiry_covers_every_database(keyspace, clock):
    for d in keyspace.dbs:
        set_locked(d, b"k", b"v", T0 + 1)
        set_locked(d, b"live", b"v", T0 + 100)
    clock.advance(1)
    assert keyspace.active_expire_cycle() == 0  # at the deadline: still live
    assert all(d.data == {b"k": b"v", b"live": b"v"} for d in keyspace.dbs)
    clock.advance(1)
    assert keyspace.active_expire_cycle() == len(keyspace.dbs)
    for d in keyspace.dbs:
        assert d.data == {b"live": b"v"}
        assert d.expires == {b"live": T0 + 100}


def test_active_expiry_stops_early_when_a_batch_is_mostly_live(keyspace, clock, db):
    # 1000 keys with a TTL, one in a hundred expired, spread out: the first
    # batch finds almost nothing to do, so the cycle must stop there rather
    # than scan all 1000 (which would remove all ten).
    fill(db, 1000, lambda i: T0 + 10 if i % 100 == 0 else T0 + 60_000)
    clock.advance(11)
    removed = keyspace.active_expire_cycle(budget_s=60.0)  # time is not what stops it
    assert removed < 10
    assert len(db) == 1000 - removed

    # Later cycles carry on from where the last stopped: a full pass over
    # the keys, a batch per cycle, finds the rest.
    cycles = 1
    while len(db) > 990:
        keyspace.active_expire_cycle(budget_s=60.0)
        cycles += 1
        assert cycles <= 1000 // config.EXPIRE_BATCH_KEYS + 1
    assert not any(b"key:%d" % i in db.data for i in range(0, 1000, 100))
    assert len(db.expires) == 990
    assert all(deadline == T0 + 60_000 for deadline in db.expires.values())


def test_active_expiry_keeps_going_while_batches_are_mostly_expired(keyspace, clock, db):
    fill(db, 1000, lambda i: T0 + 10)
    clock.advance(10)
    # At the deadline nothing has expired yet.
    assert keyspace.active_expire_cycle(budget_s=60.0) == 0
    assert len(db) == 1000 and len(db.expires) == 1000
    clock.advance(1)
    # A generous budget: batch after batch is all expired, so one cycle
    # sweeps them all.
    assert keyspace.active_expire_cycle(budget_s=60.0) == 1000
    assert db.data == {} and db.expires == {}


def test_active_expiry_within_a_time_budget_eventually_removes_all(keyspace, clock, db):
    fill(db, 1000, lambda i: T0 + 10 + i)
    clock.advance(10_000)
    # No budget at all: each cycle does one batch and then stops for time.
    first = keyspace.active_expire_cycle(budget_s=0)
    assert 0 < first < 1000
    total = first
    cycles = 1
    while db.expires:
        total += keyspace.active_expire_cycle(budget_s=0)
        cycles += 1
        assert cycles <= 1000  # every cycle must make progress
    assert total == 1000
    assert db.data == {}


def test_active_expiry_with_all_expired_and_default_budget(keyspace, clock, db):
    fill(db, 1000, lambda i: T0 + 1)
    clock.advance(2)
    for _ in range(1000):
        if not db.expires:
            break
        keyspace.active_expire_cycle()
    assert db.data == {} and db.expires == {}


def test_active_expiry_copes_with_keys_deleted_or_changed_behind_its_back(keyspace, clock, db):
    fill(db, 100, lambda i: T0 + 10)
    clock.advance(11)
    keyspace.active_expire_cycle(budget_s=0)  # takes a snapshot of the keys, sweeps one batch
    with db.lock:
        for i in range(50, 100):
            db.delete(b"key:%d" % i)  # gone before the sweep gets there
    set_locked(db, b"key:0", b"back")  # removed by the sweep, set again without a TTL
    set_locked(db, b"key:49", b"kept")  # replaced without a TTL before the sweep saw it
    set_locked(db, b"new", b"v", T0 + 5)  # expired, but after the snapshot
    for _ in range(100):
        keyspace.active_expire_cycle(budget_s=0)
    assert db.data == {b"key:0": b"back", b"key:49": b"kept"}
    assert db.expires == {}


def test_active_expiry_does_not_touch_keys_without_ttl(keyspace, clock, db):
    fill(db, 100, lambda i: None)
    clock.advance(10**12)
    assert keyspace.active_expire_cycle() == 0
    assert len(db) == 100
