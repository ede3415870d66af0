"""Client-side caching (CLIENT TRACKING): who may hold which key, and the
invalidation messages that tell them a key changed. Redis's tracking.c.

One ``Tracking`` per keyspace, made when a first client turns tracking on
and dropped when the last turns it off (``Keyspace.set_tracking``): while
nobody tracks, every database's ``tracking`` is None and a change to a key
costs one truth test, as for WATCH.

* Default mode: ``table`` maps a key to the ids of the clients that read it
  while tracking (Redis's TrackingTable; keys are names, whatever the
  database, as in Redis). A change to the key sends each of them one
  ``invalidate`` message and forgets the key: the next read remembers it
  again. Ids, not sessions, so a client gone does not stay alive here; an
  id whose client has gone, or turned tracking off, is skipped.
* BCAST mode: ``prefixes`` maps a prefix to the sessions that asked for it.
  A changed key with the prefix is noted in ``pending`` and, once the
  command (or EXEC, or script) is over, ``broadcast`` sends each session one
  message per prefix with the keys changed, sorted, as Redis does before it
  sleeps (so MSET a 1 b 2 is one message).
* NOLOOP: a client is not told of its own changes. The change is made on
  the thread of the connection that made it (client.py: one worker serves
  a connection from start to end), so "own" is "the same thread".
* Delivery is ``conn.push`` (an append to the client's outbox): the client's
  worker sends it after the reply it is running, so a client that changes a
  key it tracks gets the reply first, then the invalidation, as in Redis.
  RESP3 clients get ``>2 invalidate [keys]`` (a null for FLUSHDB/FLUSHALL);
  with REDIRECT, the other client gets it, or, if it speaks RESP2 and is
  subscribed, a ``message`` on ``__redis__:invalidate``; a redirect to a
  client gone sends ``tracking-redir-broken`` to a RESP3 client instead.

Every method runs with the keyspace's write lock held: that orders a
tracked read (dispatch.py runs it under the lock, then remembers its keys)
against the writes that invalidate them, so no change slips in between a
read and its remembering.
"""

from __future__ import annotations

import threading

from kvserver.protocol import Push
from kvserver.session import SUBSCRIBED

INVALIDATE = b"invalidate"
REDIR_BROKEN = b"tracking-redir-broken"
MESSAGE = b"message"
CHANNEL = b"__redis__:invalidate"  # RESP2 redirection's channel, as Redis names it
PUSH_OVERHEAD_BYTES = 32  # the framing of a message, for the output limits

_get_ident = threading.get_ident


class ClientTracking:
    """One client's tracking settings (``session.tracking`` while on)."""

    __slots__ = ("bcast", "optin", "optout", "noloop", "caching", "redirect", "broken", "prefixes", "thread")

    def __init__(self) -> None:
        self.bcast = self.optin = self.optout = self.noloop = False
        # CLIENT CACHING YES (optin) / NO (optout) given for the next command.
        self.caching = False
        self.redirect = 0  # the client id invalidations go to; 0: this client
        self.broken = False  # the redirect's client was gone at a send
        self.prefixes: dict[bytes, None] = {}  # BCAST prefixes ("" for all keys)
        self.thread = 0  # the connection's worker thread, for NOLOOP

    def remembers(self) -> bool:
        """Whether the next read's keys are remembered (OPTIN needs CACHING
        YES, OPTOUT skips with CACHING NO)."""
        if self.optin:
            return self.caching
        if self.optout:
            return not self.caching
        return True


class Tracking:
    def __init__(self, clients: dict) -> None:
        self.clients = clients  # client id -> Session (ServerState.clients)
        self.table: dict[bytes, dict[int, None]] = {}
        self.prefixes: dict[bytes, dict] = {}  # prefix -> {session: None}
        self.pending: dict[bytes, dict[bytes, int]] = {}  # prefix -> {key: writer's thread}
        self.sessions: dict = {}  # the sessions with tracking on

    # -- turning it on and off ------------------------------------------------------

    def enable(self, session, redirect: int, options: set[bytes], prefixes: list[bytes]) -> None:
        """CLIENT TRACKING ON (options already checked): Redis's enableTracking,
        which keeps CACHING and adds the prefixes to those it had."""
        mine = session.tracking
        if mine is None:
            mine = session.tracking = ClientTracking()
            self.sessions[session] = None
        mine.thread = _get_ident()
        mine.redirect = redirect
        mine.broken = False
        mine.bcast = b"BCAST" in options
        mine.optin = b"OPTIN" in options
        mine.optout = b"OPTOUT" in options
        mine.noloop = b"NOLOOP" in options
        if mine.bcast:
            for prefix in prefixes or [b""]:
                if prefix not in mine.prefixes:
                    mine.prefixes[prefix] = None
                    self.prefixes.setdefault(prefix, {})[session] = None

    def disable(self, session) -> None:
        """Tracking off (CLIENT TRACKING OFF, RESET, the client's end). The
        keys it read stay in the table until they change (as in Redis)."""
        mine = session.tracking
        if mine is None:
            return
        for prefix in mine.prefixes:
            sessions = self.prefixes.get(prefix)
            if sessions is not None:
                sessions.pop(session, None)
                if not sessions:
                    del self.prefixes[prefix]
                    self.pending.pop(prefix, None)
        session.tracking = None
        self.sessions.pop(session, None)

    # -- reads ----------------------------------------------------------------------

    def remember(self, client_id: int, keys: list[bytes]) -> None:
        """``client_id`` read ``keys``: tell it when they change."""
        table = self.table
        for key in keys:
            ids = table.get(key)
            if ids is None:
                table[key] = {client_id: None}
            else:
                ids[client_id] = None

    # -- changes --------------------------------------------------------------------

    def invalidate(self, key: bytes) -> None:
        """``key`` changed (store.py's change paths; Redis's trackingInvalidateKey)."""
        if self.prefixes:
            writer = _get_ident()
            for prefix in self.prefixes:
                if key.startswith(prefix):
                    self.pending.setdefault(prefix, {})[key] = writer
        ids = self.table.pop(key, None)
        if not ids:
            return
        writer = _get_ident()
        clients = self.clients
        for client_id in ids:
            target = clients.get(client_id)
            if target is None:
                continue
            mine = target.tracking
            if mine is None or mine.bcast:  # off now, or switched to BCAST since
                continue
            if mine.noloop and mine.thread == writer:
                continue
            self._send(target, mine, [key])

    def flushed(self) -> None:
        """FLUSHDB / FLUSHALL: every tracking client gets one null (all keys
        gone), and the table starts again (Redis's trackingInvalidateKeysOnFlush)."""
        for session in list(self.sessions):
            self._send(session, session.tracking, None)
        self.table.clear()

    def broadcast(self) -> None:
        """Send the BCAST messages for the keys changed since the last call
        (Redis's trackingBroadcastInvalidationMessages)."""
        pending, self.pending = self.pending, {}
        for prefix in sorted(pending):
            changed = pending[prefix]
            keys = sorted(changed)
            for session in list(self.prefixes.get(prefix, ())):
                mine = session.tracking
                if mine is None:
                    continue
                if mine.noloop:
                    own = mine.thread
                    mine_keys = [key for key in keys if changed[key] != own]
                    if mine_keys:
                        self._send(session, mine, mine_keys)
                else:
                    self._send(session, mine, keys)

    # -- delivery -------------------------------------------------------------------

    def _send(self, session, mine: ClientTracking, keys: list[bytes] | None) -> None:
        """One invalidation for ``session``'s cache (Redis's sendTrackingMessage)."""
        size = PUSH_OVERHEAD_BYTES + (sum(map(len, keys)) if keys else 0)
        target = session
        if mine.redirect:
            target = self.clients.get(mine.redirect)
            if target is None:
                mine.broken = True
                if session.resp == 3:
                    session.conn.push(Push([REDIR_BROKEN, mine.redirect]), PUSH_OVERHEAD_BYTES)
                return
            if target.resp != 3:
                if target.conn.mode is SUBSCRIBED:
                    target.conn.push(Push([MESSAGE, CHANNEL, keys]), size + len(CHANNEL))
                return
        elif session.resp != 3:
            return  # RESP2 has no pushes on a connection that is not subscribed
        target.conn.push(Push([INVALIDATE, keys]), size)
