"""Client-side caching (kvserver/tracking.py, CLIENT TRACKING and its kin in
commands/connection.py): invalidation pushes byte for byte beside a real
redis-server (RESP3 pushes; RESP2 redirection to a client subscribed to
``__redis__:invalidate``), BCAST prefixes, OPTIN/OPTOUT with CLIENT CACHING,
NOLOOP, TRACKINGINFO / GETREDIR, FLUSHALL's null, a key changed in MULTI,
expiry, the cost while nobody tracks, and redis-py's client-side cache.

"No push" is checked by a PING after the change: a push already sent
arrives before its PONG, on both servers.
"""

from __future__ import annotations

import pytest
import redis
from redis.cache import CacheConfig

from tests.resp_client import RawRespClient
from tests.support import FakeClock, wait_for

PONG = b"+PONG\r\n"
OK = b"+OK\r\n"


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def invalidate(*keys: bytes) -> bytes:
    """The RESP3 push Redis sends; no keys: FLUSHALL's null."""
    body = b"*%d\r\n%s" % (len(keys), b"".join(map(bulk, keys))) if keys else b"_\r\n"
    return b">2\r\n$10\r\ninvalidate\r\n" + body


def message(*keys: bytes) -> bytes:
    """The RESP2 pub/sub message a redirect target gets; no keys: a null."""
    body = b"*%d\r\n%s" % (len(keys), b"".join(map(bulk, keys))) if keys else b"$-1\r\n"
    return b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" + body


class Pair:
    """One client on kvserver and one on redis-server, sent the same commands."""

    def __init__(self, kv_port: int, redis_port: int) -> None:
        self.sides = (RawRespClient(kv_port), RawRespClient(redis_port))

    def both(self, *args, frames: int = 1) -> bytes:
        """Send ``args`` on both; read ``frames`` frames from each (a reply
        and the pushes around it); assert them equal; return them."""
        for client in self.sides:
            client.send(*args)
        return self.read(frames)

    def each(self, kv_args: tuple, redis_args: tuple, frames: int = 1) -> tuple[bytes, bytes]:
        """Different arguments on each side (client ids differ)."""
        self.sides[0].send(*kv_args)
        self.sides[1].send(*redis_args)
        return tuple(b"".join(c.read_reply() for _ in range(frames)) for c in self.sides)

    def read(self, frames: int = 1) -> bytes:
        ours, theirs = (b"".join(c.read_reply() for _ in range(frames)) for c in self.sides)
        assert ours == theirs, f"kvserver {ours!r} != redis {theirs!r}"
        return ours

    def hello(self, resp: str = "3") -> None:
        """HELLO (its reply holds the client id, which differs)."""
        self.each(("HELLO", resp), ("HELLO", resp))

    def ids(self) -> tuple[int, int]:
        return tuple(int(c.call("CLIENT", "ID")[1:-2]) for c in self.sides)

    def close(self) -> None:
        for client in self.sides:
            client.close()


@pytest.fixture
def pairs(start_server, redis_server_port):
    """``pairs(n)``: n fresh client pairs on a new kvserver and a flushed redis-server."""
    server = start_server()
    made: list[Pair] = []

    def make(n: int) -> list[Pair]:
        new = [Pair(server.resp_port, redis_server_port) for _ in range(n)]
        made.extend(new)
        return new

    first = make(1)[0]
    first.sides[1].call("FLUSHALL")
    made.clear()
    first.close()
    yield make
    for pair in made:
        pair.close()


def test_default_mode_resp3_pushes_as_redis(pairs):
    a, b = pairs(2)
    a.hello()
    assert a.both("CLIENT", "TRACKING", "on") == OK
    a.both("GET", "k")
    a.both("MGET", "k", "j")
    assert b.both("SET", "k", "1") == OK
    assert a.both("PING", frames=2) == invalidate(b"k") + PONG
    b.both("SET", "k", "2")
    assert a.both("PING") == PONG  # forgotten once invalidated: read again to be told again
    a.both("GET", "k")
    # Its own change: the reply first, then the invalidation.
    assert a.both("SET", "k", "3", frames=2) == OK + invalidate(b"k")
    a.both("GET", "k")
    b.both("MSET", "k", "4", "j", "1")  # j was read by MGET: one push each
    assert a.both("PING", frames=3) == invalidate(b"k") + invalidate(b"j") + PONG
    b.both("DEL", "k", "j")  # read neither since
    assert a.both("PING") == PONG
    # Writes by others to keys nobody read: nothing.
    b.both("SET", "other", "1")
    assert a.both("PING") == PONG


def test_noloop_and_commands_that_only_read(pairs):
    a, b = pairs(2)
    a.hello()
    a.both("CLIENT", "TRACKING", "on", "NOLOOP")
    for args in (("GET", "n"), ("EXISTS", "e"), ("TYPE", "t"), ("SINTERCARD", "2", "s1", "s2"), ("GETDEL", "gd")):
        a.both(*args)
    assert a.both("SET", "n", "1") == OK  # its own change: no push with NOLOOP
    assert a.both("PING") == PONG
    b.both("MSET", "n", "2", "e", "1", "t", "1", "s1", "x", "s2", "x", "gd", "1")
    # n was forgotten by a's own SET; GETDEL writes, so it is not tracked.
    assert a.both("PING", frames=5) == (
        invalidate(b"e") + invalidate(b"t") + invalidate(b"s1") + invalidate(b"s2") + PONG
    )
    a.both("EVAL", "return redis.call('get', KEYS[1])", "1", "lua")
    b.both("SET", "lua", "1")
    assert a.both("PING", frames=2) == invalidate(b"lua") + PONG


def test_resp2_redirect_to_a_subscribed_client(pairs):
    a, b, c = pairs(3)
    kv_c, redis_c = c.ids()
    c.both("SUBSCRIBE", "__redis__:invalidate")
    assert a.each(("CLIENT", "TRACKING", "on", "REDIRECT", kv_c), ("CLIENT", "TRACKING", "on", "REDIRECT", redis_c)) == (OK, OK)
    assert a.each(("CLIENT", "GETREDIR",), ("CLIENT", "GETREDIR")) == (b":%d\r\n" % kv_c, b":%d\r\n" % redis_c)
    a.both("GET", "k")
    b.both("SET", "k", "1")
    assert c.read() == message(b"k")
    a.both("GET", "k")
    b.both("FLUSHALL")
    assert c.read() == message()  # the tracking client's RESP2 null
    # BCAST, redirected too.
    a.both("CLIENT", "TRACKING", "off")
    a.each(("CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", kv_c), ("CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", redis_c))
    b.both("MSET", "x", "1", "y", "2")
    assert c.read() == message(b"x", b"y")


def test_redirect_to_a_client_gone(pairs):
    a, b, gone = pairs(3)
    kv_id, redis_id = gone.ids()
    a.hello()
    # Checked when asked: an id that does not exist is refused.
    a.both("CLIENT", "TRACKING", "on", "REDIRECT", "999999")
    a.each(("CLIENT", "TRACKING", "on", "REDIRECT", kv_id), ("CLIENT", "TRACKING", "on", "REDIRECT", redis_id))
    a.both("GET", "k")
    gone.close()
    for side, client_id in zip(b.sides, (kv_id, redis_id)):
        wait_for(lambda: b"id=%d " % client_id not in side.call("CLIENT", "LIST"), "the redirect target gone")
    b.both("SET", "k", "1")
    broken = b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n"
    assert a.each(("PING",), ("PING",), frames=2) == (broken % kv_id + PONG, broken % redis_id + PONG)
    ours, theirs = a.each(("CLIENT", "TRACKINGINFO"), ("CLIENT", "TRACKINGINFO"))
    assert ours.replace(b":%d" % kv_id, b":ID") == theirs.replace(b":%d" % redis_id, b":ID")
    assert b"broken_redirect" in ours


def test_bcast_prefixes_and_noloop(pairs):
    a, b = pairs(2)
    a.hello()
    assert a.both("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p", "PREFIX", "q") == OK
    b.both("MSET", "p1", "1", "q1", "1", "p2", "2", "zz", "1")
    # One message per prefix, its keys sorted, as Redis batches them.
    assert a.both("PING", frames=3) == invalidate(b"p1", b"p2") + invalidate(b"q1") + PONG
    b.both("SET", "p1", "again")  # BCAST never forgets: every change is sent
    assert a.both("PING", frames=2) == invalidate(b"p1") + PONG
    assert a.both("MSET", "p3", "1", "zz", "2", frames=2) == OK + invalidate(b"p3")
    # ON again adds prefixes and replaces the options: NOLOOP now.
    a.both("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "r", "NOLOOP")
    a.both("CLIENT", "TRACKINGINFO")
    assert a.both("MSET", "p1", "1", "r1", "1") == OK
    b.both("MSET", "p1", "1", "r1", "1")
    assert a.both("PING", frames=3) == invalidate(b"p1") + invalidate(b"r1") + PONG
    # Every key, with no prefix given.
    a.both("CLIENT", "TRACKING", "off")
    a.both("CLIENT", "TRACKING", "on", "BCAST")
    b.both("DEL", "zz")
    assert a.both("PING", frames=2) == invalidate(b"zz") + PONG


def test_optin_and_optout(pairs):
    a, b = pairs(2)
    a.hello()
    a.both("CLIENT", "TRACKING", "on", "OPTIN")
    a.both("GET", "i1")  # not opted in
    a.both("CLIENT", "CACHING", "yes")
    a.each(("CLIENT", "ID"), ("CLIENT", "ID"))  # CLIENT commands keep the opt-in for the next command
    a.both("GET", "i2")
    a.both("GET", "i3")  # one command only
    a.both("CLIENT", "CACHING", "yes")
    a.both("MULTI")
    a.both("GET", "i4")
    a.both("GET", "i5")
    a.both("EXEC")  # the whole transaction
    a.both("GET", "i6")
    b.both("MSET", *[x for i in range(1, 7) for x in (f"i{i}", "v")])
    assert a.both("PING", frames=4) == invalidate(b"i2") + invalidate(b"i4") + invalidate(b"i5") + PONG
    a.both("CLIENT", "TRACKING", "off")
    a.both("CLIENT", "TRACKING", "on", "OPTOUT")
    a.both("CLIENT", "CACHING", "no")
    a.both("GET", "o1")  # opted out
    a.both("GET", "o2")
    b.both("MSET", "o1", "1", "o2", "2")
    assert a.both("PING", frames=2) == invalidate(b"o2") + PONG


def test_trackinginfo_getredir_and_errors(pairs):
    (a,) = pairs(1)
    for resp in ("2", "3"):
        a.hello(resp)
        a.both("CLIENT", "TRACKINGINFO")
        a.both("CLIENT", "GETREDIR")
        for args in (
            ("CLIENT", "TRACKING", "on", "PREFIX", "x"),
            ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a"),
            ("CLIENT", "TRACKING", "on", "REDIRECT", "x"),
            ("CLIENT", "TRACKING", "on", "REDIRECT", "999999"),
            ("CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"),
            ("CLIENT", "TRACKING", "on", "BCAST", "OPTIN"),
            ("CLIENT", "TRACKING", "maybe"),
            ("CLIENT", "TRACKING", "on", "foo"),
            ("CLIENT", "TRACKING"),
            ("CLIENT", "CACHING", "yes"),
            ("CLIENT", "CACHING"),
            ("CLIENT", "GETREDIR", "x"),
        ):
            assert a.both(*args).startswith(b"-ERR")
        a.both("CLIENT", "TRACKING", "on", "OPTIN", "NOLOOP")
        a.both("CLIENT", "GETREDIR")
        a.both("CLIENT", "CACHING", "yes")
        a.both("CLIENT", "TRACKINGINFO")  # on, optin, caching-yes, noloop
        a.both("CLIENT", "TRACKINGINFO")  # CLIENT keeps it
        a.both("GET", "x")
        a.both("CLIENT", "TRACKINGINFO")  # gone after GET
        for args in (
            ("CLIENT", "TRACKING", "on", "OPTOUT"),
            ("CLIENT", "TRACKING", "on", "BCAST"),
            ("CLIENT", "CACHING", "no"),
            ("CLIENT", "CACHING", "maybe"),
        ):
            assert a.both(*args).startswith(b"-ERR")
        a.both("CLIENT", "TRACKING", "off")
        a.both("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "b", "PREFIX", "a")
        a.both("CLIENT", "TRACKINGINFO")  # prefixes sorted
        for prefix in ("a", "ab", "", "b"):
            assert a.both("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", prefix).startswith(b"-ERR Prefix")
        a.both("CLIENT", "TRACKING", "on")
        a.both("RESET")  # tracking off
        a.both("CLIENT", "TRACKINGINFO")


def test_flushall_and_flushdb_send_a_null(pairs):
    a, b = pairs(2)
    a.hello()
    a.both("CLIENT", "TRACKING", "on")
    a.both("GET", "k")
    b.both("FLUSHDB")  # even of an empty database, once
    assert a.both("PING", frames=2) == invalidate() + PONG
    assert a.both("FLUSHALL", frames=2) == OK + invalidate()  # one for all sixteen
    b.both("SET", "k", "1")  # the table was emptied: k is forgotten
    assert a.both("PING") == PONG
    a.both("CLIENT", "TRACKING", "off")
    a.both("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "p")  # BCAST clients too
    b.both("FLUSHALL")
    assert a.both("PING", frames=2) == invalidate() + PONG


def test_key_changed_in_multi(pairs):
    a, b = pairs(2)
    a.hello()
    a.both("CLIENT", "TRACKING", "on")
    a.both("MULTI")
    a.both("GET", "m1")  # read inside EXEC: remembered
    a.both("SET", "m2", "x")
    a.both("EXEC")
    b.both("MULTI")
    b.both("SET", "m1", "x")
    b.both("SET", "m2", "y")
    b.both("EXEC")
    assert a.both("PING", frames=2) == invalidate(b"m1") + PONG
    a.both("GET", "m1")
    a.both("MULTI")
    a.both("SET", "m1", "z")
    a.both("GET", "m1")
    # The EXEC's reply, then the invalidation its SET caused.
    assert a.both("EXEC", frames=2) == b"*2\r\n+OK\r\n$1\r\nz\r\n" + invalidate(b"m1")


def test_expiry_invalidates(start_server):
    clock = FakeClock(1_000_000)
    server = start_server(clock=clock)
    a, b = RawRespClient(server.resp_port), RawRespClient(server.resp_port)
    try:
        a.call("HELLO", "3")
        a.call("CLIENT", "TRACKING", "on")
        b.call("SET", "lazy", "1", "PX", "100")
        b.call("SET", "active", "1", "PX", "100")
        assert a.call("MGET", "lazy", "active") == b"*2\r\n$1\r\n1\r\n$1\r\n1\r\n"
        clock.advance(200)
        assert b.call("GET", "lazy") == b"$-1\r\n"
        # The lazy expiry (b's GET), then the active cycle's, with no command of a's.
        got = {a.read_reply(), a.read_reply()}
        assert got == {invalidate(b"lazy"), invalidate(b"active")}
    finally:
        a.close()
        b.close()


def test_nobody_tracking_costs_one_test(start_server):
    """Once the last tracking client goes, the databases stop looking."""
    server = start_server()
    keyspace = server.server.keyspace
    a = RawRespClient(server.resp_port)
    b = RawRespClient(server.resp_port)
    try:
        assert keyspace.tracking is None and all(db.tracking is None for db in keyspace.dbs)
        a.call("CLIENT", "TRACKING", "on")
        b.call("CLIENT", "TRACKING", "on", "BCAST")
        assert keyspace.tracking is not None and all(db.tracking is keyspace.tracking for db in keyspace.dbs)
        a.call("CLIENT", "TRACKING", "off")
        assert keyspace.tracking is not None
        b.close()  # its end turns it off
        wait_for(lambda: keyspace.tracking is None, "tracking dropped after the last client")
        assert all(db.tracking is None for db in keyspace.dbs)
    finally:
        a.close()


def test_redis_py_client_side_cache(start_server, monkeypatch):
    # redis-py (>= 5.1) caches only for servers that say 7.4 or later, a
    # check by version number: kvserver says 7.0.15, whose tracking is the
    # same protocol, so the test lowers the bar.
    monkeypatch.setattr(redis.connection.CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")
    server = start_server()
    cached = redis.Redis(port=server.resp_port, protocol=3, cache_config=CacheConfig())
    other = redis.Redis(port=server.resp_port)
    try:
        other.set("csc", "one")
        assert cached.get("csc") == b"one"
        assert cached.get_cache().size == 1  # the reply is cached...
        assert cached.get("csc") == b"one"
        other.set("csc", "two")  # ...until another client changes the key
        wait_for(lambda: cached.get("csc") == b"two", "the cached GET invalidated")
    finally:
        cached.close()
        other.close()
