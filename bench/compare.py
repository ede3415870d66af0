"""``make bench``: kvserver beside redis-server under the same loads, one table.

Starts kvserver (``python -m kvserver 0 <tmp>/bench.aof --resp-port 0``,
its defaults otherwise) and, if installed, redis-server (``--save ""
--appendonly yes --appendfsync everysec``: it logs writes as kvserver
does) on free loopback ports, then runs each load against kvserver and
then redis-server:

- redis-benchmark SET and GET, ``-n 100000`` (``--quick``: 20000) at
  ``-c 50``, ``-c 50 -P 16`` and ``-c 1``, on the RESP ports. SET and GET
  are separate runs (``-t set`` then ``-t get``, which is what ``-t set,get``
  does in one) so that each gets its own CPU figure;
- redis-benchmark's data type tests (LPUSH, RPUSH, LPOP, RPOP, SADD, HSET,
  SPOP, LRANGE_100, ZADD, ZPOPMIN) and INCR and MSET at ``-c 50``;
- kv-bench, 8 clients x 1000 pairs: kvserver's text port, redis-server with
  ``--resp``;
- 1,000 concurrent connections (kv-bench ``--procs 4``), and 10,000 with
  ``--c10k``.

For each run it reads the server process's CPU time (utime + stime from
``/proc/<pid>/stat``) before and after, and reports CPU microseconds per
request. It prints a markdown table, appends it to bench/RESULTS.md with the
date, the commit and the exact commands, and writes an SVG bar chart of the
throughput ratios under bench/charts/, linked from that section.

The formatting functions (``markdown_table``, ``ratio_svg``,
``results_section``) and the parsers take plain values, so they are tested
on canned numbers without running anything.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import click

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 900.0  # one load against one server; -c 1 on a slow day is the longest
STOP_TIMEOUT_S = 15.0
READY = re.compile(r"ready to accept connections on \S+ port (\d+) \(text\)(?: and port (\d+) \(RESP\))?")

REQUESTS = 100_000
QUICK_REQUESTS = 20_000
REDIS_BENCHMARK_LOADS = (("-c 50", ("-c", "50")), ("-c 50 -P 16", ("-c", "50", "-P", "16")), ("-c 1", ("-c", "1")))
# The data types' rows (issue 14), at -c 50 only: redis-benchmark's own
# tests of them. LRANGE_100's run includes the LPUSHes that fill its list.
# INCR and MSET (10 keys) are the other writes issue 19 sets targets for.
TYPE_TESTS = ("lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop", "lrange_100", "zadd", "zpopmin", "incr", "mset")
KV_BENCH_CLIENTS, KV_BENCH_OPS = 8, 1000
CONNECTION_PROCS = 4
# Few pairs each: these rows are about holding many connections at once.
CONNECTION_OPS = {1_000: 20, 10_000: 2}
QUICK_CONNECTION_OPS = {1_000: 10, 10_000: 1}


# -- what a run measured, and how it is shown -------------------------------------------


@dataclass
class Measure:
    """One load against one server."""

    rps: float | None
    cpu_us: float | None = None  # server CPU per request
    p99_ms: float | None = None


@dataclass
class Row:
    load: str
    kv: Measure | None
    redis: Measure | None = None

    @property
    def ratio(self) -> float | None:
        """kvserver's throughput over redis-server's."""
        if self.kv is None or self.redis is None or not self.kv.rps or not self.redis.rps:
            return None
        return self.kv.rps / self.redis.rps


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _ratio(value: float | None) -> str:
    # Two significant figures: the ratios worth reading run from 0.03 to 1.
    return "–" if value is None else f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


TABLE_HEADER = (
    "load",
    "kvserver req/s",
    "redis req/s",
    "ratio",
    "kvserver CPU µs/req",
    "redis CPU µs/req",
    "kvserver p99 ms",
    "redis p99 ms",
)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    for row in rows:
        kv, redis = row.kv or Measure(None), row.redis or Measure(None)
        cells = (
            row.load,
            _fmt(kv.rps, ",.0f"),
            _fmt(redis.rps, ",.0f"),
            _ratio(row.ratio),
            _fmt(kv.cpu_us, ".1f"),
            _fmt(redis.cpu_us, ".1f"),
            _fmt(kv.p99_ms, ".2f"),
            _fmt(redis.p99_ms, ".2f"),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


SVG_BAR_H, SVG_GAP, SVG_LABEL_W, SVG_CHART_W, SVG_TOP = 20, 8, 250, 400, 44


def ratio_svg(rows: list[Row], title: str) -> str:
    """A horizontal bar per row with a ratio, and a dashed line at 1.0
    (as fast as redis-server)."""
    bars = [(row.load, row.ratio) for row in rows if row.ratio is not None]
    scale = max([1.0, *(ratio for _, ratio in bars)]) * 1.15

    def x(ratio: float) -> float:
        return SVG_LABEL_W + ratio / scale * SVG_CHART_W

    height = SVG_TOP + len(bars) * (SVG_BAR_H + SVG_GAP) + 24
    width = SVG_LABEL_W + SVG_CHART_W + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        '<text x="10" y="36" fill="#555">kvserver req/s ÷ redis-server req/s, same run</text>',
    ]
    for i, (load, ratio) in enumerate(bars):
        y = SVG_TOP + i * (SVG_BAR_H + SVG_GAP)
        out += [
            f'<text x="{SVG_LABEL_W - 8}" y="{y + 14}" text-anchor="end">{escape(load)}</text>',
            f'<rect x="{SVG_LABEL_W}" y="{y}" width="{x(ratio) - SVG_LABEL_W:.1f}" '
            f'height="{SVG_BAR_H}" fill="#4a78b5"/>',
            f'<text x="{x(ratio) + 4:.1f}" y="{y + 14}">{_ratio(ratio)}</text>',
        ]
    bottom = SVG_TOP + len(bars) * (SVG_BAR_H + SVG_GAP)
    out += [
        f'<line x1="{x(1.0):.1f}" y1="{SVG_TOP - 4}" x2="{x(1.0):.1f}" y2="{bottom}" '
        'stroke="#333" stroke-dasharray="4 3"/>',
        f'<text x="{x(1.0):.1f}" y="{bottom + 14}" text-anchor="middle" fill="#333">1.0 = redis-server</text>',
        "</svg>",
    ]
    return "\n".join(out) + "\n"


@dataclass
class RunInfo:
    """Where and how a comparison was taken, for its section in RESULTS.md."""

    date: str
    commit: str
    invocation: str
    machine: str
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def results_section(info: RunInfo, table: str, chart: str | None) -> str:
    """The section appended to RESULTS.md: heading, set-up, table, chart,
    notes and the exact commands."""
    intro = (
        f"`{info.invocation}` on {info.machine}. Each load runs against kvserver "
        "(its defaults: `appendfsync everysec`), then against redis-server "
        '(`--save "" --appendonly yes --appendfsync everysec`, as kvserver logs), one after the other. CPU µs/req is the server '
        "process's utime+stime (`/proc/PID/stat`, in clock ticks of usually 10 ms, so the "
        "smallest figures are coarse) over the run divided by its requests; "
        "p99 is redis-benchmark's (CSV) or kv-bench's per-request latency. kv-bench rows "
        "use kvserver's text port and redis-server's RESP (`--resp`); kv-bench 8×1000 is one "
        "Python process, so once a server outruns it that row measures the client. In the "
        "connections rows the CPU includes accepting the connections."
    )
    parts = [f"## {info.date} — `make bench` (commit {info.commit})", "", textwrap.fill(intro, 80, break_on_hyphens=False), "", table, ""]
    if chart:
        parts += [f"![kvserver / redis-server throughput ratios]({chart})", ""]
    parts += [f"- {note}" for note in info.notes] + ([""] if info.notes else [])
    parts += ["Commands (ports as in this run):", "", "```", *info.commands, "```", ""]
    return "\n".join(parts)


# -- parsing what the tools and /proc say ---------------------------------------------------


def parse_ready(line: str) -> tuple[int, int | None] | None:
    """kvserver's text and RESP ports from its ready line, or None."""
    match = READY.search(line)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def parse_benchmark_csv(output: str) -> dict[str, tuple[float, float | None]]:
    """redis-benchmark ``--csv`` output: test name -> (requests/s, p99 ms)."""
    rows = {}
    for record in csv.DictReader(io.StringIO(output)):
        if record.get("test") and record.get("rps"):
            p99 = record.get("p99_latency_ms")
            rows[record["test"]] = (float(record["rps"]), float(p99) if p99 else None)
    return rows


def parse_cpu_seconds(stat: str, ticks_per_second: int) -> float:
    """utime + stime from the text of ``/proc/<pid>/stat``. The command name
    (field 2) is in parentheses and may hold spaces: split after it."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


# -- the servers ------------------------------------------------------------------------------


class ServerProcess:
    """A server we started; its CPU time is read from /proc."""

    name = "server"

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def cpu_seconds(self) -> float:
        if self.proc.poll() is not None:
            status = self.proc.returncode
            raise click.ClickException(f"{self.name} exited (status {status}) during the run")
        with open(f"/proc/{self.proc.pid}/stat") as file:
            return parse_cpu_seconds(file.read(), os.sysconf("SC_CLK_TCK"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class KvServer(ServerProcess):
    name = "kvserver"

    def __init__(self, workdir: Path, source: Path | None = None) -> None:
        # The ready line is logged at INFO; nothing on the request path logs
        # at INFO, so this level costs the run nothing. ``source``: run the
        # kvserver package found there (a checkout of another commit: ab.py)
        # rather than the installed one.
        self.command = [
            sys.executable, "-m", "kvserver", "0", str(workdir / "bench.aof"),
            "--resp-port", "0", "--log-level", "info",
        ]  # fmt: skip
        # ``python -m`` puts the working directory first on sys.path: the
        # checkout must be that directory too, or the code beside the caller
        # would run instead.
        env = {**os.environ, "PYTHONPATH": str(source)} if source is not None else None
        cwd = str(source) if source is not None else None
        self.log_path = workdir / "kvserver.log"
        with open(self.log_path, "wb") as log:
            super().__init__(
                subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=cwd)
            )
        self.port, self.resp_port = self._wait_ready()

    def _wait_ready(self) -> tuple[int, int]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            log = self.log_path.read_text(errors="replace")
            for line in log.splitlines():
                ports = parse_ready(line)
                if ports and ports[1]:
                    return ports  # type: ignore[return-value]
            if self.proc.poll() is not None:
                raise click.ClickException(f"kvserver exited before it was ready:\n{log}")
            time.sleep(0.05)
        self.stop()
        raise click.ClickException(f"kvserver not ready in {START_TIMEOUT_S:g} s")


class RedisServer(ServerProcess):
    name = "redis-server"

    def __init__(self, executable: str, workdir: Path) -> None:
        self.port = self.resp_port = free_port()
        # Like for like: kvserver logs every write with appendfsync everysec
        # by default, so redis-server does too (in its own directory).
        (workdir / "redis").mkdir()
        self.command = [
            executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(workdir / "redis"),
        ]  # fmt: skip
        super().__init__(
            subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers_ping(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise click.ClickException(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# -- the loads --------------------------------------------------------------------------------


class Bench:
    """Runs loads against the servers, keeping the commands and notes."""

    def __init__(self, info: RunInfo) -> None:
        self.info = info

    def _run(self, argv: list[str], shown: list[str]) -> subprocess.CompletedProcess:
        self.info.commands.append(shlex.join(shown))
        click.echo(f"  $ {shlex.join(shown)}", err=True)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, -1, "", f"no result in {RUN_TIMEOUT_S:g} s")

    def redis_benchmark(
        self, server: ServerProcess, test: str, requests: int, flags: tuple[str, ...]
    ) -> Measure | None:
        argv = [
            "redis-benchmark", "-h", "127.0.0.1", "-p", str(server.resp_port),
            "-t", test, "-n", str(requests), *flags, "--csv",
        ]  # fmt: skip
        before = server.cpu_seconds()
        done = self._run(argv, argv)
        cpu = server.cpu_seconds() - before
        rows = parse_benchmark_csv(done.stdout)
        # Most tests are named as asked; some with what they do after the name:
        # "LRANGE_100 (first 100 elements)", "MSET (10 keys)".
        found = [name for name in rows if name == test.upper() or name.startswith(test.upper() + " (")]
        if not found:
            self.info.notes.append(f"`{shlex.join(argv)}` gave no figures: {done.stderr.strip()[-200:]}")
            return None
        rps, p99 = rows[found[0]]
        return Measure(rps, cpu / requests * 1e6, p99)

    def kv_bench(self, server: ServerProcess, args: list[str]) -> Measure | None:
        resp = isinstance(server, RedisServer)
        port = server.resp_port if resp else server.port
        tail = [str(port), *args, *(["--resp"] if resp else []), "--json", "--no-progress"]
        before = server.cpu_seconds()
        done = self._run([sys.executable, "-m", "kvbench.cli", *tail], ["kv-bench", *tail])
        cpu = server.cpu_seconds() - before
        try:
            figures = json.loads(done.stdout)
        except json.JSONDecodeError:
            self.info.notes.append(f"`kv-bench {shlex.join(tail)}` failed: {done.stderr.strip()[-200:]}")
            return None
        if figures["failures"]:
            self.info.notes.append(f"`kv-bench {shlex.join(tail)}` counted {figures['failures']} failures")
        cpu_us = cpu / figures["total_commands"] * 1e6
        return Measure(figures["throughput_cmds_per_sec"], cpu_us, figures["latency_ms"]["p99"])


def run_loads(
    bench: Bench, kv: KvServer, redis: RedisServer | None, requests: int, connection_ops: dict[int, int]
) -> list[Row]:
    """Every load, kvserver first, redis-server (if any) right after."""
    rows = []

    def both(label: str, run) -> None:
        click.echo(label, err=True)
        rows.append(Row(label, run(kv), run(redis) if redis else None))

    if shutil.which("redis-benchmark"):
        for label, flags in REDIS_BENCHMARK_LOADS:
            for test in ("set", "get"):
                run = lambda s, t=test, f=flags: bench.redis_benchmark(s, t, requests, f)  # noqa: E731
                both(f"{test.upper()} {label}", run)
        for test in TYPE_TESTS:
            run = lambda s, t=test: bench.redis_benchmark(s, t, requests, ("-c", "50"))  # noqa: E731
            both(f"{test.upper()} -c 50", run)
    else:
        bench.info.notes.append(
            "redis-benchmark is not installed: its loads were skipped (apt-get install redis-tools)."
        )
    clients, ops = str(KV_BENCH_CLIENTS), str(KV_BENCH_OPS)
    both(f"kv-bench {clients}×{ops} pairs", lambda s: bench.kv_bench(s, [clients, ops]))
    for connections, ops_each in connection_ops.items():
        args = [str(connections), str(ops_each), "--procs", str(CONNECTION_PROCS)]
        both(f"{connections:,} connections × {ops_each} pairs", lambda s, a=args: bench.kv_bench(s, a))
    return rows


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return ""


def _raise_open_files_limit(wanted: int) -> None:
    """Thousands of connections need as many descriptors in kv-bench and in
    the server; both inherit this process's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--quick", is_flag=True, help=f"-n {QUICK_REQUESTS} instead of {REQUESTS}, and fewer pairs per connection."
)
@click.option(
    "--requests", "-n", type=click.IntRange(min=1), default=None, help="redis-benchmark -n (overrides --quick)."
)
@click.option("--c10k", is_flag=True, help="Add a 10,000-connection row.")
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    default=BENCH_DIR / "RESULTS.md",
    show_default="bench/RESULTS.md",
    help="Append the section here.",
)
@click.option("--no-record", is_flag=True, help="Print the table only: no RESULTS.md section, no chart.")
def main(quick: bool, requests: int | None, c10k: bool, results: Path, no_record: bool) -> None:
    """Run kvserver and redis-server side by side under the same loads and
    print (and record) a table of throughput, ratio, CPU per request and p99."""
    requests = requests or (QUICK_REQUESTS if quick else REQUESTS)
    connection_ops = dict(QUICK_CONNECTION_OPS if quick else CONNECTION_OPS)
    if not c10k:
        del connection_ops[10_000]
    _raise_open_files_limit(2 * max(connection_ops) + 1024)
    now = datetime.datetime.now()
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += ", with uncommitted changes"
    redis_exe = shutil.which("redis-server")
    redis_version = "not installed"
    if redis_exe:
        version = subprocess.run([redis_exe, "--version"], capture_output=True, text=True).stdout
        redis_version = re.search(r"v=(\S+)", version).group(1) if "v=" in version else version.strip()
    info = RunInfo(
        date=now.strftime("%Y-%m-%d %H:%M"),
        commit=commit,
        invocation=shlex.join(["python", "bench/compare.py", *sys.argv[1:]]),
        machine=f"{os.cpu_count()} CPUs, Python {platform.python_version()}, redis-server {redis_version}",
    )
    if not redis_exe:
        info.notes.append(
            "redis-server is not installed: redis columns left empty (apt-get install redis-server)."
        )
    bench = Bench(info)
    with tempfile.TemporaryDirectory(prefix="kvbench-") as tmp:
        kv = KvServer(Path(tmp))
        ports = f"   # text port {kv.port}, RESP port {kv.resp_port}"
        info.commands.append(shlex.join(["python", *kv.command[1:]]) + ports)
        redis = None
        try:
            if redis_exe:
                redis = RedisServer(redis_exe, Path(tmp))
                info.commands.append(shlex.join(["redis-server", *redis.command[1:]]))
            rows = run_loads(bench, kv, redis, requests, connection_ops)
        finally:
            kv.stop()
            if redis:
                redis.stop()
    table = markdown_table(rows)
    click.echo(table)
    for note in info.notes:
        click.echo(f"note: {note}", err=True)
    if no_record:
        return
    chart = None
    if any(row.ratio is not None for row in rows):
        chart_path = BENCH_DIR / "charts" / f"ratios-{now:%Y%m%d-%H%M%S}-{commit.split(',')[0]}.svg"
        chart_path.parent.mkdir(exist_ok=True)
        chart_path.write_text(ratio_svg(rows, f"kvserver vs redis-server, {info.date}, {commit}"))
        chart = os.path.relpath(chart_path, results.resolve().parent)
    with open(results, "a") as file:
        file.write("\n" + results_section(info, table, chart))
    click.echo(f"appended to {results}" + (f"; chart {chart}" if chart else ""), err=True)


if __name__ == "__main__":
    main()
