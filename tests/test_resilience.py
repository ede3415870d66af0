"""Behaviour under trouble (issue 7): clients that vanish in every way leave
nothing behind, thousands of connections are served at once, and a client
that never reads does not slow the others down or swell the server: it is
disconnected once past the output buffer limit (more in test_client.py).

The figures (memory per idle connection, throughput and p99 with and without
a slow reader, server RSS) are printed; run ``pytest -s`` to see them.
``python -m tests.test_resilience [N]`` measures N idle connections (10,000
by default) against a real server process, by hand, outside ``make test``.
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests import support
from tests.conftest import REPLY_TIMEOUT_S, ServerProcess
from tests.support import resp as resp_command

GREETING = b"OK mini-redis ready\r\n"
DEADLINE_S = 15.0  # for the server to settle after the clients are gone
MB = 1024 * 1024


def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(REPLY_TIMEOUT_S)
    if rcvbuf:  # before connecting, so the window offered is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    return sock


def read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed by server after {data!r}")
        data += chunk
    return data


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def proc_status(pid: int, field: str) -> int:
    """A number from /proc/<pid>/status (VmRSS and VmHWM are in kB)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def wait_for(condition, what: str, timeout: float = DEADLINE_S) -> None:
    support.wait_for(condition, what, timeout)


# -- 1. connections dropped in every way leave nothing behind -------------------------------

BIG_VALUE = os.urandom(256 * 1024).hex().encode()  # 512 KiB
# Mid-send: a 4 MiB pipeline of replies to a client with a 4 KiB receive
# buffer is more than the kernel holds for it (about 3 MiB on Linux), so its
# worker is still blocked sending when the client goes. Each costs the server
# 8 MiB of copying, so one connection in MID_SEND_EVERY leaves that way.
GETS_MID_SEND = 8
MID_SEND_RCVBUF = 4096
MID_SEND_EVERY = 25


# Each way of leaving: send what it sends; return None (done), the bytes the
# server must send before it closes, or a callable that finishes the job once
# every connection of the batch has sent (so the server works on all at once).


def _drop_clean_quit(sock, text):
    sock.sendall(b"QUIT\r\n" if text else resp_command("QUIT"))
    return (GREETING + b"OK\r\n") if text else b"+OK\r\n"


def _drop_at_once(sock, text):
    sock.close()


def _drop_mid_line(sock, text):
    sock.sendall(b"SET half" if text else b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nval")
    sock.close()


def _drop_mid_reply(sock, text, gets=1):
    request = b"GET big\r\n" if text else resp_command("GET", "big")
    sock.sendall(request * gets)

    def finish():
        assert sock.recv(65536)  # the reply has begun; leave the rest unread
        sock.close()  # unread data: the kernel resets the connection

    return finish


def _drop_mid_send(sock, text):
    return _drop_mid_reply(sock, text, GETS_MID_SEND)


def _drop_half_close(sock, text):
    sock.sendall(b"GET small\r\n" if text else resp_command("GET", "small"))
    sock.shutdown(socket.SHUT_WR)
    return (GREETING + b"hello\r\n") if text else b"$5\r\nhello\r\n"


def _drop_reset(sock, text):
    sock.sendall(b"PING\r\n" if text else resp_command("PING"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, no FIN


DROPS = [_drop_clean_quit, _drop_at_once, _drop_mid_line, _drop_mid_reply, _drop_half_close, _drop_reset]


def test_two_thousand_dropped_connections_leave_no_threads_fds_or_clients(start_server):
    max_idle = 4
    running = start_server(max_idle_workers=max_idle)
    server = running.server
    with connect(running.resp_port) as setup:
        setup.sendall(resp_command("SET", "big", BIG_VALUE) + resp_command("SET", "small", "hello"))
        assert read_exact(setup, 10) == b"+OK\r\n+OK\r\n"
    wait_for(lambda: not server.reactor.connections and server.pool.idle == server.pool.size, "setup client gone")
    # Worker threads parked idle are allowed back (up to max_idle); the rest is the baseline.
    base_threads = os_threads() - server.pool.size
    base_fds = open_fds()

    total, batch = 2000, 200
    ports = (running.port, running.resp_port)

    def way(i):
        """Connection ``i``'s way of leaving, and its port: every way on both ports."""
        if i % MID_SEND_EVERY == MID_SEND_EVERY - 1:
            return _drop_mid_send, ports[i // MID_SEND_EVERY % 2]
        return DROPS[i % len(DROPS)], ports[i // len(DROPS) % 2]

    for start in range(0, total, batch):
        socks = []
        for i in range(start, start + batch):
            drop, port = way(i)
            rcvbuf = MID_SEND_RCVBUF if drop is _drop_mid_send else None
            socks.append((connect(port, rcvbuf), drop, port == running.port))
        awaiting = []
        for sock, drop, text in socks:
            expected = drop(sock, text)
            if expected is not None:
                awaiting.append((sock, drop, expected))
        for sock, drop, expected in awaiting:
            if callable(expected):
                expected()
                continue
            with sock:
                assert read_until_closed(sock) == expected, drop.__name__

    # Still serving, on both ports.
    with connect(running.port) as text, connect(running.resp_port) as resp:
        text.sendall(b"GET small\r\n")
        resp.sendall(resp_command("GET", "small"))
        assert read_exact(text, len(GREETING) + 7) == GREETING + b"hello\r\n"
        assert read_exact(resp, 11) == b"$5\r\nhello\r\n"

    def settled():
        return (
            not server.reactor.connections
            and not server.state.clients
            and server.pool.size <= max_idle
            and os_threads() <= base_threads + max_idle
            and open_fds() <= base_fds
        )

    deadline = time.monotonic() + DEADLINE_S
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.005)  # polling the server's state, with a deadline
    print(
        f"\nafter {total} dropped connections: {len(server.reactor.connections)} connections, "
        f"{len(server.state.clients)} clients, pool {server.pool.size} workers, "
        f"threads {os_threads()} (baseline {base_threads} + up to {max_idle} idle), "
        f"fds {open_fds()} (baseline {base_fds}); "
        f"{server.state.total_connections_received} connections served in all"
    )
    assert not server.reactor.connections
    assert not server.state.clients
    assert server.pool.size <= max_idle
    assert os_threads() <= base_threads + max_idle
    assert open_fds() <= base_fds
    assert server.state.total_connections_received == total + 3  # every one reached a worker


# -- 2. thousands of connections at once ------------------------------------------------------

CONNECT_CHUNK = 250  # connect this many, then see each one served: the accept queue never overflows


def connection_budget(wanted: int) -> int:
    """How many connections this process can hold open (one fd each), up to ``wanted``."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, min(wanted, soft - open_fds() - 64))


def open_idle_connections(server: ServerProcess, count: int) -> tuple[list[tuple[socket.socket, bool]], dict]:
    """``count`` connections, alternately on the text and RESP port, each
    seen served (greeting / PONG); and the server's memory before and after."""
    pid = server.proc.pid
    rss_before = proc_status(pid, "VmRSS")
    threads_before = proc_status(pid, "Threads")
    conns: list[tuple[socket.socket, bool]] = []
    started = time.monotonic()
    for start in range(0, count, CONNECT_CHUNK):
        chunk = []
        for i in range(start, min(count, start + CONNECT_CHUNK)):
            text = i % 2 == 0
            sock = connect(server.port if text else server.resp_port)
            if not text:
                sock.sendall(resp_command("PING"))
            chunk.append((sock, text))
        for sock, text in chunk:
            assert read_exact(sock, len(GREETING) if text else 7) == (GREETING if text else b"+PONG\r\n")
        conns += chunk
    figures = {
        "connections": count,
        "seconds_to_open": time.monotonic() - started,
        "rss_before_kb": rss_before,
        "rss_after_kb": proc_status(pid, "VmRSS"),
        "threads_before": threads_before,
        "threads_after": proc_status(pid, "Threads"),
    }
    figures["kb_per_connection"] = (figures["rss_after_kb"] - rss_before) / count
    return conns, figures


def warm_up(server: ServerProcess) -> None:
    # The first connection and command load code that later ones reuse.
    with connect(server.resp_port) as sock:
        sock.sendall(resp_command("SET", "warm", "up") + resp_command("GET", "warm"))
        assert read_exact(sock, 5 + 8) == b"+OK\r\n$2\r\nup\r\n"


def describe(figures: dict) -> str:
    return (
        f"{figures['connections']} idle connections (half text, half RESP) opened in "
        f"{figures['seconds_to_open']:.2f} s: server VmRSS {figures['rss_before_kb']} kB -> "
        f"{figures['rss_after_kb']} kB = {figures['kb_per_connection']:.1f} kB per connection; "
        f"server threads {figures['threads_before']} -> {figures['threads_after']}"
    )


def test_two_thousand_connections_at_once_are_all_served(server_process, tmp_path):
    count = connection_budget(2000)
    assert count >= 1000, f"open file limit too low for this test: {count} connections"
    server = server_process(tmp_path / "many.aof")
    warm_up(server)
    conns, figures = open_idle_connections(server, count)
    print("\n" + describe(figures))
    try:
        for i, (sock, text) in enumerate(conns):
            key, value = f"conn:{i}", f"value-{i}"
            if text:
                sock.sendall(f"SET {key} {value}\r\nGET {key}\r\n".encode())
            else:
                sock.sendall(resp_command("SET", key, value) + resp_command("GET", key))
        for i, (sock, text) in enumerate(conns):
            value = f"value-{i}".encode()
            expected = b"OK\r\n" + value + b"\r\n" if text else b"+OK\r\n$%d\r\n%s\r\n" % (len(value), value)
            assert read_exact(sock, len(expected)) == expected, f"connection {i}"
    finally:
        for sock, _ in conns:
            sock.close()
    checker = server.client()
    assert checker.call("DBSIZE") == str(count + 1).encode()  # every SET landed, plus "warm"
    checker.close()


# -- 3. a client that never reads, next to fast clients ---------------------------------------

FAST_CLIENTS = 20
ROUND_TRIPS = 600  # per fast client and run, each a SET and a GET: about a second a run
SLOW_VALUE = os.urandom(MB // 2).hex().encode()  # 1 MiB
SLOW_GETS = 256  # 256 MiB of replies asked for and never read
# Far below what the slow reader asked for: the default hard limit (32 MiB
# of pending replies, config.py) and a batch, then it is disconnected.
RSS_GROWTH_LIMIT_KB = 64 * 1024


def run_fast_clients(port: int, round_trips: int = ROUND_TRIPS, clients: int = FAST_CLIENTS) -> dict:
    """``clients`` threads doing SET/GET round trips on their own keys."""
    socks = [connect(port) for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in socks]
    errors: list[BaseException] = []
    ready = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        sock, timings = socks[n], latencies[n]
        try:
            ready.wait()
            for i in range(round_trips):
                value = b"v%d-%d" % (n, i)
                for request, reply in (
                    (resp_command("SET", f"fast:{n}", value), b"+OK\r\n"),
                    (resp_command("GET", f"fast:{n}"), b"$%d\r\n%s\r\n" % (len(value), value)),
                ):
                    sent = time.perf_counter()
                    sock.sendall(request)
                    assert read_exact(sock, len(reply)) == reply
                    timings.append(time.perf_counter() - sent)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - started
    for sock in socks:
        sock.close()
    assert not errors, errors[0]
    assert not any(thread.is_alive() for thread in threads)
    everything = sorted(t for timings in latencies for t in timings)
    assert len(everything) == clients * round_trips * 2  # every client finished
    return {
        "ops_per_s": len(everything) / elapsed,
        "p99_ms": everything[int(len(everything) * 0.99)] * 1000,
        "seconds": elapsed,
    }


class RssSampler:
    """The server's VmRSS every few ms on a thread, for the run's peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = proc_status(pid, "VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):  # a sampling interval, not a wait for something
            self.peak_kb = max(self.peak_kb, proc_status(self.pid, "VmRSS"))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def test_a_client_that_never_reads_does_not_hold_up_fast_clients(server_process, tmp_path):
    server = server_process(tmp_path / "slow.aof")
    pid = server.proc.pid
    with connect(server.resp_port) as setup:
        setup.sendall(resp_command("SET", "big", SLOW_VALUE))
        assert read_exact(setup, 5) == b"+OK\r\n"
    run_fast_clients(server.resp_port, 50)  # warm-up: code loaded, threads pooled

    rss_start = proc_status(pid, "VmRSS")
    sampler = RssSampler(pid)
    baseline = run_fast_clients(server.resp_port)
    baseline_peak = sampler.stop()

    slow = connect(server.resp_port)
    try:
        slow.sendall(resp_command("GET", "big") * SLOW_GETS)
        rss_slow_start = proc_status(pid, "VmRSS")
        sampler = RssSampler(pid)
        contended = run_fast_clients(server.resp_port)
        slow_peak = sampler.stop()
        rss_slow_end = proc_status(pid, "VmRSS")
        # Disconnected past the hard limit: what the kernel buffers, then the end.
        try:
            slow_received = len(read_until_closed(slow))
        except ConnectionResetError:
            slow_received = 0
    finally:
        slow.close()

    ratio = contended["ops_per_s"] / baseline["ops_per_s"]
    print(
        f"\n{FAST_CLIENTS} fast clients x {ROUND_TRIPS} SET+GET round trips (RESP):\n"
        f"  alone:            {baseline['ops_per_s']:.0f} ops/s, p99 {baseline['p99_ms']:.2f} ms\n"
        f"  with slow reader: {contended['ops_per_s']:.0f} ops/s, p99 {contended['p99_ms']:.2f} ms\n"
        f"  throughput ratio {ratio:.2f}, p99 ratio {contended['p99_ms'] / baseline['p99_ms']:.2f}\n"
        f"  server VmRSS: {rss_start} kB before, peak {baseline_peak} kB alone; "
        f"{rss_slow_start} kB once the slow reader sent {SLOW_GETS} GETs of 1 MiB, "
        f"peak {slow_peak} kB during the run, {rss_slow_end} kB at its end; "
        f"VmHWM {proc_status(pid, 'VmHWM')} kB; the slow reader got {slow_received} bytes, "
        f"then was disconnected"
    )
    assert slow_received < SLOW_GETS * MB
    # The issue asks for at most a 20% loss (checked separately); here half, for a noisy machine.
    assert ratio >= 0.5
    growth = max(slow_peak, rss_slow_end) - rss_start
    assert growth < RSS_GROWTH_LIMIT_KB, (
        f"server grew {growth} kB for a client that asked for {SLOW_GETS} MiB and read none"
    )
    checker = server.client()
    assert checker.call("PING") == b"PONG"
    info = checker.call("INFO stats")  # one quoted line on the text port
    assert b"client_output_buffer_limit_disconnections:1\\r\\n" in info
    checker.close()


# -- by hand: python -m tests.test_resilience [N] | slow-reader [FAST_CLIENTS ROUNDS] -------------


def measure_idle_connections(count: int = 10_000) -> dict:
    """Open ``count`` idle connections to a fresh ``python -m kvserver`` and
    report its memory per connection. Needs ``ulimit -n`` above ``count``;
    past 10,000 (the server's --maxclients default) the rest are turned away."""
    available = connection_budget(count)
    if available < count:
        raise SystemExit(f"open file limit allows {available} connections, not {count}: raise ulimit -n")
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "idle.aof")
        try:
            warm_up(server)
            conns, figures = open_idle_connections(server, count)
            print(describe(figures))
            for sock, _ in conns:
                sock.close()
            return figures
        finally:
            server.kill()


class SlowReader:
    """A client that keeps reading, slowly: GETs of 1 MiB, a few in flight,
    read at ``bytes_per_s``. It stays within the output limits, so it is
    served for as long as it likes, beside everyone else."""

    IN_FLIGHT = 4  # MiB asked for and not yet read: under the 8 MiB soft limit
    CHUNK = 64 * 1024

    def __init__(self, port: int, bytes_per_s: int = 4 * MB) -> None:
        self.sock = connect(port, rcvbuf=self.CHUNK)
        self.interval = self.CHUNK / bytes_per_s
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        reply_size = len(b"$%d\r\n" % len(SLOW_VALUE)) + len(SLOW_VALUE) + 2
        asked = 0
        while not self._stop.is_set():
            while asked - self.received < self.IN_FLIGHT * reply_size:
                self.sock.sendall(resp_command("GET", "big"))
                asked += reply_size
            chunk = self.sock.recv(self.CHUNK)
            if not chunk:
                raise ConnectionError("the slow reader was disconnected")
            self.received += len(chunk)
            self._stop.wait(self.interval)  # the pace of a slow reader, not a wait for something

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.received


def measure_slow_reader(fast_clients: int = 50, rounds: int = 3) -> None:
    """Issue 7's check: ``fast_clients`` SET/GET clients with and without a
    slow reader beside them, interleaved ``rounds`` times on one server;
    prints throughput and p99 of each run and the median ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "slow.aof")
        try:
            warm_up(server)
            setter = connect(server.resp_port)
            setter.sendall(resp_command("SET", "big", SLOW_VALUE))
            assert read_exact(setter, 5) == b"+OK\r\n"
            setter.close()
            run_fast_clients(server.resp_port, 50, fast_clients)  # warm-up: threads pooled
            ratios = []
            for n in range(rounds):
                alone = run_fast_clients(server.resp_port, ROUND_TRIPS, fast_clients)
                slow = SlowReader(server.resp_port)
                beside = run_fast_clients(server.resp_port, ROUND_TRIPS, fast_clients)
                received = slow.stop()
                ratios.append((beside["ops_per_s"] / alone["ops_per_s"], beside["p99_ms"] / alone["p99_ms"]))
                print(
                    f"round {n + 1}: alone {alone['ops_per_s']:.0f} ops/s p99 {alone['p99_ms']:.2f} ms; "
                    f"beside a slow reader {beside['ops_per_s']:.0f} ops/s p99 {beside['p99_ms']:.2f} ms "
                    f"(it read {received / MB:.1f} MiB in {beside['seconds']:.1f} s)"
                )
            throughput = sorted(r[0] for r in ratios)[len(ratios) // 2]
            p99 = sorted(r[1] for r in ratios)[len(ratios) // 2]
            print(f"{fast_clients} fast clients, median of {rounds}: throughput x{throughput:.2f}, p99 x{p99:.2f}")
        finally:
            server.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["slow-reader"]:
        measure_slow_reader(*(int(arg) for arg in sys.argv[2:4]))
    else:
        measure_idle_connections(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)


def test_requests_queued_behind_a_slow_one_count_against_the_read_ahead_bound(start_server):
    # 40 x 1 MiB SETs behind a DEBUG SLEEP: the reactor used to parse and
    # queue them all (150 x 8 MB grew the server by 1.2 GB); now it stops
    # reading once the queued requests hold the bound (here the query buffer
    # limit, 4 MiB), and reads on as the worker catches up.
    from kvserver.reactor import READ_BYTES
    from tests.resp_client import RawRespClient

    limit = 4 * 1024 * 1024
    server = start_server(max_query_buffer_bytes=limit)
    client = RawRespClient(server.resp_port)
    value = b"v" * (1024 * 1024)
    count = 40
    requests = resp_command("DEBUG", "SLEEP", "1") + b"".join(
        resp_command("SET", f"k{i}", value) for i in range(count)
    )
    sender = threading.Thread(target=client.sock.sendall, args=(requests,), daemon=True)
    sender.start()
    support.wait_for(lambda: server.server.reactor.connections, "the connection")
    (conn,) = list(server.server.reactor.connections)
    support.wait_for(lambda: conn.paused or len(conn.inbox) >= count, "paused, or everything queued")
    queued = sum(len(arg) for item in list(conn.inbox) if type(item) is list for arg in item)
    assert queued <= limit + len(value) + READ_BYTES, f"{queued} bytes queued behind DEBUG SLEEP"
    replies = [client.read_reply() for _ in range(count + 1)]
    assert replies == [b"+OK\r\n"] * (count + 1)
    sender.join(REPLY_TIMEOUT_S)
    assert client.call("STRLEN", f"k{count - 1}") == b":1048576\r\n"
