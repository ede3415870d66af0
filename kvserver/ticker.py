"""Background threads that do one small job at a fixed interval.

``Ticker`` is the shape both share (active expiry in store.py, the stats
sampling in stats.py): a daemon thread calling ``tick()`` every
``interval_s`` until ``stop()``, which joins it. The wait is an Event, so
``stop()`` ends it at once rather than after the interval.
"""

from __future__ import annotations

import threading


class Ticker:
    def __init__(self, interval_s: float, name: str) -> None:
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.tick()
