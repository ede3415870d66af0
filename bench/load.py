"""Drive a server with concurrent clients doing SET/GET pairs, checking replies.

Each client has its own connection and its own keys, so every GET must
return exactly what that client SET just before: anything else, a missing
reply or a lost connection counts as a failure.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

GREETING = b"OK mini-redis ready"
CONNECT_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 30.0  # a reply slower than this counts as missing


@dataclass
class Result:
    clients: int
    operations_per_client: int
    elapsed_seconds: float
    failures: int

    @property
    def total_commands(self) -> int:
        return self.clients * self.operations_per_client * 2

    @property
    def throughput(self) -> int:
        return int(self.total_commands / self.elapsed_seconds) if self.elapsed_seconds > 0 else 0

    def line(self) -> str:
        """The one summary line, in mini_redis's kv_bench format."""
        return (
            f"clients={self.clients} operations_per_client={self.operations_per_client} "
            f"total_commands={self.total_commands} elapsed_seconds={self.elapsed_seconds:.2f} "
            f"throughput_cmds_per_sec={self.throughput} failures={self.failures}"
        )


class _Client:
    def __init__(self, host: str, port: int, index: int, ops: int) -> None:
        self.index = index
        self.ops = ops
        self.failures = 0
        self.sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")
        greeting = self.reader.readline().rstrip(b"\r\n")
        if greeting != GREETING:
            raise ConnectionError(f"unexpected greeting {greeting!r}")

    def run(self, start: threading.Barrier) -> None:
        start.wait()
        sock, readline = self.sock, self._readline
        prefix = b"kvbench:%d:" % self.index
        done = 0
        try:
            for i in range(self.ops):
                key = prefix + b"%d" % i
                value = b"v%d" % i
                sock.sendall(b"SET " + key + b" " + value + b"\r\n")
                if readline().rstrip(b"\r\n") != b"OK":
                    self.failures += 1
                sock.sendall(b"GET " + key + b"\r\n")
                if readline().rstrip(b"\r\n") != value:
                    self.failures += 1
                done += 1
        except OSError:
            # A lost connection: every pair not completed is a failure.
            self.failures += 2 * (self.ops - done)
        finally:
            self.close()

    def _readline(self) -> bytes:
        line = self.reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        return line

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass


def run_load(host: str, port: int, clients: int, ops: int) -> Result:
    """Connect ``clients`` clients, then time them all doing ``ops`` pairs."""
    workers = [_Client(host, port, i, ops) for i in range(clients)]
    start = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=w.run, args=(start,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return Result(clients, ops, elapsed, sum(w.failures for w in workers))
