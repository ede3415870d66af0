"""``python bench/inprocess.py``: what a request costs in Python alone, in one thread.

The server's CPU per request (``make bench``) is this plus what the design
adds around it: the reactor's recv and select, the hand-off to the worker
(a wake-up and, under the GIL, a context switch), the send. Here there are
no sockets and no threads: the worker's own path (client._run_batch) runs
on requests already parsed, with the dispatcher, a real log file and the
RESP encoder, so what is measured is the Python of the request path, and
the difference between commands is the difference in their own work.

For each command it prints microseconds per request (the best of
``--repeat`` timings) for:

- ``parse``: RespParser.next_requests over ``--pipeline`` requests per feed;
- ``run``: execute + encode, one request per batch (as at ``-c 50``);
- ``batch``: parse + _run_batch over ``--pipeline`` requests (as at ``-P 16``:
  one log append per batch).

    python bench/inprocess.py
    python bench/inprocess.py --commands set,get --pipeline 16 -n 20000

Run it from each tree of a before/after (it imports the kvserver of the
current directory).
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import timeit
import types

import click

sys.path.insert(0, os.getcwd())  # the tree it is run from, as bench/syscalls.py

from kvserver import client  # noqa: E402
from kvserver.aof import AppendOnlyFile  # noqa: E402
from kvserver.dispatch import Dispatcher  # noqa: E402
from kvserver.protocol.resp import RespParser, encode_command, encode_reply  # noqa: E402
from kvserver.rewrite import AofRewriter  # noqa: E402
from kvserver.session import Session  # noqa: E402
from kvserver.store import Keyspace  # noqa: E402

# redis-benchmark's requests (its defaults: one key, 3-byte values).
REQUESTS = {
    "set": [b"SET", b"key:__rand_int__", b"xxx"],
    "get": [b"GET", b"key:__rand_int__"],
    "incr": [b"INCR", b"counter:__rand_int__"],
    "lpush": [b"LPUSH", b"mylist", b"xxx"],
    "rpush": [b"RPUSH", b"mylist", b"xxx"],
    "lpop": [b"LPOP", b"mylist"],
    "rpop": [b"RPOP", b"mylist"],
    "sadd": [b"SADD", b"myset", b"element:__rand_int__"],
    "hset": [b"HSET", b"myhash", b"element:__rand_int__", b"xxx"],
    "zadd": [b"ZADD", b"myzset", b"0", b"element:__rand_int__"],
    "lrange_100": [b"LRANGE", b"mylist", b"0", b"99"],
    "mset": [b"MSET", *[b"key:__rand_int__", b"xxx"] * 10],
}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--commands", default=",".join(REQUESTS), show_default=True, help="Which requests.")
@click.option("-n", "--requests", "count", default=20_000, show_default=True, help="Requests per timing.")
@click.option("--pipeline", default=16, show_default=True, help="Requests per feed / batch.")
@click.option("--repeat", default=5, show_default=True, help="Timings per figure; the best is shown.")
def main(commands: str, count: int, pipeline: int, repeat: int) -> None:
    """Per-request Python cost of the worker's path, per command."""
    with tempfile.TemporaryDirectory(prefix="kv-inprocess-") as tmp:
        keyspace = Keyspace()
        aof = AppendOnlyFile(os.path.join(tmp, "bench.aof"), "everysec")
        AofRewriter(keyspace, aof)  # as the server has it (the auto-rewrite hook)
        dispatcher = Dispatcher(keyspace, aof)
        session = Session(keyspace, 1, dispatcher=dispatcher)
        conn = types.SimpleNamespace(
            inbox=collections.deque(),
            protocol=types.SimpleNamespace(encode_reply=encode_reply),
            interrupt=False,
            closing=False,
            done=0,
        )
        state = types.SimpleNamespace(total_commands_processed=0)
        batches = max(1, count // pipeline)
        click.echo(f"µs per request, best of {repeat}; batch = {pipeline} pipelined requests")
        for name in [c.strip() for c in commands.split(",") if c.strip()]:
            args = REQUESTS[name]
            if name in ("lpop", "rpop", "lrange_100"):  # something to pop and read
                for _ in range(count * (repeat * 3 + 1)):
                    dispatcher.execute(session, [b"RPUSH", b"mylist", b"xxx"])
            data = encode_command(args) * pipeline

            def parse() -> None:
                parser = RespParser()
                for _ in range(batches):
                    parser.feed(data)
                    parser.next_requests([])

            def run() -> None:
                execute = dispatcher.execute
                for _ in range(count):
                    encode_reply(execute(session, args), 2)

            def batch() -> None:
                parser = RespParser()
                for _ in range(batches):
                    parser.feed(data)
                    parser.next_requests(conn.inbox)
                    out: list = []
                    client._run_batch(conn, session, dispatcher, state, out)
                    b"".join(out)

            figures = [
                min(timeit.repeat(step, number=1, repeat=repeat)) / (batches * pipeline if step is not run else count) * 1e6
                for step in (parse, run, batch)
            ]
            click.echo(f"{name:11s} parse {figures[0]:6.2f}   run {figures[1]:6.2f}   batch {figures[2]:6.2f}")
        aof.close()


if __name__ == "__main__":
    main()
