"""Drive a server with concurrent clients doing SET/GET pairs, checking replies.

Rules this module keeps:

- One load loop for both protocols (``run_shard``: a selectors loop over
  every connection of the process, so clients do not fight over the GIL as
  threads would); ``text`` and ``resp`` only frame requests and split
  replies.
- Every reply is checked. Each client has its own keys (the run's random id
  and the client's number are in every key), and computes what each GET
  must return from what it wrote before it on the same connection. A wrong
  reply, a missing one, or a lost connection counts as a failure: in an
  OPS run every planned request not answered correctly is a failure; in a
  ``duration`` run, every request sent and not answered.
- With ``keyspace`` the SET and the GET of a pair pick their keys at random
  among the client's ``keyspace`` keys, independently; the GET must return
  the last value this client wrote to that key, or nil if it never did.
- ``pipeline`` N: requests go out N at a time in one write, and the N
  replies are read and checked in order before the next batch.
- Latency is per request: from just before its batch is written to the
  moment its reply has been read. With ``pipeline`` 1 that is the round
  trip; with N it is what each request of the batch waited (the first
  reply of a batch waits least, the last waits for the whole batch), which
  is what redis-benchmark reports with ``-P`` too.
- ``procs`` > 1 spreads the clients over processes (spawned: the caller may
  have threads), which connect, wait at one barrier, run, and send back
  their counts and latencies to be merged. Times are ``time.monotonic``,
  one clock for every process on the machine.
"""

from __future__ import annotations

import array
import itertools
import math
import multiprocessing
import os
import queue
import random
import selectors
import socket
import threading
import time
from collections.abc import Iterator, MutableSequence, Sequence
from dataclasses import dataclass, field

from kvbench import resp, text

CONNECT_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 30.0  # a reply slower than this counts as missing
# Read into one buffer per client: recv(n) would allocate n bytes per call
# (and for n past malloc's mmap threshold, map and unmap them each time).
RECV_BYTES = 64 * 1024
# How long the processes of a --procs run may take to connect all their
# clients before the run is abandoned.
CONNECT_PHASE_TIMEOUT_S = 300.0
PROGRESS_INTERVAL_S = 0.1  # how often a shard publishes its count for the bar
PERCENTILES = (50.0, 99.0, 99.9)


@dataclass(frozen=True)
class Workload:
    """What every client does; picklable, so it can go to other processes."""

    host: str
    port: int
    clients: int
    ops: int  # SET/GET pairs per client; ignored when ``duration`` is set
    resp: bool = False
    pipeline: int = 1
    data_size: int | None = None  # None: values are "v<n>"
    keyspace: int | None = None  # None: a new key for every pair
    duration: float | None = None  # seconds; None: run OPS pairs
    run_id: str = field(default_factory=lambda: os.urandom(3).hex())

    @property
    def protocol(self):
        return resp if self.resp else text

    @property
    def planned_per_client(self) -> int | None:
        """Requests each client will send, or None for a timed run."""
        return None if self.duration is not None else 2 * self.ops


def make_value(n: int, size: int | None) -> bytes:
    """The value of a client's ``n``-th SET: ``v<n>``, or exactly ``size``
    bytes ending in it (cut from the left when ``size`` is smaller)."""
    stamp = b"v%d" % n
    if size is None:
        return stamp
    return stamp.rjust(size, b"x")[-size:]


def requests(work: Workload, client: int) -> Iterator[tuple[bytes, bytes]]:
    """Client ``client``'s requests, each with the reply it must get."""
    proto = work.protocol
    prefix = b"kvbench:%s:%d:" % (work.run_id.encode(), client)
    pairs = itertools.count() if work.duration is not None else range(work.ops)
    if work.keyspace is None:
        for n in pairs:
            key, value = prefix + b"%d" % n, make_value(n, work.data_size)
            yield proto.set_request(key, value), proto.OK
            yield proto.get_request(key), proto.value_reply(value)
        return
    rng = random.Random(f"{work.run_id}:{client}")
    last: dict[int, bytes] = {}  # key number -> the last value this client wrote
    for n in pairs:
        k, value = rng.randrange(work.keyspace), make_value(n, work.data_size)
        last[k] = value
        yield proto.set_request(prefix + b"%d" % k, value), proto.OK
        k = rng.randrange(work.keyspace)
        yield proto.get_request(prefix + b"%d" % k), proto.value_reply(last.get(k))


def batches(stream: Iterator[tuple[bytes, bytes]], size: int) -> Iterator[tuple[bytes, list[bytes]]]:
    """``size`` requests at a time: the bytes to send and the replies due."""
    while chunk := list(itertools.islice(stream, size)):
        yield b"".join(request for request, _ in chunk), [reply for _, reply in chunk]


class _Client:
    """One connection: its request stream, the batch in flight, its counts."""

    def __init__(self, work: Workload, index: int) -> None:
        self.work = work
        self.answered = 0  # replies read, right or wrong
        self.sent = 0
        self.failures = 0
        self.latencies = array.array("d")  # seconds, one per reply read
        self.deadline: float | None = None
        self._batches = batches(requests(work, index), work.pipeline)
        self._expected: list[bytes] = []  # the replies due for the batch in flight
        self._next = 0  # index in _expected of the next reply
        self._began = 0.0  # perf_counter when the batch in flight was written
        self._buffer = bytearray(RECV_BYTES)
        self._view = memoryview(self._buffer)
        self.reader = work.protocol.ReplyReader()
        self.sock = socket.create_connection((work.host, work.port), timeout=CONNECT_TIMEOUT_S)
        try:
            self.sock.settimeout(REPLY_TIMEOUT_S)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            greeting = work.protocol.GREETING
            if greeting is not None and (got := self._greeting()) != greeting:
                raise ConnectionError(f"unexpected greeting {got!r}")
        except BaseException:
            self.sock.close()
            raise

    def _greeting(self) -> bytes:
        while (reply := self.reader.next_reply()) is None:
            self._receive()
        return reply

    def _receive(self) -> None:
        size = self.sock.recv_into(self._buffer)
        if not size:
            raise ConnectionError("server closed the connection")
        self.reader.feed(self._view[:size])

    def send_batch(self) -> bool:
        """Write the next batch; False if there is none (or time is up)."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        batch = next(self._batches, None)
        if batch is None:
            return False
        payload, self._expected = batch
        self._next = 0
        self._began = time.perf_counter()
        self.sent += len(self._expected)
        # Blocks only if the server stops reading (up to REPLY_TIMEOUT_S): a
        # batch of a few requests fits in the socket buffers.
        self.sock.sendall(payload)
        return True

    def on_readable(self) -> bool:
        """Read what has arrived and check each reply against the one due;
        the batch complete, send the next. False once the client is done."""
        size = self.sock.recv_into(self._buffer)
        self.reader.feed(self._view[:size])
        expected, record, clock = self._expected, self.latencies.append, time.perf_counter
        while (got := self.reader.next_reply()) is not None:
            record(clock() - self._began)
            if got != expected[self._next]:
                self.failures += 1
            self._next += 1
            self.answered += 1
            if self._next == len(expected):
                if not self.send_batch():
                    return False
                expected = self._expected
        if not size:  # after the replies that came before the end
            raise ConnectionError("server closed the connection")
        return True

    def lost(self) -> None:
        """The connection failed (closed, timed out, not the protocol):
        every request planned (timed run: sent) and not answered fails."""
        planned = self.work.planned_per_client
        self.failures += (self.sent if planned is None else planned) - self.answered

    def close(self) -> None:
        self.sock.close()


@dataclass
class Shard:
    """What one process's clients did."""

    began: float  # time.monotonic when its clients were released
    ended: float  # when its last client finished
    answered: int
    failures: int
    latencies: array.array


def run_shard(
    work: Workload,
    indices: Sequence[int],
    ready=None,
    progress: MutableSequence[int] | None = None,
    slot: int = 0,
) -> Shard:
    """Connect clients ``indices``, call ``ready()`` (a barrier with other
    processes), then run them all to the end in one selectors loop: the load
    loop. The replies read so far are kept in ``progress[slot]``."""
    clients: list[_Client] = []
    try:
        for index in indices:
            clients.append(_Client(work, index))
        if ready is not None:
            ready()
    except BaseException:
        for client in clients:
            client.close()
        raise
    began = time.monotonic()
    deadline = began + work.duration if work.duration is not None else None
    with selectors.DefaultSelector() as selector:

        def finish(client: _Client) -> None:
            selector.unregister(client.sock)
            client.close()

        for client in clients:
            client.deadline = deadline
            selector.register(client.sock, selectors.EVENT_READ, client)
            try:
                if not client.send_batch():
                    finish(client)
            except OSError:
                client.lost()
                finish(client)
        published = began
        while selector.get_map():
            events = selector.select(REPLY_TIMEOUT_S)
            if not events:  # nobody answered for that long: every one left has failed
                for key in list(selector.get_map().values()):
                    key.data.lost()
                    finish(key.data)
            for key, _ in events:
                client = key.data
                try:
                    if not client.on_readable():
                        finish(client)
                except (OSError, ValueError):
                    client.lost()
                    finish(client)
            if progress is not None and (now := time.monotonic()) - published >= PROGRESS_INTERVAL_S:
                progress[slot] = sum(c.answered for c in clients)
                published = now
    ended = time.monotonic()
    if progress is not None:
        progress[slot] = sum(c.answered for c in clients)
    latencies = array.array("d")
    for client in clients:
        latencies.extend(client.latencies)
    return Shard(
        began,
        ended,
        sum(c.answered for c in clients),
        sum(c.failures for c in clients),
        latencies,
    )


def _shard_process(work, indices, barrier, progress, slot, results) -> None:
    """A --procs child: run one shard, send it (or the error) to the parent."""
    try:
        shard = run_shard(work, indices, barrier.wait, progress, slot)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        barrier.abort()
        results.put((slot, f"{type(exc).__name__}: {exc}"))
    else:
        results.put((slot, shard))


def _run_processes(work: Workload, procs: int, progress: MutableSequence[int]) -> list[Shard]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs + 1, timeout=CONNECT_PHASE_TIMEOUT_S)
    results = ctx.Queue()
    children = [
        ctx.Process(
            target=_shard_process,
            args=(work, range(p, work.clients, procs), barrier, progress, p, results),
            daemon=True,
        )
        for p in range(procs)
    ]
    for child in children:
        child.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass  # a child failed to connect: its message is in the queue
    shards: dict[int, Shard | str] = {}
    while len(shards) < procs:
        try:
            slot, outcome = results.get(timeout=1.0)
        except queue.Empty:
            if not any(child.is_alive() for child in children):
                raise ConnectionError("a kv-bench process died without reporting") from None
            continue
        shards[slot] = outcome
    for child in children:
        child.join()
    errors = [outcome for outcome in shards.values() if isinstance(outcome, str)]
    if errors:
        raise ConnectionError(errors[0])
    return list(shards.values())


def progress_counter(procs: int) -> MutableSequence[int]:
    """Per-process reply counts, shared with the processes if there are several."""
    if procs == 1:
        return [0]
    return multiprocessing.get_context("spawn").Array("q", procs, lock=False)


def run_load(work: Workload, procs: int = 1, progress: MutableSequence[int] | None = None) -> Result:
    """Connect every client, then time them all doing their pairs."""
    procs = max(1, min(procs, work.clients))
    if progress is None:
        progress = progress_counter(procs)
    if procs == 1:
        shards = [run_shard(work, range(work.clients), None, progress, 0)]
    else:
        shards = _run_processes(work, procs, progress)
    latencies = array.array("d")
    for shard in shards:
        latencies.extend(shard.latencies)
    return Result(
        work,
        elapsed_seconds=max(s.ended for s in shards) - min(s.began for s in shards),
        answered=sum(s.answered for s in shards),
        failures=sum(s.failures for s in shards),
        latencies=sorted(latencies),
        procs=procs,
    )


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence; None if empty."""
    if not ordered:
        return None
    rank = math.ceil(p * len(ordered) / 100 - 1e-9)  # 99.9% of 1000 is 999, not 999.0000000000001
    return ordered[max(0, rank - 1)]


@dataclass
class Result:
    work: Workload
    elapsed_seconds: float
    answered: int
    failures: int
    latencies: Sequence[float]  # seconds, ascending
    procs: int = 1

    @property
    def clients(self) -> int:
        return self.work.clients

    @property
    def total_commands(self) -> int:
        """Planned requests in an OPS run; requests answered in a timed run."""
        if self.work.duration is None:
            return self.clients * self.work.ops * 2
        return self.answered

    @property
    def operations_per_client(self) -> int:
        """OPS; in a timed run the pairs done, averaged over clients (rounded down)."""
        return self.total_commands // 2 // self.clients

    @property
    def throughput(self) -> int:
        return int(self.total_commands / self.elapsed_seconds) if self.elapsed_seconds > 0 else 0

    def latency_ms(self) -> dict[str, float | None]:
        """p50, p99, p99.9 and max of the per-request latencies, in ms."""
        figures = {f"p{p:g}": percentile(self.latencies, p) for p in PERCENTILES}
        figures["max"] = self.latencies[-1] if self.latencies else None
        return {name: None if s is None else round(s * 1000, 3) for name, s in figures.items()}

    def line(self) -> str:
        """The one summary line, in mini_redis's kv_bench format."""
        return (
            f"clients={self.clients} operations_per_client={self.operations_per_client} "
            f"total_commands={self.total_commands} elapsed_seconds={self.elapsed_seconds:.2f} "
            f"throughput_cmds_per_sec={self.throughput} failures={self.failures}"
        )

    def latency_line(self) -> str:
        figures = " ".join(f"{name}={value}" for name, value in self.latency_ms().items())
        return f"latency_ms {figures} (per request, {len(self.latencies)} samples)"

    def as_json(self) -> dict:
        """Every figure of the line, the latencies and the settings."""
        work = self.work
        return {
            "clients": self.clients,
            "operations_per_client": self.operations_per_client,
            "total_commands": self.total_commands,
            "elapsed_seconds": round(self.elapsed_seconds, 4),
            "throughput_cmds_per_sec": self.throughput,
            "failures": self.failures,
            "latency_ms": self.latency_ms(),
            "protocol": "resp" if work.resp else "text",
            "host": work.host,
            "port": work.port,
            "pipeline": work.pipeline,
            "data_size": work.data_size,
            "keyspace": work.keyspace,
            "duration_seconds": work.duration,
            "procs": self.procs,
        }
