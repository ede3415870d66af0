"""Figures gathered while the server runs: the slow log and the
instantaneous rates INFO shows.

* ``SlowLog``: the last ``slowlog-max-len`` commands that ran for at least
  ``slowlog-log-slower-than`` microseconds (Redis's slowlog.c). The
  dispatcher already times every command for INFO commandstats; when a
  command is fast, the slow log costs it one comparison with
  ``Dispatcher.slow_ns`` (``NEVER`` while the log is off). Only a slow
  command builds an entry.
* ``InstantaneousMetric`` and ``StatsCron``: Redis's
  ``trackInstantaneousMetric``: every 100 ms the cron reads a counter and
  records the rate since the last reading in a ring of 16; INFO shows
  their mean (``instantaneous_ops_per_sec``). The clock is injected.

No locks. Under the GIL ``deque.append`` (bounded by ``maxlen``),
``deque.copy``, ``deque.clear`` and ``next`` on an ``itertools.count``
are each atomic, so workers record entries while SLOWLOG GET copies them.
What is not atomic is tolerated: changing slowlog-max-len swaps in a new
deque, and an entry recorded at that instant into the old one may be lost.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable

from kvserver.config import SLOWLOG_LOG_SLOWER_THAN, SLOWLOG_MAX_LEN
from kvserver.redact import redacted
from kvserver.ticker import Ticker

# A duration no command reaches: the slow-log threshold while it is off.
NEVER = 1 << 62

# Redis's SLOWLOG_ENTRY_MAX_ARGC / SLOWLOG_ENTRY_MAX_STRING: an entry keeps
# at most this many arguments (the last one saying how many more there
# were) and this many bytes of each, so a huge MSET or SET costs little.
SLOWLOG_ENTRY_MAX_ARGC = 32
SLOWLOG_ENTRY_MAX_STRING = 128


def _wall_clock_seconds() -> int:
    return int(time.time())


class SlowLog:
    """The slow log: newest entries last in ``entries``, each a tuple
    ``(id, unix_time, microseconds, args, client_addr, client_name)``."""

    def __init__(
        self,
        log_slower_than: int = SLOWLOG_LOG_SLOWER_THAN,
        max_len: int = SLOWLOG_MAX_LEN,
        *,
        clock: Callable[[], int] = _wall_clock_seconds,
    ) -> None:
        self._clock = clock  # Unix seconds, for each entry's time
        self._ids = itertools.count()
        self.entries: collections.deque = collections.deque(maxlen=max_len)
        self.log_slower_than = log_slower_than  # microseconds; negative: off
        self.max_len = max_len
        self._dispatcher = None

    @property
    def threshold_ns(self) -> int:
        """The duration from which a command is logged (``NEVER``: off, as
        Redis with a negative threshold or a max length of 0)."""
        if self.log_slower_than < 0 or self.max_len == 0:
            return NEVER
        return self.log_slower_than * 1000

    def attach(self, dispatcher) -> None:
        """Have ``dispatcher`` record its slow commands here, now and after
        every ``configure``."""
        self._dispatcher = dispatcher
        dispatcher.slowlog = self
        dispatcher.slow_ns = self.threshold_ns

    def configure(self, *, log_slower_than: int | None = None, max_len: int | None = None) -> None:
        """CONFIG SET slowlog-log-slower-than / slowlog-max-len."""
        if log_slower_than is not None:
            self.log_slower_than = log_slower_than
        if max_len is not None and max_len != self.max_len:
            self.max_len = max_len
            # The newest max_len entries stay (Redis trims the oldest).
            self.entries = collections.deque(self.entries, maxlen=max_len)
        if self._dispatcher is not None:
            self._dispatcher.slow_ns = self.threshold_ns

    def record(self, session, args: list[bytes], elapsed_ns: int) -> None:
        """Log a command that took ``elapsed_ns`` (the dispatcher calls this
        only once it knows the command was slow)."""
        self.entries.append(
            (
                next(self._ids),
                self._clock(),
                elapsed_ns // 1000,
                _shown_args(args),
                session.peer.encode(),
                bytes(session.name),
            )
        )

    def newest(self, count: int) -> list[tuple]:
        """Up to ``count`` entries, newest first."""
        for _ in range(3):
            try:
                entries = self.entries.copy()
                break
            except RuntimeError:  # resized by another thread meanwhile
                continue
        else:
            return []
        return list(itertools.islice(reversed(entries), count))

    def __len__(self) -> int:
        return len(self.entries)

    def reset(self) -> None:
        self.entries.clear()


def _shown_args(args: list[bytes]) -> tuple[bytes, ...]:
    """The arguments as an entry keeps them: passwords redacted, at most
    32 of them, each cut at 128 bytes (Redis's words for what was cut)."""
    args = redacted(args)
    if len(args) > SLOWLOG_ENTRY_MAX_ARGC:
        more = len(args) - SLOWLOG_ENTRY_MAX_ARGC + 1
        args = [*args[: SLOWLOG_ENTRY_MAX_ARGC - 1], b"... (%d more arguments)" % more]
    return tuple(
        arg
        if len(arg) <= SLOWLOG_ENTRY_MAX_STRING
        else arg[:SLOWLOG_ENTRY_MAX_STRING] + b"... (%d more bytes)" % (len(arg) - SLOWLOG_ENTRY_MAX_STRING)
        for arg in args
    )


# -- instantaneous rates ---------------------------------------------------------------

# Redis's STATS_METRIC_SAMPLES and the serverCron period it samples at: the
# rate shown is the mean over the last 1.6 seconds.
STATS_METRIC_SAMPLES = 16
STATS_SAMPLE_SECONDS = 0.1


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class InstantaneousMetric:
    """A counter's recent rate per second (Redis's inst_metric)."""

    def __init__(self) -> None:
        self.samples = [0] * STATS_METRIC_SAMPLES
        self._index = 0
        self._last_ms: int | None = None  # None: the next reading is a baseline
        self._last_reading = 0

    def sample(self, now_ms: int, reading: int) -> None:
        """Record the rate since the previous call (``now_ms`` from any
        steady clock; ``reading`` the counter's current value)."""
        if self._last_ms is not None:
            elapsed = now_ms - self._last_ms
            # max(): CONFIG RESETSTAT may zero the counter between readings.
            rate = max(0, reading - self._last_reading) * 1000 // elapsed if elapsed > 0 else 0
            self.samples[self._index] = rate
            self._index = (self._index + 1) % STATS_METRIC_SAMPLES
        self._last_ms = now_ms
        self._last_reading = reading

    def value(self) -> int:
        """The mean of the samples (Redis's getInstantaneousMetric)."""
        return sum(self.samples) // STATS_METRIC_SAMPLES

    def reset(self) -> None:
        """CONFIG RESETSTAT: forget the samples; the next reading is a baseline."""
        self.samples = [0] * STATS_METRIC_SAMPLES
        self._index = 0
        self._last_ms = None
        self._last_reading = 0


class StatsCron(Ticker):
    """A background thread sampling ``state``'s counters ten times a second
    (the part of Redis's serverCron that feeds INFO's instantaneous_*).

    ``start()`` / ``stop()`` (which joins); ``tick()`` is one round, called
    directly by tests with a fake ``clock`` (steady milliseconds).
    """

    def __init__(
        self,
        state,
        *,
        interval_s: float = STATS_SAMPLE_SECONDS,
        clock: Callable[[], int] = monotonic_ms,
    ) -> None:
        super().__init__(interval_s, "kv-stats")
        self._state = state
        self._clock = clock

    def tick(self) -> None:
        state = self._state
        now = self._clock()
        state.ops_per_sec.sample(now, state.total_commands_processed)
        state.input_per_sec.sample(now, state.net_input_bytes)
        state.output_per_sec.sample(now, state.net_output_bytes)

    def start(self) -> None:
        self.tick()  # the baseline
        super().start()
