"""ZADD of a new member into a sorted set of 1k, 100k and 1M members, on a
running server (kvserver or redis-server), one client, one request at a time.

    .venv/bin/python bench/zset_zadd.py --port 6380            # kvserver's RESP port
    .venv/bin/python bench/zset_zadd.py --port 6379 --sizes 1000 100000

The set is filled first (ZADD of 64 members a command, pipelined, not
timed); then OPS ZADDs of new members with random scores are timed; the
figure is the median of 3 rounds, in microseconds per ZADD (the round trip
included). The key is deleted afterwards.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import redis

OPS = 2000
ROUNDS = 3
FILL_PER_COMMAND = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    args = parser.parse_args()
    r = redis.Redis(port=args.port)
    rng = random.Random(1)
    for size in args.sizes:
        key = f"bench:zset:{size}"
        r.delete(key)
        pipe = r.pipeline(transaction=False)
        for start in range(0, size, FILL_PER_COMMAND):
            pipe.zadd(key, {f"m{i}": rng.random() * size for i in range(start, min(start + FILL_PER_COMMAND, size))})
            if len(pipe) >= 200:
                pipe.execute()
        pipe.execute()
        rounds = []
        for round_ in range(ROUNDS):
            fresh = [(f"new{round_}:{i}", rng.random() * size) for i in range(OPS)]
            began = time.perf_counter()
            for member, score in fresh:
                r.execute_command("ZADD", key, score, member)
            rounds.append((time.perf_counter() - began) / OPS * 1e6)
        print(f"| {size:,} | {statistics.median(rounds):.1f} |", flush=True)
        r.delete(key)


if __name__ == "__main__":
    main()
