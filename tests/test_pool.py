"""The worker pool: grows with jobs, reuses idle threads, shrinks back."""

from __future__ import annotations

import threading
import time

import pytest

from kvserver.pool import WorkerPool


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.005)


def test_each_job_gets_its_own_thread_while_they_run():
    release = threading.Event()
    names: list[str] = []
    pool = WorkerPool(lambda job: (names.append(threading.current_thread().name), release.wait()), max_idle=4)
    for job in range(5):
        pool.submit(job)
    _wait_for(lambda: len(names) == 5)
    assert len(set(names)) == 5 and pool.size == 5
    release.set()
    _wait_for(lambda: pool.idle == 4)
    assert pool.size == 4  # one thread exited: only max_idle are kept
    pool.shutdown(time.monotonic() + 5)
    assert pool.size == 0


def test_idle_threads_are_reused():
    names: list[str] = []
    finished = threading.Semaphore(0)

    def job(_):
        names.append(threading.current_thread().name)
        finished.release()

    pool = WorkerPool(job, max_idle=2)
    for i in range(20):
        pool.submit(i)
        assert finished.acquire(timeout=5)
        _wait_for(lambda: pool.idle == 1)  # back on the idle list before the next job
    assert len(set(names)) == 1
    pool.shutdown(time.monotonic() + 5)


def test_a_failing_job_does_not_kill_the_pool():
    ran = threading.Event()

    def job(kind):
        if kind == "boom":
            raise ValueError("boom")
        ran.set()

    pool = WorkerPool(job, max_idle=2)
    pool.submit("boom")
    pool.submit("fine")
    assert ran.wait(5)
    pool.shutdown(time.monotonic() + 5)


def test_shutdown_waits_for_busy_workers_until_one_deadline_not_each_in_turn():
    # Before: shutdown(timeout) joined each busy worker with the whole
    # timeout, one after the other: 5 stuck workers took 5 timeouts.
    release = threading.Event()
    started = threading.Semaphore(0)
    pool = WorkerPool(lambda job: (started.release(), release.wait()), max_idle=4)
    for job in range(5):
        pool.submit(job)
    for _ in range(5):
        assert started.acquire(timeout=5)
    began = time.monotonic()
    assert pool.shutdown(began + 0.3) == 5  # all five still busy at the deadline
    assert time.monotonic() - began < 1.0  # one deadline (0.3 s), not 5 x 0.3 s
    release.set()


class _NoThreads(threading.Thread):
    """A thread that cannot start, as under ``ulimit -v`` or ``ulimit -u``."""

    def start(self) -> None:
        raise RuntimeError("can't start new thread")


def test_a_worker_that_cannot_start_is_reported_and_not_counted():
    from kvserver.pool import PoolClosed, WorkerStartFailed

    ran = threading.Event()
    pool = WorkerPool(lambda job: ran.set(), max_idle=2, thread_factory=_NoThreads)
    with pytest.raises(WorkerStartFailed, match="can't start new thread"):
        pool.submit("job")
    assert pool.size == 0 and not ran.is_set()
    pool.thread_factory = threading.Thread
    pool.submit("job")
    assert ran.wait(5)
    pool.shutdown(time.monotonic() + 5)  # no "cannot join thread before it is started"
    with pytest.raises(PoolClosed):
        pool.submit("late")


def test_a_worker_that_runs_out_of_memory_hands_its_job_back_and_leaves():
    lost = []
    done = threading.Event()

    def run(job):
        raise MemoryError  # as a thread under a memory limit can, before its job's cleanup

    def on_lost(job):
        lost.append(job)
        done.set()

    pool = WorkerPool(run, max_idle=4, on_lost=on_lost)
    pool.submit("client-1")
    assert done.wait(10)
    assert lost == ["client-1"]
    _wait_for(lambda: pool.size == 0)
    pool.shutdown()
