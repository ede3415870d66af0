"""``python bench/memory.py``: resident memory for the same data in kvserver and redis-server.

Loads each data set into a fresh kvserver and a fresh redis-server (both
started by this script, on free loopback ports, logging as ``make bench``
does), through pipelined RESP, and reports each server's VmRSS (from
``/proc/<pid>/status``) before and after, and the growth per element:

- ``big-hash``: one hash of N fields (``HSET big f<i> v<i>``);
- ``small-hashes``: N hashes of one field each (``HSET h:<i> f v``);
- ``strings``: N keys (``SET k:<i> v<i>``), for scale.

    python bench/memory.py                 # N = 1,000,000
    python bench/memory.py -n 200000 --sets strings,small-hashes

It prints a markdown table (for bench/RESULTS.md, with the command line).
"""

from __future__ import annotations

import socket
import sys
import tempfile
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import KvServer, RedisServer  # noqa: E402

BATCH = 1000  # commands per pipelined write


def _encode(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _load(port: int, commands) -> None:
    """Send ``commands`` pipelined, BATCH at a time, reading every reply."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb")
        batch: list[bytes] = []
        for args in commands:
            batch.append(_encode(args))
            if len(batch) == BATCH:
                _flush(sock, reader, batch)
                batch = []
        if batch:
            _flush(sock, reader, batch)


def _flush(sock: socket.socket, reader, batch: list[bytes]) -> None:
    sock.sendall(b"".join(batch))
    for _ in batch:
        line = reader.readline()
        if line.startswith(b"-"):
            raise click.ClickException(f"the server refused a command: {line!r}")


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise click.ClickException("no VmRSS")


DATA_SETS = {
    "big-hash": lambda n: ([b"HSET", b"big", b"f%d" % i, b"v%d" % i] for i in range(n)),
    "small-hashes": lambda n: ([b"HSET", b"h:%d" % i, b"f", b"v"] for i in range(n)),
    "strings": lambda n: ([b"SET", b"k:%d" % i, b"v%d" % i] for i in range(n)),
}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--elements", default=1_000_000, show_default=True)
@click.option("--sets", "names", default="big-hash,small-hashes,strings", show_default=True)
def main(elements: int, names: str) -> None:
    """RSS of kvserver and redis-server holding the same data."""
    rows = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        for label in ("kvserver", "redis-server"):
            with tempfile.TemporaryDirectory(prefix="kv-mem-") as tmp:
                server = KvServer(Path(tmp)) if label == "kvserver" else RedisServer("redis-server", Path(tmp))
                try:
                    before = _rss_kb(server.proc.pid)
                    click.echo(f"{name}: loading {elements:,} into {label}", err=True)
                    _load(server.resp_port, DATA_SETS[name](elements))
                    after = _rss_kb(server.proc.pid)
                finally:
                    server.stop()
            rows.append((name, label, before, after))
    click.echo(f"\n`python bench/memory.py -n {elements} --sets {names}`\n")
    click.echo("| data | server | RSS before | RSS after | bytes per element |")
    click.echo("|---|---|---|---|---|")
    for name, label, before, after in rows:
        per = (after - before) * 1024 / elements
        click.echo(f"| {name} × {elements:,} | {label} | {before / 1024:.1f} MB | {after / 1024:.1f} MB | {per:.0f} |")


if __name__ == "__main__":
    main()
