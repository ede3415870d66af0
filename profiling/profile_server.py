"""Profile the server under load with pyinstrument.

Starts a kvserver in this process with a pyinstrument profiler running in
every thread (the reactor and each worker: pyinstrument samples only the
thread that started it), drives it with kv-bench in a separate process, then
merges the threads' profiles and writes them as HTML and text:

    python profiling/profile_server.py --out profiling/out

(``make profile`` runs exactly this.) Read the text file top-down: time is
summed over all threads, so a worker waiting on its wake-up lock shows up as
time in ``wait``; the hot path is under ``serve`` and ``Reactor.run``.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import click
from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
from pyinstrument.session import Session

from kvserver.config import Config
from kvserver.server import Server

SAMPLE_INTERVAL_S = 0.0005


class ThreadProfiles:
    """A profiler per thread; their sessions merged at the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _sessions: threads end concurrently
        self._sessions: list[Session] = []

    @contextlib.contextmanager
    def thread(self):
        profiler = Profiler(interval=SAMPLE_INTERVAL_S)
        profiler.start()
        try:
            yield
        finally:
            session = profiler.stop()
            with self._lock:
                self._sessions.append(session)

    def merged(self) -> Session:
        merged = self._sessions[0]
        for session in self._sessions[1:]:
            merged = Session.combine(merged, session)
        return merged


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("profiling/out"))
@click.option("--clients", default=8, show_default=True)
@click.option("--ops", default=5000, show_default=True, help="SET/GET pairs per client.")
def main(out_dir: Path, clients: int, ops: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles = ThreadProfiles()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(
            Config(port=0, aof_path=str(Path(tmp) / "profile.aof")), thread_context=profiles.thread
        )

        def serve() -> None:
            with profiles.thread():
                server.serve_forever()

        thread = threading.Thread(target=serve, name="kv-reactor")
        thread.start()
        bench = subprocess.run(
            [sys.executable, "-c", "from kvbench.cli import main; main()", str(server.port), str(clients), str(ops)],
            capture_output=True,
            text=True,
        )
        server.shutdown()
        thread.join()
    click.echo(bench.stdout.strip())
    session = profiles.merged()
    text_path = out_dir / "profile-text-port.txt"
    html_path = out_dir / "profile-text-port.html"
    text_path.write_text(ConsoleRenderer(unicode=True, color=False, show_all=False).render(session))
    html_path.write_text(HTMLRenderer().render(session))
    click.echo(f"profiles written: {text_path} {html_path}", err=True)
    if bench.returncode:
        raise click.ClickException(f"kv-bench failed: {bench.stderr.strip()}")


if __name__ == "__main__":
    main()
