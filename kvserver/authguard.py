"""What a wrong password costs: a bound on guesses, and on log lines.

A delay per failed AUTH slows one connection; an attacker opens a thousand
(6,753 guesses a second, and a WARNING line for each). ``AuthGuard`` bounds
the guessing rate whatever the number of connections: failed attempts draw
on two token buckets, one for the client's address and one for the whole
server. While either is empty, AUTH (and HELLO ... AUTH) is answered
WRONGPASS without the password even being compared, so no guess is tried
and the attacker learns nothing; refused attempts use no tokens, so one
address at its limit does not use up everyone's. The cost: during an
attack, a client from the same address (or anyone, once the server-wide
bucket is empty) with the right password is refused too until the bucket
refills, about a second.

Logging: the first failure from an address is logged at once with the
client's address; further ones from that address are counted and logged as
one line a minute at most ("N failed AUTH attempts from ADDR in the last
S seconds"), written by the next failure from there once the minute is up.

The clock is injected (``clock``, seconds); one short lock guards the
buckets and counters, taken once per failed or refused AUTH, never for a
successful one that found tokens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("kvserver.commands.connection")  # where failed AUTHs were always logged

# Failed AUTHs allowed per second from one client address, and in a burst:
# more than any person or misconfigured client retrying needs, a few hundred
# thousand times too few for guessing a password.
FAILURES_PER_SECOND_PER_ADDRESS = 10.0
FAILURE_BURST_PER_ADDRESS = 20
# The same for the whole server, so that many addresses (an IPv6 range) do
# not multiply the rate.
FAILURES_PER_SECOND = 100.0
FAILURE_BURST = 200
# How often, at most, a line is logged for failures from one address.
LOG_INTERVAL_S = 60.0
# Addresses whose buckets are kept; past this, those idle longest (full
# buckets and nothing left to log) are forgotten first, so a spray of
# addresses cannot grow the table without bound.
MAX_TRACKED_ADDRESSES = 10_000


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.at = now

    def refill(self, now: float, rate: float, burst: int) -> float:
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        return self.tokens


class _Address:
    __slots__ = ("bucket", "logged_at", "unlogged")

    def __init__(self, now: float) -> None:
        self.bucket = _Bucket(FAILURE_BURST_PER_ADDRESS, now)
        self.logged_at = now  # when its last line was logged
        self.unlogged = 0  # failures since then


class AuthGuard:
    """Rate limits for failed AUTHs, server-wide and per client address."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        per_address: tuple[float, int] = (FAILURES_PER_SECOND_PER_ADDRESS, FAILURE_BURST_PER_ADDRESS),
        server_wide: tuple[float, int] = (FAILURES_PER_SECOND, FAILURE_BURST),
    ) -> None:
        self._clock = clock
        self._per_address = per_address
        self._server_wide = server_wide
        self._lock = threading.Lock()  # guards the buckets and the address table
        self._global = _Bucket(server_wide[1], clock())
        self._addresses: dict[str, _Address] = {}
        self.refused = 0  # attempts answered without comparing the password

    def may_try(self, host: str) -> bool:
        """Whether an AUTH from ``host`` may have its password compared now."""
        now = self._clock()
        with self._lock:
            if self._global.refill(now, *self._server_wide) < 1:
                self.refused += 1
                return False
            entry = self._addresses.get(host)
            if entry is not None and entry.bucket.refill(now, *self._per_address) < 1:
                self.refused += 1
                return False
        return True

    def failed(self, host: str, peer: str, *, tried: bool = True) -> None:
        """Record a failed AUTH from ``peer`` (its "host:port"): a wrong
        password (``tried``), or one refused by ``may_try`` (only logged:
        an address already at its limit does not use up everyone's)."""
        now = self._clock()
        with self._lock:
            if tried:
                self._global.refill(now, *self._server_wide)
                self._global.tokens = max(0.0, self._global.tokens - 1)
            entry = self._addresses.get(host)
            if entry is None:
                if len(self._addresses) >= MAX_TRACKED_ADDRESSES:
                    self._forget_idle(now)
                entry = self._addresses[host] = _Address(now)
                line = None
                first = True
            else:
                first = False
                entry.unlogged += 1
                line = None
                if now - entry.logged_at >= LOG_INTERVAL_S:
                    line = (entry.unlogged, now - entry.logged_at)
                    entry.logged_at = now
                    entry.unlogged = 0
            if tried:
                entry.bucket.refill(now, *self._per_address)
                entry.bucket.tokens = max(0.0, entry.bucket.tokens - 1)
        # Logging outside the lock: a slow stderr must not hold other AUTHs.
        if first:
            log.warning("failed AUTH from %s", peer)
        elif line is not None:
            log.warning("%d failed AUTH attempts from %s in the last %d seconds", line[0], host, line[1])

    def _forget_idle(self, now: float) -> None:
        # Lock held. Oldest first (dicts keep insertion order).
        rate, burst = self._per_address
        for host in list(self._addresses):
            entry = self._addresses[host]
            if entry.bucket.refill(now, rate, burst) >= burst and not entry.unlogged:
                del self._addresses[host]
        while len(self._addresses) >= MAX_TRACKED_ADDRESSES:
            del self._addresses[next(iter(self._addresses))]


def host_of(peer: str) -> str:
    """The address part of "host:port" ("[::1]:6379" -> "[::1]")."""
    host, sep, _ = peer.rpartition(":")
    return host if sep else peer
