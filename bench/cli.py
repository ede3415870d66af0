"""``kv-bench [PORT] [CLIENTS] [OPS]``: print one line of throughput figures.

stdout gets exactly one line (or, with ``--json``, one JSON object); the
banner, the latency percentiles and the progress bar go to stderr.
"""

from __future__ import annotations

import json
import sys

import click

from kvbench.load import Workload, progress_counter, run_load
from kvbench.progress import ProgressBar


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("port", type=click.IntRange(1, 65535), default=6379, required=False)
@click.argument("clients", type=click.IntRange(min=1), default=8, required=False)
@click.argument("ops", type=click.IntRange(min=1), default=1000, required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Server address.")
@click.option(
    "--resp", is_flag=True, help="Speak RESP (redis-server, kvserver's --resp-port) instead of the text protocol."
)
@click.option(
    "--pipeline",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Requests in flight per client: sent N at a time, replies checked in order.",
)
@click.option(
    "--data-size",
    type=click.IntRange(min=1),
    default=None,
    metavar="BYTES",
    help="Value size in bytes [default: 'v<n>', 2-6 bytes]. The text port takes lines up to 64 KiB.",
)
@click.option(
    "--keyspace",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Each client SETs and GETs random keys among its own N, instead of a new key per pair.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Run for this long instead of OPS pairs; the line reports the pairs done.",
)
@click.option(
    "--procs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Spread the clients over N processes, so that the client is not the bottleneck.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (every figure, percentiles too) instead of the line."
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr once a run passes 2 s [default: when stderr is a terminal].",
)
def main(
    port: int,
    clients: int,
    ops: int,
    host: str,
    resp: bool,
    pipeline: int,
    data_size: int | None,
    keyspace: int | None,
    duration: float | None,
    procs: int,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Run CLIENTS concurrent clients against the server on PORT, each doing
    OPS SET/GET pairs on its own keys and checking every reply.

    Prints exactly one line; exits 1 if any reply was wrong or missing.
    Latency percentiles (p50, p99, p99.9, per request: from the write of its
    batch to the read of its reply) go to stderr, or into the JSON object.
    """
    work = Workload(host, port, clients, ops, resp, pipeline, data_size, keyspace, duration)
    what = f"for {duration:g} s" if duration is not None else f"x {ops} SET/GET pairs"
    protocol = "RESP" if resp else "text"
    click.echo(f"kv-bench: {clients} clients {what} against {host}:{port} ({protocol})", err=True)
    if progress is None:
        progress = sys.stderr.isatty()
    counts = progress_counter(min(procs, clients))
    total = None if duration is not None else clients * ops * 2
    bar = ProgressBar(counts, total, duration).start() if progress else None
    try:
        result = run_load(work, procs, counts)
    except OSError as exc:
        raise click.ClickException(f"cannot connect to {host}:{port}: {exc}") from None
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        click.echo(json.dumps(result.as_json()))
    else:
        click.echo(result.line())
        click.echo(result.latency_line(), err=True)
    sys.exit(1 if result.failures else 0)


if __name__ == "__main__":
    main()
