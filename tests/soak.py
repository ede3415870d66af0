"""Soak test: minutes of mixed load on a real server process, a rewrite of
the log in the middle, SIGTERM, a restart on the same log, and a check of
the restarted keyspace against a model.

Several client threads work on the RESP port with redis-py, each on its own
keys (``soak:<client>:<n>``), reconnecting now and then: SET (plain, EX and
PX with deadlines from 50 ms to an hour), GET, DEL, INCR, EXPIRE and
PERSIST. Each client keeps a model of its keys: the value, and for a key
with a TTL the bounds of its deadline (the clock read before the command
was sent and after its reply came, plus the TTL: the server read its clock
in between). Whether a key is alive at a moment is then "yes", "no" or, in
the few milliseconds around its deadline, "maybe"; a "maybe" is settled by
the reply (GET answers nil, EXPIRE answers 0: it had expired). Every reply
during the load is checked against the model.

In the middle, BGREWRITEAOF (once, or ``--rewrites`` times spread evenly),
waiting each time for the rewrite to finish. At the end the server gets
SIGTERM and must exit 0, is started again on the same log, and then:

* every key alive in the model has its value, a TTL exactly when the model
  has one, and a PTTL within the model's bounds;
* every key that expired or was deleted in the model is gone;
* no other key exists; neither run logged a traceback or an ERROR.

Not part of ``make test`` (it runs for minutes): ``make soak``, or

    python -m tests.soak --seconds 300 --clients 4 --seed 1
"""

from __future__ import annotations

import dataclasses
import random
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from tests.conftest import ServerProcess  # noqa: E402

KEYS_PER_CLIENT = 150
MARGIN_MS = 2  # clock reads are floored to the millisecond on both sides
REWRITE_TIMEOUT_S = 120.0
SOCKET_TIMEOUT_S = 10.0


class SoakFailure(AssertionError):
    """The server broke a promise under load or across the restart."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000  # the clock the server's deadlines use


@dataclasses.dataclass
class Key:
    value: bytes
    lo: int | None = None  # the deadline's bounds, Unix ms (None: no TTL)
    hi: int | None = None

    def alive(self, t0: int, t1: int) -> str:
        """At some moment in [t0, t1]: 'yes', 'no' or 'maybe'."""
        if self.lo is None:
            return "yes"
        if t1 + MARGIN_MS < self.lo:
            return "yes"
        if t0 > self.hi + MARGIN_MS:
            return "no"
        return "maybe"


def _connect(port: int) -> redis.Redis:
    # No retries: a command sent twice (an INCR) would break the model.
    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=SOCKET_TIMEOUT_S, retry=Retry(NoBackoff(), 0)
    )


class SoakClient:
    """One thread's load, on its own keys, with its own model."""

    def __init__(self, index: int, port: int, seed: int) -> None:
        self.index = index
        self.port = port
        self.rng = random.Random(seed * 1000 + index)
        self.keys = [b"soak:%d:%d" % (index, n) for n in range(KEYS_PER_CLIENT)]
        self.model: dict[bytes, Key] = {}
        self.ops = 0
        self.reconnects = 0
        self.error: BaseException | None = None

    def fail(self, message: str) -> None:
        raise SoakFailure(f"client {self.index}: {message}")

    def run(self, deadline: float) -> None:
        try:
            client = _connect(self.port)
            next_reconnect = self.rng.randrange(20, 400)
            while time.monotonic() < deadline:
                self.step(client)
                self.ops += 1
                if self.ops >= next_reconnect:
                    client.close()
                    client = _connect(self.port)
                    self.reconnects += 1
                    next_reconnect = self.ops + self.rng.randrange(20, 400)
            client.close()
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def step(self, client: redis.Redis) -> None:
        rng, model = self.rng, self.model
        key = rng.choice(self.keys)
        op = rng.choices(
            ["set", "set_ex", "set_px", "set_long", "get", "del", "incr", "expire", "persist"],
            weights=[10, 6, 10, 4, 20, 6, 12, 6, 3],
        )[0]
        state = model.get(key)
        t0 = now_ms()
        if op.startswith("set"):
            value = (b"%d" % rng.randrange(1, 1000)) if rng.random() < 0.5 else b"s%x" % rng.getrandbits(48)
            ttl = None
            if op == "set_ex":
                seconds = rng.randrange(1, 6)
                ttl = seconds * 1000
                reply = client.set(key, value, ex=seconds)
            elif op == "set_px":
                ttl = rng.randrange(50, 3000)
                reply = client.set(key, value, px=ttl)
            elif op == "set_long":
                seconds = rng.randrange(1000, 3600)
                ttl = seconds * 1000
                reply = client.set(key, value, ex=seconds)
            else:
                reply = client.set(key, value)
            t1 = now_ms()
            if reply is not True:
                self.fail(f"SET {key!r} answered {reply!r}")
            model[key] = Key(value) if ttl is None else Key(value, t0 + ttl, t1 + ttl)
            return
        if op == "get":
            reply = client.get(key)
            t1 = now_ms()
            self.check_get(key, reply, t0, t1)
            return
        if op == "del":
            reply = client.delete(key)
            t1 = now_ms()
            alive = state.alive(t0, t1) if state else "no"
            if reply not in {"yes": (1,), "no": (0,), "maybe": (0, 1)}[alive]:
                self.fail(f"DEL {key!r} answered {reply!r}; the model has {state!r} ({alive})")
            model.pop(key, None)
        elif op == "incr":
            reply = client.incr(key) if state is None or re.fullmatch(rb"\d+", state.value) else None
            t1 = now_ms()
            alive = state.alive(t0, t1) if state else "no"
            if reply is None:  # a string value: INCR must fail while it lives
                try:
                    reply = client.incr(key)
                except redis.ResponseError as exc:
                    if alive == "no" or "not an integer" not in str(exc):
                        self.fail(f"INCR {key!r}: {exc}; the model has {state!r} ({alive})")
                    return
                t1 = now_ms()
                alive = state.alive(t0, t1)
                if alive == "yes" or reply != 1:
                    self.fail(f"INCR {key!r} on a string answered {reply!r}; the model has {state!r}")
                model[key] = Key(b"1")
                return
            # Values are positive, so 1 means the key had gone, n+1 that it lived.
            if alive != "no" and reply == int(state.value) + 1:
                model[key] = Key(b"%d" % reply, state.lo, state.hi)
            elif alive != "yes" and reply == 1:
                model[key] = Key(b"1")
            else:
                self.fail(f"INCR {key!r} answered {reply!r}; the model has {state!r} ({alive})")
        elif op == "expire":
            seconds = rng.randrange(1, 8)
            reply = client.expire(key, seconds)
            t1 = now_ms()
            alive = state.alive(t0, t1) if state else "no"
            if reply not in {"yes": (True,), "no": (False,), "maybe": (True, False)}[alive]:
                self.fail(f"EXPIRE {key!r} answered {reply!r}; the model has {state!r} ({alive})")
            if reply:
                model[key] = Key(state.value, t0 + seconds * 1000, t1 + seconds * 1000)
            else:
                model.pop(key, None)
        else:  # persist
            reply = client.persist(key)
            t1 = now_ms()
            alive = state.alive(t0, t1) if state else "no"
            has_ttl = state is not None and state.lo is not None
            expected = {"yes": (has_ttl,), "no": (False,), "maybe": (True, False)}[alive]
            if reply not in expected:
                self.fail(f"PERSIST {key!r} answered {reply!r}; the model has {state!r} ({alive})")
            if reply:
                model[key] = Key(state.value)
            elif alive != "yes":
                model.pop(key, None)

    def check_get(self, key: bytes, reply: bytes | None, t0: int, t1: int) -> str:
        state = self.model.get(key)
        alive = state.alive(t0, t1) if state else "no"
        if reply is None:
            if alive == "yes":
                self.fail(f"GET {key!r} is nil; the model has {state!r}")
            self.model.pop(key, None)
        elif alive == "no" or reply != state.value:
            self.fail(f"GET {key!r} is {reply!r}; the model has {state!r} ({alive})")
        return alive

    def verify(self, client: redis.Redis) -> dict:
        """After the restart: every key of this client against the model."""
        counts = {"alive": 0, "expired_gone": 0, "absent": 0, "ttl_checked": 0, "maybe": 0}
        for key in self.keys:
            state = self.model.get(key)
            t0 = now_ms()
            reply = client.get(key)
            t1 = now_ms()
            had = state.alive(t0, t1) if state else "absent"
            alive = self.check_get(key, reply, t0, t1)
            if state is None:
                counts["absent"] += 1
                continue
            if alive == "no":
                counts["expired_gone"] += 1
                continue
            if alive == "maybe" or reply is None:
                counts["maybe"] += 1
                continue
            counts["alive"] += 1
            t0 = now_ms()
            pttl = client.pttl(key)
            t1 = now_ms()
            if state.lo is None:
                if pttl != -1:
                    self.fail(f"PTTL {key!r} is {pttl} after the restart; the model has no TTL")
            elif pttl == -2 and state.alive(t0, t1) != "yes":
                pass  # it expired between the GET and the PTTL
            elif not (state.lo - t1 - MARGIN_MS <= pttl <= state.hi - t0 + MARGIN_MS):
                self.fail(
                    f"PTTL {key!r} is {pttl} after the restart; the model says "
                    f"{state.lo - t1}..{state.hi - t0} ms ({had})"
                )
            else:
                counts["ttl_checked"] += 1
        return counts


def _info(client: redis.Redis) -> dict:
    return client.info("persistence")


def _rewrite(port: int) -> dict:
    """BGREWRITEAOF, and wait (polling, with a deadline) until it is done."""
    client = _connect(port)
    before = _info(client)
    started = time.monotonic()
    reply = client.bgrewriteaof()
    deadline = started + REWRITE_TIMEOUT_S
    while True:
        info = _info(client)
        if info["aof_rewrites"] > before["aof_rewrites"] and not info["aof_rewrite_in_progress"]:
            break
        if time.monotonic() > deadline:
            raise SoakFailure(f"BGREWRITEAOF ({reply!r}) not finished after {REWRITE_TIMEOUT_S} s: {info}")
        time.sleep(0.05)  # polling the rewrite's progress, bounded by the deadline
    client.close()
    return {
        "size_before": before["aof_current_size"],
        "size_after": info["aof_current_size"],
        "seconds": round(time.monotonic() - started, 3),
        "status": info.get("aof_last_bgrewrite_status"),
    }


def _bad_output(output: bytes) -> list[str]:
    return [
        line
        for line in output.decode(errors="replace").splitlines()
        if "Traceback" in line or " ERROR " in line or "internal error" in line
    ]


def _sigterm(server: ServerProcess, what: str) -> None:
    server.proc.send_signal(signal.SIGTERM)
    code = server.finish(timeout=60)
    if code != 0:
        raise SoakFailure(f"{what}: exit code {code} after SIGTERM:\n{server.output.decode()[-2000:]}")
    bad = _bad_output(server.output)
    if bad:
        raise SoakFailure(f"{what} logged: {bad[:5]}")


def run_soak(workdir: Path, seconds: float, clients: int, seed: int, rewrites: int = 1, progress=print) -> dict:
    """One soak run; raises SoakFailure if a promise is broken; the figures."""
    aof = workdir / "soak.aof"
    server = ServerProcess(aof)
    figures: dict = {"seed": seed, "clients": clients, "seconds": seconds, "rewrites": []}
    try:
        started = time.monotonic()
        deadline = started + seconds
        team = [SoakClient(i, server.resp_port, seed) for i in range(clients)]
        threads = [threading.Thread(target=c.run, args=(deadline,), name=f"soak-{c.index}") for c in team]
        for thread in threads:
            thread.start()
        for n in range(1, rewrites + 1):
            at = started + seconds * n / (rewrites + 1)
            while time.monotonic() < at and all(t.is_alive() for t in threads):
                time.sleep(min(0.5, max(0.0, at - time.monotonic())))  # waiting for the moment
            if not all(t.is_alive() for t in threads):
                break
            result = _rewrite(server.resp_port)
            figures["rewrites"].append(result)
            progress(f"{time.monotonic() - started:.0f}s: BGREWRITEAOF {result}")
        for thread in threads:
            thread.join(seconds + 60)
        for c in team:
            if c.error is not None:
                raise c.error
        load_seconds = time.monotonic() - started
        figures["ops"] = sum(c.ops for c in team)
        figures["ops_per_second"] = round(figures["ops"] / load_seconds)
        figures["reconnects"] = sum(c.reconnects for c in team)
        figures["aof_bytes_at_sigterm"] = aof.stat().st_size
        _sigterm(server, "the loaded server")

        restarted = ServerProcess(aof)
        try:
            client = _connect(restarted.resp_port)
            totals: dict = {}
            for c in team:
                for name, count in c.verify(client).items():
                    totals[name] = totals.get(name, 0) + count
            known = {key for c in team for key in c.keys}
            extra = [key for key in client.scan_iter(count=1000) if key not in known]
            if extra:
                raise SoakFailure(f"keys nobody wrote after the restart: {extra[:5]}")
            figures["restart"] = totals
            client.close()
            _sigterm(restarted, "the restarted server")
        finally:
            restarted.kill()
    finally:
        server.kill()
    return figures


def main() -> None:
    import click

    @click.command()
    @click.option("--seconds", default=300.0, show_default=True, help="How long the load runs.")
    @click.option("--clients", default=4, show_default=True)
    @click.option("--rewrites", default=1, show_default=True, help="BGREWRITEAOFs spread through the load.")
    @click.option("--seed", default=None, type=int, help="Random seed (default: a fresh one, printed).")
    def cli(seconds: float, clients: int, rewrites: int, seed: int | None) -> None:
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
        click.echo(f"soak for {seconds:g} s, {clients} clients, --seed {seed}", err=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                figures = run_soak(Path(tmp), seconds, clients, seed, rewrites, lambda m: click.echo(m, err=True))
            except SoakFailure as exc:
                click.echo(f"FAILED (--seed {seed}): {exc}", err=True)
                sys.exit(1)
        click.echo(f"soak passed: {figures}")

    cli()


if __name__ == "__main__":
    main()
