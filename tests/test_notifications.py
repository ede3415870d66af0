"""Keyspace notifications (notify-keyspace-events, kvserver/notify.py):
the messages each command publishes, compared exactly and in order with a
real redis-server; CONFIG GET/SET of the flags; expiry events, lazy and
active; redis-py's pubsub() receiving them."""

from __future__ import annotations

import pytest
import redis

from kvserver.notify import ALL, NEW, configure, format_flags, parse_flags
from tests.resp_client import RawRespClient
from tests.support import wait_for

PATTERN = b"__key*__:*"
# Published once the commands have run: every message before it has arrived.
END_CHANNEL = b"__keyspace@0__:end-of-test"


@pytest.fixture
def notifying(side_by_side):
    """side_by_side with notifications off again afterwards (the
    redis-server is shared by the whole session)."""
    yield side_by_side
    side_by_side.redis.call("CONFIG", "SET", "notify-keyspace-events", "")


def _subscriber(port: int) -> RawRespClient:
    client = RawRespClient(port)
    assert client.call("PSUBSCRIBE", PATTERN) == b"*3\r\n$10\r\npsubscribe\r\n$10\r\n__key*__:*\r\n:1\r\n"
    return client


def _messages(subscriber: RawRespClient, publisher: RawRespClient) -> list[bytes]:
    """Every message up to the end marker, as the bytes the server sent."""
    publisher.call("PUBLISH", END_CHANNEL, "end")
    received = []
    while True:
        message = subscriber.read_reply()
        if END_CHANNEL in message:
            return received
        received.append(message)


def _compare(pair, flags: str, commands: list[tuple]) -> list[bytes]:
    """Run ``commands`` on both servers with ``flags`` enabled; assert the
    same replies and the same messages, in the same order; the messages."""
    pair.both("CONFIG", "SET", "notify-keyspace-events", flags)
    subscribers = [_subscriber(pair.kv.sock.getpeername()[1]), _subscriber(pair.redis.sock.getpeername()[1])]
    try:
        for args in commands:
            pair.both(*args)
        ours = _messages(subscribers[0], pair.kv)
        theirs = _messages(subscribers[1], pair.redis)
    finally:
        for subscriber in subscribers:
            subscriber.close()
    assert ours == theirs, _difference(ours, theirs)
    return ours


def _readable(message: bytes) -> tuple[bytes, bytes]:
    # *4 pmessage pattern channel message: the last two.
    parts = message.split(b"\r\n")
    return parts[-4], parts[-2]


def _difference(ours: list[bytes], theirs: list[bytes]) -> str:
    ours_, theirs_ = [_readable(m) for m in ours], [_readable(m) for m in theirs]
    i = next((i for i, (a, b) in enumerate(zip(ours_, theirs_)) if a != b), min(len(ours_), len(theirs_)))
    return f"from message {i}: kvserver {ours_[i - 2:i + 6]} != redis {theirs_[i - 2:i + 6]}"


GENERIC_AND_STRINGS = [
    ("SET", "s", "v"),
    ("SET", "s", "w", "EX", "100"),
    ("SETEX", "s2", "100", "x"),
    ("PSETEX", "s3", "100000", "x"),
    ("SETNX", "s4", "x"),
    ("SETNX", "s4", "y"),
    ("GETSET", "s4", "z"),
    ("MSET", "m1", "1", "m2", "2"),
    ("MSETNX", "m3", "1", "m4", "2"),
    ("APPEND", "s", "tail"),
    ("APPEND", "a-new", "x"),
    ("APPEND", "s", ""),
    ("SETRANGE", "s", "2", "XY"),
    ("SETRANGE", "r-new", "3", "ab"),
    ("SETRANGE", "r-none", "3", ""),
    ("INCR", "n"),
    ("INCRBY", "n", "5"),
    ("DECR", "n"),
    ("DECRBY", "n", "2"),
    ("INCRBYFLOAT", "f", "1.5"),
    ("GETEX", "s", "PX", "500000"),
    ("GETEX", "s", "PERSIST"),
    ("GETEX", "s"),
    ("GETDEL", "m1"),
    ("GETDEL", "m1"),
    ("EXPIRE", "m2", "100"),
    ("PEXPIRE", "m2", "100000"),
    ("EXPIREAT", "m2", "9999999999"),
    ("PEXPIREAT", "m2", "9999999999000"),
    ("EXPIRE", "m2", "10", "GT"),
    ("PERSIST", "m2"),
    ("PERSIST", "m2"),
    ("EXPIRE", "m3", "-1"),
    ("RENAME", "m4", "m5"),
    ("SET", "m6", "x"),
    ("RENAME", "m5", "m6"),
    ("RENAMENX", "m6", "s"),
    ("RENAMENX", "m6", "m7"),
    ("COPY", "m7", "m8"),
    ("COPY", "m7", "m8", "REPLACE"),
    ("COPY", "m7", "m8", "DB", "3"),
    ("MOVE", "m8", "2"),
    ("DEL", "m7", "nothing", "s2"),
    ("UNLINK", "s3"),
    ("SETBIT", "b", "7", "1"),
    ("SETBIT", "b", "7", "1"),
    ("BITFIELD", "bf", "SET", "u8", "0", "200"),
    ("BITOP", "OR", "bo", "b", "bf"),
    ("BITOP", "AND", "bo", "missing1", "missing2"),
    ("PFADD", "h", "a", "b"),
    ("PFADD", "h", "a"),
    ("PFMERGE", "h2", "h"),
    ("SELECT", "5"),
    ("SET", "in-five", "1"),
    ("DEL", "in-five"),
    ("SELECT", "0"),
    ("FLUSHDB",),
]

CONTAINERS = [
    ("LPUSH", "l", "a", "b", "c"),
    ("RPUSH", "l", "d"),
    ("LPUSHX", "l", "e"),
    ("RPUSHX", "nolist", "e"),
    ("LSET", "l", "0", "E"),
    ("LINSERT", "l", "BEFORE", "d", "x"),
    ("LINSERT", "l", "BEFORE", "nope", "x"),
    ("LREM", "l", "1", "x"),
    ("LTRIM", "l", "0", "2"),
    ("LPOP", "l"),
    ("RPOP", "l", "1"),
    ("LMOVE", "l", "l2", "LEFT", "RIGHT"),
    ("RPOPLPUSH", "l2", "l3"),
    ("RPUSH", "l4", "1", "2", "3"),
    ("LMPOP", "2", "nolist", "l4", "LEFT", "COUNT", "5"),
    ("RPUSH", "l5", "1", "2"),
    ("LTRIM", "l5", "5", "10"),
    ("RPUSH", "l6", "q"),
    ("LREM", "l6", "0", "q"),
    ("HSET", "hs", "f1", "1", "f2", "2"),
    ("HMSET", "hs", "f3", "3"),
    ("HSETNX", "hs", "f1", "x"),
    ("HSETNX", "hs", "f4", "x"),
    ("HINCRBY", "hs", "f1", "5"),
    ("HINCRBYFLOAT", "hs", "f2", "0.5"),
    ("HDEL", "hs", "f1", "nope"),
    ("HDEL", "hs", "nope"),
    ("HDEL", "hs", "f2", "f3", "f4"),
    ("SADD", "st", "a", "b", "c"),
    ("SADD", "st", "a"),
    ("SREM", "st", "a", "zz"),
    ("SMOVE", "st", "st2", "b"),
    ("SMOVE", "st", "st2", "c"),
    ("SADD", "st3", "only"),
    ("SPOP", "st3"),
    ("SADD", "st4", "x"),
    ("SPOP", "st4", "5"),
    ("SADD", "sa", "1", "2", "3"),
    ("SADD", "sb", "2", "3", "4"),
    ("SINTERSTORE", "si", "sa", "sb"),
    ("SUNIONSTORE", "si", "sa", "sb"),
    ("SDIFFSTORE", "sd", "sa", "sb"),
    ("SINTERSTORE", "si", "sa", "nothing"),
    ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"),
    ("ZADD", "z", "1", "a"),
    ("ZADD", "z", "INCR", "5", "a"),
    ("ZINCRBY", "z", "1", "b"),
    ("ZREM", "z", "a", "nope"),
    ("ZREMRANGEBYSCORE", "z", "0", "3.5"),
    ("ZADD", "z", "1", "x", "2", "y", "3", "w"),
    ("ZREMRANGEBYRANK", "z", "0", "0"),
    ("ZREMRANGEBYLEX", "z", "[y", "[y"),
    ("ZPOPMIN", "z"),
    ("ZPOPMAX", "z", "10"),
    ("ZADD", "za", "1", "a", "2", "b"),
    ("ZADD", "zb", "1", "b", "3", "c"),
    ("ZUNIONSTORE", "zu", "2", "za", "zb"),
    ("ZINTERSTORE", "zu", "2", "za", "zb"),
    ("ZDIFFSTORE", "zd", "2", "za", "zb"),
    ("ZRANGESTORE", "zr", "za", "0", "-1"),
    ("ZINTERSTORE", "zu", "2", "za", "nothing"),
    ("ZMPOP", "1", "za", "MIN", "COUNT", "5"),
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("GEOSEARCHSTORE", "gs", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gr"),
    ("RPUSH", "tosort", "3", "1", "2"),
    ("SORT", "tosort", "STORE", "sorted"),
    ("SORT", "nothing", "STORE", "sorted"),
    ("XADD", "x", "1-1", "f", "v"),
    ("XADD", "x", "MAXLEN", "1", "2-1", "f", "v"),
    ("XADD", "x", "3-1", "f", "v"),
    ("XTRIM", "x", "MAXLEN", "1"),
    ("XDEL", "x", "3-1", "9-9"),
    ("XADD", "x", "4-1", "f", "v"),
    ("XSETID", "x", "5-0"),
    ("XGROUP", "CREATE", "x", "g1", "0"),
    ("XGROUP", "CREATE", "xnew", "g1", "$", "MKSTREAM"),
    ("XGROUP", "SETID", "x", "g1", "0"),
    ("XGROUP", "CREATECONSUMER", "x", "g1", "c1"),
    ("XGROUP", "CREATECONSUMER", "x", "g1", "c1"),
    ("XREADGROUP", "GROUP", "g1", "c2", "COUNT", "1", "STREAMS", "x", ">"),
    ("XCLAIM", "x", "g1", "c3", "0", "4-1"),
    ("XAUTOCLAIM", "x", "g1", "c4", "0", "0-0"),
    ("XACK", "x", "g1", "4-1"),
    ("XGROUP", "DELCONSUMER", "x", "g1", "c1"),
    ("XGROUP", "DESTROY", "x", "g1"),
]


def test_generic_and_string_commands_publish_what_redis_does(notifying) -> None:
    messages = _compare(notifying, "KEA", GENERIC_AND_STRINGS)
    assert b"__keyevent@0__:rename_from" in b"".join(messages)


def test_container_commands_publish_what_redis_does(notifying) -> None:
    messages = _compare(notifying, "AKE", CONTAINERS)
    assert b"__keyevent@0__:xgroup-createconsumer" in b"".join(messages)


def test_new_keys_are_announced_before_the_commands_event(notifying) -> None:
    # "n" is not part of A; with it, "new" comes first for a created key.
    messages = _compare(notifying, "AKEn", GENERIC_AND_STRINGS[:20] + CONTAINERS)
    assert messages[:2] == [
        b"*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$16\r\n__keyspace@0__:s\r\n$3\r\nnew\r\n",
        b"*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$18\r\n__keyevent@0__:new\r\n$1\r\ns\r\n",
    ]


@pytest.mark.parametrize("flags", ["K$", "El", "Kg", "Eh", "Kzt", "Es", "n", "E", "Kx"])
def test_only_the_enabled_classes_and_channels_are_published(notifying, flags) -> None:
    _compare(notifying, flags, GENERIC_AND_STRINGS[:30] + CONTAINERS[:40])


def test_inside_multi_and_scripts_events_go_out_as_each_command_runs(notifying) -> None:
    pair = notifying
    pair.both("CONFIG", "SET", "notify-keyspace-events", "KEA")
    subscribers = [_subscriber(pair.kv.sock.getpeername()[1]), _subscriber(pair.redis.sock.getpeername()[1])]
    try:
        for client in (pair.kv, pair.redis):
            client.call("MULTI")
            client.call("SET", "t", "1")
            client.call("PUBLISH", "__keyspace@0__:between", "x")
            client.call("RPUSH", "tl", "a")
            assert client.call("EXEC").startswith(b"*3\r\n")
            client.call("EVAL", "redis.call('SET', KEYS[1], 'v'); redis.call('DEL', KEYS[1]); return 1", "1", "e")
        assert _messages(subscribers[0], pair.kv) == _messages(subscribers[1], pair.redis)
    finally:
        for subscriber in subscribers:
            subscriber.close()


# -- CONFIG GET / SET ------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    ["", "AKE", "KEA", "gK", "$lshzxetmdnKE", "Ag", "AKEm", "AKEn", "x", "KEn", "gg", "KE",
     "g$lshzxetd", "g$lshzxet", "m", "dE", "e", "tK"],
)
def test_config_get_shows_the_flags_as_redis_does(notifying, flags) -> None:
    notifying.both("CONFIG", "SET", "notify-keyspace-events", flags)
    notifying.both("CONFIG", "GET", "notify-keyspace-events")
    notifying.both("CONFIG", "GET", "notify-keyspace-*")


@pytest.mark.parametrize("flags", ["Q", "AKE!", "k", "a", " K", "KE ", "ß"])
def test_invalid_flags_are_refused_as_redis_does(notifying, flags) -> None:
    notifying.both("CONFIG", "SET", "notify-keyspace-events", "KEA")
    notifying.both("CONFIG", "SET", "notify-keyspace-events", flags)
    notifying.both("CONFIG", "GET", "notify-keyspace-events")  # unchanged


def test_flags_round_trip() -> None:
    assert format_flags(parse_flags("AKE")) == "AKE"
    assert parse_flags("A") == ALL
    assert not ALL & NEW  # "n" is asked for on its own, as in Redis
    assert parse_flags("x?") is None


def test_the_config_file_sets_the_flags(start_server, tmp_path) -> None:
    from kvserver.commands.configcmd import apply_live_settings  # what the server runs at start

    server = start_server()
    apply_live_settings(server.server.state, [("notify-keyspace-events", "Elg")])
    client = redis.Redis(port=server.resp_port)
    try:
        assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": "glE"}
    finally:
        client.close()


# -- expiry -------------------------------------------------------------------------------


def test_lazy_expiry_publishes_expired(kv) -> None:
    published = []
    kv.keyspace.publish = lambda channel, message: published.append((channel, message))
    configure(kv.keyspace, parse_flags("Ex"))  # what CONFIG SET does (the harness has no server)
    kv("SET", "k", "v", "PX", "100")
    kv("SET", "other", "v")
    assert published == []  # "set" is not in class x
    kv.clock.advance(101)
    assert kv("GET", "k") is None
    assert published == [(b"__keyevent@0__:expired", b"k")]


def test_active_expiry_publishes_expired(start_server) -> None:
    server = start_server()
    client = redis.Redis(port=server.resp_port)
    listener = client.pubsub()
    try:
        client.config_set("notify-keyspace-events", "KEx")
        listener.psubscribe("__key*__:*")
        assert listener.get_message(timeout=5)["type"] == "psubscribe"
        client.set("short", "v", px=30)
        received = []

        def arrived() -> bool:
            message = listener.get_message(timeout=0.05)
            if message is not None:
                received.append((message["channel"], message["data"]))
            return len(received) == 2

        wait_for(arrived, "the sweep's expired events")  # nobody reads the key: the sweep removes it
        assert received == [(b"__keyspace@0__:short", b"expired"), (b"__keyevent@0__:expired", b"short")]
    finally:
        listener.close()
        client.close()


def test_expired_side_by_side(notifying) -> None:
    pair = notifying
    pair.both("CONFIG", "SET", "notify-keyspace-events", "KEA")
    subscribers = [_subscriber(pair.kv.sock.getpeername()[1]), _subscriber(pair.redis.sock.getpeername()[1])]
    try:
        pair.both("SET", "soon", "v", "PX", "300")  # long enough to expire after "past"
        pair.both("SET", "past", "v", "PXAT", "1")  # Redis: set, expire, and later expired
        wait_for(lambda: pair.redis.call("EXISTS", "past") == b":0\r\n", "redis expired the key")
        wait_for(lambda: pair.kv.call("EXISTS", "soon") == b":0\r\n", "kvserver expired the key")
        wait_for(lambda: pair.redis.call("EXISTS", "soon") == b":0\r\n", "redis expired the key")
        assert _messages(subscribers[0], pair.kv) == _messages(subscribers[1], pair.redis)
    finally:
        for subscriber in subscribers:
            subscriber.close()


# -- redis-py -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub_receives_keyspace_events(start_server, protocol) -> None:
    server = start_server()
    client = redis.Redis(port=server.resp_port, protocol=protocol)
    listener = client.pubsub()
    try:
        assert client.config_set("notify-keyspace-events", "KEA")
        listener.subscribe("__keyspace@0__:mykey")
        listener.psubscribe("__keyevent@0__:*")
        for _ in range(2):
            assert listener.get_message(timeout=5)["type"] in ("subscribe", "psubscribe")
        client.rpush("mykey", "a")
        client.lpop("mykey")
        received = []
        wait_for(lambda: _collect(listener, received, 6), "six messages")
        assert [(m["type"], m["channel"], m["data"]) for m in received] == [
            ("message", b"__keyspace@0__:mykey", b"rpush"),
            ("pmessage", b"__keyevent@0__:rpush", b"mykey"),
            ("message", b"__keyspace@0__:mykey", b"lpop"),
            ("pmessage", b"__keyevent@0__:lpop", b"mykey"),
            ("message", b"__keyspace@0__:mykey", b"del"),
            ("pmessage", b"__keyevent@0__:del", b"mykey"),
        ]
    finally:
        listener.close()
        client.close()


def _collect(listener, received: list, wanted: int) -> bool:
    message = listener.get_message(timeout=0.05)
    if message is not None:
        received.append(message)
    return len(received) >= wanted


def test_off_by_default_nothing_is_published(start_server) -> None:
    server = start_server()
    client = redis.Redis(port=server.resp_port)
    listener = client.pubsub()
    try:
        assert client.config_get("notify-keyspace-events") == {"notify-keyspace-events": ""}
        listener.psubscribe("*")
        assert listener.get_message(timeout=5)["type"] == "psubscribe"
        client.set("k", "v")
        client.publish("marker", "m")
        received = []
        wait_for(lambda: _collect(listener, received, 1), "the marker")
        assert [m["channel"] for m in received] == [b"marker"]
    finally:
        listener.close()
        client.close()
