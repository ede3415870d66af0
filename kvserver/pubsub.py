"""The server's pub/sub registry: who is subscribed to what, and delivery.

One ``PubSub`` per server (``ServerState.pubsub``). Subscribers are
sessions; a message is delivered by ``session.conn.push`` (client.py): an
append to the subscriber's outbox and a wake-up of its worker, never a
send, so a publisher never waits for a slow subscriber (whose output limits,
Redis's ``pubsub`` class, disconnect it instead).

One lock guards the registry, held while a publish pushes to every
receiver and while a client subscribes or unsubscribes. That keeps, as in
Redis, each publisher's messages in order at every subscriber, and no
message for a channel before its subscribe confirmation (the confirmation
is the command's reply; a message pushed once the subscription is in place
goes out after it). Pushing is cheap (an append), so the lock is short.

Shard channels (SSUBSCRIBE, SPUBLISH) are a separate namespace, as in
Redis: with one node, they behave as plain channels of their own.
"""

from __future__ import annotations

import threading

from kvserver.commands.glob import compile_pattern
from kvserver.protocol import Push

MESSAGE = b"message"
PMESSAGE = b"pmessage"
SMESSAGE = b"smessage"
# Roughly what a message costs beside its channel and payload (the RESP
# framing), for the output limits' accounting.
PUSH_OVERHEAD_BYTES = 32


class Subscriptions:
    """One client's channels, patterns and shard channels, in the order it
    subscribed (dicts used as ordered sets)."""

    __slots__ = ("channels", "patterns", "shard")

    def __init__(self) -> None:
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard: dict[bytes, None] = {}

    def count(self) -> int:
        """What (P)SUBSCRIBE and (P)UNSUBSCRIBE report: channels + patterns."""
        return len(self.channels) + len(self.patterns)

    def total(self) -> int:
        """Every subscription: non-zero means the client is in pub/sub mode."""
        return len(self.channels) + len(self.patterns) + len(self.shard)


# What each kind of subscription is called in a Subscriptions, and the
# registry's table for it.
CHANNELS, PATTERNS, SHARD = "channels", "patterns", "shard"


class PubSub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # name -> the subscribed sessions (insertion-ordered, as a set).
        self.channels: dict[bytes, dict] = {}
        self.shard: dict[bytes, dict] = {}
        # pattern -> (its matcher, the subscribed sessions).
        self.patterns: dict[bytes, tuple] = {}

    # -- subscribing ----------------------------------------------------------------------

    def subscribe(self, session, kind: str, names: list[bytes]) -> list[int]:
        """Subscribe ``session`` to ``names`` (a kind: CHANNELS, PATTERNS or
        SHARD); the count to report after each, as Redis does (a name
        already subscribed is confirmed again, with the same count)."""
        counts = []
        with self._lock:
            mine = session.subscriptions
            if mine is None:
                mine = session.subscriptions = Subscriptions()
            own = getattr(mine, kind)
            for name in names:
                if name not in own:
                    own[name] = None
                    if kind is PATTERNS:
                        entry = self.patterns.get(name)
                        if entry is None:
                            entry = self.patterns[name] = (compile_pattern(name), {})
                        entry[1][session] = None
                    else:
                        getattr(self, kind).setdefault(name, {})[session] = None
                counts.append(len(mine.shard) if kind is SHARD else mine.count())
        return counts

    def unsubscribe(self, session, kind: str, names: list[bytes]) -> list[tuple[bytes | None, int]]:
        """Unsubscribe ``session`` from ``names``, or from every name of
        that kind if none is given; (name, count after) for each, and one
        (None, count) when there was nothing to unsubscribe from."""
        replies: list[tuple[bytes | None, int]] = []
        with self._lock:
            mine = session.subscriptions
            own = getattr(mine, kind) if mine is not None else {}
            targets = names or list(own)
            for name in targets:
                if name in own:
                    del own[name]
                    self._forget(session, kind, name)
                replies.append((name, self._count(mine, kind)))
            if not targets:
                replies.append((None, self._count(mine, kind)))
        return replies

    def unsubscribe_all(self, session) -> None:
        """Drop every subscription of ``session`` (RESET, disconnection)."""
        with self._lock:
            mine = session.subscriptions
            if mine is None:
                return
            for kind in (CHANNELS, PATTERNS, SHARD):
                own = getattr(mine, kind)
                for name in own:
                    self._forget(session, kind, name)
                own.clear()

    def _forget(self, session, kind: str, name: bytes) -> None:
        # Lock held: take ``session`` off the registry's entry for ``name``.
        if kind is PATTERNS:
            entry = self.patterns.get(name)
            if entry is not None:
                entry[1].pop(session, None)
                if not entry[1]:
                    del self.patterns[name]
            return
        table = getattr(self, kind)
        subscribers = table.get(name)
        if subscribers is not None:
            subscribers.pop(session, None)
            if not subscribers:
                del table[name]

    @staticmethod
    def _count(mine: Subscriptions | None, kind: str) -> int:
        if mine is None:
            return 0
        return len(mine.shard) if kind is SHARD else mine.count()

    # -- publishing -----------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes, *, shard: bool = False) -> int:
        """Deliver ``message``; how many receivers got it, counted as Redis
        counts them (a client subscribed to the channel and to a matching
        pattern counts twice)."""
        size = len(channel) + len(message) + PUSH_OVERHEAD_BYTES
        received = 0
        with self._lock:
            subscribers = (self.shard if shard else self.channels).get(channel)
            if subscribers:
                push = Push([SMESSAGE if shard else MESSAGE, channel, message])
                for session in subscribers:
                    session.conn.push(push, size)
                received += len(subscribers)
            if not shard:
                for pattern, (match, sessions) in self.patterns.items():
                    if match(channel):
                        push = Push([PMESSAGE, pattern, channel, message])
                        for session in sessions:
                            session.conn.push(push, size + len(pattern))
                        received += len(sessions)
        return received

    # -- PUBSUB's questions ---------------------------------------------------------------

    def active(self, pattern: bytes | None, *, shard: bool = False) -> list[bytes]:
        """Channels with at least one subscriber, matching ``pattern``."""
        with self._lock:
            names = list(self.shard if shard else self.channels)
        if pattern is None:
            return names
        match = compile_pattern(pattern)
        return [name for name in names if match(name)]

    def numsub(self, channels: list[bytes], *, shard: bool = False) -> list:
        """channel, count, channel, count... (a flat array, in RESP3 too)."""
        with self._lock:
            table = self.shard if shard else self.channels
            return [x for name in channels for x in (name, len(table.get(name, ())))]

    def numpat(self) -> int:
        return len(self.patterns)
