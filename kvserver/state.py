"""Server-wide facts that server commands (INFO, CONFIG, CLIENT, ...) read.

One ``ServerState`` per server. Commands reach it as ``session.server``; it
is None for the log replay, which runs no server commands. Counters are
plain ints bumped without a lock: under the GIL an increment can lose a
count when two threads race, which INFO's figures tolerate (Redis's own
are sampled too); nothing else depends on them.
"""

from __future__ import annotations

import os
import threading
import time

from kvserver.authguard import AuthGuard
from kvserver.config import PUBSUB_OUTPUT_BUFFER_LIMIT, REPLICA_OUTPUT_BUFFER_LIMIT, Config
from kvserver.stats import InstantaneousMetric, SlowLog

# The Redis version kvserver answers as (HELLO, INFO): the one whose replies
# it matches byte for byte, so clients enable what that version has.
REDIS_VERSION = "7.0.15"


class ServerState:
    def __init__(self, config: Config, keyspace, aof) -> None:
        self.config = config
        self.keyspace = keyspace
        self.aof = aof
        self.run_id = os.urandom(20).hex()
        self.started_at = time.time()
        self.tcp_port = 0  # set once the listeners are bound
        self.resp_port = 0
        # id -> Session of every connected client, for CLIENT LIST / INFO.
        # Changed by workers as connections start and end; guarded by
        # clients_lock because CLIENT LIST iterates it.
        self.clients: dict[int, object] = {}
        self.clients_lock = threading.Lock()
        self.total_connections_received = 0
        self.total_commands_processed = 0
        self.rewriter = None  # the AofRewriter (rewrite.py), set by the server
        # SAVE, BGSAVE, LASTSAVE (rdbsave.py), on the keyspace's clock. (Imported
        # here: rdbsave needs REDIS_VERSION from this module.)
        from kvserver.rdbsave import RdbSaver

        self.saver = RdbSaver(
            keyspace, config.rdb_path(), changes=lambda: aof.changes, clock=lambda: keyspace.clock() / 1000
        )
        self.rejected_connections = 0  # turned away (maxclients, protected mode)
        self.worker_threads = lambda: 0  # the pool's size now; set by the server
        self.command_stats: dict[str, list[int]] = {}  # the dispatcher's, set by the server
        # SLOWLOG's entries and settings; the server attaches the dispatcher.
        self.slowlog = SlowLog(config.slowlog_log_slower_than, config.slowlog_max_len)
        # INFO's instantaneous_ops_per_sec, fed by the server's StatsCron.
        self.ops_per_sec = InstantaneousMetric()
        # Bytes received from clients (the reactor adds each recv) and
        # replies produced for them (workers add each batch they write),
        # and their rates: INFO's total_net_*_bytes, instantaneous_*_kbps.
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.input_per_sec = InstantaneousMetric()
        self.output_per_sec = InstantaneousMetric()
        # client-output-buffer-limit: class -> (hard bytes, soft bytes, soft
        # seconds). Workers read their client's class ("pubsub" while it is
        # subscribed, else "normal", monitors too) whenever it is behind;
        # CONFIG SET replaces entries.
        self.client_output_buffer_limits = {
            "normal": config.client_output_buffer_limit,
            "slave": REPLICA_OUTPUT_BUFFER_LIMIT,
            "pubsub": PUBSUB_OUTPUT_BUFFER_LIMIT,
        }
        self.client_output_buffer_limit_disconnections = 0  # INFO stats, as Redis 7.4
        # The channels' subscribers. (Imported here: kvserver.pubsub needs the
        # commands package, whose modules import this one.)
        from kvserver.pubsub import PubSub

        self.pubsub = PubSub()
        # Keyspace notifications go out through it (kvserver/notify.py).
        keyspace.publish = self.pubsub.publish
        # shutdown-timeout (config.py), live: CONFIG SET changes it, the
        # reactor reads it when a shutdown begins.
        self.shutdown_timeout = config.shutdown_timeout_seconds
        # Set when a shutdown begins: what DEBUG SLEEP waits on, so that a
        # sleeping client does not hold the shutdown up.
        self.stopping = threading.Event()
        # () -> None: begin a shutdown as SIGTERM does (SHUTDOWN); the server sets it.
        self.request_shutdown = None
        # Failed AUTH / HELLO AUTH (INFO stats, as Redis 7.2), and the limits
        # on them: guesses per second, per address and server-wide.
        self.acl_access_denied_auth = 0
        self.auth_guard = AuthGuard()

    def add_client(self, session) -> None:
        with self.clients_lock:
            self.clients[session.id] = session
            self.total_connections_received += 1

    def remove_client(self, session) -> None:
        with self.clients_lock:
            self.clients.pop(session.id, None)

    def count_rejected(self) -> None:
        """A connection was turned away (maxclients, protected mode)."""
        self.rejected_connections += 1

    def uptime_seconds(self) -> int:
        return int(time.time() - self.started_at)

    def sessions(self) -> list:
        """A snapshot of the connected clients' sessions, oldest first
        (CLIENT LIST, CLIENT KILL, INFO)."""
        with self.clients_lock:
            return list(self.clients.values())

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: zero the counters INFO's stats section shows."""
        self.total_connections_received = 0
        self.total_commands_processed = 0
        self.rejected_connections = 0
        self.client_output_buffer_limit_disconnections = 0
        self.acl_access_denied_auth = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        for metric in (self.ops_per_sec, self.input_per_sec, self.output_per_sec):
            metric.reset()
        for stats in self.command_stats.values():
            stats[:] = [0, 0, 0, 0]

    def set_appendfsync(self, policy: str) -> None:
        """CONFIG SET appendfsync: the one setting a running server changes.

        The log applies it from its next write (``set_fsync_policy``).
        """
        self.aof.set_fsync_policy(policy)
