"""``python bench/syscalls.py``: what one request costs the server beyond its CPU time.

Starts kvserver from the current checkout (as ``python -m kvserver``, so run it
from the tree you want to measure) and runs redis-benchmark loads against its
RESP port, one after the other. For each load it prints the server's CPU per
request (utime+stime from /proc, and the two apart), its voluntary and involuntary context
switches per request (summed over its threads), and with ``--strace`` the
system calls per 1,000 requests, counted by ``strace -c -f`` attached for
that load alone (strace slows the server down many times over: its counts
are what to read, not the throughput of that run).

    python bench/syscalls.py                              # SET/GET at -c 50, -P 16, -c 1
    python bench/syscalls.py --strace -n 20000 --load "-t get -c 50 -P 16"

For before/after figures run it from both trees (a ``git worktree`` of the
older commit) in turn, as often as the machine's noise needs.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import KvServer  # noqa: E402

DEFAULT_LOADS = ("-t set -c 50", "-t get -c 50", "-t set -c 50 -P 16", "-t get -c 50 -P 16", "-t set -c 1", "-t get -c 1")
# The system calls a request can cost (reactor, worker, log, GIL and wake-ups).
SYSCALLS = ("futex", "recvfrom", "sendto", "sendmsg", "write", "epoll_wait", "epoll_ctl", "fsync")


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the whole process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def _switches(pid: int) -> tuple[int, int]:
    voluntary = involuntary = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            text = Path(status).read_text()
        except OSError:
            continue  # a thread that just ended
        voluntary += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M).group(1))
        involuntary += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", text, re.M).group(1))
    return voluntary, involuntary


def _perf_counts(report: str) -> dict[str, int]:
    counts = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("syscalls:sys_enter_"):
            counts[parts[1].removeprefix("syscalls:sys_enter_")] = int(parts[0].replace(",", ""))
    return counts


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--requests", default=100_000, show_default=True, help="redis-benchmark -n per load.")
@click.option("--load", "loads", multiple=True, help="redis-benchmark arguments of one load (repeatable).")
@click.option("--syscalls", "count_syscalls", is_flag=True, help="Also count system calls per 1,000 requests (perf).")
def main(requests: int, loads: tuple[str, ...], count_syscalls: bool) -> None:
    """Server CPU, context switches (and system calls) per request."""
    if shutil.which("redis-benchmark") is None:
        raise click.ClickException("redis-benchmark is not installed (apt install redis-tools)")
    if count_syscalls and shutil.which("perf") is None:
        raise click.ClickException("perf is not installed (apt install linux-perf)")
    with tempfile.TemporaryDirectory(prefix="kv-syscalls-") as tmp:
        kvserver = KvServer(Path(tmp), Path.cwd())
        server, port = kvserver.proc, kvserver.resp_port
        try:
            click.echo(f"kvserver from {os.getcwd()} (RESP port {port}), redis-benchmark -n {requests}")
            for load in loads or DEFAULT_LOADS:
                args = ["redis-benchmark", "-p", str(port), "-n", str(requests), "--csv", *shlex.split(load)]
                tracer = None
                if count_syscalls:
                    trace_file = f"{tmp}/perf.txt"
                    events = ",".join(f"syscalls:sys_enter_{name}" for name in SYSCALLS)
                    tracer = subprocess.Popen(
                        ["perf", "stat", "-x", " ", "-e", events, "-p", str(server.pid), "-o", trace_file],
                        stderr=subprocess.DEVNULL,
                    )
                    time.sleep(0.5)  # perf attaches to every thread first
                cpu0, (vol0, invol0) = _cpu_seconds(server.pid), _switches(server.pid)
                output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
                cpu1, (vol1, invol1) = _cpu_seconds(server.pid), _switches(server.pid)
                rate = output.strip().splitlines()[-1].split(",")[1].strip('"')
                user, system = (1e6 * (cpu1[i] - cpu0[i]) / requests for i in (0, 1))
                line = (
                    f"{load:24s} req/s {float(rate):>10,.0f}  CPU µs/req {user + system:5.1f}"
                    f" ({user:.1f} user + {system:.1f} system)"
                    f"  switches/req {(vol1 - vol0) / requests:.2f} + {(invol1 - invol0) / requests:.2f} involuntary"
                )
                if tracer is not None:
                    tracer.send_signal(signal.SIGINT)
                    tracer.wait()
                    counts = _perf_counts(Path(trace_file).read_text())
                    line += "\n    syscalls per 1,000 requests: " + ", ".join(
                        f"{name} {1000 * counts[name] / requests:.0f}" for name in SYSCALLS if counts.get(name)
                    )
                click.echo(line)
        finally:
            kvserver.stop()


if __name__ == "__main__":
    main()
