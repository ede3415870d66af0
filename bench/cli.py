"""``kv-bench [PORT] [CLIENTS] [OPS]``: print one line of throughput figures."""

from __future__ import annotations

import sys

import click

from kvbench.load import run_load


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("port", type=click.IntRange(1, 65535), default=6379, required=False)
@click.argument("clients", type=click.IntRange(min=1), default=8, required=False)
@click.argument("ops", type=click.IntRange(min=1), default=1000, required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Server address.")
def main(port: int, clients: int, ops: int, host: str) -> None:
    """Run CLIENTS concurrent clients against the server on PORT, each doing
    OPS SET/GET pairs on its own keys and checking every reply.

    Prints exactly one line; exits 1 if any reply was wrong or missing.
    """
    click.echo(f"kv-bench: {clients} clients x {ops} SET/GET pairs against {host}:{port}", err=True)
    try:
        result = run_load(host, port, clients, ops)
    except OSError as exc:
        raise click.ClickException(f"cannot connect to {host}:{port}: {exc}") from None
    click.echo(result.line())
    sys.exit(1 if result.failures else 0)
