"""``python bench/ab.py BEFORE AFTER``: two commits of kvserver, A/B, beside redis-server.

What a hot-path change's before/after needs on a shared, noisy machine:
both versions run in the same session, in interleaved rounds (A, B,
redis-server, then again), and what is reported is each one's median over
the rounds, as a ratio to redis-server's median in the same run, with the
server CPU per request. Each commit is checked out with ``git worktree``
into a temporary directory and started from there (``PYTHONPATH``), with the
same Python and installed dependencies as ``make bench``.

    python bench/ab.py 19843d0 HEAD                      # SET and GET, -c 50 / -P 16 / -c 1
    python bench/ab.py 19843d0 HEAD -n 50000 --rounds 5 --tests set,get,incr
    python bench/ab.py 19843d0 HEAD --tests lpush,hset --loads "-c 50"

It prints a markdown table (for bench/RESULTS.md, with the command line).
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import REDIS_BENCHMARK_LOADS, ROOT, Bench, KvServer, RedisServer, RunInfo  # noqa: E402


def _worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(where), rev], cwd=ROOT, check=True, capture_output=True)
    return where


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("before")
@click.argument("after")
@click.option("-n", "--requests", default=50_000, show_default=True, help="redis-benchmark -n per run.")
@click.option("--rounds", default=3, show_default=True, help="Interleaved rounds; the median is reported.")
@click.option("--tests", default="set,get", show_default=True, help="redis-benchmark -t names, one run each.")
@click.option(
    "--loads",
    default=",".join(load for load, _ in REDIS_BENCHMARK_LOADS),
    show_default=True,
    help="Which of the loads, by name (the data type rows are -c 50 only).",
)
def main(before: str, after: str, requests: int, rounds: int, tests: str, loads: str) -> None:
    """Compare kvserver at BEFORE and AFTER (git revisions), with redis-server."""
    wanted = {load.strip() for load in loads.split(",")}
    chosen = [(load, flags) for load, flags in REDIS_BENCHMARK_LOADS if load in wanted]
    if not chosen:
        raise click.BadParameter(f"none of {loads!r} is a load ({', '.join(l for l, _ in REDIS_BENCHMARK_LOADS)})")
    info = RunInfo("", "", "", "")
    bench = Bench(info)
    names = [t.strip() for t in tests.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="kv-ab-") as tmp:
        base = Path(tmp)
        sources = {}
        try:
            for label, rev in (("before", before), ("after", after)):
                sources[label] = _worktree(rev, base / label)
            servers = {}
            for label, source in sources.items():
                (base / f"run-{label}").mkdir()
                servers[label] = KvServer(base / f"run-{label}", source)
            servers["redis"] = RedisServer("redis-server", base)
            results: dict[tuple[str, str, str], list] = {}
            for round_no in range(rounds):
                click.echo(f"round {round_no + 1}/{rounds}", err=True)
                for load, flags in chosen:
                    for test in names:
                        for label, server in servers.items():
                            measure = bench.redis_benchmark(server, test, requests, flags)
                            if measure is not None:
                                results.setdefault((load, test, label), []).append(measure)
            for server in servers.values():
                server.stop()
        finally:
            for source in sources.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(source)], cwd=ROOT, capture_output=True)
    command = f"python bench/ab.py {shlex.join([before, after])} -n {requests} --rounds {rounds} --tests {tests}"
    if len(chosen) < len(REDIS_BENCHMARK_LOADS):
        command += f" --loads {shlex.quote(loads)}"
    click.echo(f"\n`{command}`\n")
    click.echo("| load | before req/s (ratio) | after req/s (ratio) | redis req/s | CPU µs/req before → after (redis) |")
    click.echo("|---|---|---|---|---|")
    for load, _ in chosen:
        for test in names:
            med = {}
            cpu = {}
            for label in ("before", "after", "redis"):
                runs = results.get((load, test, label), [])
                med[label] = statistics.median(m.rps for m in runs) if runs else None
                cpu[label] = statistics.median(m.cpu_us for m in runs) if runs else None
            if not med["redis"]:
                continue

            def cell(label: str) -> str:
                return f"{med[label]:,.0f} ({med[label] / med['redis']:.2f})" if med[label] else "-"

            click.echo(
                f"| {test.upper()} {load} | {cell('before')} | {cell('after')} | {med['redis']:,.0f} | "
                f"{cpu['before']:.1f} → {cpu['after']:.1f} ({cpu['redis']:.1f}) |"
            )


if __name__ == "__main__":
    main()
