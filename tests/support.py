"""Helpers shared by the test modules: a fake clock, log records written out
by hand, a harness that runs commands the way clients do, the feeding
loops of the protocol tests, and the readers-against-writers race runner.

Nothing here is a test or a fixture: the fixtures built on these (``kv``,
``failing_kv``) are in conftest.py. Expected bytes are written out by hand
(``resp``), never with the code under test.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kvserver.aof import AppendOnlyFile
from kvserver.dispatch import Dispatcher
from kvserver.errors import AofError, CommandError, ProtocolError
from kvserver.protocol import NEED_DATA
from kvserver.protocol.text import InvalidRequest
from kvserver.session import Session
from kvserver.store import Keyspace

T0 = 1_700_000_000_000  # an arbitrary "now", in Unix ms


class FakeClock:
    """Unix milliseconds that move only when a test says so."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


WAIT_TIMEOUT_S = 10.0


def wait_for(condition, what: str, timeout: float = WAIT_TIMEOUT_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.005)  # polling a condition, with a deadline


def resp(*args: bytes | str) -> bytes:
    """A request or log record, written out by hand (not with the code under test)."""
    parts = [a.encode() if isinstance(a, str) else a for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def replayed(kv: "Harness", now: int | None = None) -> Keyspace:
    """``kv.replayed(now)``: what a restart would rebuild from kv's log."""
    return kv.replayed(now)


def error_text(reply: object) -> str:
    assert isinstance(reply, CommandError), f"expected an error reply, got {reply!r}"
    return reply.message


# -- the log and the dispatcher ------------------------------------------------------


class FailingAof(AppendOnlyFile):
    """A log whose appends fail while ``failing`` is set (a full disk, say)."""

    failing = False

    def _append(self, data, selected_db):  # every write and group comes here
        if self.failing:
            raise AofError(os.strerror(errno.ENOSPC))
        return super()._append(data, selected_db)


class DiskFull:
    """Stands in for ``os.write`` on the log's descriptor: writes up to
    ``allow`` bytes (None: everything) and then fails with ENOSPC."""

    def __init__(self, fd: int, allow: int | None = 0) -> None:
        self.fd = fd
        self.allow = allow
        self.real_write = os.write

    def __call__(self, fd, data):
        if fd != self.fd or self.allow is None:
            return self.real_write(fd, data)
        if self.allow == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.real_write(fd, bytes(data[: self.allow]))
        self.allow -= written
        return written


class FlakyAof(AppendOnlyFile):
    """A log that refuses some appends, decided by the test's random source."""

    def __init__(self, path, rng, failure_rate):
        super().__init__(path, fsync="no")
        self.rng = rng
        self.failure_rate = failure_rate
        self.failures = 0

    def _append(self, data, selected_db):
        if self.rng.random() < self.failure_rate:
            self.failures += 1
            raise AofError("injected failure")
        return super()._append(data, selected_db)


class Harness:
    """One keyspace with a fake clock, its dispatcher and log, and a client
    session. ``kv("SET", "k", 1)`` runs a command as a client would:
    str and int arguments are sent as their text, bytes as they are."""

    def __init__(self, path, aof_class=AppendOnlyFile, fsync: str = "no") -> None:
        self.path = str(path)
        self.clock = FakeClock()
        self.keyspace = Keyspace(clock=self.clock)
        self.aof = aof_class(self.path, fsync=fsync)
        self.dispatcher = Dispatcher(self.keyspace, self.aof)
        self.session = Session(self.keyspace, dispatcher=self.dispatcher)

    def new_session(self) -> Session:
        return Session(self.keyspace, dispatcher=self.dispatcher)

    def __call__(self, *args: bytes | str | int, session: Session | None = None) -> object:
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        return self.dispatcher.execute(session or self.session, argv)

    def pipeline(self, *commands: tuple, session: Session | None = None) -> list[object]:
        """Run ``commands`` as a worker runs a client's pipelined requests:
        one batch (Dispatcher.begin_batch), each reply put on the list the
        batch may rewrite; returns the replies as the client would get them."""
        session = session or self.session
        out: list[object] = []
        self.dispatcher.begin_batch(session, out, lambda reply, resp: reply)
        try:
            for args in commands:
                out.append(self(*args, session=session))
        finally:
            self.dispatcher.end_batch(session)
        return out

    def log(self) -> bytes:
        with open(self.path, "rb") as file:
            return file.read()

    def log_after_setup(self, before: bytes) -> bytes:
        """What was logged since ``before`` (the log's earlier contents)."""
        data = self.log()
        assert data.startswith(before)
        return data[len(before) :]

    def replayed(self, now: int | None = None) -> Keyspace:
        """A fresh keyspace rebuilt from this log the way start-up rebuilds
        it, at ``now`` (default: the harness's clock). Appends reach the
        file with each os.write, so the log can be read while open."""
        from kvserver.server import load_log  # the server's own replay

        keyspace = Keyspace(clock=FakeClock(self.clock() if now is None else now))
        load_log(keyspace, self.path)
        return keyspace

    @property
    def db(self):
        """The session's current database (SELECT changes it)."""
        return self.session.db


# -- what a keyspace holds -------------------------------------------------------------


def dump(keyspace: Keyspace) -> dict[int, tuple[dict, dict]]:
    """Every database's raw dicts (empty databases left out)."""
    return {
        db.index: (dict(db.data), dict(db.expires))
        for db in keyspace.dbs
        if db.data or db.expires
    }


def live_dump(keyspace: Keyspace, now: int) -> dict[int, tuple[dict, dict]]:
    """``dump`` without the keys whose deadline has passed at ``now``:
    what any client would see."""
    out = {}
    for db in keyspace.dbs:
        dead = {key for key, deadline in db.expires.items() if deadline < now}
        data = {key: value for key, value in db.data.items() if key not in dead}
        expires = {key: deadline for key, deadline in db.expires.items() if key not in dead}
        if data or expires:
            out[db.index] = (data, expires)
    return out


def bulk_strings(reply: bytes) -> list[bytes]:
    """The items of a RESP array of bulk strings."""
    header, rest = reply.split(b"\r\n", 1)
    assert header[:1] == b"*", reply
    items = []
    for _ in range(int(header[1:])):
        length, rest = rest.split(b"\r\n", 1)
        size = int(length[1:])
        items.append(rest[:size])
        rest = rest[size + 2 :]
    return items


# -- feeding a parser (TextParser or RespParser) ------------------------------------------


def drain(parser) -> list[object]:
    """Every request the parser can give now, up to (not including) NEED_DATA."""
    out = []
    while (request := parser.next_request()) is not NEED_DATA:
        out.append(request)
    return out


def normal(outcome: object) -> object:
    # InvalidRequest holds an exception, which compares by identity.
    if isinstance(outcome, InvalidRequest):
        return ("invalid", outcome.error.message)
    return outcome


def spans(data: bytes, cuts: list[int]) -> list[tuple[int, int]]:
    """``(start, end)`` of each piece of ``data`` cut at ``cuts`` (cuts past
    the end ignored, repeats merged); one piece, the whole, without cuts."""
    bounds = [0, *sorted({c for c in cuts if c <= len(data)}), len(data)]
    return list(zip(bounds, bounds[1:]))


def feed_split(parser, data: bytes, cuts: list[int]) -> tuple[list[object], ProtocolError | None]:
    """Feed ``data`` split at ``cuts``, draining after each piece: the
    outcomes (``normal``-ised), and the ProtocolError that ended it, if any."""
    outcomes: list[object] = []
    try:
        for start, end in spans(data, cuts):
            parser.feed(data[start:end])
            while (request := parser.next_request()) is not NEED_DATA:
                outcomes.append(normal(request))
    except ProtocolError as exc:
        return outcomes, exc
    return outcomes, None


# -- readers while writers change a value -------------------------------------------------

# The server runs in this process: switching threads every microsecond lands a
# reader in the middle of a write often, so that a missing guard shows within the run.
RACE_SWITCH_INTERVAL_S = 1e-6
RACE_POLL_S = 0.05  # how often the runner looks at the counts (seconds of load, polled)
RACE_JOIN_TIMEOUT_S = 10.0  # a step is a few round trips: a thread not done by then is stuck
RACE_SHOWN = 3  # bad observations quoted when the race fails
RACE_SHOWN_CHARS = 300  # of each (a HyperLogLog value is 12 KB)


def race(
    connect: Callable[[], Any],
    writers: list[Callable[[Any], object]],
    readers: list[Callable[[Any], object | None]],
    *,
    writes: int,
    reads: int,
    timeout: float = 30.0,
) -> None:
    """Run every writer and every reader step over and over, each in a thread
    of its own with a client of its own (``connect()``), until ``writes``
    writer steps and ``reads`` reader steps are done, something was wrong,
    or ``timeout`` seconds have passed; then fail unless enough of both were
    done and nothing was wrong.

    A writer step does one write. A reader step does one read and returns
    None if what it saw was fine, else a description of what was wrong. A
    step that raises (an error reply, say) is wrong too. The switch interval
    is set for the run and always restored.
    """
    stop = threading.Event()
    bad: list[tuple[str, object]] = []
    steps = [(f"writer {i}", step, False) for i, step in enumerate(writers)]
    steps += [(f"reader {i}", step, True) for i, step in enumerate(readers)]
    done = [0] * len(steps)  # one slot a thread: no increment lost to a switch

    def run(slot: int) -> None:
        name, step, checks = steps[slot]
        client = connect()
        try:
            while not stop.is_set():
                try:
                    seen = step(client)
                except Exception as exc:  # noqa: BLE001 - any error is a failure
                    seen = f"{type(exc).__name__}: {exc}"
                else:
                    if not checks:
                        seen = None  # what a write replies is not looked at
                if seen is not None:
                    bad.append((name, seen))
                    stop.set()  # one is enough: fail now rather than at the deadline
                    return
                done[slot] += 1
        finally:
            client.close()

    def counts() -> tuple[int, int]:
        return sum(done[: len(writers)]), sum(done[len(writers) :])

    threads = [
        threading.Thread(target=run, args=(slot,), name=steps[slot][0], daemon=True)
        for slot in range(len(steps))
    ]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(RACE_SWITCH_INTERVAL_S)
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        while not stop.wait(RACE_POLL_S) and time.monotonic() < deadline:
            written, read = counts()
            if written >= writes and read >= reads:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(RACE_JOIN_TIMEOUT_S)
        sys.setswitchinterval(interval)
    shown = [f"{who}: {repr(seen)[:RACE_SHOWN_CHARS]}" for who, seen in bad[:RACE_SHOWN]]
    assert not bad, f"{len(bad)} bad observation(s): " + "; ".join(shown)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"still running {RACE_JOIN_TIMEOUT_S} s after the stop: {stuck}"
    written, read = counts()
    assert written >= writes and read >= reads, (
        f"{written} writes (of {writes}) and {read} reads (of {reads}) in {timeout} s"
    )
