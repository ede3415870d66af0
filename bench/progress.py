"""The progress bar kv-bench draws on stderr during long runs.

A thread redraws one line from the shared reply counts a few times a
second. It stays silent for the first DELAY_S, so short runs (and the tests)
print nothing; kv-bench only starts it when stderr is a terminal or
``--progress`` asks for it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

DELAY_S = 2.0  # runs shorter than this show no bar
REDRAW_S = 0.25
WIDTH = 30  # characters of bar


def render(fraction: float, answered: int, rate: float, total: int | None) -> str:
    """One line: the bar, the percentage, the replies so far, the rate."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * WIDTH)
    of = f"/{total:,}" if total is not None else ""
    return f"[{'#' * filled}{'.' * (WIDTH - filled)}] {fraction:4.0%} {answered:,}{of} replies {rate:,.0f}/s"


class ProgressBar:
    """Redraws from ``counts`` (replies per process) until ``stop()``.

    The fraction done is replies over ``total`` in an OPS run, time over
    ``duration`` in a timed one.
    """

    def __init__(
        self,
        counts: Sequence[int],
        total: int | None,
        duration: float | None,
        stream: TextIO | None = None,
    ) -> None:
        self.counts = counts
        self.total = total
        self.duration = duration
        self.stream = stream or sys.stderr
        self.drawn = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kv-bench-progress", daemon=True)
        self._began = 0.0

    def start(self) -> ProgressBar:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop redrawing; end the line if a bar was drawn."""
        self._stop.set()
        self._thread.join()
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()

    def _run(self) -> None:
        if self._stop.wait(DELAY_S):
            return
        while not self._stop.is_set():
            self.draw()
            self._stop.wait(REDRAW_S)
        self.draw()

    def draw(self) -> None:
        elapsed = time.monotonic() - self._began
        answered = sum(self.counts)
        if self.duration:
            fraction = elapsed / self.duration
        else:
            fraction = answered / self.total if self.total else 0.0
        rate = answered / elapsed if elapsed > 0 else 0.0
        self.stream.write("\r" + render(fraction, answered, rate, self.total))
        self.stream.flush()
        self.drawn = True
