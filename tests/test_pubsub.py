"""Pub/sub (commands/pubsub.py, kvserver/pubsub.py, client.py's subscribed
mode): confirmations, messages and PUBSUB's answers byte for byte beside a
real redis-server (a subscriber and a publisher on each side), RESP2's
subscribed-mode rules and RESP3's pushes, the text port's lines, redis-py's
pub/sub (sync, threaded, asyncio; RESP2 and RESP3), and a subscriber that
stops reading: disconnected by the pubsub output limit, never a drag on the
publisher or on the server's memory.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest
import redis
import redis.asyncio

from tests.conftest import REPLY_TIMEOUT_S
from tests.resp_client import RawRespClient
from tests.support import wait_for

MB = 1024 * 1024


class Sides:
    """A subscriber and a publisher on kvserver and on redis-server, sent
    the same commands; every reply compared byte for byte."""

    def __init__(self, kv_port: int, redis_port: int) -> None:
        self.sub = (RawRespClient(kv_port), RawRespClient(redis_port))
        self.pub = (RawRespClient(kv_port), RawRespClient(redis_port))
        self.third = (RawRespClient(kv_port), RawRespClient(redis_port))

    def both(self, who: tuple, *args, replies: int = 1) -> bytes:
        """Send ``args`` on both sides; read ``replies`` frames from each
        (a SUBSCRIBE of n channels confirms n times); assert them equal."""
        for client in who:
            client.send(*args)
        return self.read(who, replies)

    def read(self, who: tuple, frames: int = 1) -> bytes:
        ours = b"".join(who[0].read_reply() for _ in range(frames))
        theirs = b"".join(who[1].read_reply() for _ in range(frames))
        assert ours == theirs, f"kvserver {ours!r} != redis {theirs!r}"
        return ours

    def close(self) -> None:
        for pair in (self.sub, self.pub, self.third):
            for client in pair:
                client.close()


@pytest.fixture
def sides(start_server, redis_server_port):
    server = start_server()
    pair = Sides(server.resp_port, redis_server_port)
    yield pair
    pair.close()


def push(kind: bytes, *items: bytes | int, resp: int = 2) -> bytes:
    head = b">" if resp == 3 else b"*"
    body = b"".join(b":%d\r\n" % i if isinstance(i, int) else b"$%d\r\n%s\r\n" % (len(i), i) for i in items)
    return head + b"%d\r\n$%d\r\n%s\r\n" % (len(items) + 1, len(kind), kind) + body


# -- beside Redis ---------------------------------------------------------------------------


def test_confirmations_counts_and_messages_in_order(sides):
    s = sides
    assert s.both(s.sub, "SUBSCRIBE", "ps:a", "ps:b", "ps:a", replies=3) == (
        push(b"subscribe", b"ps:a", 1) + push(b"subscribe", b"ps:b", 2) + push(b"subscribe", b"ps:a", 2)
    )
    assert s.both(s.sub, "PSUBSCRIBE", "ps:?") == push(b"psubscribe", b"ps:?", 3)
    assert s.both(s.pub, "PUBLISH", "ps:a", "one") == b":2\r\n"  # the channel and the pattern: twice
    assert s.both(s.pub, "PUBLISH", "ps:zz", "none") == b":0\r\n"
    for i in range(20):
        s.both(s.pub, "PUBLISH", "ps:b", f"m{i}")
    s.both(s.pub, "PUBLISH", "ps:c", "pattern only")
    got = s.read(s.sub, 2 + 2 * 20 + 1)
    assert got.startswith(push(b"message", b"ps:a", b"one") + push(b"pmessage", b"ps:?", b"ps:a", b"one"))
    assert got.endswith(push(b"pmessage", b"ps:?", b"ps:c", b"pattern only"))
    # PUBSUB from another client.
    assert s.both(s.pub, "PUBSUB", "NUMSUB", "ps:a", "ps:b", "ps:zz", "ps:a")
    assert s.both(s.pub, "PUBSUB", "NUMPAT") == b":1\r\n"
    assert s.both(s.pub, "PUBSUB", "NUMSUB") == b"*0\r\n"
    assert s.both(s.pub, "PUBSUB", "CHANNELS", "ps:[a]") == b"*1\r\n$4\r\nps:a\r\n"
    for args in (("PUBSUB", "CHANNELS", "a", "b"), ("PUBSUB", "FOO"), ("PUBSUB",), ("PUBSUB", "NUMPAT", "x")):
        assert s.both(s.pub, *args).startswith(b"-ERR")
    # Unsubscribing: one by one, then all at once, then with nothing left.
    assert s.both(s.sub, "UNSUBSCRIBE", "ps:b", "ps:nope", replies=2) == (
        push(b"unsubscribe", b"ps:b", 2) + push(b"unsubscribe", b"ps:nope", 2)
    )
    assert s.both(s.sub, "UNSUBSCRIBE") == push(b"unsubscribe", b"ps:a", 1)
    assert s.both(s.sub, "PUNSUBSCRIBE") == push(b"punsubscribe", b"ps:?", 0)
    assert s.both(s.sub, "UNSUBSCRIBE") == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
    assert s.both(s.sub, "PUNSUBSCRIBE") == b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
    assert s.both(s.sub, "SUNSUBSCRIBE") == b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n"
    assert s.both(s.sub, "GET", "ps:k") == b"$-1\r\n"  # a normal client again
    assert s.both(s.pub, "PUBLISH", "ps:a", "gone") == b":0\r\n"


def test_each_publisher_s_messages_arrive_in_order(sides):
    s = sides
    s.both(s.sub, "SUBSCRIBE", "ord")
    for i in range(50):
        for pub in (s.pub, s.third):
            pub[0].send("PUBLISH", "ord", f"{'p' if pub is s.pub else 't'}{i}")
    for pub in (s.pub, s.third):
        assert [pub[0].read_reply() for _ in range(50)] == [b":1\r\n"] * 50
    got = [s.sub[0].read_reply() for _ in range(100)]
    for prefix in (b"p", b"t"):
        mine = [m for m in got if m.split(b"\r\n")[-2].startswith(prefix)]
        assert mine == [push(b"message", b"ord", prefix + b"%d" % i) for i in range(50)]


def test_shard_channels(sides):
    s = sides
    s.both(s.sub, "SUBSCRIBE", "sh:plain")
    assert s.both(s.sub, "SSUBSCRIBE", "sh:a", "sh:b", replies=2) == (
        push(b"ssubscribe", b"sh:a", 1) + push(b"ssubscribe", b"sh:b", 2)
    )
    assert s.both(s.pub, "SPUBLISH", "sh:a", "x") == b":1\r\n"
    assert s.both(s.pub, "PUBLISH", "sh:a", "not shard") == b":0\r\n"
    assert s.read(s.sub) == push(b"smessage", b"sh:a", b"x")
    assert s.both(s.pub, "PUBSUB", "SHARDNUMSUB", "sh:a", "sh:zz") == b"*4\r\n$4\r\nsh:a\r\n:1\r\n$5\r\nsh:zz\r\n:0\r\n"
    assert s.both(s.pub, "PUBSUB", "SHARDCHANNELS", "sh:[a]")
    assert s.both(s.pub, "PUBSUB", "CHANNELS", "sh:*")
    # Still subscribed while any shard channel is: RESP2 refuses GET.
    s.both(s.sub, "UNSUBSCRIBE", "sh:plain")
    assert s.both(s.sub, "GET", "x").startswith(b"-ERR Can't execute 'get'")
    # (With no names Redis goes in its dict's hash order, kvserver in subscription order.)
    s.both(s.sub, "SUNSUBSCRIBE", "sh:a", "sh:b", replies=2)
    assert s.both(s.sub, "GET", "x") == b"$-1\r\n"


def test_resp2_subscribed_mode_allows_only_a_few_commands(sides):
    s = sides
    s.both(s.sub, "SUBSCRIBE", "mode")
    for args in (("GET", "k"), ("SET", "k", "v"), ("CLIENT", "LIST"), ("CLIENT", "ID"), ("PUBLISH", "a", "b"), ("MULTI",)):
        assert s.both(s.sub, *args).startswith(b"-ERR Can't execute '")
    assert s.both(s.sub, "FOO") == b"-ERR unknown command 'FOO', with args beginning with: \r\n"
    assert s.both(s.sub, "GET").startswith(b"-ERR wrong number of arguments")
    assert s.both(s.sub, "PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    assert s.both(s.sub, "PING", "hi") == b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
    assert s.both(s.sub, "RESET") == b"+RESET\r\n"  # leaves subscribed mode
    assert s.both(s.pub, "PUBLISH", "mode", "x") == b":0\r\n"
    assert s.both(s.sub, "PING") == b"+PONG\r\n"
    s.both(s.sub, "SUBSCRIBE", "mode")
    assert s.both(s.sub, "QUIT") == b"+OK\r\n"
    for client in s.sub:
        with pytest.raises(ConnectionError):
            client.read_reply()
    assert s.both(s.pub, "PUBSUB", "NUMSUB", "mode") == b"*2\r\n$4\r\nmode\r\n:0\r\n"


def test_resp3_pushes_beside_ordinary_replies(sides):
    s = sides
    for client in s.sub:
        client.call("HELLO", "3")
    assert s.both(s.sub, "SUBSCRIBE", "r3") == push(b"subscribe", b"r3", 1, resp=3)
    assert s.both(s.sub, "GET", "r3:k") == b"_\r\n"  # no restriction in RESP3
    assert s.both(s.sub, "PING") == b"+PONG\r\n"
    assert s.both(s.pub, "PUBLISH", "r3", "hello") == b":1\r\n"
    assert s.read(s.sub) == push(b"message", b"r3", b"hello", resp=3)
    assert s.both(s.sub, "PSUBSCRIBE", "r*") == push(b"psubscribe", b"r*", 2, resp=3)
    s.both(s.pub, "PUBLISH", "r3", "two")
    assert s.read(s.sub, 2) == push(b"message", b"r3", b"two", resp=3) + push(
        b"pmessage", b"r*", b"r3", b"two", resp=3
    )
    assert s.both(s.sub, "UNSUBSCRIBE", "r3") == push(b"unsubscribe", b"r3", 1, resp=3)


def test_publish_in_multi_and_scripts(sides):
    s = sides
    s.both(s.sub, "SUBSCRIBE", "tx")
    s.both(s.pub, "MULTI")
    s.both(s.pub, "PUBLISH", "tx", "in multi")
    assert s.both(s.pub, "EXEC") == b"*1\r\n:1\r\n"
    assert s.read(s.sub) == push(b"message", b"tx", b"in multi")
    assert s.both(s.pub, "EVAL", "return redis.call('publish', 'tx', 'in lua')", "0") == b":1\r\n"
    assert s.read(s.sub) == push(b"message", b"tx", b"in lua")
    assert s.both(s.pub, "EVAL", "return redis.call('subscribe', 'x')", "0").startswith(b"-ERR")


def test_publish_is_not_logged(start_server, tmp_path):
    server = start_server(aof_path=str(tmp_path / "p.aof"))
    r = redis.Redis(port=server.resp_port)
    r.publish("c", "m")
    r.eval("return redis.call('publish', 'c', 'x')", 0)
    with r.pipeline(transaction=True) as pipe:
        pipe.publish("c", "y")
        pipe.execute()
    r.set("k", "v")
    data = open(tmp_path / "p.aof", "rb").read()
    assert b"publish" not in data.lower() and b"SET" in data


def test_client_list_info_and_kill_by_type(start_server):
    server = start_server()
    sub = RawRespClient(server.resp_port)
    sub.call("SUBSCRIBE", "a", "b")
    sub.read_reply()
    sub.call("PSUBSCRIBE", "p*")
    sub.call("SSUBSCRIBE", "s")
    r = redis.Redis(port=server.resp_port, decode_responses=True)
    mine, theirs = sorted(r.client_list(), key=lambda c: c["flags"])
    assert (mine["flags"], mine["sub"], mine["psub"], mine["ssub"]) == ("N", "0", "0", "0")
    assert (theirs["flags"], theirs["sub"], theirs["psub"], theirs["ssub"]) == ("P", "2", "1", "1")
    assert [c["flags"] for c in r.client_list(_type="pubsub")] == ["P"]
    stats = r.info("stats")
    assert (stats["pubsub_channels"], stats["pubsub_patterns"], stats["pubsubshard_channels"]) == (2, 1, 1)
    assert r.client_kill_filter(_type="pubsub") == 1
    wait_for(lambda: r.info("stats")["pubsub_channels"] == 0, "the killed subscriber's channels dropped")
    assert r.pubsub_numpat() == 0


# -- the text port --------------------------------------------------------------------------


def test_the_text_port_delivers_a_line_per_message(start_server):
    server = start_server()
    sub = server.client()
    assert sub.call("SUBSCRIBE news 'two words'") == b"subscribe news 1"
    assert sub.read_line() == b'subscribe "two words" 2'
    r = redis.Redis(port=server.resp_port)
    assert r.publish("news", "hello world") == 1
    assert r.publish("two words", b"a\nb") == 1
    assert sub.read_line() == b'message news "hello world"'
    assert sub.read_line() == b'message "two words" "a\\nb"'
    assert sub.call("GET k").startswith(b"ERR Can't execute 'get'")
    assert sub.call("UNSUBSCRIBE") == b"unsubscribe news 1"
    assert sub.read_line() == b'unsubscribe "two words" 0'
    assert sub.call("GET k") == b"nil"


# -- redis-py -------------------------------------------------------------------------------


def _message(pubsub, timeout: float = REPLY_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if got is not None:
            return got
    raise AssertionError("no message")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub(start_server, protocol):
    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol, decode_responses=True)
    p = r.pubsub()
    p.subscribe("news")
    p.psubscribe("n*")
    assert p.get_message(timeout=REPLY_TIMEOUT_S)["type"] == "subscribe"
    assert p.get_message(timeout=REPLY_TIMEOUT_S)["type"] == "psubscribe"
    assert r.publish("news", "hi") == 2
    assert _message(p) == {"type": "message", "pattern": None, "channel": "news", "data": "hi"}
    assert _message(p) == {"type": "pmessage", "pattern": "n*", "channel": "news", "data": "hi"}
    p.unsubscribe()
    p.punsubscribe()
    p.close()
    # listen()
    p = r.pubsub(ignore_subscribe_messages=True)
    p.subscribe("feed")
    wait_for(lambda: r.pubsub_numsub("feed") == [("feed", 1)], "subscribed")
    for i in range(3):
        r.publish("feed", str(i))
    got = []
    for message in p.listen():
        if message["type"] == "message":
            got.append(message["data"])
            if len(got) == 3:
                break
    assert got == ["0", "1", "2"]
    p.close()
    # run_in_thread()
    received = []
    p = r.pubsub()
    p.subscribe(**{"cb": lambda m: received.append(m["data"])})
    worker = p.run_in_thread(sleep_time=0.01, daemon=True)
    try:
        wait_for(lambda: r.pubsub_numsub("cb") == [("cb", 1)], "subscribed")
        r.publish("cb", "x")
        r.publish("cb", "y")
        wait_for(lambda: received == ["x", "y"], "callbacks ran")
    finally:
        worker.stop()
        worker.join(REPLY_TIMEOUT_S)
        p.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_asyncio_pubsub(start_server, protocol):
    server = start_server()

    async def main():
        r = redis.asyncio.Redis(port=server.resp_port, protocol=protocol, decode_responses=True)
        p = r.pubsub()
        await p.subscribe("a")
        await p.psubscribe("a*")
        while (await r.pubsub_numsub("a")) != [("a", 1)]:
            await asyncio.sleep(0.01)
        assert await r.publish("a", "m") == 2
        got = []
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while len(got) < 2 and time.monotonic() < deadline:
            message = await p.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                got.append((message["type"], message["data"]))
        assert got == [("message", "m"), ("pmessage", "m")]
        await p.unsubscribe()
        await p.punsubscribe()
        await p.aclose() if hasattr(p, "aclose") else await p.close()
        await r.aclose() if hasattr(r, "aclose") else await r.close()

    asyncio.run(main())


# -- slow subscribers, concurrency ------------------------------------------------------------


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_subscriber_that_never_reads_is_disconnected_not_a_drag(start_server):
    server = start_server()
    r = redis.Redis(port=server.resp_port)
    # Redis's default for normal clients: no limit at all. The pubsub class's
    # 32mb 8mb 60 is what must end the subscriber.
    r.config_set("client-output-buffer-limit", "normal 0 0 0")
    stalled = socket.create_connection(("127.0.0.1", server.resp_port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nslow\r\n")  # and never reads again
    wait_for(lambda: r.pubsub_numsub("slow") == [(b"slow", 1)], "subscribed")
    quick = r.pubsub()
    quick.subscribe("slow")
    quick.get_message(timeout=REPLY_TIMEOUT_S)
    payload = b"x" * (64 * 1024)
    before = _rss_bytes()
    latencies = []
    for _ in range(100 * MB // len(payload)):  # 100 MB published
        started = time.perf_counter()
        r.publish("slow", payload)
        latencies.append(time.perf_counter() - started)
        quick.get_message(timeout=0)  # the other subscriber keeps reading
    grown = _rss_bytes() - before
    assert grown < 48 * MB, f"the server grew by {grown / MB:.0f} MB"
    wait_for(lambda: r.info("stats")["client_output_buffer_limit_disconnections"] == 1, "disconnected")
    assert r.pubsub_numsub("slow") == [(b"slow", 1)]  # the reader is still there
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.01, latencies[len(latencies) // 2]
    assert latencies[int(len(latencies) * 0.99)] < 0.25
    stalled.close()
    quick.close()


def test_publishing_while_subscribers_come_and_go(start_server):
    server = start_server()
    stop = threading.Event()
    failures: list = []

    def publisher():
        r = redis.Redis(port=server.resp_port)
        try:
            while not stop.is_set():
                assert isinstance(r.publish("churn", "m"), int)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    def subscriber(n: int):
        r = redis.Redis(port=server.resp_port, protocol=2 + n % 2)
        try:
            while not stop.is_set():
                p = r.pubsub()
                p.subscribe("churn")
                p.psubscribe("ch*")
                p.get_message(timeout=0.01)
                p.unsubscribe()
                p.close()
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=publisher) for _ in range(2)]
    threads += [threading.Thread(target=subscriber, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # the load runs this long; nothing is awaited by it
    stop.set()
    for t in threads:
        t.join(REPLY_TIMEOUT_S)
    assert not failures, failures[:3]
    r = redis.Redis(port=server.resp_port)
    wait_for(lambda: r.pubsub_numpat() == 0 and r.pubsub_numsub("churn") == [(b"churn", 0)], "all gone")


@pytest.mark.parametrize(
    "name",
    ["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "publish", "spublish"]
    + ["pubsub|" + sub for sub in ("channels", "numsub", "numpat", "shardchannels", "shardnumsub")],
)
def test_command_info_as_redis(side_by_side, name):
    side_by_side.both("COMMAND", "INFO", name)
