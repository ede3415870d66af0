"""Shared fixtures: a server on port 0 (in-process or as a real process) and
a small line-protocol client. No test sleeps: waits poll with a deadline."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvserver.config import Config
from kvserver.server import Server

# support.py's asserts (error_text, log_after_setup) report like a test's own.
pytest.register_assert_rewrite("tests.support")

from tests import processes  # noqa: E402
from tests.support import FailingAof, Harness  # noqa: E402

# Every process started from here on carries the session's mark (see
# tests/processes.py): the leak check below finds them, and nothing else.
SESSION_TOKEN = processes.mark_session()
_leaked: list[str] = []


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail the run if a process this session started is still running
    (every fixture has been finalized by now), and kill it: a test that
    leaves a kvserver or a nutcracker behind is a bug even when it passed."""
    left = processes.started_by(SESSION_TOKEN, os.getpid())
    if not left:
        return
    _leaked.extend(f"pid {pid}: {processes.command_line(pid)}" for pid in left)
    processes.kill(left)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if _leaked:
        terminalreporter.section("processes left running (killed now)", red=True)
        for line in _leaked:
            terminalreporter.write_line(line)

# The plugin's example (tests/examples/) is run by test_pytest_plugin.py as
# another project would run it, not collected here with the suite's own.
collect_ignore = ["examples"]

REPLY_TIMEOUT_S = 10.0
START_TIMEOUT_S = 20.0
READY = re.compile(rb"ready to accept connections on \S+ port (\d+) \(text\)(?: and port (\d+))?")


class TextClient:
    """A blocking client for the text protocol, one reply line at a time."""

    def __init__(self, port: int, host: str = "127.0.0.1", greet: bool = True) -> None:
        self.sock = socket.create_connection((host, port), timeout=REPLY_TIMEOUT_S)
        self._buffer = b""
        if greet:
            assert self.read_line() == b"OK mini-redis ready"

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by server; pending {self._buffer!r}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def call(self, line: bytes | str) -> bytes:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_line()

    def read_until_closed(self) -> bytes:
        """Everything left until the server closes the connection."""
        data = self._buffer
        self._buffer = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


class RunningServer:
    """A Server serving on a thread of this process."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = server.port
        self.resp_port = server.resp_port
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()
        self.clients: list[TextClient] = []

    def client(self, **kwargs) -> TextClient:
        client = TextClient(self.port, **kwargs)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.server.shutdown()
        self.thread.join(REPLY_TIMEOUT_S)
        assert not self.thread.is_alive()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """``start_server(**config)`` -> RunningServer; all are stopped afterwards."""
    started: list[RunningServer] = []

    def start(**overrides) -> RunningServer:
        settings = {"port": 0, "resp_port": 0, "aof_path": str(tmp_path / "test.aof"), **overrides}
        clock = settings.pop("clock", None)
        server = Server(Config(**settings), **({"clock": clock} if clock else {}))
        running = RunningServer(server)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


@pytest.fixture
def kv(tmp_path: Path) -> Iterator[Harness]:
    """A Harness (tests/support.py) on a fresh log; the log closed afterwards."""
    harness = Harness(tmp_path / "appendonly.aof")
    yield harness
    harness.aof.close()


@pytest.fixture
def failing_kv(tmp_path: Path) -> Iterator[Harness]:
    """``kv`` on a log that fails while ``failing_kv.aof.failing`` is set."""
    harness = Harness(tmp_path / "appendonly.aof", FailingAof)
    yield harness
    harness.aof.close()


@pytest.fixture
def spawn() -> Iterator:
    """``spawn(argv, **popen_options)`` -> subprocess.Popen; each one is
    killed and reaped at teardown, whether the test passed or not."""
    procs: list[subprocess.Popen] = []

    def start(argv: list[str], **options) -> subprocess.Popen:
        proc = subprocess.Popen(argv, **options)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(REPLY_TIMEOUT_S)


class ServerProcess:
    """``python -m kvserver 0 AOF`` as a real process, for restarts and crashes."""

    def __init__(self, aof_path: Path, *extra: str, env: dict | None = None, preexec_fn=None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kvserver", "0", str(aof_path), "--resp-port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            preexec_fn=preexec_fn,
        )
        self.output = b""
        self.port, self.resp_port = self._wait_ready()

    def _wait_ready(self) -> tuple[int, int | None]:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited before it was ready:\n{self.output.decode()}")
            self.output += line
            match = READY.search(line)
            if match:
                resp = match.group(2)
                return int(match.group(1)), int(resp) if resp else None
        raise RuntimeError(f"server not ready in {START_TIMEOUT_S}s:\n{self.output.decode()}")

    def client(self) -> TextClient:
        return TextClient(self.port)

    def finish(self, timeout: float = REPLY_TIMEOUT_S) -> int:
        """Wait for the process to exit; collects the rest of its output."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.output += out
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


@pytest.fixture
def server_process() -> Iterator:
    """``server_process(aof_path, *args)`` -> ServerProcess; all killed afterwards."""
    procs: list[ServerProcess] = []

    def start(aof_path: Path, *extra: str, **options) -> ServerProcess:
        proc = ServerProcess(aof_path, *extra, **options)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        try:
            proc.kill()
        except subprocess.TimeoutExpired:  # killed, but its output did not end: still reaped
            proc.proc.wait(REPLY_TIMEOUT_S)


# -- side by side with a real redis-server -------------------------------------------

REDIS_MISSING = (
    "redis-server is not installed: 'apt-get install redis-server' "
    "(.ci/run installs it) to compare replies with Redis"
)


@pytest.fixture(scope="session")
def redis_server_port() -> Iterator[int]:
    """A real redis-server 7 on a free port, for replies to compare against."""
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip(REDIS_MISSING)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.skip("redis-server did not start")
            time.sleep(0.02)
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class SideBySide:
    """The same raw RESP commands sent to kvserver and to redis-server."""

    def __init__(self, kv_port: int, redis_port: int) -> None:
        from tests.resp_client import RawRespClient

        self.kv = RawRespClient(kv_port)
        self.redis = RawRespClient(redis_port)
        self.redis.call("FLUSHALL")

    def both(self, *args) -> bytes:
        """Run on both; assert the reply bytes are identical; return them."""
        ours, theirs = self.kv.call(*args), self.redis.call(*args)
        assert ours == theirs, f"{args!r}: kvserver {ours!r} != redis {theirs!r}"
        return ours

    def each(self, *args) -> tuple[bytes, bytes]:
        """Run on both without comparing (for replies that must differ)."""
        return self.kv.call(*args), self.redis.call(*args)

    def close(self) -> None:
        self.kv.close()
        self.redis.close()


@pytest.fixture
def side_by_side(start_server, redis_server_port) -> Iterator[SideBySide]:
    """A fresh kvserver and a flushed redis-server, driven together."""
    server = start_server()
    pair = SideBySide(server.resp_port, redis_server_port)
    yield pair
    pair.close()
