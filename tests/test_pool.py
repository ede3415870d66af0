"""The worker pool: grows with jobs, reuses idle threads, shrinks back."""

from __future__ import annotations

import threading
import time

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
    pool.shutdown(timeout=5)
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
    pool.shutdown(timeout=5)


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
    pool.shutdown(timeout=5)
