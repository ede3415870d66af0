"""The selectors loop: accept connections, read sockets, run hand-backs.

One thread runs ``Reactor.run``. It owns the selector and every socket's
registration: it accepts, ``recv``\\ s without blocking, feeds each
connection's parser and queues the parsed requests for that connection's
worker (see client.py for the division of labour). Other threads never
touch the selector; they ask the reactor to do things with ``call_soon``,
which wakes it through a socketpair. The loop never polls and never uses a
timeout except to keep the shutdown deadline.

Output: workers send on their own. A worker whose client is behind (the
kernel's send buffer full) asks ``watch_writable``; the reactor then also
watches that socket for room, once, and wakes the worker when there is.

Stopping (``stop``, from any thread): the listeners are closed, reading
stops on every connection and each worker is told ``EOF`` after the
requests it already has; ``deadline`` is set, ``shutdown_timeout()``
seconds away (Redis's shutdown-timeout): one deadline for the whole
shutdown, however many clients there are. The loop ends once every worker
has handed its connection back, or at the deadline. Shortly before it
(``FORCE_CLOSE_RESERVE_S``) the sockets of the stragglers are shut down so
that workers waiting to send to a client that does not read give up;
workers still busy at the deadline (a long command) are left behind.
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import selectors
import socket
import time
import types
from collections.abc import Callable

from kvserver.blocking import hang_up
from kvserver.client import EOF, Connection
from kvserver import errors
from kvserver.errors import ProtocolError
from kvserver.pool import PoolClosed, WorkerStartFailed
from kvserver.protocol import NEED_DATA
from kvserver.protocol.wire import WireProtocol
from kvserver.session import NORMAL

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024  # per recv(): one syscall takes a deep pipeline whole
# Reads go into one buffer of READ_BYTES, allocated once, and only what
# arrived is copied out: recv(READ_BYTES) allocates 256 KiB for every read
# (past malloc's mmap threshold: an mmap and a munmap each time, ~12 µs of a
# one-command read) and, under a memory limit, can fail where the few bytes
# that came would not.

# Parsed requests a connection's worker has not run yet may hold this many
# bytes (or the query buffer limit, if lower) before the reactor stops
# reading from that client until its worker has caught up. Reading ahead only
# keeps a pipeline flowing while the worker is busy; 64 MiB is 256 full
# reads, far more than that needs, and without a bound a client that queues
# big requests behind a slow one (DEBUG SLEEP) made the server hold all of
# them: 150 x 8 MB grew it by 1.2 GB.
MAX_READ_AHEAD_BYTES = 64 * 1024 * 1024
EVENT_READ, EVENT_WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

# On shutdown, the part of the shutdown timeout kept at its end for the
# forced phase: the sockets of connections not yet handed back are shut
# down this long before the deadline (or at half the timeout, if that is
# shorter), so that their workers, woken, can still hand them back in time.
FORCE_CLOSE_RESERVE_S = 0.5

# A worker that cannot be started (the thread or memory limit) turns its
# client away; the log says so at most once per this interval, with a count,
# not once per connection (a flood of clients would flood the log).
WORKER_FAILURE_LOG_INTERVAL_S = 10.0


class Reactor:
    def __init__(
        self,
        listeners: list[tuple[socket.socket, WireProtocol]],
        start_worker: Callable[[Connection], None],
        *,
        max_line: int,
        max_queued: int,
        shutdown_timeout: Callable[[], float],
        max_clients: int = 10_000,
        max_query_buffer: int = 1 << 30,
        keepalive_seconds: int = 0,
        protected: bool = False,
        on_reject: Callable[[], None] = lambda: None,
        counters: object | None = None,
        require_auth: bool = False,
    ) -> None:
        self._selector = selectors.DefaultSelector()
        self._read_buffer = bytearray(READ_BYTES)  # the reactor's alone (see READ_BYTES)
        self._read_view = memoryview(self._read_buffer)
        self._start_worker = start_worker
        self._max_line = max_line
        self._max_queued = max_queued
        self._shutdown_timeout = shutdown_timeout  # read when the stop begins (CONFIG SET changes it)
        self.deadline: float | None = None  # time.monotonic() by which shutdown ends; set by stop
        self._force_at = 0.0  # when the stragglers' sockets are shut down (set by stop)
        self._max_clients = max_clients
        self._max_query_buffer = max_query_buffer
        self._max_read_ahead = min(MAX_READ_AHEAD_BYTES, max_query_buffer)
        # With requirepass, clients that have not authenticated are read one
        # request at a time under Redis's limits for them (_on_readable_guarded);
        # without one, reads cost exactly what they always did.
        self._require_auth = require_auth
        if require_auth:
            self._on_readable = self._on_readable_guarded
        self._keepalive = keepalive_seconds
        self._protected = protected  # refuse non-loopback peers (protected mode)
        self._on_reject = on_reject  # counts a connection turned away (INFO)
        # Where each recv's size is added (INFO's total_net_input_bytes):
        # the ServerState, or a stand-in.
        self._counters = counters if counters is not None else types.SimpleNamespace(net_input_bytes=0)
        self.connections: set[Connection] = set()
        self._listeners = listeners
        self._calls: collections.deque = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        # Connections given requests during this round of events, woken
        # together at its end rather than one by one: a worker woken
        # mid-round takes the GIL at the reactor's next recv (which lets go
        # of it) and the reactor then waits for it, once per client. -c 50
        # GETs: 18.6-19.2 -> 17.6-17.9 us of CPU, 1.12 -> 1.07 context
        # switches per request (bench/RESULTS.md).
        self._to_wake: list = []
        self._stopping = False
        # Workers that could not be started: when it was last logged, and
        # how many since (see WORKER_FAILURE_LOG_INTERVAL_S).
        self._start_failure_logged = -WORKER_FAILURE_LOG_INTERVAL_S
        self._start_failures_unlogged = 0
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        for sock, protocol in listeners:
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, (self._on_accept, protocol))

    # -- called from other threads -------------------------------------------

    def call_soon(self, func: Callable, *args: object) -> None:
        """Run ``func(*args)`` on the reactor thread, soon. Thread-safe."""
        self._calls.append((func, args))
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass  # a wake-up byte is already waiting, or we are closing

    def stop(self) -> None:
        self.call_soon(self._begin_stop)

    def watch_writable(self, conn: Connection) -> None:
        """Wake ``conn``'s worker once its socket can take more output
        (from its worker, when the client is behind). Thread-safe."""
        self.call_soon(self._watch_writable, conn)

    # -- the loop --------------------------------------------------------------

    def run(self) -> None:
        select = self._selector.select
        read_only = EVENT_READ  # the usual event on a connection
        forced = False
        to_wake = self._to_wake
        try:
            while True:
                if self._stopping:
                    if not self.connections:
                        return
                    now = time.monotonic()
                    if now >= self.deadline:
                        log.warning(
                            "%d connections still busy at the shutdown deadline; leaving them",
                            len(self.connections),
                        )
                        return
                    if not forced and now >= self._force_at:
                        self._force_close_all()
                        forced = True
                        continue
                    events = select((self.deadline if forced else self._force_at) - now)
                else:
                    events = select()
                for key, mask in events:
                    handler = key.data
                    if type(handler) is tuple:
                        handler[0](key.fileobj, handler[1])
                    elif handler.__class__ is Connection:
                        if mask != read_only:  # room to send (or an error): wake the worker
                            self._on_writable(handler)
                            if not mask & EVENT_READ:
                                continue
                        self._on_readable(handler)
                    else:
                        handler()
                if to_wake:  # see _to_wake
                    for conn in to_wake:
                        conn.wake()
                    to_wake.clear()
        finally:
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _on_wake(self) -> None:
        # Drain the wake-up bytes *before* clearing the flag: a call_soon that
        # saw the flag set has already queued its call, which the loop below
        # runs; one that sees it cleared sends a fresh byte. (Clearing first
        # could swallow that byte and leave the flag set forever.)
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        self._wake_pending = False
        calls = self._calls
        while calls:
            func, args = calls.popleft()
            func(*args)

    def _on_accept(self, listener: socket.socket, protocol: WireProtocol) -> None:
        while True:
            try:
                sock, peer = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE and friends: keep serving the others
                log.warning("accept failed: %s", exc)
                return
            if len(self.connections) >= self._max_clients:
                self._reject(sock, protocol, errors.MAX_CLIENTS_REACHED)
                continue
            if self._protected and not _is_loopback(peer):
                self._reject(sock, protocol, errors.PROTECTED_MODE_DENIED)
                continue
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._keepalive:
                    _keepalive(sock, self._keepalive)
            conn = Connection(sock, peer, protocol, self._max_line, self.watch_writable)
            self.connections.add(conn)
            self._start_reading(conn)
            log.debug("accepted %r", conn)
            try:
                self._start_worker(conn)
            except PoolClosed:  # stopping: the listeners close next
                self.close(conn)
            except WorkerStartFailed as exc:
                self._refuse_unserved(conn, exc)

    def lost_worker(self, conn: Connection) -> None:
        """``conn``'s worker died for want of memory (pool.py): refuse it as
        for a thread that never started if it got no reply yet, else just
        close it; the other clients go on."""
        if conn.closed:
            return
        if conn.done:
            log.warning("%r: its worker ran out of memory; closing it", conn)
            self.close(conn)
        else:
            self._refuse_unserved(conn, MemoryError("out of memory"))

    def _refuse_unserved(self, conn: Connection, exc: Exception) -> None:
        # No thread for this client (the system's thread or memory limit):
        # tell it, count it, close it; the others go on being served.
        self._on_reject()
        try:
            conn.sock.send(conn.protocol.encode_reply(errors.CommandError(errors.WORKER_START_FAILED)))
        except OSError:
            pass
        self.close(conn)
        self._start_failures_unlogged += 1
        now = time.monotonic()
        if now - self._start_failure_logged >= WORKER_FAILURE_LOG_INTERVAL_S:
            log.error(
                "cannot start a thread for new clients (%s): %d refused since the last report; "
                "raise the memory or thread limit (ulimit -v, ulimit -u) or lower maxclients",
                exc,
                self._start_failures_unlogged,
            )
            self._start_failure_logged = now
            self._start_failures_unlogged = 0

    def _on_readable(self, conn: Connection) -> None:
        data = self._receive(conn)
        if data:
            conn.parser.feed(data)
            self._parse(conn)

    def _receive(self, conn: Connection) -> bytes | None:
        """One recv: the bytes, or None (nothing there, or the end of input,
        which has been handed to the worker)."""
        try:
            received = conn.sock.recv_into(self._read_buffer)
        except BlockingIOError:
            return None
        except OSError as exc:
            log.debug("%r: recv failed: %s", conn, exc)
            received = 0
        if not received:
            self._end_input(conn)
            return None
        try:
            data = self._read_view[:received].tobytes()
        except MemoryError:  # out of memory for even these bytes: drop this client, serve the rest
            log.warning("%r: out of memory reading its request; closing it", conn)
            self._end_input(conn)
            return None
        conn.last_read = time.monotonic()
        self._counters.net_input_bytes += len(data)
        return data

    def _parse(self, conn: Connection) -> None:
        """Hand every whole request in ``conn``'s parser to its worker, then
        apply the input limits: the query buffer (close) and the read-ahead
        (pause until the worker catches up)."""
        parser = conn.parser
        inbox = conn.inbox
        unparsed = parser.buffered
        batch: list = []
        error = None
        try:
            parser.next_requests(batch)
        except ProtocolError as exc:
            error = exc
        queued = conn.queued_bytes
        if batch:
            inbox.extend(batch)
            conn.parsed += len(batch)
            size = unparsed - parser.buffered  # the bytes that became requests
            conn.batches.append((conn.parsed, size))
            queued += size
        # Forget the reads whose requests the worker has answered.
        batches = conn.batches
        done = conn.done
        while batches and batches[0][0] <= done:
            queued -= batches.popleft()[1]
        conn.queued_bytes = queued
        if error is not None:
            inbox.append(error)  # the worker answers it, then closes
            conn.eof = True
            self._stop_reading(conn)
        elif parser.buffered > self._max_query_buffer:
            log.warning("%r: closing, its unparsed input passed %d bytes", conn, self._max_query_buffer)
            inbox.append(errors.ProtocolError(errors.QUERY_BUFFER_LIMIT))
            conn.eof = True
            self._stop_reading(conn)
        elif len(inbox) > self._max_queued or queued > self._max_read_ahead:
            # Back-pressure: the worker resumes reading once it catches up.
            conn.paused = True
            self._stop_reading(conn)
        self._to_wake.append(conn)

    # -- before AUTH (requirepass) ---------------------------------------------------

    def _on_readable_guarded(self, conn: Connection) -> None:
        # The reactor parses ahead of the worker, so a request's limits must
        # not depend on an AUTH still waiting to run: until the client has
        # authenticated, it gets one request at a time, parsed under Redis's
        # limits for strangers, and nothing more is read until its worker
        # has run it (and resumes it). "AUTH pw" then a big SET in one write
        # works: the SET is parsed only after the AUTH has run.
        data = self._receive(conn)
        if data:
            conn.parser.feed(data)
            if conn.trusted and conn.session.authenticated:
                self._parse(conn)  # the usual path, after these two tests
            else:
                self._parse_guarded(conn)

    def _parse_guarded(self, conn: Connection) -> None:
        session = conn.session
        if session is not None and session.authenticated:
            if not conn.trusted:
                conn.trusted = True
                conn.parser.set_authenticated(True)
            self._parse(conn)
            if not conn.paused:
                self._start_reading(conn)
            return
        if conn.trusted is not False:  # a new client, or RESET forgot its AUTH
            conn.trusted = False
            conn.parser.set_authenticated(False)
        if conn.done < conn.parsed:
            # Requests it sent before RESET still wait: the worker resumes
            # this client once it has run them.
            conn.paused = True
            self._stop_reading(conn)
            return
        try:
            request = conn.parser.next_request()
        except ProtocolError as exc:
            conn.eof = True
            self._stop_reading(conn)
            conn.inbox.append(exc)
            conn.wake()
            return
        if request is NEED_DATA:
            self._start_reading(conn)
            return
        # Paused before the request is visible: the worker that runs it
        # then always sees the pause and asks for the resume.
        conn.paused = True
        self._stop_reading(conn)
        conn.parsed += 1
        conn.inbox.append(request)
        conn.wake()

    def _reject(self, sock: socket.socket, protocol: WireProtocol, message: str) -> None:
        # As Redis: say why, then close. One non-blocking send; a client
        # that cannot take a few bytes does not get to hold the reactor.
        self._on_reject()
        try:
            sock.setblocking(False)
            sock.send(protocol.encode_reply(errors.CommandError(message)))
        except OSError:
            pass
        finally:
            sock.close()
        log.warning("connection refused: %s", message.split(".")[0])

    # -- registration (reactor thread only) -----------------------------------

    def _start_reading(self, conn: Connection) -> None:
        if not conn.reading and not conn.eof and not conn.closed:
            if conn.writing:
                self._selector.modify(conn.sock, EVENT_READ | EVENT_WRITE, conn)
            else:
                self._selector.register(conn.sock, EVENT_READ, conn)
            conn.reading = True

    def _stop_reading(self, conn: Connection) -> None:
        if conn.reading:
            if conn.writing:
                self._selector.modify(conn.sock, EVENT_WRITE, conn)
            else:
                self._selector.unregister(conn.sock)
            conn.reading = False

    def _watch_writable(self, conn: Connection) -> None:
        if conn.writing or conn.closed:
            return
        if conn.reading:
            self._selector.modify(conn.sock, EVENT_READ | EVENT_WRITE, conn)
        else:
            self._selector.register(conn.sock, EVENT_WRITE, conn)
        conn.writing = True

    def _on_writable(self, conn: Connection) -> None:
        # Once: the worker asks again if it is still behind after sending.
        if conn.writing:
            if conn.reading:
                self._selector.modify(conn.sock, EVENT_READ, conn)
            else:
                self._selector.unregister(conn.sock)
            conn.writing = False
        conn.write_watched = False  # before the wake-up: see Connection.write_watched
        conn.wake()

    def _end_input(self, conn: Connection) -> None:
        if not conn.eof:
            conn.eof = True
            self._stop_reading(conn)
            conn.inbox.append(EOF)
            conn.wake()
            hang_up(conn.session)  # as Redis frees a blocked client that hung up

    def close_idle(self, idle_seconds: float) -> None:
        """End connections that sent nothing for ``idle_seconds`` and have
        nothing left to run (Redis's timeout): their workers close them.
        Monitors and subscribers are spared, as Redis spares them (they only listen)."""
        cutoff = time.monotonic() - idle_seconds
        for conn in list(self.connections):
            if (
                conn.last_read < cutoff
                and not conn.inbox
                and not conn.eof
                and conn.mode is NORMAL
                and (conn.session is None or conn.session.waiter is None)  # Redis spares blocked clients
            ):
                log.debug("%r: idle for %g s, closing", conn, idle_seconds)
                self._end_input(conn)

    def resume(self, conn: Connection) -> None:
        """Read from ``conn`` again after back-pressure paused it (or,
        before AUTH, once its worker has run the request it was given)."""
        if not conn.paused:
            return
        if self._require_auth and not conn.trusted:
            if conn.done < conn.parsed or conn.eof:
                return  # a resume for an earlier request: its worker asks again
            conn.paused = False
            # Its next request may already be buffered: parse it (under the
            # limits its AUTH, if it ran, now allows) before reading more.
            self._parse_guarded(conn)
            return
        conn.paused = False
        self._start_reading(conn)

    def close(self, conn: Connection) -> None:
        """Close ``conn``'s socket; its worker has finished with it."""
        if conn.closed:
            return
        self._stop_reading(conn)
        if conn.writing:
            self._selector.unregister(conn.sock)
            conn.writing = False
        conn.closed = True
        conn.eof = True
        self.connections.discard(conn)
        try:
            conn.sock.close()
        except OSError:
            pass
        log.debug("closed %r", conn)

    # -- stopping ----------------------------------------------------------------

    def _begin_stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        timeout = max(0.0, self._shutdown_timeout())
        self.deadline = time.monotonic() + timeout
        self._force_at = self.deadline - min(FORCE_CLOSE_RESERVE_S, timeout / 2)
        for sock, _ in self._listeners:
            self._selector.unregister(sock)
            sock.close()
        for conn in list(self.connections):
            self._end_input(conn)

    def _force_close_all(self) -> None:
        # Workers still busy near the deadline may be waiting to send to a
        # client that does not read: tell them to drop it, and shut the
        # socket down so that a send in progress fails.
        for conn in self.connections:
            conn.killed = True
            conn.wake()
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _keepalive(sock: socket.socket, idle_seconds: int) -> None:
    """Redis's anetKeepAlive: probe after ``idle_seconds`` of silence, then
    every third of that, and give up after three unanswered probes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):  # Linux
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle_seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(idle_seconds // 3, 1))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def _is_loopback(peer: object) -> bool:
    """True for a client on this machine."""
    if not isinstance(peer, tuple):
        return True  # a Unix socket: local by definition
    return is_loopback_host(peer[0])


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for any
    other address, and for a host name (it may be reachable from outside)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
