"""Per-client state that commands read and change.

A ``Session`` belongs to one connection (or to the log replay) and is only
ever used by one thread at a time: the connection's worker.

What a command may do to its *own connection* is one typed object,
``session.conn`` (a ``ClientHandle``): close it after the reply, push data
to it, switch its mode, kill it, read its output figures. The connection
(client.py ``Connection``) implements it; a session with no connection (the
log replay, tests) gets a ``DetachedHandle``, which records what was asked.
"""

from __future__ import annotations

import time

from kvserver.store import Database, Keyspace


# A connection's modes (ClientHandle.mode): what its request loop does with
# what the client sends and what others push to it (client.py).
NORMAL = "normal"  # request -> reply
MONITOR = "monitor"  # MONITOR: gets the feed; commands that touch keys are refused
SUBSCRIBED = "subscribed"  # (P|S)SUBSCRIBE: gets messages; RESP2 allows only a few commands
# A blocked client (BLPOP and friends, to come) will be a fourth mode: its
# worker waits on its own thread for a key to be ready, with a timeout,
# woken by other threads, CLIENT UNBLOCK/KILL or shutdown (see client.py).


class ClientHandle:
    """What a command may do to its own connection (``session.conn``).

    Commands call these from the connection's worker thread, except
    ``push`` and ``kill``, which any thread may call. The attributes are
    the connection loop's to read: ``closing`` (close once this reply is
    sent), ``mode`` (one of NORMAL, MONITOR, SUBSCRIBED).
    """

    __slots__ = ()

    def close_after_reply(self) -> None:
        """End the connection once the running command's reply is sent
        (QUIT, CLIENT KILL of oneself, SHUTDOWN)."""
        raise NotImplementedError

    def enter_mode(self, mode: str) -> None:
        """Switch the connection's mode, from the next request on."""
        raise NotImplementedError

    def push(self, reply: object, size: int = 0) -> None:
        """Queue ``reply`` for the client, out of band (a MONITOR line, a
        pub/sub message; ``size``: its bytes, roughly, for the output
        limits). Any thread; never blocks."""
        raise NotImplementedError

    def kill(self) -> None:
        """End the connection now, dropping what is queued (CLIENT KILL).
        Any thread."""
        raise NotImplementedError

    def output_stats(self) -> tuple[int, int]:
        """(chunks, bytes) of output the kernel has not taken yet, for
        CLIENT LIST's oll and omem."""
        raise NotImplementedError


class DetachedHandle(ClientHandle):
    """The handle of a session with no connection (log replay, tests):
    records what was asked, for whoever looks."""

    __slots__ = ("closing", "mode", "pushed", "killed")

    def __init__(self) -> None:
        self.closing = False
        self.mode = NORMAL
        self.pushed: list = []
        self.killed = False

    def close_after_reply(self) -> None:
        self.closing = True

    def enter_mode(self, mode: str) -> None:
        self.mode = mode

    def push(self, reply: object, size: int = 0) -> None:
        self.pushed.append(reply)

    def kill(self) -> None:
        self.killed = True

    def output_stats(self) -> tuple[int, int]:
        return 0, 0


class Session:
    __slots__ = (
        "keyspace",
        "server",
        "db",
        "now",
        "effects",
        "conn",
        "subscriptions",
        "id",
        "loading",
        "resp",
        "authenticated",
        "name",
        "peer",
        "local",
        "created",
        "last_command",
        "last_active",
        "lib_name",
        "lib_ver",
        "fd",
        "multi",
        "multi_failed",
        "watches",
        "group",
        "dispatcher",
        "waiter",
        "hangup",
        "tracking",
        "batch",
    )

    def __init__(
        self,
        keyspace: Keyspace,
        client_id: int = 0,
        *,
        loading: bool = False,
        server: object | None = None,
        peer: str = "",
        local: str = "",
        dispatcher: object | None = None,
    ) -> None:
        self.keyspace = keyspace
        # The Dispatcher that runs this session's commands: EXEC and scripts
        # run their commands through it (Dispatcher.run_atomic).
        self.dispatcher = dispatcher
        self.server = server  # the ServerState (state.py); None during replay
        self.db: Database = keyspace.dbs[0]  # SELECT changes it
        self.now = 0  # ms; the dispatcher sets it before each command
        # What the running write command asks to be logged: its *effects*,
        # one argument list per record (see Session.log).
        self.effects: list[list[bytes]] = []
        # Its connection, as commands may act on it (see ClientHandle).
        self.conn: ClientHandle = DetachedHandle()
        # Pub/sub: this client's channels, patterns and shard channels
        # (pubsub.Subscriptions); None until it first subscribes.
        self.subscriptions = None
        self.id = client_id
        self.loading = loading  # replaying the log (see commands/keyspace.py)
        self.resp = 2  # RESP protocol version; HELLO 3 switches to RESP3
        # False until AUTH succeeds, when the server has a password.
        self.authenticated = server is None or not getattr(server.config, "requirepass", None)
        # For CLIENT LIST and INFO:
        self.name = b""
        self.peer = peer  # "ip:port" of the client
        self.local = local  # "ip:port" it connected to
        self.created = time.time()
        self.last_active = self.created
        self.last_command = "NULL"  # full name ("client|list"); the dispatcher sets it
        self.lib_name = b""
        self.lib_ver = b""
        self.fd = -1  # the socket's descriptor, for CLIENT LIST
        # MULTI: the commands queued for EXEC, as (Command, args); None when
        # not in a transaction. multi_failed: one was refused while queuing,
        # so EXEC must answer EXECABORT.
        self.multi: list | None = None
        self.multi_failed = False
        # WATCH: this client's watched keys (store.Watches), None if none.
        self.watches = None
        # Inside Dispatcher.run_atomic: the effects of the unit so far, as
        # (database index, records); None otherwise.
        self.group: list | None = None
        # Blocking commands (kvserver/blocking.py): the Waiter while this
        # client is blocked on keys (CLIENT LIST flags=b), and whether its
        # connection is ending (any thread sets it: blocking.hang_up), which
        # ends a wait and keeps a new one from starting.
        self.waiter = None
        self.hangup = False
        # CLIENT TRACKING: this client's settings (tracking.ClientTracking)
        # while it is on, else None.
        self.tracking = None
        # While its worker runs a pipelined batch of its requests: the
        # dispatch.Batch whose commands share one log append; else None.
        self.batch = None

    def log(self, *args: bytes) -> None:
        """Record one effect of the running write command for the log.

        Commands log what they did, not what they were asked: a relative TTL
        becomes an absolute PEXPIREAT, a TTL already in the past becomes DEL.
        """
        self.effects.append(list(args))
