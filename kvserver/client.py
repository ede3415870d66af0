"""One client connection, and the loop its worker thread runs.

Who owns what (the rules that make two threads per connection safe):

* The **reactor** thread alone registers, unregisters and closes the socket,
  calls ``recv`` on it and feeds its parser. It puts each parsed request on
  ``inbox`` and wakes the worker.
* The connection's **worker** thread alone takes requests off ``inbox``,
  runs them and ``send``\\ s the replies, one send per batch (at most
  ``REPLY_BATCH_BYTES`` of replies, then the next batch). When it is done
  it asks the reactor to close the socket; it never closes it itself.
* ``inbox`` is a ``collections.deque``: ``append`` and ``popleft`` are atomic,
  so the two threads share it without a lock. The wake-up is a lock used as
  a one-slot semaphore (``wake``/``wait``): cheaper than a Condition or a
  queue.Queue, and a wake-up given while the worker is busy is kept, never
  lost.
* End of input is a marker on ``inbox`` (``EOF``), after the last request, so
  the worker answers everything a client sent before it hung up.

Pending output (Redis's client output buffer): what the kernel does not
take at once stays on ``pending``, the worker's alone; it never blocks in a
send. While a client is behind, the worker goes on running what it sent
(its replies join ``pending``) and, with nothing to run, waits for a
wake-up: new requests, or the reactor saying the socket has room again
(``watch_writable``). Past the limits of Redis's client-output-buffer-limit
(config.py) the client is disconnected. A reply the kernel takes whole, the
usual case, costs one ``send`` and nothing else.

One loop, in modes (session.py NORMAL, MONITOR, SUBSCRIBED): a normal
client's requests are run a batch at a time, as fast as can be; a monitor's
or (in RESP2) a subscriber's one at a time, through its mode's rules of
what it may still send (``_run_monitored``, ``_run_subscribed``). Commands
act on their own connection only through ``session.conn``, the
``Connection`` itself as a ``ClientHandle``: ``close_after_reply``,
``enter_mode``, ``push``, ``kill``.

Pushed data (MONITOR lines, pub/sub messages): other threads ``push`` onto
the connection's ``outbox`` (an append and a wake-up under a tiny lock,
never a send) and its worker sends it, before the requests that come after
and after the reply of the one running, under the output limits of the
client's class (Redis's: ``pubsub`` while subscribed, else ``normal``).
What piles up unsent on ``outbox`` counts towards those limits too, so a
subscriber that stops reading is disconnected and never makes a publisher
wait or the server grow without bound.

A blocked client (BLPOP...; kvserver/blocking.py) needs no mode of its
own: its command waits inside its own call, on the worker thread, on a
lock of its own, holding no other; the loop resumes with the reply once it
is served, unblocked or timed out. A connection ending (``_kill``, and the
reactor's end of input) calls ``blocking.hang_up``, which ends the wait at
once with no reply.
"""

from __future__ import annotations

import collections
import itertools
import logging
import socket
import threading
import time

from kvserver import errors
from kvserver.blocking import hang_up
from kvserver.commands import COMMANDS
from kvserver.commands.connection import client_line, stop_tracking
from kvserver.commands.transactions import end_session
from kvserver.config import (
    CLIENT_OUTPUT_HARD_LIMIT_BYTES,
    CLIENT_OUTPUT_SOFT_LIMIT_BYTES,
    CLIENT_OUTPUT_SOFT_LIMIT_SECONDS,
    PUBSUB_OUTPUT_BUFFER_LIMIT,
)
from kvserver.commands.containers import CONTAINERS
from kvserver.dispatch import REJECTED, Dispatcher
from kvserver.errors import CommandError, ProtocolError
from kvserver.protocol.text import InvalidRequest
from kvserver.protocol.wire import WireProtocol
from kvserver.session import MONITOR, NORMAL, SUBSCRIBED, ClientHandle, Session

log = logging.getLogger(__name__)

EOF = object()  # on inbox: the client sent no more (or the server is stopping)

# Replies are sent once this much is ready, before the next queued requests
# run: a client that pipelines big GETs and never reads makes the worker
# hold one such batch, not the replies to everything it queued (256 GETs
# of 1 MiB grew the server by ~500 MB before; tests/test_resilience.py).
# Once the client is behind, the batches pile up on ``pending`` instead, up
# to the output limits (config.CLIENT_OUTPUT_HARD_LIMIT_BYTES).
REPLY_BATCH_BYTES = 64 * 1024

# Pending output goes out in one sendmsg of up to this many chunks, so a
# monitor's many short lines cost one system call, not one each (Linux's
# IOV_MAX is 1024).
SEND_CHUNKS = 256

# Pushes (monitor lines, messages) its worker has not taken yet. The worker
# takes them at once, unless it is waiting for a client that does not read
# with no hard limit set: past this many, or this many bytes, the client is
# disconnected rather than let them pile up (about 10 MB of typical monitor
# lines; with a hard limit, that limit applies to what piles up instead).
PUSH_BACKLOG_ITEMS = 100_000
PUSH_BACKLOG_BYTES = 64 * 1024 * 1024

# The limits a connection obeys until the server gives it the live ones
# (ServerState.client_output_buffer_limits, which CONFIG SET changes).
DEFAULT_LIMITS = {
    "normal": (CLIENT_OUTPUT_HARD_LIMIT_BYTES, CLIENT_OUTPUT_SOFT_LIMIT_BYTES, CLIENT_OUTPUT_SOFT_LIMIT_SECONDS),
    "pubsub": PUBSUB_OUTPUT_BUFFER_LIMIT,
}

_clock = time.monotonic  # for the soft limit's seconds
_ids = itertools.count(1)


class Connection(ClientHandle):
    __slots__ = (
        "sock",
        "fd",
        "peer",
        "id",
        "protocol",
        "parser",
        "inbox",
        "_signal",
        "reading",
        "writing",
        "paused",
        "eof",
        "closed",
        "last_read",
        "pending",
        "pending_bytes",
        "soft_since",
        "write_watched",
        "watch_writable",
        "limits",
        "killed",
        "over_limit",
        "outbox",
        "outbox_bytes",
        "_outbox_lock",
        "closing",
        "mode",
        "interrupt",
        "limit_class",
        "dispatcher",
        "session",
        "trusted",
        "parsed",
        "done",
        "queued_bytes",
        "batches",
    )

    def __init__(
        self,
        sock: socket.socket,
        peer: object,
        protocol: WireProtocol,
        max_line: int,
        watch_writable=lambda conn: None,
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.id = next(_ids)
        self.protocol = protocol
        self.parser = protocol.new_parser(max_line)
        self.inbox: collections.deque = collections.deque()
        self._signal = threading.Lock()
        self._signal.acquire()  # locked = nothing to do
        # Reactor-side state (only the reactor thread changes these):
        self.reading = False  # registered with the selector for reading
        self.writing = False  # registered for writing: the worker waits for room
        self.paused = False  # reading stopped because inbox is full
        self.eof = False  # no more input will be read
        self.closed = False
        self.last_read = time.monotonic()  # for the idle timeout (reactor)
        # Read-ahead accounting (reactor.py): requests put on inbox so far,
        # and, per read that produced some, (parsed after it, its bytes);
        # queued_bytes is the bytes of those the worker has not run yet.
        self.parsed = 0
        self.batches: collections.deque = collections.deque()
        self.queued_bytes = 0
        # With requirepass: whether the parser applies the full limits
        # (True), those for a client that has not authenticated (False), or
        # has not been told yet (None). Reactor-side.
        self.trusted: bool | None = None
        # Worker-side output state (see the module docstring):
        self.pending: collections.deque = collections.deque()  # chunks the kernel has not taken
        self.pending_bytes = 0
        self.soft_since = 0.0  # when pending went over the soft limit (_clock); 0: it is not
        # Set by the worker when it asks the reactor for a wake-up once the
        # socket has room; cleared by the reactor just before that wake-up.
        self.write_watched = False
        self.watch_writable = watch_writable  # (conn) -> None, any thread: the reactor's
        self.limits = DEFAULT_LIMITS  # class -> (hard, soft, seconds); limit_class's apply
        self.limit_class = "normal"  # "pubsub" while subscribed, as Redis's getClientType
        self.killed = False  # end now, sending nothing more (CLIENT KILL, limits, peer gone)
        self.over_limit = False  # killed for passing the output limits
        # Pushed data not yet taken by the worker, and its size (see push).
        self.outbox: collections.deque = collections.deque()
        self.outbox_bytes = 0
        self._outbox_lock = threading.Lock()  # pushers and the worker, for an append or a swap
        # The ClientHandle side, worker-side: set by commands through it.
        self.closing = False  # close once this reply is sent
        self.mode = NORMAL
        # The loop must look after this reply (closing, or a mode switch):
        # one test per request on the hot path, whatever the reason.
        self.interrupt = False
        self.dispatcher = None  # set by serve: MONITOR registers there
        # Worker-side, read by the reactor: the client's Session once its
        # worker has started (its ``authenticated`` decides the parser's
        # limits), and how many inbox items the worker has answered, per
        # batch (the reactor compares it with ``parsed``).
        self.session: Session | None = None
        self.done = 0

    def __repr__(self) -> str:
        return f"<Connection id={self.id} peer={self.peer} {self.protocol.name}>"

    def wake(self) -> None:
        """Tell the worker there is something to do (any thread)."""
        try:
            self._signal.release()
        except RuntimeError:
            pass  # already signalled and not yet consumed: one wake-up is enough

    def wait(self) -> None:
        """Block the worker until ``wake`` has been called since the last wait."""
        self._signal.acquire()

    # -- the ClientHandle (session.conn) ---------------------------------------------

    def close_after_reply(self) -> None:
        self.closing = self.interrupt = True

    def enter_mode(self, mode: str) -> None:
        """Switch mode (the worker, running a command). Joining or leaving
        the monitors happens here, at once, so that no feed line is missed
        after MONITOR's reply and RESET's own line is not fed to it."""
        old = self.mode
        if mode == old:
            return
        if old is MONITOR:
            _remove_monitor(self)
        self.mode = mode
        self.limit_class = "pubsub" if mode is SUBSCRIBED else "normal"
        if mode is MONITOR:
            _add_monitor(self)
        self.interrupt = True

    def push(self, reply: object, size: int = 0) -> None:
        """Queue ``reply`` for this client (any thread; never blocks): the
        worker sends it. Past the limits, the client is disconnected."""
        with self._outbox_lock:  # appends from many publishers, and the worker's swap
            if self.killed:
                return
            self.outbox.append(reply)
            self.outbox_bytes += size
            backlog, items = self.outbox_bytes, len(self.outbox)
        hard = self.limits[self.limit_class][0]
        if (
            backlog + self.pending_bytes >= hard
            if hard
            else backlog >= PUSH_BACKLOG_BYTES or items >= PUSH_BACKLOG_ITEMS
        ):
            self.over_limit = True
            _kill(self)
            return
        self.wake()

    def kill(self) -> None:
        _kill(self)

    def output_stats(self) -> tuple[int, int]:
        return len(self.pending) + len(self.outbox), self.pending_bytes + self.outbox_bytes

    def take_pushes(self, out: list, encode, resp: int) -> None:
        """Move what was pushed onto ``out``, encoded (the worker)."""
        with self._outbox_lock:
            taken = self.outbox
            self.outbox = collections.deque()
            self.outbox_bytes = 0
        out += [encode(item, resp) for item in taken]

    # -- output (worker thread) ----------------------------------------------------

    def write(self, data: bytes) -> bool:
        """Send ``data``, keeping on ``pending`` whatever the kernel does not
        take. False if the connection must end: the peer is gone, or the
        client is past its output limits (``over_limit``)."""
        if not self.pending_bytes:  # the usual case: one send, taken whole
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                log.debug("%r: send failed: %s", self, exc)
                self.killed = True
                return False
            if sent == len(data):
                return True
            self.pending.append(memoryview(data)[sent:] if sent else data)
            self.pending_bytes = len(data) - sent
            ok = self._behind()
        else:
            hard = self.limits[self.limit_class][0]
            if hard and self.pending_bytes >= hard:
                # Behind by the hard limit and producing more: Redis's
                # "closed ASAP for overcoming of output buffer limits".
                self.killed = self.over_limit = True
                return False
            self.pending.append(data)
            self.pending_bytes += len(data)
            ok = self.flush()
        hard, soft, _ = self.limits[self.limit_class]
        if not hard:
            # No hard limit: rather than run ahead without bound, wait for
            # the client (back-pressure), once it is behind by the soft
            # limit (whose clock runs meanwhile) or, with none, at all.
            while ok and self.pending_bytes and self.pending_bytes >= soft:
                ok = self.wait_for_room()
        return ok

    def flush(self) -> bool:
        """Send what the kernel takes of ``pending``; False as for ``write``."""
        pending = self.pending
        sock = self.sock
        while pending:
            try:
                if len(pending) == 1:
                    sent = sock.send(pending[0])
                else:
                    sent = sock.sendmsg(list(itertools.islice(pending, SEND_CHUNKS)))
            except BlockingIOError:
                break
            except OSError as exc:
                log.debug("%r: send failed: %s", self, exc)
                self.killed = True
                return False
            self.pending_bytes -= sent
            while sent:
                head = pending[0]
                if sent < len(head):
                    pending[0] = memoryview(head)[sent:]
                    break
                sent -= len(head)
                pending.popleft()
        return self._behind()

    def _behind(self) -> bool:
        """After a send: check the soft limit and, if output is still
        pending, have the reactor wake the worker once there is room."""
        if not self.pending_bytes:
            self.soft_since = 0.0
            return True
        _, soft, seconds = self.limits[self.limit_class]
        if soft and self.pending_bytes >= soft:
            now = _clock()
            if not self.soft_since:
                self.soft_since = now
            elif now - self.soft_since > seconds:
                self.killed = self.over_limit = True
                return False
        else:
            self.soft_since = 0.0
        if not self.write_watched:
            self.write_watched = True
            self.watch_writable(self)
        return True

    def wait_for_room(self) -> bool:
        """With output pending and nothing to run: wait for the socket to
        have room, for a request, or for the soft limit's time to be up;
        then send what fits. False as for ``write``, or if killed."""
        timeout = -1.0
        if self.soft_since:
            seconds = self.limits[self.limit_class][2]
            timeout = max(0.0, self.soft_since + seconds - _clock()) + 0.001  # just past it
        self._signal.acquire(timeout=timeout)
        if self.killed:
            return False
        return self.flush()


def format_address(addr: object) -> str:
    """"host:port" as Redis writes it (anetFormatAddr): IPv6 hosts in
    brackets, "[::1]:6379", so the port stays readable."""
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(addr)


def _kill(conn: Connection) -> None:
    """End ``conn`` from any thread (CLIENT KILL): its worker finds EOF
    before anything still queued, drops the rest, and hands the socket
    back to the reactor to close, as for a client that hung up; output
    still pending is dropped too."""
    conn.killed = True
    conn.inbox.appendleft(EOF)
    conn.wake()
    hang_up(conn.session)  # a blocking command it waits in ends now


def serve(conn: Connection, dispatcher: Dispatcher, state, request_close, request_resume) -> None:
    """The worker's loop for one connection: run its requests until it ends.

    ``request_close(conn)`` and ``request_resume(conn)`` hand the socket back
    to the reactor (to close it, or to read from it again after a pause).
    """
    try:
        local = format_address(conn.sock.getsockname())
    except OSError:
        local = ""
    session = Session(
        dispatcher.keyspace,
        conn.id,
        server=state,
        peer=format_address(conn.peer),
        local=local,
        dispatcher=dispatcher,
    )
    session.fd = conn.fd
    session.conn = conn  # what commands may do to this connection (ClientHandle)
    conn.dispatcher = dispatcher
    conn.limits = getattr(state, "client_output_buffer_limits", DEFAULT_LIMITS)
    conn.session = session  # the reactor reads session.authenticated (requirepass)
    if conn.eof or conn.killed:  # ended before its session existed: no wait may start
        session.hangup = True
    state.add_client(session)
    try:
        if conn.protocol.greeting:
            state.net_output_bytes += len(conn.protocol.greeting)
            if not conn.write(conn.protocol.greeting):
                return
        _serve(conn, session, dispatcher, state, request_resume)
        # What is still pending goes out before the close: QUIT's reply, the
        # answers to a client that half-closed. The limits still apply.
        while conn.pending_bytes and not conn.killed and conn.wait_for_room():
            pass
    finally:
        if conn.mode is MONITOR:
            _remove_monitor(conn)
        pubsub = getattr(state, "pubsub", None)
        if session.subscriptions is not None and pubsub is not None:
            pubsub.unsubscribe_all(session)  # no more messages for it
        if conn.over_limit:
            state.client_output_buffer_limit_disconnections += 1
            log.warning(
                "Client %s scheduled to be closed ASAP for overcoming of output buffer limits.",
                client_line(session, int(time.time() * 1000)).decode("utf-8", "replace"),
            )
        end_session(session)  # its watched keys go with it
        if session.tracking is not None:
            stop_tracking(session)  # CLIENT TRACKING ends with the client
        state.remove_client(session)
        request_close(conn)


def _serve(conn: Connection, session: Session, dispatcher: Dispatcher, state, request_resume) -> None:
    """The one request loop, whatever the mode: wait for requests or
    pushes, send pushes that came first, run requests (the mode decides
    how), send pushes that came meanwhile, write, until the client is done."""
    encode = conn.protocol.encode_reply
    inbox = conn.inbox
    while True:
        if not inbox and not conn.outbox:
            if conn.pending_bytes:  # behind: wait for room or for more to run
                if not conn.wait_for_room():
                    return
                continue
            # (The blocked mode will wait here, with its timeout, for its key.)
            conn.wait()
        out: list[bytes] = []
        if conn.outbox:  # pushed before the requests below ran: they go first
            conn.take_pushes(out, encode, session.resp)
        done = False
        if inbox:
            mode = conn.mode
            if mode is NORMAL or (mode is SUBSCRIBED and session.resp == 3):
                done = _run_batch(conn, session, dispatcher, state, out)
            elif mode is MONITOR:
                done = _run_one(conn, session, dispatcher, state, out, _monitor_refuses)
            else:
                done = _run_one(conn, session, dispatcher, state, out, _subscriber_refuses)
            if not done and conn.outbox:  # pushed while they ran (a monitor's own line...)
                conn.take_pushes(out, encode, session.resp)
        if out:
            data = b"".join(out)
            state.net_output_bytes += len(data)
            if not conn.write(data):
                return
        if done:
            return
        if conn.paused and not inbox:
            request_resume(conn)


def _run_batch(conn: Connection, session: Session, dispatcher: Dispatcher, state, out: list) -> bool:
    """NORMAL mode, the hot path: run what is queued, up to a batch of
    replies or a mode switch; True if the client is done."""
    execute = dispatcher.execute
    encode = conn.protocol.encode_reply
    inbox = conn.inbox
    # Pipelined requests run as one batch: one log append for all of them
    # (Dispatcher.begin_batch). One request alone is not worth it.
    batched = len(inbox) > 1
    if batched:
        dispatcher.begin_batch(session, out, encode)
    try:
        done, taken = _run_queued(conn, session, execute, encode, inbox, out)
    finally:
        if batched:
            dispatcher.end_batch(session)  # before the replies go: it may change them
    state.total_commands_processed += taken
    conn.done += taken  # one per item taken off inbox: the reactor's read-ahead count
    return done


def _run_queued(conn: Connection, session: Session, execute, encode, inbox, out: list) -> tuple[bool, int]:
    """_run_batch's loop: (whether the client is done, items taken)."""
    done = False
    taken = 0
    size = 0
    while inbox:
        item = inbox.popleft()
        taken += 1
        if type(item) is list:
            reply = encode(execute(session, item), session.resp)
            out.append(reply)
            if conn.interrupt:  # QUIT, MONITOR, SUBSCRIBE...: look before the next
                conn.interrupt = False
                done = conn.closing
                break
            size += len(reply)
            if size >= REPLY_BATCH_BYTES:
                break  # send these first; the rest of inbox waits its turn
        elif item is EOF:
            taken -= 1  # not a command
            done = True
            break
        elif type(item) is InvalidRequest:
            out.append(encode(item.error, session.resp))
        else:  # a ProtocolError: answer it, then hang up
            assert isinstance(item, ProtocolError), item
            log.debug("%r: %s", conn, item.message)
            out.append(encode(item, session.resp))
            done = True
            break
    return done, taken


def _run_one(conn: Connection, session: Session, dispatcher: Dispatcher, state, out: list, refuses) -> bool:
    """MONITOR or subscribed (RESP2) mode: run one request, unless the
    mode's rule ``refuses(cmd, item, session)`` answers it instead (an
    error, or ``NO_ANSWER``); True if the client is done."""
    encode = conn.protocol.encode_reply
    item = conn.inbox.popleft()
    conn.done += 1
    if type(item) is list:
        state.total_commands_processed += 1
        cmd = COMMANDS.get(item[0].upper())
        refused = refuses(cmd, item, session) if cmd is not None else None
        if refused is NO_ANSWER:
            pass
        elif refused is not None:
            dispatcher.command_stats[cmd.name][REJECTED] += 1
            out.append(encode(refused, session.resp))
        else:
            out.append(encode(dispatcher.execute(session, item), session.resp))
        if conn.interrupt:
            conn.interrupt = False
            return conn.closing  # QUIT: no more pushes, not even its own line
        return False
    if item is EOF:
        return True
    if type(item) is InvalidRequest:
        out.append(encode(item.error, session.resp))
        return False
    out.append(encode(item, session.resp))  # a ProtocolError: answer it, then hang up
    return True


NO_ANSWER = object()  # a refusal that sends nothing (MONITOR while monitoring)


# -- MONITOR ---------------------------------------------------------------------

# Guards changes to a dispatcher's ``monitors`` tuple. The tuple is replaced,
# never changed in place, so the threads feeding it read it without a lock.
_monitors_lock = threading.Lock()


def _add_monitor(conn: Connection) -> None:
    dispatcher = conn.dispatcher
    with _monitors_lock:
        dispatcher.monitors = (*dispatcher.monitors, conn)


def _remove_monitor(conn: Connection) -> None:
    dispatcher = conn.dispatcher
    with _monitors_lock:
        dispatcher.monitors = tuple(m for m in dispatcher.monitors if m is not conn)


def _touches_keyspace(cmd) -> bool:
    # Redis's test for a replica's commands (a monitor is flagged as one):
    # anything that reads or writes keys.
    return cmd.write or bool(cmd.first_key) or "readonly" in cmd.flags


_REPLICA_KEYSPACE = CommandError(errors.REPLICA_KEYSPACE)


def _monitor_refuses(cmd, item: list, session: Session) -> object:
    """What a monitor may still send, as Redis 7: commands that touch keys
    are refused, MONITOR again gets no reply at all; RESET (back to a
    normal client) and QUIT run."""
    if cmd.name == "monitor" and len(item) == 1:
        return NO_ANSWER
    if _touches_keyspace(cmd) and cmd.arity_ok(len(item)) and session.authenticated:
        return _REPLICA_KEYSPACE
    return None


def _subscriber_refuses(cmd, item: list, session: Session) -> object:
    """A subscribed RESP2 client may only send the commands registered
    ``subscribed=True``; Redis checks that after arity and auth."""
    if cmd.subscribed or not cmd.arity_ok(len(item)) or not session.authenticated:
        return None
    name = cmd.name
    if len(item) > 1 and name in CONTAINERS:
        sub = CONTAINERS[name].subcommands.get(item[1].upper())
        if sub is not None:
            name = sub.name
    return errors.subscribed_only(name)
