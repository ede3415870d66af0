"""The server: wires the keyspace, the log, the reactor and the worker pool.

Lifecycle (as ``socketserver``)::

    server = Server(config)   # replays the log completely, then binds and listens
    server.serve_forever()    # serves until stopped; closes everything on return
    server.shutdown()         # from another thread: stop, and block until
                              # serve_forever has finished and the log is closed

``request_shutdown()`` is the non-blocking form, safe in a signal handler.
A shutdown ends within ``shutdown-timeout`` seconds (config.py), whatever
clients are doing, and always flushes, fsyncs and closes the log.
The log is replayed before the listening socket exists, so no client can
connect to a half-loaded keyspace. If the log cannot be opened or is
damaged, the constructor raises ``AofError`` and nothing listens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import socket
import threading
import time
from collections.abc import Callable

from kvserver import __version__
from kvserver.aof import AppendOnlyFile, ReplayResult, replay
from kvserver.config import Config
from kvserver.errors import AofError
from kvserver.client import Connection, format_address, serve
from kvserver.commands.configcmd import apply_live_settings
from kvserver.dispatch import Dispatcher
from kvserver.pool import WorkerPool
from kvserver.protocol.wire import RESP, TEXT
from kvserver.reactor import Reactor, is_loopback_host
from kvserver.rewrite import AofRewriter
from kvserver.session import Session
from kvserver.state import REDIS_VERSION, ServerState
from kvserver.stats import StatsCron
from kvserver.store import ActiveExpiry, Keyspace, system_clock

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 511  # Redis's tcp-backlog default

# How long the shutdown waits for the write lock to close the log, even
# past the deadline (or with shutdown-timeout 0): a write under way takes
# microseconds; waiting this little spares it, and keeps the log whole.
CLOSE_LOCK_MIN_WAIT_S = 0.5


def _listen(host: str, port: int) -> socket.socket:
    return socket.create_server(
        (host, port),
        family=socket.AF_INET6 if ":" in host else socket.AF_INET,
        backlog=LISTEN_BACKLOG,
    )


# The time commands see while the log is replayed: before every deadline,
# so that nothing expires halfway through (Redis's keyIsExpired does the
# same while loading). A key whose deadline passed after its records were
# written may be extended or persisted by a later record, and must still be
# there for it; whatever is past its deadline once the whole log has run is
# dropped then.
REPLAY_NOW_MS = 0


def _listen_all(hosts: list[str], port: int, protocol) -> list:
    """A listener per address, all on one port (port 0: the first one picks)."""
    listeners = []
    try:
        for host in hosts:
            sock = _listen(host, port)
            port = sock.getsockname()[1]
            listeners.append((sock, protocol))
    except OSError:
        for sock, _ in listeners:
            sock.close()
        raise
    return listeners


def _all_loopback(bind: str) -> bool:
    # Protected mode matters only when something beyond loopback can connect.
    return all(is_loopback_host(host) for host in bind.split())


def log_starting(config: Config) -> None:
    """The first lines of the start-up banner (Redis's "oO0OoO0OoO0Oo"
    lines): who is starting, and where its settings came from."""
    log.info(
        "kvserver %s starting (answers as Redis %s; Python %s), pid %d",
        __version__,
        REDIS_VERSION,
        platform.python_version(),
        os.getpid(),
    )
    if config.config_file:
        log.info("configuration loaded from %s", os.path.abspath(config.config_file))
    else:
        log.info("no configuration file: command-line options and defaults")


def load_log(keyspace: Keyspace, path: str, drop_expired: bool = True) -> ReplayResult:
    """Replay the log at ``path`` into ``keyspace`` through the dispatcher
    clients use, with nothing logged and no locks contended; then (unless
    the caller does it itself) drop the keys whose deadline has passed."""
    replayer = Dispatcher(keyspace, None, clock=lambda: REPLAY_NOW_MS)
    session = Session(keyspace, loading=True, dispatcher=replayer)
    result = replay(path, lambda args: replayer.execute(session, args))
    session.multi = None  # a group torn off the end was queued, never run
    if drop_expired:
        keyspace.remove_expired()
    return result


class Server:
    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], int] = system_clock,
        thread_context: Callable[[], contextlib.AbstractContextManager] | None = None,
    ) -> None:
        self.config = config
        log_starting(config)
        self.keyspace = Keyspace(clock)
        # Before the replay: PFADD records turn a value dense where they did.
        self.keyspace.hll_sparse_max_bytes = config.hll_sparse_max_bytes
        self._load(config.aof_path)
        self.aof = AppendOnlyFile(config.aof_path, config.appendfsync)
        self.dispatcher = Dispatcher(self.keyspace, self.aof)  # from now on expiries are logged
        # Keys whose deadline passed while the server was down go now, each
        # with its DEL in the log (store.py says why it must be logged).
        expired = self.keyspace.remove_expired()
        if expired:
            log.info("%d keys had expired while the server was down", expired)
        self.dispatcher.maxmemory = config.maxmemory
        self.keyspace.busy_reply_ms = config.busy_reply_threshold_ms
        self.state = ServerState(config, self.keyspace, self.aof)
        apply_live_settings(self.state, config.live_settings)  # the config file's, as CONFIG SET
        self.rewriter = AofRewriter(
            self.keyspace,
            self.aof,
            config.auto_aof_rewrite_percentage,
            config.auto_aof_rewrite_min_size,
        )
        self.state.rewriter = self.rewriter
        self.saver = self.state.saver
        listeners = []
        try:
            listeners += _listen_all(config.bind.split(), config.port, TEXT)
            if config.resp_port is not None:
                listeners += _listen_all(config.bind.split(), config.resp_port, RESP)
        except OSError:
            for sock, _ in listeners:
                sock.close()
            self.aof.close()
            raise
        self.address = listeners[0][0].getsockname()
        self.state.tcp_port = self.address[1]
        resp = [sock for sock, protocol in listeners if protocol is RESP]
        self.resp_address = resp[0].getsockname() if resp else None
        self.state.resp_port = self.resp_address[1] if self.resp_address else 0
        self.pool = WorkerPool(
            self._serve_connection,
            config.max_idle_workers,
            thread_context,
            on_lost=lambda conn: self.reactor.call_soon(self.reactor.lost_worker, conn),
        )
        self.reactor = Reactor(
            listeners,
            self.pool.submit,
            max_line=config.max_inline_bytes,
            max_queued=config.max_queued_requests,
            shutdown_timeout=lambda: self.state.shutdown_timeout,
            max_clients=config.max_clients,
            max_query_buffer=config.max_query_buffer_bytes,
            keepalive_seconds=config.tcp_keepalive_seconds,
            protected=config.protected_mode and not config.requirepass and not _all_loopback(config.bind),
            on_reject=self.state.count_rejected,
            counters=self.state,
            require_auth=bool(config.requirepass),
        )
        self.state.worker_threads = lambda: self.pool.size
        self.state.request_shutdown = self.request_shutdown
        self.state.command_stats = self.dispatcher.command_stats
        self.state.slowlog.attach(self.dispatcher)
        self._stats_cron = StatsCron(self.state)
        self._listening = [(sock.getsockname(), protocol) for sock, protocol in listeners]
        self._expiry = ActiveExpiry(self.keyspace) if config.active_expiry else None
        self._stop_reaper = threading.Event()
        self._finished = threading.Event()
        self._serving = False

    @property
    def port(self) -> int:
        """The text protocol's port."""
        return self.address[1]

    @property
    def resp_port(self) -> int | None:
        return self.resp_address[1] if self.resp_address else None

    def _load(self, path: str) -> None:
        result = load_log(self.keyspace, path, drop_expired=False)
        log.info(
            "DB loaded from append only file %s: %d records in %.3f seconds",
            path,
            result.records,
            result.seconds,
        )

    def _serve_connection(self, conn: Connection) -> None:
        serve(
            conn,
            self.dispatcher,
            self.state,
            lambda c: self.reactor.call_soon(self.reactor.close, c),
            lambda c: self.reactor.call_soon(self.reactor.resume, c),
        )

    def serve_forever(self) -> None:
        """Serve clients until ``shutdown``; then close the log. Once only."""
        self._serving = True
        self._log_settings()
        log.info(
            "kvserver %s (pid %d) ready to accept connections on %s port %d (text)%s, log %s, "
            "appendfsync %s",
            __version__,
            os.getpid(),
            self.address[0],
            self.port,
            f" and port {self.resp_port} (RESP)" if self.resp_port else "",
            self.config.aof_path,
            self.config.appendfsync,
        )
        if self._expiry:
            self._expiry.start()
        self._stats_cron.start()
        if self.config.timeout_seconds > 0:
            threading.Thread(target=self._reap_idle, name="kv-idle", daemon=True).start()
        try:
            self.reactor.run()
        finally:
            self._close()

    def _log_settings(self) -> None:
        """The rest of the start-up banner (log_starting has the first
        lines, the "ready" line the log and its fsync policy): what listens
        where, the limits, the access rules. Never the password itself."""
        config = self.config
        for protocol, label in ((TEXT, "text"), (RESP, "RESP")):
            addresses = [format_address(addr) for addr, p in self._listening if p is protocol]
            if addresses:
                log.info("listening (%s) on %s", label, ", ".join(addresses))
        log.info(
            "maxclients %d, maxmemory %s, timeout %s, slowlog-log-slower-than %d us",
            config.max_clients,
            f"{config.maxmemory} bytes" if config.maxmemory else "0 (no limit)",
            f"{config.timeout_seconds:g} s" if config.timeout_seconds else "0 (never)",
            self.state.slowlog.log_slower_than,
        )
        if config.requirepass:
            access = "password required (requirepass is set)"
        elif not config.protected_mode:
            access = "no password, protected mode off: anyone who can connect has every key"
        elif _all_loopback(config.bind):
            access = "no password, loopback only (protected mode yes)"
        else:
            access = "no password: protected mode refuses clients from other machines"
        log.info("access: %s", access)

    def _reap_idle(self) -> None:
        # Like Redis's clientsCron: look for idle clients a few times per
        # timeout (at least once a second), on the reactor's own thread.
        timeout = self.config.timeout_seconds
        interval = min(1.0, timeout / 4)
        while not self._stop_reaper.wait(interval):
            self.reactor.call_soon(self.reactor.close_idle, timeout)

    def request_shutdown(self) -> None:
        """Ask serve_forever to stop; returns at once (signal-handler safe:
        the reactor thread does the work)."""
        self.reactor.call_soon(self.state.stopping.set)  # wakes DEBUG SLEEP
        self.reactor.stop()

    def shutdown(self) -> None:
        """Stop serving and block until serve_forever has returned."""
        self.request_shutdown()
        if self._serving:
            self._finished.wait()

    def server_close(self) -> None:
        """Release everything for a server that never served."""
        if not self._serving:
            self.reactor.stop()
            self.reactor.run()
            self._close()

    def _close(self) -> None:
        """Everything after the reactor's loop, within the shutdown deadline
        (the reactor's, set when the stop began): wait for busy workers and
        a rewrite in flight until then, not each for a timeout of its own;
        then close the log, whatever is still running."""
        deadline = self.reactor.deadline
        if deadline is None:  # never served
            deadline = time.monotonic() + self.state.shutdown_timeout
        try:
            busy = self.pool.shutdown(deadline)
            if busy:
                log.warning("%d workers still busy at the shutdown deadline; not waiting for them", busy)
            if self._expiry:
                self._expiry.stop()
            self._stats_cron.stop()
            self._stop_reaper.set()
            self.rewriter.wait(max(0.0, deadline - time.monotonic()))  # a rewrite in flight may finish
            self.saver.wait(max(0.0, deadline - time.monotonic()))  # and a BGSAVE
        finally:
            try:
                self._close_log(deadline)
            finally:
                self._finished.set()

    def _close_log(self, deadline: float) -> None:
        # Under the write lock: a worker in the middle of "apply + append"
        # finishes its record first, and no write starts while the log
        # closes. Workers left running past the deadline find it closed:
        # their writes are refused (AppendOnlyFile.write), never logged
        # half or acknowledged.
        lock = self.keyspace.write_lock
        if lock.acquire(timeout=max(CLOSE_LOCK_MIN_WAIT_S, deadline - time.monotonic())):
            try:
                self.aof.close()
            finally:
                lock.release()
            log.info("log flushed and closed; bye")
            return
        # A write has held the lock all this while (a stuck disk, say). Its
        # append may be under way: closing the descriptor under it could
        # land its bytes in whatever file reuses the number. Make what is
        # written durable and leave the descriptor to the process's exit.
        try:
            self.aof.sync_to(self.aof.written)
            log.warning("a write held the lock past the shutdown deadline: log fsynced, left open; bye")
        except AofError as exc:
            log.error("log not fsynced at shutdown: %s", exc)
