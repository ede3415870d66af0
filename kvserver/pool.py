"""The pool of worker threads: one thread serves one connection at a time.

A new connection gets an idle worker if there is one, or a new thread; the
pool grows with the number of connections. When a connection ends its
worker goes back to the idle list, unless ``max_idle`` workers are already
idle, in which case the thread exits: the pool shrinks back after a burst.

``thread_context`` (optional) is a context-manager factory entered for each
worker thread's whole life; the profiling scripts use it to run a profiler
in every worker. ``thread_factory`` makes the threads (``threading.Thread``;
tests swap in one that fails, as under a memory or thread limit).

``submit`` raises ``PoolClosed`` once the pool is shut down and
``WorkerStartFailed`` when no thread can be started for the job (the
system's thread or memory limit): the caller turns the client away. A
worker that failed to start is not counted: ``size`` is the threads that
exist.

``shutdown(deadline)`` waits for busy workers until one overall deadline,
not each in turn: the workers still busy then are daemon threads, left to
die with the process.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class PoolClosed(Exception):
    """The pool is shut down: the server is stopping."""


class WorkerStartFailed(Exception):
    """No thread could be started for a job (``can't start new thread``)."""


class _Worker:
    __slots__ = ("thread", "job", "signal")

    def __init__(self) -> None:
        self.job: object | None = None
        self.signal = threading.Lock()  # locked until a job is handed over
        self.signal.acquire()
        self.thread: threading.Thread | None = None


class WorkerPool:
    def __init__(
        self,
        run: Callable[[object], None],
        max_idle: int,
        thread_context: Callable[[], contextlib.AbstractContextManager] | None = None,
        thread_factory: Callable[..., threading.Thread] = threading.Thread,
        on_lost: Callable[[object], None] = lambda job: None,
    ) -> None:
        self._run = run
        # Called (from the dying worker) with a job its thread could not run
        # to the end for want of memory: the server then closes that client.
        self._on_lost = on_lost
        self.thread_factory = thread_factory
        self._max_idle = max_idle
        self._thread_context = thread_context or contextlib.nullcontext
        # Protects _idle, _all and _closed. Held only to move a worker
        # between lists, never while a job runs.
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False
        self._started = 0

    @property
    def size(self) -> int:
        """Worker threads alive now (busy or idle)."""
        return len(self._all)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def submit(self, job: object) -> None:
        """Run ``run(job)`` on an idle worker, or on a new thread; raises
        ``PoolClosed`` or ``WorkerStartFailed`` (the job is not run)."""
        with self._lock:
            if self._closed:
                raise PoolClosed("pool is shut down")
            if self._idle:
                worker = self._idle.pop()
                worker.job = job
                worker.signal.release()
                return
            worker = _Worker()
            worker.job = job
            self._all.add(worker)
            self._started += 1
            name = f"kv-worker-{self._started}"
        try:
            worker.thread = self.thread_factory(target=self._work, args=(worker,), name=name, daemon=True)
            worker.thread.start()
        except (RuntimeError, MemoryError) as exc:  # "can't start new thread"
            with self._lock:
                self._all.discard(worker)  # it never ran: the figures stay true
            raise WorkerStartFailed(str(exc) or type(exc).__name__) from exc

    def _work(self, worker: _Worker) -> None:
        job = worker.job
        try:
            self._work_loop(worker)
        except MemoryError:
            # Under a memory limit a thread can start and then fail to run
            # Python at all (before its job's own cleanup could). Hand the
            # job back, so its client is told and closed, and leave the pool.
            with self._lock:
                self._all.discard(worker)
                if worker in self._idle:
                    self._idle.remove(worker)
            self._on_lost(worker.job if worker.job is not None else job)

    def _work_loop(self, worker: _Worker) -> None:
        with self._thread_context():
            while True:
                job = worker.job
                try:
                    self._run(job)
                except MemoryError:
                    raise  # _work hands the job back
                except Exception:
                    log.exception("worker failed")  # the connection is closed by run's cleanup
                worker.job = None
                with self._lock:
                    if self._closed or len(self._idle) >= self._max_idle:
                        self._all.discard(worker)
                        return
                    self._idle.append(worker)
                worker.signal.acquire()  # until submit() or shutdown() hands over
                if worker.job is None:  # shutdown
                    return

    def shutdown(self, deadline: float | None = None) -> int:
        """Stop idle workers and wait for busy ones to finish their jobs,
        until ``deadline`` (a ``time.monotonic()`` value; None: no limit).
        Returns how many were still busy then (left running: daemon threads)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            workers = self._all.difference(idle)  # idle ones exit at once: no need to wait
            self._all.clear()
        for worker in idle:
            worker.signal.release()  # job is None: the thread exits
        busy = 0
        for worker in workers:
            thread = worker.thread
            if thread is None or thread is threading.current_thread() or thread.ident is None:
                continue  # never started (submit is failing it right now)
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            busy += thread.is_alive()
        return busy
