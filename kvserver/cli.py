"""Command-line entry points: ``kvserver`` (and ``python -m kvserver``)."""

from __future__ import annotations

import logging
import signal
import sys

import click

from kvserver import __version__
from kvserver.aof import FSYNC_POLICIES
from kvserver.config import DEFAULT_AOF_PATH, DEFAULT_BIND, DEFAULT_PORT, MAX_INLINE_BYTES, Config
from kvserver.errors import AofError

LOG_LEVELS = ("debug", "info", "warning", "error")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, required=False)
@click.argument("aof_path", metavar="AOF_PATH", default=DEFAULT_AOF_PATH, required=False)
@click.option("--bind", default=DEFAULT_BIND, show_default=True, help="Address to listen on.")
@click.option(
    "--appendfsync",
    type=click.Choice(FSYNC_POLICIES),
    default="everysec",
    show_default=True,
    help="When the log is fsynced: after every write, once a second, or when the OS likes.",
)
@click.option(
    "--max-inline-bytes",
    type=click.IntRange(min=16),
    default=MAX_INLINE_BYTES,
    show_default=True,
    help="Longest request line accepted; a longer one closes that connection.",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.version_option(__version__, prog_name="kvserver")
def kvserver_main(
    port: int, aof_path: str, bind: str, appendfsync: str, max_inline_bytes: int, log_level: str
) -> None:
    """Start the key-value server.

    PORT is the TCP port for the text protocol (default 6379; 0 picks a free
    one). AOF_PATH is the append-only log (default mini_redis.aof in the
    current directory); it is replayed before the port accepts anyone, and
    created empty if missing.

    Stop with Ctrl-C or SIGTERM: the server finishes the commands it has,
    flushes and closes the log, and exits 0.
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    config = Config(
        port=port,
        aof_path=aof_path,
        bind=bind,
        appendfsync=appendfsync,
        max_inline_bytes=max_inline_bytes,
    )
    from kvserver.server import Server  # after logging is set up

    try:
        server = Server(config)
    except AofError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {bind}:{port}: {exc.strerror or exc}") from None
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.request_shutdown())
    server.serve_forever()
