"""The reactor's thread hand-backs: call_soon from many threads at once."""

from __future__ import annotations

import threading
import time

import select

from kvserver.reactor import Reactor


def _reactor() -> Reactor:
    return Reactor([], lambda conn: None, max_line=1024, max_queued=16, shutdown_timeout=lambda: 1.0)


def test_a_call_soon_racing_the_wake_handler_still_wakes_the_loop_later():
    # Regression: clearing the "wake-up pending" flag before draining the
    # wake socket let a call_soon landing in between have its byte
    # swallowed, leaving the flag set for good: no later call_soon woke the
    # loop again, and shutdown hung. Replay that interleaving exactly.
    reactor = _reactor()
    real = reactor._wake_r
    ran = []

    class RacingSocket:
        fired = False

        def recv(self, size: int) -> bytes:
            if not self.fired:  # another thread calls call_soon right now
                self.fired = True
                reactor.call_soon(ran.append, "racer")
            return real.recv(size)

    reactor._wake_r = RacingSocket()
    reactor.call_soon(ran.append, "first")
    reactor._on_wake()  # what the loop runs when the wake socket is readable
    assert ran == ["first", "racer"]
    reactor.call_soon(ran.append, "later")
    readable, _, _ = select.select([real], [], [], 0)
    assert readable == [real], "a call_soon after the race did not wake the loop"
    reactor._wake_r = real
    reactor.stop()
    reactor.run()  # runs the queued calls and the stop, then closes everything


def test_call_soon_from_many_threads_runs_every_call():
    reactor = _reactor()
    loop = threading.Thread(target=reactor.run)
    loop.start()
    done = []
    lock = threading.Lock()

    def record() -> None:
        with lock:
            done.append(1)

    def caller() -> None:
        for _ in range(3000):
            reactor.call_soon(record)

    callers = [threading.Thread(target=caller) for _ in range(8)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    deadline = time.monotonic() + 10
    # Each burst must be run without any further wake-up from outside.
    while len(done) < 8 * 3000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(done) == 8 * 3000
    reactor.stop()
    loop.join(10)
    assert not loop.is_alive(), "stop() did not wake the loop"


def test_call_soon_runs_on_the_reactor_thread():
    reactor = _reactor()
    loop = threading.Thread(target=reactor.run)
    loop.start()
    seen = threading.Event()
    threads = []
    reactor.call_soon(lambda: (threads.append(threading.current_thread()), seen.set()))
    assert seen.wait(10)
    assert threads == [loop]
    reactor.stop()
    loop.join(10)
    assert not loop.is_alive()
