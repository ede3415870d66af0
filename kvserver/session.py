"""Per-client state that commands read and change.

A ``Session`` belongs to one connection (or to the log replay) and is only
ever used by one thread at a time: the connection's worker.
"""

from __future__ import annotations

import time

from kvserver.store import Database, Keyspace


class Session:
    __slots__ = (
        "keyspace",
        "server",
        "db",
        "now",
        "effects",
        "closing",
        "monitoring",
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
        "kill",
        "output",
        "multi",
        "multi_failed",
        "watches",
        "group",
        "dispatcher",
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
        self.closing = False  # QUIT sets it: reply, then close
        # MONITOR sets it (and closing, to end the worker's request loop):
        # the connection now gets the feed (connection._serve_monitor).
        self.monitoring = False
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
        # Set by the connection's worker (connection.serve): ends this
        # client's connection from any thread, dropping what it has queued
        # (CLIENT KILL). None for sessions with no connection.
        self.kill = None
        # Set by the worker too: () -> (chunks, bytes) of replies the kernel
        # has not taken yet, for CLIENT LIST's oll and omem.
        self.output = _NO_OUTPUT
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

    def log(self, *args: bytes) -> None:
        """Record one effect of the running write command for the log.

        Commands log what they did, not what they were asked: a relative TTL
        becomes an absolute PEXPIREAT, a TTL already in the past becomes DEL.
        """
        self.effects.append(list(args))


def _NO_OUTPUT() -> tuple[int, int]:
    return 0, 0
