"""Profile the server under load with pyinstrument.

For each port (text, then RESP), starts a kvserver in this process with a
pyinstrument profiler running in every thread (the reactor and each worker:
pyinstrument samples only the thread that started it), drives that port
with kv-bench in a separate process (``--resp`` for the RESP port), then
merges the threads' profiles and writes them as HTML and text:

    python profiling/profile_server.py --out profiling/out
    # -> profile-text-port.{txt,html}, profile-resp-port.{txt,html}

(``make profile`` runs exactly this; ``--port resp`` profiles one port
only.) Read the text file top-down: time is
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


PROTOCOLS = ("text", "resp")


def profile_port(protocol: str, out_dir: Path, clients: int, ops: int, pipeline: int) -> None:
    """Serve in this process with every thread profiled, drive the
    ``protocol`` port with kv-bench in another process, and write
    profile-<protocol>-port.txt and .html."""
    profiles = ThreadProfiles()
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(port=0, resp_port=0, aof_path=str(Path(tmp) / "profile.aof"))
        server = Server(config, thread_context=profiles.thread)

        def serve() -> None:
            with profiles.thread():
                server.serve_forever()

        thread = threading.Thread(target=serve, name="kv-reactor")
        thread.start()
        port = server.resp_port if protocol == "resp" else server.port
        argv = [str(port), str(clients), str(ops), "--pipeline", str(pipeline), "--no-progress"]
        if protocol == "resp":
            argv.append("--resp")
        click.echo(f"{protocol} port: kv-bench {' '.join(argv)}", err=True)
        bench = subprocess.run([sys.executable, "-m", "kvbench.cli", *argv], capture_output=True, text=True)
        server.shutdown()
        thread.join()
    click.echo(f"{protocol} port: {bench.stdout.strip()}")
    session = profiles.merged()
    text_path = out_dir / f"profile-{protocol}-port.txt"
    html_path = out_dir / f"profile-{protocol}-port.html"
    text_path.write_text(ConsoleRenderer(unicode=True, color=False, show_all=False).render(session))
    html_path.write_text(HTMLRenderer().render(session))
    click.echo(f"profiles written: {text_path} {html_path}", err=True)
    if bench.returncode:
        raise click.ClickException(f"kv-bench failed on the {protocol} port: {bench.stderr.strip()}")


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("profiling/out"))
@click.option(
    "--port",
    "ports",
    type=click.Choice(PROTOCOLS),
    multiple=True,
    default=PROTOCOLS,
    show_default=True,
    help="Which port to profile (repeat for both; a fresh server each).",
)
@click.option("--clients", default=8, show_default=True)
@click.option("--ops", default=5000, show_default=True, help="SET/GET pairs per client.")
@click.option("--pipeline", default=1, show_default=True, help="kv-bench --pipeline.")
def main(out_dir: Path, ports: tuple[str, ...], clients: int, ops: int, pipeline: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    out_dir.mkdir(parents=True, exist_ok=True)
    for protocol in ports:
        profile_port(protocol, out_dir, clients, ops, pipeline)


if __name__ == "__main__":
    main()
