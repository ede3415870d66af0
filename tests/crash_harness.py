"""Crash test: kill -9 a server under concurrent writes, restart it, check.

A trial starts ``kvserver`` as a real process with ``--appendfsync always``,
optionally asks for BGREWRITEAOF again and again meanwhile, runs several
writer threads that each SET fresh keys and record every write
the server acknowledged, kills the server with SIGKILL at a random moment,
restarts it on the same log, and checks two promises:

* every acknowledged write is there, with its value;
* nothing is there that was never sent;
* with ``transactions``, half the writers write pairs of keys in MULTI/EXEC:
  each pair is there whole or not at all;
* with ``pipelines``, some writers send their SETs PIPELINE_DEPTH at a time
  in one write (one batch, one log append: dispatch.Batch): each SET is
  checked as alone.

Run from the command line for many trials (``make crash-test``):

    python -m tests.crash_harness --trials 50
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import ServerProcess, TextClient  # noqa: E402


@dataclass
class Writer:
    index: int
    sent: dict[bytes, bytes] = field(default_factory=dict)  # key -> value, every SET sent
    acked: dict[bytes, bytes] = field(default_factory=dict)  # key -> value, every OK seen

    def run(self, port: int, stop: threading.Event) -> None:
        try:
            client = TextClient(port)
        except OSError:
            return
        i = 0
        try:
            while not stop.is_set():
                self.write(client, i)
                i += 1
        except (OSError, ConnectionError):
            pass  # the server was killed mid-request: that write is unacknowledged
        finally:
            client.close()

    def write(self, client: TextClient, i: int) -> None:
        key, value = b"w%d:%d" % (self.index, i), b"v%d-%d" % (self.index, i)
        self.sent[key] = value
        if client.call(b"SET " + key + b" " + value) == b"OK":
            self.acked[key] = value


@dataclass
class TxWriter(Writer):
    """Writes pairs of keys, each pair in one MULTI/EXEC transaction."""

    def write(self, client: TextClient, i: int) -> None:
        pair = [(b"t%d:%d:%s" % (self.index, i, half), b"v%d-%d" % (self.index, i)) for half in (b"a", b"b")]
        for key, value in pair:
            self.sent[key] = value
        client.send(b"MULTI\r\n" + b"".join(b"SET %s %s\r\n" % kv for kv in pair) + b"EXEC\r\n")
        replies = [client.read_line() for _ in range(4)]
        if replies == [b"OK", b"QUEUED", b"QUEUED", b"OK OK"]:
            self.acked.update(pair)


PIPELINE_DEPTH = 8  # SETs a PipelineWriter sends in one write


@dataclass
class PipelineWriter(Writer):
    """Sends PIPELINE_DEPTH SETs of fresh keys in one write, then reads
    their replies: the server runs them as one batch with one log append."""

    def write(self, client: TextClient, i: int) -> None:
        batch = [(b"p%d:%d:%d" % (self.index, i, n), b"v%d-%d-%d" % (self.index, i, n)) for n in range(PIPELINE_DEPTH)]
        self.sent.update(batch)
        client.send(b"".join(b"SET %s %s\r\n" % kv for kv in batch))
        for kv in batch:
            if client.read_line() == b"OK":
                self.acked[kv[0]] = kv[1]


@dataclass
class TypeWriter(Writer):
    """Grows a list, a hash, a set, a sorted set and a bitmap of its own
    (RPUSH, HSET, SADD, ZADD, SETBIT), so that a trial checks values
    changed in place too. ``sent`` and ``acked`` hold (key, element) pairs
    as keys (a bitmap's element is the bit's offset)."""

    COMMANDS = (b"RPUSH %s %s", b"HSET %s %s x", b"SADD %s %s", b"ZADD %s 1 %s", b"SETBIT %s %s 1")
    PREFIXES = (b"l", b"h", b"s", b"z", b"b")
    ACK = (b"1", b"1", b"1", b"1", b"0")  # a new element; SETBIT answers the bit's old value

    def write(self, client: TextClient, i: int) -> None:
        kind = i % len(self.COMMANDS)
        key = self.PREFIXES[kind] + b"%d" % self.index
        element = b"%d" % i if kind == 4 else b"e%d" % i
        self.sent[(key, element)] = b""
        if client.call(self.COMMANDS[kind] % (key, element)) == self.ACK[kind]:
            self.acked[(key, element)] = b""


def _rewrite_repeatedly(port: int, stop: threading.Event, started: list) -> None:
    # BGREWRITEAOF over and over, so that the kill lands before, during and
    # after rewrites (each step of rewrite.py must leave a whole log).
    try:
        client = TextClient(port)
        while not stop.is_set():
            if client.call("BGREWRITEAOF") == b"Background append only file rewriting started":
                started.append(1)
            stop.wait(0.01)
        client.close()
    except (OSError, ConnectionError):
        pass


def run_trial(
    workdir: Path,
    rng: random.Random,
    writers: int = 8,
    max_run_s: float = 1.0,
    rewrite: bool = False,
    transactions: bool = False,
    types: bool = False,
    pipelines: bool = False,
) -> dict:
    """One kill -9 trial; raises AssertionError if a promise is broken."""
    aof = workdir / "crash.aof"
    server = ServerProcess(aof, "--appendfsync", "always")
    stop = threading.Event()

    def writer(n: int) -> Writer:
        if types and n % 2 == 0:
            return TypeWriter(n)
        if transactions and n % 2:
            return TxWriter(n)
        if pipelines and n % 3 != 1:
            return PipelineWriter(n)
        return Writer(n)

    team = [writer(n) for n in range(writers)]
    threads = [threading.Thread(target=w.run, args=(server.port, stop)) for w in team]
    rewrites: list = []
    if rewrite:
        threads.append(threading.Thread(target=_rewrite_repeatedly, args=(server.port, stop, rewrites)))
    for thread in threads:
        thread.start()
    # First let the writers get going (on a busy machine they may take a
    # while to connect: a kill before any write proves nothing), polling
    # with a deadline; then kill at a random moment. That second wait is the
    # point of the test (when the crash happens), not a wait for readiness.
    deadline = time.monotonic() + 20
    while not (any(w.acked for w in team) and (rewrites or not rewrite)) and time.monotonic() < deadline:
        time.sleep(0.005)
    stop.wait(rng.uniform(0.05, max_run_s))
    server.proc.kill()
    server.finish()
    stop.set()
    for thread in threads:
        thread.join(10)

    restarted = ServerProcess(aof)
    try:
        client = restarted.client()
        acked = sent = 0
        keyspace = _replayed(aof)
        for writer in team:
            if isinstance(writer, TypeWriter):
                _check_containers(writer, keyspace)
            else:
                for key, value in writer.acked.items():
                    got = client.call(b"GET " + key)
                    assert got == value, f"acknowledged {key!r}={value!r} lost (got {got!r})"
            acked += len(writer.acked)
            sent += len(writer.sent)
        sent_keys = {key for w in team if not isinstance(w, TypeWriter) for key in w.sent}
        sent_keys |= {key for w in team if isinstance(w, TypeWriter) for key, _ in w.sent}
        present = set(keyspace.dbs[0].data)
        unknown = present - sent_keys
        assert not unknown, f"keys that were never sent: {sorted(unknown)[:5]}"
        halves = [key for key in present if key.startswith(b"t")]
        for key in halves:
            twin = key[:-1] + (b"b" if key.endswith(b"a") else b"a")
            assert twin in present, f"half a transaction survived: {key!r} without {twin!r}"
        client.close()
    finally:
        restarted.kill()
    pairs = sum(len(w.acked) // 2 for w in team if isinstance(w, TxWriter))
    return {
        "acknowledged": acked,
        "sent": sent,
        "present": len(present),
        "rewrites": len(rewrites),
        "transactions": pairs,
    }


def _replayed(aof: Path):
    # What the restarted server rebuilt, read back the way it reads it (the
    # restart has already cut off any torn tail).
    from kvserver.server import load_log
    from kvserver.store import Keyspace

    keyspace = Keyspace()
    load_log(keyspace, str(aof))
    return keyspace


def _check_containers(writer: TypeWriter, keyspace) -> None:
    """Every acknowledged element is there; nothing unsent is; the list
    holds its elements in the order they were pushed."""
    data = keyspace.dbs[0].data

    def elements(key: bytes, value) -> set[bytes]:
        if type(value) is bytes:  # the bitmap: the offsets of its set bits
            return {b"%d" % n for n in range(len(value) * 8) if value[n // 8] & (0x80 >> (n % 8))}
        if hasattr(value, "scores"):  # a sorted set: its members
            return set(value.scores)
        return set(value)

    mine = {prefix + b"%d" % writer.index for prefix in TypeWriter.PREFIXES}
    found = {key: elements(key, value) for key, value in data.items() if key in mine}
    for key, element in writer.acked:
        assert element in found.get(key, ()), f"acknowledged {element!r} in {key!r} lost"
    for key, present in found.items():
        for element in present:
            assert (key, element) in writer.sent, f"{element!r} in {key!r} was never sent"
    pushed = data.get(b"l%d" % writer.index)
    if pushed:
        order = [int(e[1:]) for e in pushed]
        assert order == sorted(order), f"list elements out of order: {order[:10]}"


def main() -> None:
    import click

    @click.command()
    @click.option("--trials", default=20, show_default=True)
    @click.option("--seed", default=None, type=int)
    @click.option("--rewrite/--no-rewrite", default=True, show_default=True, help="BGREWRITEAOF during every other trial.")
    @click.option(
        "--transactions/--no-transactions", default=True, show_default=True, help="Half the writers use MULTI/EXEC."
    )
    @click.option(
        "--types/--no-types", default=True, show_default=True, help="Every other trial, writers grow lists, hashes, sets."
    )
    @click.option(
        "--pipelines/--no-pipelines", default=True, show_default=True, help="Some writers pipeline their SETs."
    )
    def cli(trials: int, seed: int | None, rewrite: bool, transactions: bool, types: bool, pipelines: bool) -> None:
        rng = random.Random(seed)
        totals = {"acknowledged": 0, "sent": 0, "present": 0, "rewrites": 0, "transactions": 0}
        started = time.monotonic()
        for n in range(trials):
            with tempfile.TemporaryDirectory() as tmp:
                result = run_trial(
                    Path(tmp),
                    rng,
                    rewrite=rewrite and n % 2 == 1,
                    transactions=transactions,
                    types=types and n % 4 >= 2,
                    pipelines=pipelines,
                )
            for k in totals:
                totals[k] += result[k]
            click.echo(f"trial {n + 1}/{trials}: {result}", err=True)
        click.echo(
            f"crash trials={trials} acknowledged_writes={totals['acknowledged']} "
            f"sent={totals['sent']} rewrites={totals['rewrites']} transactions={totals['transactions']} "
            f"lost=0 unknown=0 half_transactions=0 "
            f"seconds={time.monotonic() - started:.1f}"
        )

    cli()


if __name__ == "__main__":
    main()
