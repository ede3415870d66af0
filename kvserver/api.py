"""Start and stop a kvserver from Python code: ``kvserver.run``.

::

    import kvserver

    with kvserver.run() as srv:              # free ports, a temporary log
        r = srv.client()                     # redis.Redis on srv.port
        r.set("k", "v")
        print(srv.url)                       # redis://127.0.0.1:PORT/0

Two ways to run it:

* **A thread of this process** (the default): ``kvserver.server.Server``
  built here, ``serve_forever`` on a background thread. No process to
  start (a server is ready in milliseconds, not the ~0.3 s of a fresh
  interpreter importing the package), the same interpreter (breakpoints,
  coverage and monkeypatching reach it), and ``Server.shutdown()`` blocks
  until the loop has ended and the log is flushed and closed, so the log is
  whole the moment the ``with`` block is left.
* **A subprocess** (``subprocess=True``): ``python -m kvserver.api`` with the
  same settings. For isolation: a crash, a ``kill -9`` or a test that keeps
  the GIL busy does not touch the caller, and a restart is a real one
  (``srv.restart()``: SIGTERM, then the same ports and the same log). Its
  log lines go to ``srv.log_path``.

``aof=None`` puts the log in a temporary directory removed when the server
stops; a path keeps it there. ``port`` is the RESP port (redis-py's, the
one in ``srv.url``); ``text_port`` the line protocol's. 0 picks a free one.
Other keyword arguments are ``kvserver.config.Config`` fields
(``appendfsync="always"``, ``requirepass="..."``, ``maxmemory=...``), the
same in both modes. The server stops cleanly (shutdown, log closed, clients
closed) when the block is left, by an exception too.

This module is imported only when ``kvserver.run`` is first used, so
``import kvserver`` stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess as _subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator

HOST = "127.0.0.1"  # loopback: a server started from code is for this machine
AOF_NAME = "appendonly.aof"  # the log's name inside a temporary directory
# How long a subprocess has to replay its log and bind, and (past its own
# shutdown-timeout) to exit after SIGTERM before it is killed.
START_TIMEOUT_S = 30.0
EXIT_MARGIN_S = 5.0
# How long a thread server's serve_forever may take to return after
# shutdown() (it has returned by then: shutdown waits for it).
JOIN_TIMEOUT_S = 10.0

_REDIS_MISSING = "redis-py is not installed: pip install redis (or pip install 'kvserver[test]')"


class RunningServer:
    """A started kvserver: where it listens, clients for it, and ``stop``."""

    def __init__(self, port: int, text_port: int, aof_path: str, tempdir: str | None) -> None:
        self.host = HOST
        self.port = port  # RESP
        self.text_port = text_port
        self.aof_path = aof_path
        self._tempdir = tempdir
        self._clients: list = []
        self.stopped = False

    @property
    def url(self) -> str:
        """The RESP port as a Redis URL, database 0 (what RQ, Celery, arq take)."""
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs):
        """A new ``redis.Redis`` on the RESP port (closed when the server stops)."""
        try:
            import redis
        except ImportError:
            raise ImportError(_REDIS_MISSING) from None
        client = redis.Redis(host=self.host, port=self.port, **kwargs)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        """Shut down; returns once the log is closed. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            for client in self._clients:
                client.close()
            self._clients.clear()
            self._stop()
        finally:
            if self._tempdir:
                shutil.rmtree(self._tempdir, ignore_errors=True)

    def _stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class ThreadServer(RunningServer):
    """``Server.serve_forever`` on a daemon thread of this process."""

    def __init__(self, server, tempdir: str | None) -> None:
        super().__init__(server.resp_port, server.port, server.config.aof_path, tempdir)
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, name="kvserver", daemon=True)
        self.thread.start()

    def _stop(self) -> None:
        self.server.shutdown()  # blocks until serve_forever has closed the log
        self.thread.join(JOIN_TIMEOUT_S)


class SubprocessServer(RunningServer):
    """``python -m kvserver.api SETTINGS`` as a child process."""

    def __init__(self, settings: dict, tempdir: str | None, log_path: str) -> None:
        self._settings = settings
        self.log_path = log_path
        self.proc: _subprocess.Popen | None = None
        port, text_port = self._start(settings)
        super().__init__(port, text_port, settings["aof_path"], tempdir)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _start(self, settings: dict) -> tuple[int, int]:
        with open(self.log_path, "ab") as log_file:
            self.proc = _subprocess.Popen(
                [sys.executable, "-m", "kvserver.api", json.dumps(settings)],
                stdin=_subprocess.DEVNULL,
                stdout=_subprocess.PIPE,
                stderr=log_file,
            )
        # The child writes one line once it listens: its ports, as JSON.
        # A reader thread, so that a child that hangs cannot hang us.
        ready: list[bytes] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        line = ready[0] if ready else b""
        if not line:
            self._kill()
            with open(self.log_path, "rb") as log_file:
                output = log_file.read().decode("utf-8", "replace")
            raise RuntimeError(f"kvserver did not start (log {self.log_path}):\n{output}")
        ports = json.loads(line)
        return ports["port"], ports["text_port"]

    def restart(self) -> None:
        """SIGTERM, wait for the exit (log closed), start again on the same
        ports and the same log: a real restart, as an operator does it."""
        self._stop()
        settings = {**self._settings, "resp_port": self.port, "port": self.text_port}
        self._start(settings)

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed beyond what appendfsync did."""
        self._kill()

    def _kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            timeout = self._settings.get("shutdown_timeout_seconds", 10) + EXIT_MARGIN_S
            try:
                self.proc.wait(timeout)
            except _subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def _settings(port: int, text_port: int, aof_path: str, options: dict) -> dict:
    """Config's keyword arguments, checked now (an unknown option fails in
    the caller, in both modes, not in a child's log)."""
    from kvserver.config import Config

    fields = {field.name for field in dataclasses.fields(Config)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(f"kvserver.run: unknown option(s) {', '.join(unknown)}; Config has {', '.join(sorted(fields))}")
    return {"bind": HOST, **options, "port": text_port, "resp_port": port, "aof_path": aof_path}


def _config(settings: dict):
    from kvserver.config import Config

    # JSON has no tuples; Config's tuple fields come back as lists.
    return Config(**{k: tuple(map(_tuples, v)) if isinstance(v, list) else v for k, v in settings.items()})


def _tuples(value):
    return tuple(map(_tuples, value)) if isinstance(value, list) else value


def start(port: int = 0, aof: str | os.PathLike | None = None, *, text_port: int = 0, subprocess: bool = False,
          **options) -> RunningServer:
    """Start a server and return it running; the caller calls ``stop()``
    (``run`` is the context manager that does)."""
    tempdir = tempfile.mkdtemp(prefix="kvserver-") if aof is None or subprocess else None
    aof_path = os.fspath(aof) if aof is not None else os.path.join(tempdir, AOF_NAME)
    owned = tempdir if aof is None else None  # the log's directory: removed at stop
    try:
        settings = _settings(port, text_port, aof_path, options)
        if subprocess:
            srv: RunningServer = SubprocessServer(settings, tempdir, os.path.join(tempdir, "kvserver.log"))
            return srv
        from kvserver.server import Server

        return ThreadServer(Server(_config(settings)), owned)
    except BaseException:
        if tempdir:
            shutil.rmtree(tempdir, ignore_errors=True)
        raise


@contextlib.contextmanager
def run(port: int = 0, aof: str | os.PathLike | None = None, *, text_port: int = 0, subprocess: bool = False,
        **options) -> Iterator[RunningServer]:
    """``with kvserver.run(port=0, aof=None, subprocess=False, **options) as srv:``

    A running kvserver for the block: ``srv.port`` (RESP), ``srv.text_port``,
    ``srv.url``, ``srv.client()``. Stopped when the block ends, however it
    ends: shutdown, log closed, a temporary log removed. See the module
    docstring for the two modes and the options.
    """
    srv = start(port, aof, text_port=text_port, subprocess=subprocess, **options)
    try:
        yield srv
    finally:
        srv.stop()


def _child_main(argv: list[str]) -> None:
    """The subprocess: build the server from the settings, print its ports,
    serve until SIGTERM/SIGINT (shutdown as ``kvserver`` does it)."""
    import logging

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    from kvserver.server import Server

    server = Server(_config(json.loads(argv[0])))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.request_shutdown())
    sys.stdout.write(json.dumps({"port": server.resp_port, "text_port": server.port}) + "\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    _child_main(sys.argv[1:])
