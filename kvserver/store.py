"""The keyspace: databases of key -> value, with absolute expiry times.

Rules this module keeps:

* Each ``Database`` is two dicts: ``data`` (key -> value) and ``expires``
  (key -> absolute deadline in Unix milliseconds, only for keys with a TTL).
  A key is in ``expires`` only while it is in ``data``.
* Every change to any database happens with ``Keyspace.write_lock`` held.
  That lock is the server's one global write lock: the dispatcher holds it
  across "apply the mutation, append it to the log", so the log order is the
  order in which mutations happened. It is re-entrant so that a write
  command can call the same lookup helpers that reads use.
* Reads take no lock; they are kept whole by a sequence count instead (a
  seqlock). ``Keyspace.seq`` is odd while a write, a transaction or a script
  is changing anything and even otherwise; a read that started and ended on
  the same even count saw no write at all, and is redone under the lock
  otherwise (dispatch.py). So no client sees half of an MSET, an EXEC or a
  script, and a read costs two attribute loads, not a lock.
* WATCH: ``Database.watched`` maps a watched key to the ``WatchedKey``
  entries of the clients watching it. Every change to a key (set, delete,
  a new deadline, FLUSHDB, SWAPDB) marks those clients' ``Watches`` dirty,
  as Redis's touchWatchedKey does; the cost while nobody watches is one
  truth test per change.
* Client-side caching: while any client has CLIENT TRACKING on,
  ``Database.tracking`` is the keyspace's ``Tracking`` (kvserver/tracking.py),
  told of every change the watchers are (and of FLUSHDB/FLUSHALL, but not
  SWAPDB, as in Redis 7.0); else None, one truth test per change.
* Expiry is lazy and active, as in Redis: ``lookup`` treats a key past its
  deadline (now > deadline, as Redis's keyIsExpired) as missing and deletes
  it (taking the lock, then checking again, because a writer may have just
  replaced it); ``active_expire_cycle`` removes expired keys nobody
  touches, a few at a time. Either way the deletion is logged as a DEL, as
  Redis propagates one (``Keyspace.on_expired``, set by the server): the
  replay runs before every deadline (server.py), so without that DEL a key
  that expired and was then made again by a command that adds to a value
  (RPUSH, HSET, SADD...) would come back holding the old elements too. If
  the DEL cannot be logged the key stays, expired and so invisible, and
  goes at the next try.
* Time is never read here: callers pass ``now`` (ms), from the injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kvserver import config, notify
from kvserver.ticker import Ticker
from kvserver.values import EncodingSettings, duplicate

DEFAULT_DATABASES = 16  # Redis's default "databases" setting
DEFAULT_BUSY_REPLY_MS = 5000  # Redis's busy-reply-threshold (lua-time-limit)
DEFAULT_HLL_SPARSE_MAX_BYTES = 3000  # Redis's hll-sparse-max-bytes


def system_clock() -> int:
    """Unix time in milliseconds: the clock expiry deadlines are written in."""
    return time.time_ns() // 1_000_000


class Database:
    __slots__ = (
        "index",
        "keyspace",
        "data",
        "expires",
        "lock",
        "used_bytes",
        "_buckets",
        "_sweep_keys",
        "_sweep_pos",
        "watched",
        "blocked",
        "tracking",
    )

    def __init__(self, index: int, keyspace: Keyspace) -> None:
        self.index = index
        self.keyspace = keyspace
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self.lock = keyspace.write_lock
        self._buckets: dict[int, set[bytes]] = {}  # SCAN's index, see scan()
        self.used_bytes = 0  # estimate of what the keys and values take (see _size)
        self._sweep_keys: list[bytes] = []  # a snapshot of expires' keys being swept
        self._sweep_pos = 0
        # key -> the WatchedKey entries of the clients that WATCH it (see
        # the module docstring). Changed under the write lock only.
        self.watched: dict[bytes, list[WatchedKey]] = {}
        # key -> the FIFO of clients blocked on it (kvserver/blocking.py).
        # A write to one of them notes the key in keyspace.ready. Changed
        # under the write lock only; empty (one truth test) nearly always.
        self.blocked: dict[bytes, object] = {}
        # The keyspace's Tracking (kvserver/tracking.py) while any client
        # has CLIENT TRACKING on, else None: each change tells it the key.
        self.tracking = keyspace.tracking

    # -- reads (no lock) ------------------------------------------------------

    def lookup(self, key: bytes, now: int) -> object | None:
        """The live value of ``key``, or None if it is missing or expired."""
        deadline = self.expires.get(key)
        if deadline is not None and deadline < now:
            self._expire_if_due(key, now)
            return None
        return self.data.get(key)

    def ttl_ms(self, key: bytes, now: int) -> int:
        """Milliseconds left; -1 for a key with no TTL; -2 for a missing key."""
        if self.lookup(key, now) is None:
            return -2
        deadline = self.expires.get(key)
        if deadline is None:
            return -1
        return max(deadline - now, 0)

    def __len__(self) -> int:
        return len(self.data)

    # -- writes (caller holds the write lock) -----------------------------------
    #
    # Each write first notes the key's previous state in the keyspace's undo
    # journal (when the dispatcher has one open), so a command whose log
    # append fails can be rolled back whatever it touched.

    def set(self, key: bytes, value: object, deadline: int | None = None) -> None:
        """Store ``value``; the key's TTL becomes ``deadline`` (None: no TTL)."""
        data = self.data
        journal = self.keyspace.journal
        old = data.get(key, _MISSING)
        if old is not _MISSING:
            if journal is not None:
                journal.append((self, key, old, self.expires.get(key)))
            self.used_bytes += _size(value) - _size(old)
        else:
            if journal is not None:
                journal.append((self, key, _MISSING, None))
            self._index_add(key)
            self.used_bytes += len(key) + _size(value) + PER_KEY_OVERHEAD
        data[key] = value
        if deadline is None:
            self.expires.pop(key, None)
        else:
            self.expires[key] = deadline
        if self.watched:
            self._touch(key)
        if old is _MISSING and self.keyspace.notify_flags & notify.NEW:
            # Redis's dbAdd: "new", before the command's own event.
            notify.publish(self.keyspace, self.index, b"new", key)
        if self.blocked and key in self.blocked:
            self.keyspace.ready.append((self, key))
        if self.tracking:
            self.tracking.invalidate(key)

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it was there."""
        value = self.data.pop(key, _MISSING)
        if value is _MISSING:
            return False
        deadline = self.expires.pop(key, None)
        journal = self.keyspace.journal
        if journal is not None:
            journal.append((self, key, value, deadline))
        self._index_discard(key)
        self.used_bytes -= len(key) + _size(value) + PER_KEY_OVERHEAD
        if self.watched:
            self._touch(key)
        if self.blocked and key in self.blocked:  # an XREADGROUP waiting on it ends (signalDeletedKeyAsReady)
            self.keyspace.ready.append((self, key))
        if self.tracking:
            self.tracking.invalidate(key)
        return True

    def set_deadline(self, key: bytes, deadline: int | None) -> None:
        """Give an existing key an absolute expiry time (None: persist it)."""
        journal = self.keyspace.journal
        if journal is not None:
            journal.append((self, key, self.data[key], self.expires.get(key)))
        if deadline is None:
            self.expires.pop(key, None)
        else:
            self.expires[key] = deadline
        if self.watched:
            self._touch(key)
        if self.tracking:
            self.tracking.invalidate(key)

    # -- containers changed in place (commands/access.py calls these) -----------

    def writable(self, key: bytes, value: object) -> object:
        """``value`` (stored at ``key``), safe to change in place: while a
        rewrite's snapshot holds the stored object, a copy takes its place
        first (copy-on-write, once per container per rewrite), so the
        snapshot never changes under the thread writing it out."""
        keyspace = self.keyspace
        if not keyspace.snapshot_epoch or value.epoch == keyspace.snapshot_epoch:
            return value
        twin = duplicate(value)
        twin.epoch = keyspace.snapshot_epoch
        journal = keyspace.journal
        if journal is not None:
            journal.append((self, key, value, self.expires.get(key)))
        self.data[key] = twin
        return twin

    def changed(self, key: bytes, value: object, before: int, undo: Callable[[], None] | None) -> None:
        """A container was changed in place (it was ``before`` bytes; ``undo``
        puts it back exactly), or made new for ``key``: keep the memory
        estimate, the undo journal and the watchers right, store a new one,
        and delete one left empty (Redis never keeps an empty container)."""
        if self.data.get(key) is not value:  # new: store it, or nothing if empty
            if value:
                value.epoch = self.keyspace.snapshot_epoch
                self.set(key, value, None)
            return
        delta = value.nbytes - before
        journal = self.keyspace.journal
        if journal is not None and undo is not None:
            journal.append((self, undo, delta))  # see Keyspace.rollback
        self.used_bytes += delta
        if not value:
            self.delete(key)  # touches the watchers, invalidates
            return
        if self.watched:
            self._touch(key)
        if self.blocked and key in self.blocked:  # XADD to a stream someone waits on
            self.keyspace.ready.append((self, key))
        if self.tracking:
            self.tracking.invalidate(key)

    def flush(self, now: int = 0, *, signal: bool = True) -> int:
        """Remove every key (FLUSHDB); returns how many there were.
        ``signal``: tell the tracking clients (Keyspace.flush_all does,
        once for all the databases)."""
        count = len(self.data)
        if self.watched:
            self._touch_all(None, now)
        if signal and self.tracking:
            self.tracking.flushed()  # even when empty, as Redis
        for key in self.blocked:  # XREADGROUPs on a stream flushed end (scanDatabaseForDeletedStreams)
            if key in self.data:
                self.keyspace.ready.append((self, key))
        journal = self.keyspace.journal
        if journal is not None:
            state = (self.data, self.expires, self._buckets, self.used_bytes)
            journal.append(lambda: self._set_state(state))
        self._set_state(({}, {}, {}, 0))
        return count

    def swap_with(self, other: Database, now: int = 0) -> None:
        """Exchange contents with ``other`` (SWAPDB): clients of each see the other's keys."""
        if self.watched:
            self._touch_all(other, now)
        if other.watched:
            other._touch_all(self, now)
        journal = self.keyspace.journal
        if journal is not None:
            journal.append(lambda: self._swap(other))
        self._swap(other)
        # Clients blocked here stay with the database number, as in Redis;
        # what they wait for may now be here (scanDatabaseForReadyKeys), or
        # be gone (scanDatabaseForDeletedStreams: XREADGROUP's error).
        for db in (self, other):
            for key in db.blocked:
                self.keyspace.ready.append((db, key))

    def _swap(self, other: Database) -> None:
        mine = (self.data, self.expires, self._buckets, self.used_bytes)
        self._set_state((other.data, other.expires, other._buckets, other.used_bytes))
        other._set_state(mine)

    def _set_state(self, state: tuple[dict, dict, dict, int]) -> None:
        self.data, self.expires, self._buckets, self.used_bytes = state
        self._sweep_keys = []
        self._sweep_pos = 0

    def undo(self, key: bytes, value: object, deadline: int | None) -> None:
        """Put a key back as the journal recorded it (no journaling)."""
        current = self.data.get(key, _MISSING)
        if value is _MISSING:
            if current is not _MISSING:
                del self.data[key]
                self._index_discard(key)
                self.used_bytes -= len(key) + _size(current) + PER_KEY_OVERHEAD
            self.expires.pop(key, None)
            return
        if current is _MISSING:
            self._index_add(key)
            self.used_bytes += len(key) + _size(value) + PER_KEY_OVERHEAD
        else:
            self.used_bytes += _size(value) - _size(current)
        self.data[key] = value
        if deadline is None:
            self.expires.pop(key, None)
        else:
            self.expires[key] = deadline

    # -- WATCH (write lock held) -------------------------------------------------

    def _touch(self, key: bytes) -> None:
        """``key`` changed: its watchers' transactions will fail (Redis's
        touchWatchedKey), except where the key was already expired at WATCH
        time and is now gone: logically nothing changed."""
        for entry in self.watched.get(key, ()):
            if entry.expired:
                if key not in self.data:
                    entry.expired = False  # deleted keys are not flagged expired
                    continue
            entry.owner.dirty = True

    def _touch_all(self, replaced_with: Database | None, now: int) -> None:
        """Every watched key this database holds is about to go, replaced by
        ``replaced_with``'s (SWAPDB) or by nothing (FLUSHDB/FLUSHALL): Redis's
        touchAllWatchedKeysInDb, including its care for expired keys."""
        other = replaced_with.data if replaced_with is not None else {}
        for key, entries in self.watched.items():
            in_emptied = key in self.data
            in_other = key in other
            if not (in_emptied or in_other):
                continue
            other_expired = in_other and replaced_with._is_expired(key, now)
            for entry in entries:
                if entry.expired:
                    if not in_other:
                        entry.expired = False  # an expired key deleted: no change
                        continue
                    if other_expired:
                        continue  # an expired key stays expired
                elif not in_emptied and other_expired:
                    entry.expired = True  # nothing, replaced by an expired key
                    continue
                entry.owner.dirty = True

    def _is_expired(self, key: bytes, now: int) -> bool:
        """Stored but past its deadline (Redis's keyIsExpired)."""
        deadline = self.expires.get(key)
        return deadline is not None and deadline < now and key in self.data

    def watch(self, watches: Watches, key: bytes, now: int) -> None:
        """Add ``key`` to a client's watches (WATCH; once per key)."""
        for entry in watches.keys:
            if entry.db is self and entry.key == key:
                return
        entry = WatchedKey(self, key, self._is_expired(key, now), watches)
        watches.keys.append(entry)
        self.watched.setdefault(key, []).append(entry)

    # -- SCAN -------------------------------------------------------------------
    #
    # Python's dict cannot be walked by position while it changes, so each
    # key is also filed in one of SCAN_BUCKETS buckets by its hash. A cursor
    # is a bucket number: SCAN returns whole buckets in increasing order, so
    # a key present from the first call to the last is returned (its bucket
    # never changes and every bucket is visited once); a key added or
    # removed meanwhile may or may not be, exactly Redis's guarantee.

    def _index_add(self, key: bytes) -> None:
        bucket = hash(key) & _BUCKET_MASK
        keys = self._buckets.get(bucket)
        if keys is None:
            self._buckets[bucket] = {key}
        else:
            keys.add(key)

    def _index_discard(self, key: bytes) -> None:
        bucket = hash(key) & _BUCKET_MASK
        keys = self._buckets.get(bucket)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._buckets[bucket]

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """Keys from bucket ``cursor`` on, whole buckets, at least ``count``
        keys unless the end is reached; the next cursor (0 at the end)."""
        buckets = self._buckets
        found: list[bytes] = []
        bucket = cursor
        while bucket < SCAN_BUCKETS:
            keys = buckets.get(bucket)
            bucket += 1
            if keys:
                found.extend(keys)
                if len(found) >= count:
                    break
        return (0 if bucket >= SCAN_BUCKETS else bucket), found

    # -- expiry ---------------------------------------------------------------

    def _expire_if_due(self, key: bytes, now: int) -> None:
        with self.lock:
            deadline = self.expires.get(key)
            if deadline is not None and deadline < now:
                self._expire(key)
                if self.tracking and self.tracking.pending:
                    self.tracking.broadcast()

    def _expire(self, key: bytes) -> bool:
        """Remove ``key``, past its deadline (write lock held), once its DEL
        is logged; False if it could not be (the key stays, invisible)."""
        on_expired = self.keyspace.on_expired
        if on_expired is not None and not on_expired(self, key):
            return False
        self.delete(key)
        if self.keyspace.notify_flags & notify.EXPIRED:
            notify.publish(self.keyspace, self.index, b"expired", key)
        return True

    def sweep(self, now: int, deadline_s: float) -> int:
        """Delete expired keys in batches until a batch is mostly live or time
        (``deadline_s``, a perf_counter value) runs out. Returns keys removed.

        Walks a snapshot of the keys that have a TTL, a batch at a time, and
        takes a new snapshot once it reaches the end: every key with a TTL is
        looked at once per pass, and each batch holds the lock only briefly.
        """
        removed = 0
        while self.expires:
            if self._sweep_pos >= len(self._sweep_keys):
                self._sweep_keys = list(self.expires)
                self._sweep_pos = 0
            batch = self._sweep_keys[self._sweep_pos : self._sweep_pos + config.EXPIRE_BATCH_KEYS]
            self._sweep_pos += len(batch)
            expired = 0
            with self.lock:
                for key in batch:
                    deadline = self.expires.get(key)
                    if deadline is not None and deadline < now and self._expire(key):
                        expired += 1
                if self.tracking and self.tracking.pending:
                    self.tracking.broadcast()
            removed += expired
            if expired <= len(batch) * config.EXPIRE_REPEAT_RATIO:
                break
            if time.perf_counter() >= deadline_s:
                break
        return removed


class Watches:
    """One client's WATCHed keys, and whether any of them has changed."""

    __slots__ = ("keys", "dirty")

    def __init__(self) -> None:
        self.keys: list[WatchedKey] = []
        self.dirty = False

    def expired_since(self, now: int) -> bool:
        """A key that was live at WATCH time is past its deadline now (Redis's
        isWatchedKeyExpired): its expiry is a change even if nobody has
        deleted it yet."""
        return any(not entry.expired and entry.db._is_expired(entry.key, now) for entry in self.keys)

    def clear(self) -> None:
        """Forget every watched key (EXEC, DISCARD, UNWATCH, the client's
        end). Write lock held."""
        for entry in self.keys:
            entries = entry.db.watched.get(entry.key)
            if entries is not None:
                entries.remove(entry)
                if not entries:
                    del entry.db.watched[entry.key]
        self.keys.clear()
        self.dirty = False


class WatchedKey:
    __slots__ = ("db", "key", "expired", "owner")

    def __init__(self, db: Database, key: bytes, expired: bool, owner: Watches) -> None:
        self.db = db
        self.key = key
        self.expired = expired  # already past its deadline at WATCH time
        self.owner = owner


_MISSING = object()  # "no such key", in the undo journal

# What a key costs beyond its bytes: two bytes-object headers (33 bytes each
# on 64-bit CPython) and its share of the dict's hash table. An estimate for
# maxmemory and INFO, not an exact count.
PER_KEY_OVERHEAD = 2 * 33 + 56


def _size(value: object) -> int:
    # values.memory, inlined: this runs on every write.
    return len(value) if type(value) is bytes else value.nbytes
SCAN_BUCKETS = 1 << 14  # SCAN cursors run 0..16383: enough that each bucket is small
_BUCKET_MASK = SCAN_BUCKETS - 1


class Keyspace:
    """All databases, the global write lock, and the clock."""

    def __init__(
        self, clock: Callable[[], int] = system_clock, databases: int = DEFAULT_DATABASES
    ) -> None:
        self.clock = clock
        # The global write lock (see the module docstring). Held for one
        # command's mutation plus its log append; never across socket I/O.
        self.write_lock = threading.RLock()
        # Undo records of the write command running now (see Database's
        # writes); the dispatcher opens and closes it under the write lock.
        self.journal: list | None = None
        # The seqlock count (see the module docstring): odd while a write is
        # in progress. Changed under the write lock only.
        self.seq = 0
        # Blocked clients (kvserver/blocking.py): how many, and the
        # (database, key) pairs written since the dispatcher last served
        # their waiters. Write lock only.
        self.blocked_clients = 0
        self.ready: list = []
        # Non-zero while a rewrite's snapshot shares the stored containers:
        # Database.writable copies one before it is changed in place.
        self.snapshot_epoch = 0
        self._epochs = 0
        self._snapshots = 0  # snapshots in flight (a rewrite and a BGSAVE may overlap)
        # (database, key) -> bool: log the DEL of a key that expired (see the
        # module docstring); None while nothing is logged (the replay).
        self.on_expired: Callable[[Database, bytes], bool] | None = None
        # OBJECT ENCODING's thresholds (CONFIG SET hash-max-listpack-entries ...).
        self.encodings = EncodingSettings()
        # Past this many bytes a sparse HyperLogLog turns dense (Redis's
        # hll-sparse-max-bytes; kvserver/hll.py).
        self.hll_sparse_max_bytes = DEFAULT_HLL_SPARSE_MAX_BYTES
        # Keyspace notifications (kvserver/notify.py): the flags as set
        # (notify-keyspace-events), the flags to test (0 while nothing would
        # be published), and the pub/sub registry's publish (set by the server).
        self.notify_config = 0
        self.notify_flags = 0
        self.publish: Callable[[bytes, bytes], int] | None = None
        # Client-side caching (kvserver/tracking.py): a Tracking while any
        # client tracks, else None; each Database holds the same (set_tracking).
        self.tracking = None
        self.dbs = [Database(i, self) for i in range(databases)]
        # Scripts and function libraries (kvserver/scripting): server-wide,
        # created on first use. busy_script: the Busy of the script running
        # now (set and cleared under the write lock, read by any thread);
        # once it has run past busy_reply_ms, other clients get BUSY.
        self.scripting = None
        self.busy_script = None
        self.busy_reply_ms = DEFAULT_BUSY_REPLY_MS

    def set_tracking(self, tracking) -> None:
        """Start (a Tracking) or stop (None) telling tracking clients of
        changes (write lock held)."""
        self.tracking = tracking
        for db in self.dbs:
            db.tracking = tracking

    def flush_all(self, now: int) -> int:
        """Remove every key of every database (FLUSHALL); how many there were.
        Tracking clients get one null for it all, as in Redis."""
        removed = sum(db.flush(now, signal=False) for db in self.dbs)
        if self.tracking:
            self.tracking.flushed()
        return removed

    @property
    def used_bytes(self) -> int:
        """Estimated memory of every database's keys and values."""
        return sum(db.used_bytes for db in self.dbs)

    def begin_snapshot(self) -> None:
        """A rewrite or a save has copied the databases' dicts (write lock
        held): from now on containers are copied before they are changed in
        place. Each snapshot gets a new epoch: a container copied for an
        earlier one that is still being written is copied again, since the
        new snapshot holds that copy; every container an older snapshot
        holds has an older epoch, so it stays protected too."""
        self._epochs += 1
        self._snapshots += 1
        self.snapshot_epoch = self._epochs

    def end_snapshot(self) -> None:
        """One snapshot is written (write lock held); copy-on-write stops
        when none is left."""
        self._snapshots = max(0, self._snapshots - 1)
        if not self._snapshots:
            self.snapshot_epoch = 0

    def rollback(self, journal: list) -> None:
        """Undo a command's writes, newest first (write lock held)."""
        for entry in reversed(journal):
            if type(entry) is not tuple:
                entry()
            elif len(entry) == 4:  # a key's value and deadline before
                db, key, value, deadline = entry
                db.undo(key, value, deadline)
            else:  # a container changed in place: its own undo, and the bytes it added
                db, undo, delta = entry
                undo()
                db.used_bytes -= delta

    def remove_expired(self) -> int:
        """Delete every key past its deadline now, in every database (after
        the log replay); returns how many."""
        now = self.clock()
        removed = 0
        with self.write_lock:
            for db in self.dbs:
                for key in [key for key, deadline in db.expires.items() if deadline < now]:
                    removed += db._expire(key)
            if self.tracking and self.tracking.pending:
                self.tracking.broadcast()
        return removed

    def active_expire_cycle(self, budget_s: float = config.EXPIRE_BUDGET_SECONDS) -> int:
        """One round of active expiry over every database; returns keys removed."""
        now = self.clock()
        stop_at = time.perf_counter() + budget_s
        return sum(db.sweep(now, stop_at) for db in self.dbs if db.expires)


class ActiveExpiry(Ticker):
    """A background thread that runs ``active_expire_cycle`` ten times a second."""

    def __init__(self, keyspace: Keyspace, interval_s: float = config.EXPIRE_CYCLE_SECONDS):
        super().__init__(interval_s, "kv-expire")
        self._keyspace = keyspace

    def tick(self) -> None:
        self._keyspace.active_expire_cycle()
