"""The longest GET stall while BGSAVE writes N keys (issue 18).

    python -m bench.bgsave_stall [KEYS] [PORT_BASE]

Writes a log of KEYS SETs (plus a few containers), starts kvserver on it
(the replay loads them), then one client GETs in a loop while BGSAVE runs
and reports the longest GET round trip, the median, and how long the save
took. A baseline of the same GET loop without a save is printed first.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import redis

from kvserver.protocol.resp import encode_command


def main() -> None:
    keys = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    base = int(sys.argv[2]) if len(sys.argv) > 2 else 21960
    with tempfile.TemporaryDirectory() as directory:
        log_path = os.path.join(directory, "bench.aof")
        with open(log_path, "wb") as file:
            chunk = []
            for i in range(keys):
                chunk.append(encode_command([b"SET", b"key:%d" % i, b"value:%d" % i]))
                if len(chunk) == 10_000:
                    file.write(b"".join(chunk))
                    chunk = []
            file.write(b"".join(chunk))
            for i in range(100):
                file.write(encode_command([b"RPUSH", b"list:%d" % i, *[b"%d" % j for j in range(100)]]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "kvserver", str(base), log_path, "--resp-port", str(base + 1), "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=base + 1)
            deadline = time.monotonic() + 300
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            baseline = _loop(client, 2.0)
            print(f"without a save: {len(baseline)} GETs, median {statistics.median(baseline) * 1e3:.2f} ms, "
                  f"longest {max(baseline) * 1e3:.1f} ms")  # fmt: skip
            started = time.monotonic()
            client.bgsave()
            samples = []
            while client.info("persistence")["rdb_bgsave_in_progress"]:
                samples += _loop(client, 0.2)
            took = time.monotonic() - started
            info = client.info("persistence")
            print(f"during BGSAVE of {keys} keys ({took:.1f} s, status {info['rdb_last_bgsave_status']}, "
                  f"{os.path.getsize(os.path.join(directory, 'dump.rdb'))} bytes): {len(samples)} GETs, "
                  f"median {statistics.median(samples) * 1e3:.2f} ms, longest {max(samples) * 1e3:.1f} ms")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)


def _loop(client, seconds: float) -> list[float]:
    out = []
    stop = time.monotonic() + seconds
    i = 0
    while time.monotonic() < stop:
        t = time.perf_counter()
        client.get(b"key:%d" % i)
        out.append(time.perf_counter() - t)
        i += 7919
    return out


if __name__ == "__main__":
    main()
