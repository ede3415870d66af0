"""``kv-cluster up|status|down``: kvserver shards behind twemproxy, on one machine.

twemproxy (the ``nutcracker`` program) is the proxy Redis users already run in
front of many Redis shards: it hashes each key to one server, splits MGET,
MSET, DEL and EXISTS into one request per shard, and pipelines every client's
requests onto one connection per shard. kvserver's RESP port is such a shard.

* ``up`` starts N kvserver processes (shard-1 .. shard-N), each with its own
  log, waits until each answers PING, writes a commented ``nutcracker.yml``,
  starts nutcracker, waits until it answers, and prints where to connect.
  Run again, it starts whatever recorded piece is not running (a shard that
  was stopped comes back with its keys from its log) and leaves the rest.
* ``status`` shows each shard's health, keys and memory (from INFO) and the
  proxy's counters (from its stats port); exit status 1 if a piece is down.
* ``down`` sends SIGTERM to the proxy, then to the shards (kvserver finishes
  its commands, flushes and closes its log, and exits), waits with a
  deadline, and reports.

Everything lives in --dir (default ``./cluster``): the shards' logs, each
process's output, nutcracker.yml and ``cluster.json``, the state file that
lets status and down work from another shell. Processes get a session of
their own, so they outlive the command that started them. Every wait polls
with a deadline; nothing sleeps a fixed time. Everything listens on
127.0.0.1 only: for shards on several machines, see README "Scaling out".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from kvserver.protocol.resp import encode_command

HOST = "127.0.0.1"
DEFAULT_SHARDS = 3
DEFAULT_BASE_PORT = 7001
# Text ports sit in a range of their own, this far above the RESP ports
# (7001 -> 8001), so that the RESP ports stay consecutive.
TEXT_PORT_OFFSET = 1000
DEFAULT_PROXY_PORT = 22121  # twemproxy's customary port
DEFAULT_STATS_PORT = 22222  # nutcracker's own default
DEFAULT_DIR = "cluster"
STATE_FILE = "cluster.json"
CONFIG_FILE = "nutcracker.yml"
POOL = "kv"  # the server pool's name in nutcracker.yml and its stats

START_TIMEOUT_S = 60.0  # a shard replays its whole log before it answers
STOP_TIMEOUT_S = 30.0  # kvserver's grace for commands in flight, and then some
POLL_INTERVAL_S = 0.05
REPLY_TIMEOUT_S = 2.0
# nutcracker adds up its counters this often; the default (30 s) would make
# `status` show figures half a minute old.
STATS_INTERVAL_MS = 1000
# Read a reply from a shard within this, or the request gets
# "-ERR Connection timed out" and the proxy reconnects. Generous, because a
# Python shard on a busy machine can take tens of milliseconds under load.
PROXY_TIMEOUT_MS = 2000
# What kvserver logs once its log is flushed and closed (kvserver/server.py).
LOG_CLOSED = b"log flushed and closed"

NUTCRACKER_MISSING = (
    "nutcracker (twemproxy) is not installed. Install it with\n"
    "    sudo apt-get install nutcracker\n"
    "(Debian, Ubuntu), or pass --nutcracker PATH."
)


class StartError(Exception):
    """A piece of the cluster did not come up."""


# --- the cluster's layout and the state file --------------------------------------


@dataclass
class Shard:
    name: str  # placement on the hash ring depends on this, not on the address
    resp_port: int
    text_port: int  # 0: any free port; the real one is recorded once it is up
    pid: int | None = None

    @property
    def aof(self) -> str:
        return f"{self.name}.aof"

    @property
    def log(self) -> str:
        return f"{self.name}.log"


@dataclass
class Proxy:
    port: int
    stats_port: int
    pid: int | None = None
    config: str = CONFIG_FILE
    log: str = "nutcracker.log"
    pidfile: str = "nutcracker.pid"


@dataclass
class Cluster:
    """What ``up`` asked for, and the pids of what runs."""

    base_port: int
    text_base_port: int
    proxy: Proxy
    shards: list[Shard] = field(default_factory=list)

    @classmethod
    def plan(cls, shards: int, base_port: int, text_base_port: int, proxy_port: int, stats_port: int) -> Cluster:
        return cls(
            base_port=base_port,
            text_base_port=text_base_port,
            proxy=Proxy(proxy_port, stats_port),
            shards=[
                Shard(f"shard-{n}", base_port + n - 1, text_base_port + n - 1 if text_base_port else 0)
                for n in range(1, shards + 1)
            ],
        )

    def layout(self) -> tuple:
        """What must match for a running cluster to be the one asked for."""
        return (len(self.shards), self.base_port, self.text_base_port, self.proxy.port, self.proxy.stats_port)


def load_state(directory: Path) -> Cluster | None:
    try:
        data = json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    return Cluster(
        base_port=data["base_port"],
        text_base_port=data["text_base_port"],
        proxy=Proxy(**data["proxy"]),
        shards=[Shard(**shard) for shard in data["shards"]],
    )


def save_state(directory: Path, cluster: Cluster) -> None:
    # Written whole and renamed, so that a reader never sees half a file.
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(cluster), indent=2) + "\n")
    os.replace(tmp, directory / STATE_FILE)


# --- nutcracker.yml ----------------------------------------------------------------


def nutcracker_yml(cluster: Cluster) -> str:
    """The proxy's configuration, with a comment on every setting."""
    servers = "\n".join(f"    - {HOST}:{shard.resp_port}:1 {shard.name}" for shard in cluster.shards)
    return f"""\
# twemproxy (nutcracker) configuration, written by `kv-cluster up` (which
# rewrites it: copy it elsewhere before editing). Check a copy with
#     nutcracker -t -c nutcracker.yml
# Clients connect to `listen`; the proxy sends each key to one server below.
{POOL}:
  # Where clients connect: redis-cli -p {cluster.proxy.port}. RESP2 only
  # (redis-py: protocol=2); no SELECT, KEYS, SCAN or blocking commands.
  listen: {HOST}:{cluster.proxy.port}
  # The servers speak Redis's protocol (kvserver's RESP port), not memcached's.
  redis: true
  # Consistent hashing: each server owns many points on a ring, and a key
  # goes to the first point after its hash. Adding a server moves only about
  # 1/N of the keys (kvserver does not move them for you: see the README).
  distribution: ketama
  # Stable and fast. Not twemproxy's default fnv1a_64: it keeps only the low
  # 32 bits, in which short keys that differ in their last bytes barely
  # differ, so they pile onto one shard (a..z: 26 of 26 on one of 3 shards;
  # hash tags {0}..{29}: 30 of 30). Every proxy in front of these shards
  # must use the same hash, hash_tag and server names.
  hash: murmur
  # When a key contains {{...}}, only the part inside is hashed: user:{{42}}:name
  # and user:{{42}}:cart always land on the same shard.
  hash_tag: "{{}}"
  # Never take a failed shard out of the ring: its keys would silently move
  # to another shard, and come back stale when it returns. Requests for a
  # down shard's keys get "-ERR Connection refused"; the others go on.
  auto_eject_hosts: false
  # Milliseconds to connect to a shard or to wait for its reply; past that
  # the request gets "-ERR Connection timed out". (Without it: forever.)
  timeout: {PROXY_TIMEOUT_MS}
  # Connect to every shard at start, not on the first request for it.
  preconnect: true
  # One connection per shard: the proxy pipelines all clients' requests
  # onto it; kvserver answers one connection's requests in order.
  server_connections: 1
  # Notice a shard whose machine vanished without closing the connection.
  tcpkeepalive: true
  # address:port:weight name. The NAME places keys on the ring, not the
  # address: a shard moved to another machine keeps its name and its keys.
  servers:
{servers}
"""


def find_nutcracker(given: str | None) -> str:
    """The nutcracker executable: --nutcracker, PATH, or /usr/sbin (Debian
    installs it there, which is not on a normal user's PATH)."""
    if given:
        candidates = [given]
    else:
        candidates = [shutil.which("nutcracker") or "", "/usr/sbin/nutcracker", "/usr/local/sbin/nutcracker"]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise click.ClickException(NUTCRACKER_MISSING)


# --- talking RESP to a shard or the proxy ---------------------------------------


class ReplyError(Exception):
    """The server answered with an error reply."""


def call(port: int, *args: str | bytes, timeout: float = REPLY_TIMEOUT_S) -> object:
    """Send one command to 127.0.0.1:port; return its reply (str, int, None,
    list); an error reply raises ReplyError, a network problem OSError."""
    request = encode_command([arg.encode() if isinstance(arg, str) else arg for arg in args])
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(request)
        with sock.makefile("rb") as stream:
            return _read_reply(stream)


def _read_reply(stream) -> object:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed before a whole reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise ReplyError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        return None if size < 0 else stream.read(size + 2)[:-2].decode(errors="replace")
    if kind == b"*":
        size = int(body)
        return None if size < 0 else [_read_reply(stream) for _ in range(size)]
    raise ConnectionError(f"not a RESP2 reply: {line[:40]!r}")


def parse_info(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key] = value
    return fields


def keys_in(info: dict[str, str]) -> int:
    """The keys of every database, from INFO's "db0:keys=3,expires=0,..." lines."""
    total = 0
    for name, value in info.items():
        if name.startswith("db") and name[2:].isdigit():
            total += int(dict(part.split("=", 1) for part in value.split(","))["keys"])
    return total


def proxy_stats(port: int) -> dict:
    """nutcracker's counters: it sends them as JSON to whoever connects."""
    with socket.create_connection((HOST, port), timeout=REPLY_TIMEOUT_S) as sock:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data)


# --- processes ----------------------------------------------------------------------


def is_running(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive and is still ours: its command line contains
    ``marker`` (a path under --dir). A pid reused by another program after
    ours exited is not touched."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: trust the pid
        with contextlib.suppress(OSError):
            os.kill(pid, 0)
            return True
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X") and marker.encode() in cmdline


def wait_for(ready: Callable[[], bool], alive: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll ``ready`` until it holds; StartError if the process dies first or
    the deadline passes."""
    while True:
        with contextlib.suppress(OSError, ReplyError):
            if ready():
                return
        if not alive():
            raise StartError(f"{what} exited while starting")
        if time.monotonic() > deadline:
            raise StartError(f"{what} did not answer within the deadline")
        time.sleep(POLL_INTERVAL_S)


@contextlib.contextmanager
def cpu_affinity(cpu: int | None) -> Iterator[None]:
    """Run what starts inside on ``cpu`` (children inherit it). kvserver pins
    itself to the last CPU it is allowed (its --cpu-affinity one), so giving
    each shard a different CPU spreads the shards over the machine instead
    of stacking them all on the last one."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def spawn(argv: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None) -> int:
    """Start ``argv`` detached (a session of its own, so that it outlives this
    command and the terminal's Ctrl-C), its output appended to ``log_path``."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def shard_argv(directory: Path, shard: Shard) -> list[str]:
    return [
        sys.executable, "-m", "kvserver", str(shard.text_port), str(directory / shard.aof),
        "--resp-port", str(shard.resp_port), "--bind", HOST,
    ]  # fmt: skip


def proxy_argv(nutcracker: str, directory: Path, proxy: Proxy) -> list[str]:
    return [
        nutcracker, "-c", str(directory / proxy.config), "-o", str(directory / proxy.log),
        "-p", str(directory / proxy.pidfile), "-s", str(proxy.stats_port), "-a", HOST,
        "-i", str(STATS_INTERVAL_MS),
    ]  # fmt: skip


def shard_marker(directory: Path, shard: Shard) -> str:
    return str(directory / shard.aof)


def proxy_marker(directory: Path, proxy: Proxy) -> str:
    return str(directory / proxy.config)


def port_in_use(port: int) -> bool:
    # Bound the way kvserver binds (SO_REUSEADDR), so a port that is only in
    # TIME_WAIT from a previous run counts as free.
    try:
        socket.create_server((HOST, port)).close()
    except OSError:
        return True
    return False


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_bytes()[-8192:].decode(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


# --- the commands ---------------------------------------------------------------------

dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=DEFAULT_DIR,
    show_default=True,
    help="Where the logs, nutcracker.yml and the state file (cluster.json) are.",
)


@click.group("kv-cluster", context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """kvserver shards behind twemproxy (nutcracker), on this machine.

    \b
    kv-cluster up --shards 3     start 3 shards and the proxy; print where to connect
    kv-cluster status            each shard's health, keys and memory; the proxy's counters
    kv-cluster down              stop everything; logs flushed and closed

    Clients connect to the proxy (default port 22121) with RESP2: redis-cli,
    redis-benchmark, redis-py with protocol=2.
    """


@main.command()
@click.option("--shards", type=click.IntRange(1, 1000), default=DEFAULT_SHARDS, show_default=True)
@click.option(
    "--base-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_BASE_PORT,
    show_default=True,
    help="RESP port of shard-1; shard-N gets base-port + N - 1.",
)
@click.option(
    "--text-base-port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Text-protocol port of shard-1, the next shards on the next numbers "
    f"[default: base-port + {TEXT_PORT_OFFSET}]; 0 lets each shard take any free port "
    "(status shows which). The proxy uses only the RESP ports.",
)
@click.option("--proxy-port", type=click.IntRange(1, 65535), default=DEFAULT_PROXY_PORT, show_default=True)
@click.option(
    "--stats-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_STATS_PORT,
    show_default=True,
    help="nutcracker's stats port (JSON counters; kv-cluster status reads them).",
)
@dir_option
@click.option("--nutcracker", "nutcracker_path", metavar="PATH", help="The nutcracker program [default: found on PATH or in /usr/sbin].")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=START_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for every piece to answer (a shard first replays its whole log).",
)
@click.pass_context
def up(
    ctx: click.Context,
    shards: int,
    base_port: int,
    text_base_port: int | None,
    proxy_port: int,
    stats_port: int,
    directory: str,
    nutcracker_path: str | None,
    timeout: float,
) -> None:
    """Start N kvserver shards and nutcracker in front of them.

    Shard-N's log is DIR/shard-N.aof and its output DIR/shard-N.log; its
    RESP port is base-port + N - 1 and its text port text-base-port + N - 1
    (both on 127.0.0.1). Returns once every shard and the proxy answer.

    Run again on a running cluster, it starts only what is not running: a
    stopped shard comes back with its keys from its log.
    """
    nutcracker = find_nutcracker(nutcracker_path)
    if base_port + shards - 1 > 65535:
        raise click.BadParameter("base-port + shards goes past 65535", param_hint="--base-port")
    if text_base_port is None:
        text_base_port = base_port + TEXT_PORT_OFFSET
    if text_base_port and text_base_port + shards - 1 > 65535:
        raise click.BadParameter("text-base-port + shards goes past 65535", param_hint="--text-base-port")
    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)

    asked = Cluster.plan(shards, base_port, text_base_port, proxy_port, stats_port)
    cluster = choose_layout(ctx, path, asked)
    try:
        started = start_missing(cluster, path, nutcracker, time.monotonic() + timeout)
    except StartError as exc:
        raise click.ClickException(str(exc)) from None
    print_summary(cluster, path, started)


def choose_layout(ctx: click.Context, path: Path, asked: Cluster) -> Cluster:
    """The recorded cluster if any of it runs (options must then agree);
    otherwise the one asked for."""
    recorded = load_state(path)
    if recorded is None:
        return asked
    running = [s.name for s in recorded.shards if is_running(s.pid, shard_marker(path, s))]
    if is_running(recorded.proxy.pid, proxy_marker(path, recorded.proxy)):
        running.append("proxy")
    if running:
        given = any(
            ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
            for name in ("shards", "base_port", "text_base_port", "proxy_port", "stats_port")
        )
        if given and recorded.layout() != asked.layout():
            raise click.ClickException(
                f"a cluster with another layout ({len(recorded.shards)} shards from port "
                f"{recorded.base_port}, proxy on {recorded.proxy.port}) is running in {path}: "
                f"stop it first with kv-cluster down --dir {path}"
            )
        return recorded
    if len(recorded.shards) != len(asked.shards):
        click.echo(
            f"warning: {path} last held {len(recorded.shards)} shards, now {len(asked.shards)}: "
            "keys hash to other shards, and kvserver does not move them; keys whose shard "
            "changed are not found through the proxy.",
            err=True,
        )
    return asked


def start_missing(cluster: Cluster, path: Path, nutcracker: str, deadline: float) -> list[str]:
    """Start every shard and the proxy that is not running; wait until each
    answers. On failure, stop what this call started and raise StartError."""
    shards = [s for s in cluster.shards if not is_running(s.pid, shard_marker(path, s))]
    proxy = cluster.proxy
    start_proxy = not is_running(proxy.pid, proxy_marker(path, proxy))
    ports = [(s.name, s.resp_port) for s in shards] + [(s.name + " text", s.text_port) for s in shards if s.text_port]
    if start_proxy:
        ports += [("proxy", proxy.port), ("proxy stats", proxy.stats_port)]
    taken = [(port, what) for what, port in ports if port_in_use(port)]
    if taken:
        hint = ""
        if {port for port, _ in taken} & {DEFAULT_PROXY_PORT, DEFAULT_STATS_PORT}:
            hint = (" If the nutcracker service from the Debian package holds 22121/22222,"
                    " stop it (sudo systemctl stop nutcracker) or pick --proxy-port/--stats-port.")  # fmt: skip
        listed = ", ".join(f"{port} ({what})" for port, what in taken)
        raise StartError(f"port in use on {HOST}: {listed}.{hint}")

    # Shards start on the CPUs in turn; see cpu_affinity.
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
    # Shards listen on 127.0.0.1 only; a password from the environment would
    # lock the proxy out (nutcracker.yml sets no redis_auth).
    env = {k: v for k, v in os.environ.items() if k != "KVSERVER_REQUIREPASS"}
    started: list[str] = []
    try:
        for shard in shards:
            with cpu_affinity(cpus[(int(shard.name.split("-")[1]) - 1) % len(cpus)]):
                shard.pid = spawn(shard_argv(path, shard), path / shard.log, path, env)
            started.append(shard.name)
            save_state(path, cluster)
        for shard in shards:
            _wait_shard(shard, path, deadline)
            shard.text_port = int(parse_info(call(shard.resp_port, "info", "server"))["tcp_port"])
            save_state(path, cluster)
        if start_proxy:
            (path / proxy.config).write_text(nutcracker_yml(cluster))
            check = subprocess.run(
                [nutcracker, "-t", "-c", str(path / proxy.config)], capture_output=True, text=True
            )
            if check.returncode != 0:
                raise StartError(f"nutcracker rejects {path / proxy.config}:\n{check.stdout}{check.stderr}")
            proxy.pid = spawn(proxy_argv(nutcracker, path, proxy), path / "nutcracker.out", path)
            started.append("proxy")
            save_state(path, cluster)
            _wait_proxy(proxy, path, deadline)
    except BaseException:
        stop(cluster, path, [s for s in cluster.shards if s.name in started], "proxy" in started)
        raise
    return started


def _wait_shard(shard: Shard, path: Path, deadline: float) -> None:
    try:
        wait_for(
            lambda: call(shard.resp_port, "ping") == "PONG",
            lambda: is_running(shard.pid, shard_marker(path, shard)),
            deadline,
            f"{shard.name} (pid {shard.pid}, RESP port {shard.resp_port})",
        )
    except StartError as exc:
        raise StartError(f"{exc}; its output ({path / shard.log}):\n{log_tail(path / shard.log)}") from None


def _wait_proxy(proxy: Proxy, path: Path, deadline: float) -> None:
    # nutcracker answers PING itself; the stats port is up once its pools are.
    try:
        wait_for(
            lambda: call(proxy.port, "ping") == "PONG" and bool(proxy_stats(proxy.stats_port)),
            lambda: is_running(proxy.pid, proxy_marker(path, proxy)),
            deadline,
            f"nutcracker (pid {proxy.pid}, port {proxy.port})",
        )
    except StartError as exc:
        output = log_tail(path / proxy.log) + "\n" + log_tail(path / "nutcracker.out")
        raise StartError(f"{exc}; its log ({path / proxy.log}):\n{output}") from None


def print_summary(cluster: Cluster, path: Path, started: list[str]) -> None:
    for shard in cluster.shards:
        state = "started" if shard.name in started else "already running"
        click.echo(
            f"{shard.name:<9} pid {shard.pid:<7} RESP {HOST}:{shard.resp_port:<6} "
            f"text {HOST}:{shard.text_port:<6} log {path / shard.aof} ({state})"
        )
    proxy = cluster.proxy
    state = "started" if "proxy" in started else "already running"
    click.echo(
        f"{'proxy':<9} pid {proxy.pid:<7} {HOST}:{proxy.port} (stats on {proxy.stats_port}) "
        f"config {path / proxy.config} ({state})"
    )
    click.echo(
        f"\nReady. Connect through the proxy (RESP2 only):\n"
        f"    redis-cli -p {proxy.port}\n"
        f"    redis.Redis(port={proxy.port}, protocol=2, lib_name=None, lib_version=None)  # redis-py\n"
        f"Health: kv-cluster status --dir {path}\n"
        f"Stop:   kv-cluster down --dir {path}"
    )


@main.command()
@dir_option
def status(directory: str) -> None:
    """Each shard's health, keys and memory (INFO), and the proxy's counters.

    Exit status 1 if a shard or the proxy does not answer.
    """
    path = Path(directory).resolve()
    cluster = load_state(path)
    if cluster is None:
        raise click.ClickException(f"no cluster in {path} (no {STATE_FILE}); start one with kv-cluster up")
    healthy = True
    proxy = cluster.proxy
    stats: dict = {}
    if is_running(proxy.pid, proxy_marker(path, proxy)):
        try:
            call(proxy.port, "ping")
            stats = proxy_stats(proxy.stats_port)
            pool = stats.get(POOL, {})
            click.echo(
                f"proxy    {HOST}:{proxy.port} pid {proxy.pid}: up {stats.get('uptime', '?')}s, "
                f"{pool.get('client_connections', '?')} clients, "
                f"{pool.get('forward_error', '?')} forward errors, {pool.get('server_ejects', '?')} ejects"
            )
        except (OSError, ReplyError, ValueError) as exc:
            healthy = False
            click.echo(f"proxy    {HOST}:{proxy.port} pid {proxy.pid}: NOT ANSWERING ({exc})")
    else:
        healthy = False
        click.echo(f"proxy    {HOST}:{proxy.port}: DOWN")
    pool = stats.get(POOL, {})
    click.echo(
        f"{'shard':<9} {'RESP':<16} {'text':<6} {'pid':<7} {'health':<8} {'keys':>9} {'memory':>9}"
        f" {'requests':>9} {'errors':>7} {'timeouts':>8}"
    )
    for shard in cluster.shards:
        server = pool.get(shard.name, {})
        counters = (
            f" {server.get('requests', '-'):>9} {server.get('server_err', '-'):>7}"
            f" {server.get('server_timedout', '-'):>8}"
        )
        address = f"{HOST}:{shard.resp_port:<6} {shard.text_port or '-':<6}"
        if not is_running(shard.pid, shard_marker(path, shard)):
            healthy = False
            click.echo(f"{shard.name:<9} {address} {'-':<7} {'DOWN':<8} {'-':>9} {'-':>9}" + counters)
            continue
        try:
            info = parse_info(call(shard.resp_port, "info"))
            click.echo(
                f"{shard.name:<9} {address} {shard.pid:<7} {'up':<8} {keys_in(info):>9}"
                f" {info.get('used_memory_human', '?'):>9}" + counters
            )
        except (OSError, ReplyError) as exc:
            healthy = False
            click.echo(f"{shard.name:<9} {address} {shard.pid:<7} {'NO REPLY':<8} ({exc})")
    if stats:
        click.echo("(requests, errors, timeouts: the proxy's counts per shard, updated every second)")
    if not healthy:
        sys.exit(1)


@main.command()
@dir_option
@click.option("--timeout", type=click.FloatRange(min=0.1), default=STOP_TIMEOUT_S, show_default=True,
              help="Seconds to wait for every process to exit.")  # fmt: skip
@click.option("--kill", is_flag=True, help="SIGKILL what is still running after --timeout.")
def down(directory: str, timeout: float, kill: bool) -> None:
    """Stop the proxy, then every shard (SIGTERM: each shard finishes its
    commands, flushes and closes its log, and exits). The logs stay in DIR:
    kv-cluster up starts the same cluster with the same keys.

    Exit status 1 if something is still running after --timeout.
    """
    path = Path(directory).resolve()
    cluster = load_state(path)
    if cluster is None:
        raise click.ClickException(f"no cluster in {path} (no {STATE_FILE})")
    left = stop(cluster, path, cluster.shards, True, timeout=timeout, kill=kill, report=click.echo)
    save_state(path, cluster)
    if left:
        raise click.ClickException(f"still running after {timeout:g}s: {', '.join(left)} (try --kill)")


def stop(
    cluster: Cluster,
    path: Path,
    shards: list[Shard],
    with_proxy: bool,
    *,
    timeout: float = STOP_TIMEOUT_S,
    kill: bool = False,
    report: Callable[[str], None] = lambda _: None,
) -> list[str]:
    """SIGTERM the proxy (first: no request should reach a shard that is
    going away) and ``shards``; wait for each to exit. Returns the names of
    those still running."""
    pieces: list[tuple[str, Shard | Proxy, str]] = []
    if with_proxy:
        pieces.append(("proxy", cluster.proxy, proxy_marker(path, cluster.proxy)))
    pieces += [(s.name, s, shard_marker(path, s)) for s in shards]
    log_sizes = {}
    for name, piece, marker in pieces:
        if not is_running(piece.pid, marker):
            report(f"{name}: not running")
            piece.pid = None
            continue
        if isinstance(piece, Shard):
            log_sizes[name] = _size(path / piece.log)
        os.kill(piece.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    left = []
    for name, piece, marker in pieces:
        if piece.pid is None:
            continue
        while is_running(piece.pid, marker) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL_S)
        if is_running(piece.pid, marker) and kill:
            os.kill(piece.pid, signal.SIGKILL)
            report(f"{name} (pid {piece.pid}): killed after {timeout:g}s")
            piece.pid = None
        elif is_running(piece.pid, marker):
            report(f"{name} (pid {piece.pid}): STILL RUNNING")
            left.append(name)
        else:
            how = ""
            if isinstance(piece, Shard):
                closed = LOG_CLOSED in _read_from(path / piece.log, log_sizes[name])
                how = ", log flushed and closed" if closed else f", NO clean close in {piece.log}"
            report(f"{name} (pid {piece.pid}): stopped{how}")
            piece.pid = None
    return left


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


if __name__ == "__main__":  # python -m kvtools.cluster: the same as kv-cluster
    main()
