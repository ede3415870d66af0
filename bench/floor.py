"""How fast can the design itself go? Skeleton servers beside kvserver and redis-server.

Issue 6 asks for 0.9 x redis-server at ``redis-benchmark -c 50``, 0.5 x at
``-P 16`` and 0.8 x at ``-c 1``, in kvserver's fixed design: a selectors
reactor reads, and each connection's commands run on a worker thread of
its own. This measures the ceiling of that design in CPython by taking
everything else away. Each server answers ``redis-benchmark -t ping_mbulk``
(``*1\\r\\n$4\\r\\nPING\\r\\n`` per request):

- ``handoff``: kvserver's hand-off and nothing else. The reactor recv()s
  and puts the bytes on the connection's deque, then wakes the worker
  through a lock used as a semaphore (connection.py's wake/wait); the
  worker counts the requests (three LFs each; no parsing) and sends one
  ``+PONG`` per request. Started like kvserver: one CPU, SCHED_BATCH, a
  50 ms GIL switch interval.
- ``single``: the same reactor answering in its own thread: no hand-off.
  What a single-threaded Python server pays for select/recv/send alone.
- kvserver (its defaults) and redis-server (``--save ""``), answering PING
  for real.

For each it reports requests/s, the server's CPU microseconds per request
(utime+stime from /proc) and the ratio to redis-server: the median of
``--rounds`` interleaved runs, since the machines are shared and noisy.
``python bench/floor.py`` (``--requests N --rounds R``); the figures go in
bench/RESULTS.md by hand, with the command.
"""

from __future__ import annotations

import collections
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

from kvbench.compare import (
    START_TIMEOUT_S,
    Bench,
    KvServer,
    Measure,
    RedisServer,
    RunInfo,
    ServerProcess,
    _answers_ping,
    free_port,
)

LOADS = (("-c 50", ("-c", "50")), ("-c 50 -P 16", ("-c", "50", "-P", "16")), ("-c 1", ("-c", "1")))
LFS_PER_REQUEST = 3  # *1\r\n $4\r\n PING\r\n
PONG = b"+PONG\r\n"


# -- the skeletons (run in a child process: `floor.py serve DESIGN PORT`) ---------------------


class _Conn:
    """One connection of the hand-off skeleton: connection.py's shape."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox: collections.deque = collections.deque()
        self.signal = threading.Lock()
        self.signal.acquire()  # locked = nothing to do

    def wake(self) -> None:
        try:
            self.signal.release()
        except RuntimeError:
            pass  # already signalled

    def work(self) -> None:
        lfs = answered = 0
        inbox, sock = self.inbox, self.sock
        while True:
            if not inbox:
                self.signal.acquire()
            while inbox:
                data = inbox.popleft()
                if not data:
                    return
                lfs += data.count(b"\n")
            due = lfs // LFS_PER_REQUEST - answered
            if due:
                answered += due
                sock.sendall(PONG * due)


def serve(design: str, port: int) -> None:
    """The skeleton server; runs until killed."""
    from kvserver.cli import GIL_SWITCH_INTERVAL_S, pin_to_one_cpu, use_sched_batch

    pin_to_one_cpu()
    use_sched_batch()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    listener = socket.create_server(("127.0.0.1", port), backlog=511)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    lf_counts: dict[socket.socket, list[int]] = {}  # single: [lfs, answered]
    while True:
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is listener:
                client, _ = listener.accept()
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if design == "handoff":
                    conn = _Conn(client)
                    threading.Thread(target=conn.work, daemon=True).start()
                    selector.register(client, selectors.EVENT_READ, conn)
                else:
                    client.setblocking(False)
                    lf_counts[client] = [0, 0]
                    selector.register(client, selectors.EVENT_READ)
                continue
            data = sock.recv(65536)
            if design == "handoff":
                key.data.inbox.append(data)
                key.data.wake()
            elif data:
                counts = lf_counts[sock]
                counts[0] += data.count(b"\n")
                due = counts[0] // LFS_PER_REQUEST - counts[1]
                counts[1] += due
                sock.sendall(PONG * due)
            if not data:
                selector.unregister(sock)
                lf_counts.pop(sock, None)
                if design != "handoff":
                    sock.close()


class Skeleton(ServerProcess):
    def __init__(self, design: str) -> None:
        self.name = f"skeleton ({design})"
        self.port = self.resp_port = free_port()
        argv = [sys.executable, str(Path(__file__).resolve()), "serve", design, str(self.port)]
        super().__init__(subprocess.Popen(argv))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers_ping_mbulk(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise click.ClickException(f"{self.name} did not start")
            time.sleep(0.05)


def _answers_ping_mbulk(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64) == PONG
    except OSError:
        return False


# -- the run ----------------------------------------------------------------------------------


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--requests", "-n", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Run every load against every server this many times, interleaved; the median is shown.",
)
@click.pass_context
def main(ctx: click.Context, requests: int, rounds: int) -> None:
    """Skeleton servers vs kvserver vs redis-server, redis-benchmark -t ping_mbulk."""
    if ctx.invoked_subcommand is not None:
        return
    if not shutil.which("redis-benchmark"):
        raise click.ClickException("needs redis-benchmark: apt-get install redis-tools")
    info = RunInfo(date="", commit="", invocation="bench/floor.py", machine="")
    bench = Bench(info)
    with tempfile.TemporaryDirectory(prefix="kvfloor-") as tmp:
        workdir = Path(tmp)
        servers: list[ServerProcess] = [Skeleton("handoff"), Skeleton("single"), KvServer(workdir)]
        redis = shutil.which("redis-server")
        if redis:
            servers.append(RedisServer(redis, workdir))
        try:
            runs: dict[tuple[str, str], list] = collections.defaultdict(list)
            for _ in range(rounds):  # interleaved, so a noisy moment hits every server alike
                for label, flags in LOADS:
                    for server in servers:
                        click.echo(f"{label}: {server.name}", err=True)
                        measure = bench.redis_benchmark(server, "ping_mbulk", requests, flags)
                        if measure is not None:
                            runs[label, server.name].append(measure)
            figures = {key: _median(measures) for key, measures in runs.items()}
        finally:
            for server in servers:
                server.stop()
    reference = redis is not None
    click.echo("| load | server | req/s | ratio to redis-server | server CPU µs/req |")
    click.echo("|---|---|---|---|---|")
    for label, _ in LOADS:
        base = figures.get((label, "redis-server")) if reference else None
        for server in servers:
            measure = figures.get((label, server.name))
            if measure is None:
                click.echo(f"| {label} | {server.name} | – | – | – |")
                continue
            ratio = f"{measure.rps / base.rps:.2f}" if base and base.rps else "–"
            click.echo(f"| {label} | {server.name} | {measure.rps:,.0f} | {ratio} | {measure.cpu_us:.1f} |")
    for command in info.commands:
        click.echo(f"    {command}", err=True)


def _median(measures: list) -> Measure:
    """The run with the median throughput (its CPU figure with it)."""
    return sorted(measures, key=lambda m: m.rps)[len(measures) // 2]


@main.command("serve", hidden=True)
@click.argument("design", type=click.Choice(["handoff", "single"]))
@click.argument("port", type=int)
def serve_command(design: str, port: int) -> None:
    serve(design, port)


if __name__ == "__main__":
    main()
