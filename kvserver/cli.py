"""Command-line entry points: ``kvserver`` (and ``python -m kvserver``)."""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from kvserver import __version__, configfile
from kvserver.aof import FSYNC_POLICIES
from kvserver.store import DEFAULT_BUSY_REPLY_MS, DEFAULT_HLL_SPARSE_MAX_BYTES
from kvserver.config import (
    DEFAULT_AOF_PATH,
    DEFAULT_BIND,
    DEFAULT_PORT,
    DEFAULT_RESP_PORT,
    MAX_CLIENTS,
    MAX_INLINE_BYTES,
    SHUTDOWN_TIMEOUT_SECONDS,
    SLOWLOG_LOG_SLOWER_THAN,
    SLOWLOG_MAX_LEN,
    TCP_KEEPALIVE_SECONDS,
    CLIENT_OUTPUT_HARD_LIMIT_BYTES,
    CLIENT_OUTPUT_SOFT_LIMIT_BYTES,
    CLIENT_OUTPUT_SOFT_LIMIT_SECONDS,
    Config,
    parse_output_buffer_limits,
)
from kvserver.errors import AofError

LOG_LEVELS = ("debug", "info", "warning", "error")
INT_MAX = 2**31 - 1  # the largest shutdown-timeout Redis takes (a C int)

# How long a thread waiting for the GIL sleeps before asking the holder to
# let go (CPython's default: 5 ms). Under SCHED_BATCH with ~1,000 workers,
# those 5 ms wake-ups starved the GIL holder: one run in three of kv-bench
# 1000 20 --procs 4 stalled 1-4 s (p99 up to 3.9 s). At 50 ms: 15 runs, no
# stall, max 248 ms, and -c 50 throughput unchanged within noise. Our
# threads hold the GIL only briefly (they block on sockets and locks), so
# the longer interval costs latency only behind a long pure-Python command.
GIL_SWITCH_INTERVAL_S = 0.05

# client-output-buffer-limit's default, in Redis's syntax (config.py says why).
DEFAULT_OUTPUT_LIMIT = "normal %dmb %dmb %d" % (
    CLIENT_OUTPUT_HARD_LIMIT_BYTES // (1024 * 1024),
    CLIENT_OUTPUT_SOFT_LIMIT_BYTES // (1024 * 1024),
    CLIENT_OUTPUT_SOFT_LIMIT_SECONDS,
)


def _output_limit(value: str) -> tuple[int, int, int]:
    """--client-output-buffer-limit: the normal class's (hard, soft, seconds)."""
    try:
        limits = parse_output_buffer_limits(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if "normal" not in limits:
        raise click.BadParameter("give the limits of the 'normal' class: kvserver has no other clients")
    return limits["normal"]


# File descriptors beyond the clients' that the server needs (the log, the
# listeners, the wake-up pair, ...): Redis's CONFIG_MIN_RESERVED_FDS.
RESERVED_FDS = 32
WANTED_OPEN_FILES = MAX_CLIENTS + RESERVED_FDS


@click.command("kvserver", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, required=False)
@click.argument("aof_path", metavar="[AOF_PATH]", default=DEFAULT_AOF_PATH, required=False)
@click.option(
    "--bind",
    multiple=True,
    default=[DEFAULT_BIND],
    show_default=True,
    help="Address to listen on; repeat for several (IPv6 too, e.g. --bind ::1).",
)
@click.option(
    "--protected-mode",
    type=click.Choice(["yes", "no"]),
    default="yes",
    show_default=True,
    help="With no --requirepass, refuse clients from other machines (as Redis).",
)
@click.option(
    "--resp-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_RESP_PORT,
    show_default=True,
    help="Port that speaks RESP, for redis-cli, redis-py and redis-benchmark (0 picks a free one).",
)
@click.option("--no-resp", is_flag=True, help="Do not open the RESP port.")
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
@click.option(
    "--requirepass",
    envvar="KVSERVER_REQUIREPASS",
    show_envvar=True,
    default=None,
    metavar="PASSWORD",
    help="Clients must AUTH with this first, on both ports. Prefer the environment "
    "variable: an argument shows in ps.",
)
@click.option(
    "--maxmemory",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="BYTES",
    help="Refuse writes that add data once keys and values take more than this (0: no limit).",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="Close a client after this long without a request (0: never).",
)
@click.option(
    "--maxclients",
    type=click.IntRange(min=1),
    default=MAX_CLIENTS,
    show_default=True,
    help="Connections served at once; more are told 'max number of clients reached'.",
)
@click.option(
    "--tcp-keepalive",
    type=click.IntRange(min=0),
    default=TCP_KEEPALIVE_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Probe silent clients after this long, to find dead peers (0: off).",
)
@click.option(
    "--client-output-buffer-limit",
    "output_limit",
    default=DEFAULT_OUTPUT_LIMIT,
    show_default=True,
    callback=lambda ctx, param, value: _output_limit(value),
    metavar="'normal HARD SOFT SECONDS'",
    help="Disconnect a client whose unread replies pass HARD bytes, or stay over SOFT "
    "for SECONDS (Redis's syntax and units; 0: no limit).",
)
@click.option(
    "--cpu-affinity",
    type=click.Choice(["one", "all"]),
    default="one",
    show_default=True,
    help="Run on one CPU (faster: the threads hand requests to each other, and only "
    "one runs Python at a time anyway) or on all of them.",
)
@click.option(
    "--sched-batch/--no-sched-batch",
    default=True,
    show_default=True,
    help="Use Linux's SCHED_BATCH policy, so that waking a worker does not "
    "preempt the thread that woke it.",
)
@click.option(
    "--slowlog-log-slower-than",
    type=click.IntRange(min=-1),
    default=SLOWLOG_LOG_SLOWER_THAN,
    show_default=True,
    metavar="MICROSECONDS",
    help="SLOWLOG keeps commands that ran this long (0: every command; -1: none).",
)
@click.option(
    "--slowlog-max-len",
    type=click.IntRange(min=0),
    default=SLOWLOG_MAX_LEN,
    show_default=True,
    metavar="ENTRIES",
    help="How many SLOWLOG entries are kept.",
)
@click.option(
    "--shutdown-timeout",
    type=click.IntRange(0, INT_MAX),
    default=SHUTDOWN_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="The most a shutdown takes (Redis's shutdown-timeout): clients get until then to "
    "finish what they sent; the log is flushed and closed in any case.",
)
@click.option(
    "--busy-reply-threshold",
    type=click.IntRange(min=0),
    default=DEFAULT_BUSY_REPLY_MS,
    show_default=True,
    metavar="MILLISECONDS",
    help="A script running longer than this gets other clients BUSY and may be "
    "stopped with SCRIPT KILL (Redis's busy-reply-threshold, alias lua-time-limit).",
)
@click.option(
    "--hll-sparse-max-bytes",
    type=click.IntRange(0, 2**63 - 1),
    default=DEFAULT_HLL_SPARSE_MAX_BYTES,
    show_default=True,
    metavar="BYTES",
    help="A sparse HyperLogLog growing past this turns dense (Redis's hll-sparse-max-bytes).",
)
@click.option(
    "--dir",
    "rdb_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory SAVE and BGSAVE write the RDB file to (Redis's dir; "
    "default: the log's directory). Fixed at start-up.",
)
@click.option(
    "--dbfilename",
    default="dump.rdb",
    show_default=True,
    help="Name of the RDB file SAVE and BGSAVE write (Redis's dbfilename). Fixed at start-up.",
)
@click.option(
    "--import-rdb",
    type=click.Path(exists=True),
    default=None,
    metavar="PATH",
    help="Before serving, load a redis-server dump.rdb (or a Redis 7 appendonlydir/) "
    "into the log, as a rewrite writes it (the log must be empty or missing).",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="KVSERVER_CONFIG",
    show_envvar=True,
    is_eager=True,  # read first: the file's settings become the others' defaults
    callback=configfile.load,
    metavar="FILE",
    help="Read settings from a Redis-style file ('maxclients 100' per line; the "
    "options' names, plus port and aof-path). Options given here override it.",
)
@click.version_option(__version__, prog_name="kvserver")
def kvserver_main(
    port: int,
    aof_path: str,
    bind: tuple[str, ...],
    protected_mode: str,
    resp_port: int,
    no_resp: bool,
    appendfsync: str,
    max_inline_bytes: int,
    requirepass: str | None,
    maxmemory: int,
    timeout_seconds: float,
    maxclients: int,
    tcp_keepalive: int,
    output_limit: tuple[int, int, int],
    cpu_affinity: str,
    sched_batch: bool,
    slowlog_log_slower_than: int,
    slowlog_max_len: int,
    shutdown_timeout: int,
    busy_reply_threshold: int,
    hll_sparse_max_bytes: int,
    rdb_dir: str | None,
    dbfilename: str,
    import_rdb: str | None,
    log_level: str,
    config_file: str | None,
) -> None:
    """Start the key-value server.

    PORT is the TCP port for the text protocol (default 6379; 0 picks a free
    one); RESP, the protocol of Redis's own tools, is served on --resp-port
    (default 6380) with the same keys. AOF_PATH is the append-only log (default mini_redis.aof in the
    current directory); it is replayed before the port accepts anyone, and
    created empty if missing.

    Stop with Ctrl-C or SIGTERM: the server finishes the commands it has
    (for at most --shutdown-timeout seconds), flushes and closes the log,
    and exits 0.

    --config FILE reads settings from a Redis-style file (see
    kvserver/configfile.py), for instance to keep requirepass out of ps.
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    for warning in click.get_current_context().meta.get(configfile.WARNINGS, ()):
        logging.getLogger(__name__).warning("%s", warning)
    if "/" in dbfilename or os.sep in dbfilename:
        raise click.ClickException("dbfilename can't be a path, just a filename")  # Redis's words
    config = Config(
        port=port,
        resp_port=None if no_resp else resp_port,
        aof_path=aof_path,
        bind=" ".join(bind),
        protected_mode=protected_mode == "yes",
        appendfsync=appendfsync,
        max_inline_bytes=max_inline_bytes,
        max_clients=maxclients,
        requirepass=requirepass or None,
        timeout_seconds=timeout_seconds,
        maxmemory=maxmemory,
        tcp_keepalive_seconds=tcp_keepalive,
        client_output_buffer_limit=output_limit,
        slowlog_log_slower_than=slowlog_log_slower_than,
        slowlog_max_len=slowlog_max_len,
        shutdown_timeout_seconds=shutdown_timeout,
        busy_reply_threshold_ms=busy_reply_threshold,
        hll_sparse_max_bytes=hll_sparse_max_bytes,
        rdb_dir=rdb_dir,
        rdb_filename=dbfilename,
        config_file=config_file or "",
        live_settings=click.get_current_context().meta.get(configfile.LIVE_SETTINGS, ()),
    )
    raise_open_file_limit(maxclients + RESERVED_FDS)
    # Before any thread starts: threads inherit both settings.
    if cpu_affinity == "one":
        pin_to_one_cpu()
    if sched_batch:
        use_sched_batch()
        # See use_sched_batch: the two go together.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    from kvserver.server import Server  # after logging is set up

    if import_rdb is not None:
        from kvserver.rdbimport import ImportError_, import_to_log

        try:
            import_to_log(import_rdb, aof_path)
        except ImportError_ as exc:
            raise click.ClickException(str(exc)) from None

    try:
        server = Server(config)
    except AofError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {' '.join(bind)}: {exc.strerror or exc}") from None
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.request_shutdown())
    server.serve_forever()


def pin_to_one_cpu() -> None:
    """Confine the process to one CPU, before any thread starts (threads
    inherit it).

    Each request crosses threads (reactor -> worker), and under the GIL
    only one of them runs Python at a time. Waking a thread on another core
    costs ~40 us; on the same core ~11 us (shared/PERFORMANCE-NOTES.md).
    Measured here with redis-benchmark -c 50 (bench/RESULTS.md): GET 14k ->
    31k req/s, SET 8.7k -> 23k. The last allowed CPU is taken, leaving the
    first ones to whatever else runs (a load generator, say).
    """
    try:
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {allowed[-1]})
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        logging.getLogger(__name__).warning("could not pin to one CPU: %s", exc)


def use_sched_batch() -> None:
    """Switch to SCHED_BATCH (an ordinary, unprivileged Linux policy).

    With every thread on one CPU, waking a worker made the kernel preempt
    the reactor that woke it (a wake-up preemption); the worker then found
    the GIL taken and went back to sleep: two context switches for nothing,
    on every request (42,937 involuntary switches in 50,000 GETs). SCHED_BATCH
    threads do not preempt on wake-up: the reactor runs on to its next
    select(), which releases the GIL, and then the worker runs. Measured
    (bench/RESULTS.md), redis-benchmark -c 50: GET 29-34k -> 52-54k req/s,
    18 us of CPU per GET instead of 29-34.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        logging.getLogger(__name__).warning("could not use SCHED_BATCH: %s", exc)


def raise_open_file_limit(wanted: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never above the hard
    limit): each client is a socket, and the default soft limit is often 1024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        target = soft
        logging.getLogger(__name__).warning("could not raise the open file limit: %s", exc)
    if target < wanted:
        logging.getLogger(__name__).warning(
            "open file limit is %d: at most about %d clients can connect (raise it with ulimit -n)",
            target,
            target - 32,
        )
