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
* Reads take no lock. A single dict operation is atomic under the GIL, so a
  reader sees each key either before or after a write, never half of one.
* Expiry is lazy and active, as in Redis: ``lookup`` treats a key past its
  deadline (now > deadline, as Redis's keyIsExpired) as missing and deletes it (taking the lock, then checking again,
  because a writer may have just replaced it); ``active_expire_cycle``
  removes expired keys nobody touches, a few at a time.
* Time is never read here: callers pass ``now`` (ms), from the injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kvserver import config

DEFAULT_DATABASES = 16  # Redis's default "databases" setting


def system_clock() -> int:
    """Unix time in milliseconds: the clock expiry deadlines are written in."""
    return time.time_ns() // 1_000_000


class Database:
    __slots__ = ("index", "data", "expires", "lock", "_sweep_keys", "_sweep_pos")

    def __init__(self, index: int, lock: threading.RLock) -> None:
        self.index = index
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        self.lock = lock
        self._sweep_keys: list[bytes] = []  # a snapshot of expires' keys being swept
        self._sweep_pos = 0

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

    def set(self, key: bytes, value: object, deadline: int | None = None) -> None:
        """Store ``value``; the key's TTL becomes ``deadline`` (None: no TTL)."""
        self.data[key] = value
        if deadline is None:
            self.expires.pop(key, None)
        else:
            self.expires[key] = deadline

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it was there."""
        self.expires.pop(key, None)
        return self.data.pop(key, _MISSING) is not _MISSING

    def set_deadline(self, key: bytes, deadline: int) -> None:
        """Give an existing key an absolute expiry time."""
        self.expires[key] = deadline

    def snapshot(self, key: bytes) -> tuple[object, int | None]:
        """The key's raw state, for ``restore`` if a logged write must be undone."""
        return self.data.get(key, _MISSING), self.expires.get(key)

    def restore(self, key: bytes, state: tuple[object, int | None]) -> None:
        value, deadline = state
        if value is _MISSING:
            self.delete(key)
        else:
            self.set(key, value, deadline)

    # -- expiry ---------------------------------------------------------------

    def _expire_if_due(self, key: bytes, now: int) -> None:
        with self.lock:
            deadline = self.expires.get(key)
            if deadline is not None and deadline < now:
                self.delete(key)

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
                    if deadline is not None and deadline < now:
                        self.delete(key)
                        expired += 1
            removed += expired
            if expired <= len(batch) * config.EXPIRE_REPEAT_RATIO:
                break
            if time.perf_counter() >= deadline_s:
                break
        return removed


_MISSING = object()


class Keyspace:
    """All databases, the global write lock, and the clock."""

    def __init__(
        self, clock: Callable[[], int] = system_clock, databases: int = DEFAULT_DATABASES
    ) -> None:
        self.clock = clock
        # The global write lock (see the module docstring). Held for one
        # command's mutation plus its log append; never across socket I/O.
        self.write_lock = threading.RLock()
        self.dbs = [Database(i, self.write_lock) for i in range(databases)]

    def active_expire_cycle(self, budget_s: float = config.EXPIRE_BUDGET_SECONDS) -> int:
        """One round of active expiry over every database; returns keys removed."""
        now = self.clock()
        stop_at = time.perf_counter() + budget_s
        return sum(db.sweep(now, stop_at) for db in self.dbs if db.expires)


class ActiveExpiry:
    """A background thread that runs ``active_expire_cycle`` ten times a second."""

    def __init__(self, keyspace: Keyspace, interval_s: float = config.EXPIRE_CYCLE_SECONDS):
        self._keyspace = keyspace
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kv-expire", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._keyspace.active_expire_cycle()
