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
"""

from __future__ import annotations

import collections
import itertools
import logging
import select
import socket
import threading
import time

from kvserver.dispatch import Dispatcher
from kvserver.errors import ProtocolError
from kvserver.protocol.text import InvalidRequest
from kvserver.protocol.wire import WireProtocol
from kvserver.session import Session

log = logging.getLogger(__name__)

EOF = object()  # on inbox: the client sent no more (or the server is stopping)

# Replies are sent once this much is ready, before the next queued requests
# run: a client that pipelines big GETs and never reads makes the worker
# hold one such batch, not the replies to everything it queued (256 GETs
# of 1 MiB grew the server by ~500 MB before; tests/test_resilience.py).
REPLY_BATCH_BYTES = 64 * 1024

_ids = itertools.count(1)


class Connection:
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
        "paused",
        "eof",
        "closed",
        "last_read",
        "_poller",
    )

    def __init__(self, sock: socket.socket, peer: object, protocol: WireProtocol, max_line: int) -> None:
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
        self.paused = False  # reading stopped because inbox is full
        self.eof = False  # no more input will be read
        self.closed = False
        self.last_read = time.monotonic()  # for the idle timeout (reactor)
        self._poller: select.poll | None = None  # the worker's, for a full send buffer

    def __repr__(self) -> str:
        return f"<Connection id={self.id} peer={self.peer} {self.protocol.name}>"

    def wake(self) -> None:
        """Tell the worker there is something on ``inbox`` (any thread)."""
        try:
            self._signal.release()
        except RuntimeError:
            pass  # already signalled and not yet consumed: one wake-up is enough

    def wait(self) -> None:
        """Block the worker until ``wake`` has been called since the last wait."""
        self._signal.acquire()

    def send_all(self, data: bytes) -> bool:
        """Send everything (worker thread). False if the peer is gone."""
        sock = self.sock
        view = memoryview(data)
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                self._wait_writable()
                continue
            except OSError as exc:
                log.debug("%r: send failed: %s", self, exc)
                return False
            view = view[sent:]
        return True

    def _wait_writable(self) -> None:
        # The socket is non-blocking because the reactor shares it; when the
        # kernel's send buffer is full this worker waits for room on its own
        # (it has nothing else to do). Shutdown of the socket ends the wait.
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.fd, select.POLLOUT)
        self._poller.poll()


def _address(addr: object) -> str:
    if isinstance(addr, tuple):
        return f"{addr[0]}:{addr[1]}"
    return str(addr)


def _kill(conn: Connection) -> None:
    """End ``conn`` from any thread (CLIENT KILL): its worker finds EOF
    before anything still queued, drops the rest, and hands the socket
    back to the reactor to close, as for a client that hung up."""
    conn.inbox.appendleft(EOF)
    conn.wake()


def serve(conn: Connection, dispatcher: Dispatcher, state, request_close, request_resume) -> None:
    """The worker's loop for one connection: run its requests until it ends.

    ``request_close(conn)`` and ``request_resume(conn)`` hand the socket back
    to the reactor (to close it, or to read from it again after a pause).
    """
    try:
        local = _address(conn.sock.getsockname())
    except OSError:
        local = ""
    session = Session(dispatcher.keyspace, conn.id, server=state, peer=_address(conn.peer), local=local)
    session.fd = conn.fd
    session.kill = lambda: _kill(conn)
    encode = conn.protocol.encode_reply
    execute = dispatcher.execute
    inbox = conn.inbox
    state.add_client(session)
    try:
        if conn.protocol.greeting and not conn.send_all(conn.protocol.greeting):
            return
        done = False
        while not done:
            if not inbox:
                conn.wait()
            out = []
            size = 0
            while inbox:
                item = inbox.popleft()
                if type(item) is list:
                    reply = encode(execute(session, item), session.resp)
                    out.append(reply)
                    if session.closing:
                        done = True
                        break
                    size += len(reply)
                    if size >= REPLY_BATCH_BYTES:
                        break  # send these first; the rest of inbox waits its turn
                elif item is EOF:
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
            if out:
                state.total_commands_processed += len(out)
                if not conn.send_all(b"".join(out)):
                    break
            if conn.paused and not done and not inbox:
                request_resume(conn)
    finally:
        state.remove_client(session)
        request_close(conn)
