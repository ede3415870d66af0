"""PFADD, PFCOUNT, PFMERGE (kvserver/commands/hyperloglog.py) and the
representation (kvserver/hll.py): the same bytes as redis-server 7.0, the
log, replay, corrupt values, and the estimator's error."""

from __future__ import annotations

import itertools
import random

import pytest
import redis

from kvserver import hll
from kvserver.cli import kvserver_main
from kvserver.protocol import OK
from kvserver.server import load_log
from kvserver.store import Keyspace
from tests.support import dump, race

ELEMENTS = [b"el-%d" % i for i in range(4000)]


def _chunks(items, size=200):
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- side by side with redis-server ------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 3, 100, 1000, 1800, 4000])
def test_pfadd_builds_redis_bytes_sparse_and_dense(side_by_side, count):
    # 1800 elements pass the default 3000 sparse bytes: promoted to dense.
    side_by_side.both("PFADD", "h")
    for chunk in _chunks(ELEMENTS[:count]):
        side_by_side.both("PFADD", "h", *chunk)
    side_by_side.both("PFADD", "h", *ELEMENTS[:count][:50])  # nothing new: 0
    get = side_by_side.both("GET", "h")
    assert (b"\x00" if count >= 1800 else b"\x01") == get[get.index(b"HYLL") + 4 :][:1]
    side_by_side.both("PFCOUNT", "h")
    side_by_side.both("GET", "h")  # with the cached count
    side_by_side.both("PFCOUNT", "h")


def test_promotion_follows_hll_sparse_max_bytes(side_by_side):
    side_by_side.both("CONFIG", "SET", "hll-sparse-max-bytes", "200")
    side_by_side.both("CONFIG", "GET", "hll-sparse-max-bytes")
    for chunk in _chunks(ELEMENTS[:300], 20):
        side_by_side.both("PFADD", "small", *chunk)
        side_by_side.both("GET", "small")
    side_by_side.both("CONFIG", "SET", "hll-sparse-max-bytes", "1kb")
    side_by_side.both("CONFIG", "GET", "hll-sparse-max-bytes")
    for bad in ("-1", "abc", "9223372036854775808"):
        side_by_side.both("CONFIG", "SET", "hll-sparse-max-bytes", bad)


def test_pfmerge_and_union_count_as_redis(side_by_side):
    s = side_by_side
    for chunk in _chunks(ELEMENTS[:2500]):
        s.both("PFADD", "dense", *chunk)
    s.both("PFADD", "sparse1", *ELEMENTS[2000:2300])
    s.both("PFADD", "sparse2", *ELEMENTS[100:150], *ELEMENTS[3000:3100])
    s.both("PFCOUNT", "sparse1", "sparse2", "missing")
    s.both("PFCOUNT", "dense", "sparse1", "sparse2")
    s.both("PFMERGE", "m1", "sparse1", "sparse2")
    s.both("GET", "m1")
    s.both("PFMERGE", "m1", "dense")
    s.both("GET", "m1")
    s.both("PFMERGE", "m2", "missing")
    s.both("GET", "m2")
    s.both("PFMERGE", "sparse1")
    s.both("GET", "sparse1")
    s.both("PFCOUNT", "m1")
    s.both("GET", "m1")


def test_errors_as_redis(side_by_side):
    s = side_by_side
    s.both("SET", "str", "not a hyperloglog")
    s.both("SET", "short", "HYLL")
    s.both("SET", "badenc", b"HYLL\x02" + bytes(11))
    s.both("SET", "baddense", b"HYLL\x00" + bytes(11) + bytes(100))
    s.both("SET", "badsparse", b"HYLL\x01" + bytes(11) + b"\x7f")  # runs past 16384 registers
    s.both("SET", "emptysparse", b"HYLL\x01" + bytes(10) + b"\x80")
    s.both("RPUSH", "list", "a")  # another type: the usual WRONGTYPE
    for key in ("str", "short", "badenc", "baddense", "list"):
        s.both("PFADD", key, "a")
        s.both("PFCOUNT", key)
        s.both("PFCOUNT", "missing", key)
        s.both("PFMERGE", "dest", key)
        s.both("PFMERGE", key, "missing")
    for key in ("badsparse", "emptysparse"):
        s.both("PFADD", key, "a")
        s.both("PFCOUNT", key)
        s.both("PFCOUNT", key, "missing")
        s.both("PFMERGE", "dest", key)
        s.both("GET", key)
    s.both("EXISTS", "dest")
    s.both("PFADD")
    s.both("PFCOUNT")
    s.both("PFMERGE")


@pytest.mark.parametrize("name", ["pfadd", "pfcount", "pfmerge"])
def test_command_info_as_redis(side_by_side, name):
    ours, theirs = side_by_side.each("COMMAND", "INFO", name)
    # Up to the categories; the key specs are the registry's broad ones.
    assert ours[: ours.index(b"*0")] == theirs[: theirs.index(b"*0")]


def test_interchange_redis_bytes_count_here_and_back(side_by_side):
    s = side_by_side
    for chunk in _chunks(ELEMENTS[:2500]):
        s.redis.call("PFADD", "dense", *chunk)
    s.redis.call("PFADD", "sparse", *ELEMENTS[:500])
    for key in ("dense", "sparse"):
        value = s.redis.call("GET", key)
        body = value[value.index(b"\r\n") + 2 : -2]
        assert s.kv.call("SET", key, body) == b"+OK\r\n"
        s.both("PFCOUNT", key)
        s.both("PFADD", key, *ELEMENTS[2500:2600])
        s.both("GET", key)
    # and the reverse: our bytes, SET into redis-server
    s.kv.call("PFADD", "ours", *ELEMENTS[:700])
    value = s.kv.call("GET", "ours")
    s.redis.call("SET", "ours", value[value.index(b"\r\n") + 2 : -2])
    s.both("PFCOUNT", "ours")
    s.both("GET", "ours")


def test_fuzzed_values_get_the_reply_redis_gives(side_by_side):
    # Mutated HyperLogLogs: never a crash; the same reply as Redis.
    s = side_by_side
    rng = random.Random(15)
    sparse = bytes(hll.add(hll.new_sparse(), ELEMENTS[:60], 3000)[0])
    dense = bytes(hll.to_dense(bytearray(sparse)))
    for base in (sparse, dense):
        for _ in range(40):
            mutated = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(16, len(mutated))
                mutated[i] = rng.randrange(256)
            if rng.random() < 0.3:
                del mutated[rng.randrange(16, len(mutated)) :]
            s.both("SET", "f", bytes(mutated))
            s.both("PFCOUNT", "f", "missing")
            s.both("PFMERGE", "out", "f")
            s.both("PFCOUNT", "f")
            s.both("DEL", "out")


# -- the log and replay --------------------------------------------------------------------


def test_log_records_what_redis_writes(kv):
    assert kv("PFADD", "h", "a", "b") == 1
    assert kv("PFADD", "h", "a") == 0  # no change: nothing logged
    assert kv("PFCOUNT", "h") == 2
    assert kv("PFCOUNT", "h") == 2  # cached: nothing logged
    assert kv("PFCOUNT", "h", "missing") == 2  # a union changes nothing
    assert kv("PFMERGE", "m", "h") == OK
    assert kv.log() == (
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
        b"*4\r\n$5\r\nPFADD\r\n$1\r\nh\r\n$1\r\na\r\n$1\r\nb\r\n"
        b"*2\r\n$7\r\nPFCOUNT\r\n$1\r\nh\r\n"
        b"*3\r\n$7\r\nPFMERGE\r\n$1\r\nm\r\n$1\r\nh\r\n"
    )


def test_replay_rebuilds_identical_bytes(kv):
    kv.keyspace.hll_sparse_max_bytes = 3000
    for chunk in _chunks(ELEMENTS[:2200], 300):
        kv("PFADD", "big", *chunk)
        kv("PFCOUNT", "big")
    kv("PFADD", "small", *ELEMENTS[:40])
    kv("PFCOUNT", "small")
    kv("PFMERGE", "both", "small", "big")
    kv("PFADD", "small", "one more")
    kv("SET", "ttl", b"")
    kv("DEL", "ttl")
    kv("PFADD", "ttl", "x")
    kv("PEXPIRE", "ttl", 100_000)
    kv("PFADD", "ttl", "y")  # keeps the TTL
    kv.aof.close()
    replayed = Keyspace(clock=kv.clock)
    load_log(replayed, kv.path)
    assert dump(replayed) == dump(kv.keyspace)
    assert kv.db.data[b"big"][4] == hll.DENSE and kv.db.data[b"small"][4] == hll.SPARSE


def test_an_expired_key_is_logged_as_del_before_it_is_recreated_or_merged(kv):
    # The DELs are the expiries', as Redis propagates them (store.py).
    kv("PFADD", "old", *ELEMENTS[:50])
    kv("PEXPIRE", "old", 1000)
    kv("PFADD", "src", *ELEMENTS[:50])
    kv("PEXPIRE", "src", 1000)
    kv.clock.advance(2000)
    before = kv.log()
    assert kv("PFADD", "old", "new") == 1
    assert kv("PFMERGE", "dest", "src") == OK
    assert kv.log_after_setup(before) == (
        b"*2\r\n$3\r\nDEL\r\n$3\r\nold\r\n*3\r\n$5\r\nPFADD\r\n$3\r\nold\r\n$3\r\nnew\r\n"
        b"*2\r\n$3\r\nDEL\r\n$3\r\nsrc\r\n*3\r\n$7\r\nPFMERGE\r\n$4\r\ndest\r\n$3\r\nsrc\r\n"
    )
    kv.aof.close()
    replayed = Keyspace(clock=kv.clock)
    load_log(replayed, kv.path)
    assert dump(replayed) == dump(kv.keyspace)
    data = replayed.dbs[0].data
    assert hll.count(data[b"old"]) == 1 and hll.count(data[b"dest"]) == 0


@pytest.mark.parametrize(
    "args",
    [
        ("PFADD", "h", "new element"),
        ("PFADD", "fresh", "a"),
        ("PFCOUNT", "h"),
        ("PFMERGE", "h", "other"),
        ("PFMERGE", "fresh", "other"),
    ],
)
def test_failed_log_append_leaves_the_value_unchanged(failing_kv, args):
    kv = failing_kv
    kv("PFADD", "h", *ELEMENTS[:30])
    kv("PFADD", "other", *ELEMENTS[500:530])
    before = dump(kv.keyspace)
    kv.aof.failing = True
    reply = kv(*args)
    assert reply.message.startswith("MISCONF") or "log" in reply.message.lower()
    assert dump(kv.keyspace) == before


def test_pfcount_inside_readonly_script_and_multi(kv):
    kv("PFADD", "h", "a", "b", "c")
    assert kv("EVAL_RO", "return redis.call('PFCOUNT', KEYS[1])", 1, "h") == 3
    kv("PFADD", "h", "d")
    kv("MULTI")
    kv("PFCOUNT", "h")
    assert kv("EXEC") == [4]
    assert hll.cached_count(kv.db.data[b"h"]) == 4


# -- redis-py, RESP2 and RESP3 ------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py(start_server, protocol):
    server = start_server()
    client = redis.Redis(port=server.resp_port, protocol=protocol)
    try:
        assert client.pfadd("a", "x", "y", "z") == 1
        assert client.pfadd("a", "x") == 0
        assert client.pfadd("b", "z", "w") == 1
        assert client.pfcount("a") == 3
        assert client.pfcount("a", "b") == 4
        assert client.pfmerge("c", "a", "b") is True
        assert client.pfcount("c") == 4
        client.set("s", "plain")
        with pytest.raises(redis.ResponseError, match="not a valid HyperLogLog"):
            client.pfcount("s")
        assert client.config_get("hll-sparse-max-bytes") == {"hll-sparse-max-bytes": "3000"}
    finally:
        client.close()


# -- the estimator ----------------------------------------------------------------------------


def test_error_within_the_standard_error_for_100k():
    # 1.04 / sqrt(16384) = 0.81%: HyperLogLog's standard error with 16384 registers.
    value, _ = hll.add(hll.new_sparse(), (b"%d" % i for i in range(100_000)), 3000)
    assert value[4] == hll.DENSE
    assert abs(hll.count(value) - 100_000) / 100_000 < 0.0081


def test_readers_see_whole_values_while_writers_add(start_server):
    """PFADD and PFCOUNT (a write when it refreshes the cache) on one key
    while readers GET it and count it: never an error, never a value that
    is not a whole HyperLogLog, counts that never go down."""
    server = start_server()
    chunks = list(_chunks(ELEMENTS, 20))
    # Once every chunk is in, adding them again changes nothing: the readers'
    # checks still hold until the runner has seen the counts and stops.
    more = itertools.cycle(chunks)

    def write(r) -> None:
        r.pfadd("h", *next(more))
        r.pfcount("h")

    def reader():
        last = 0

        def read(r):
            nonlocal last
            value = r.get("h")
            count = r.pfcount("h")
            before, last = last, count
            if value is not None and not hll.is_hll(value) or count < before:
                return (value, count, before)
            return None

        return read

    race(
        lambda: redis.Redis(port=server.resp_port),
        writers=[write],
        readers=[reader() for _ in range(2)],
        writes=len(chunks),
        reads=101,
    )


def test_config_file_and_replay_use_hll_sparse_max_bytes(tmp_path, start_server):
    path = tmp_path / "kv.conf"
    path.write_text("hll-sparse-max-bytes 1kb\n")
    params = kvserver_main.make_context("kvserver", ["--config", str(path)]).params
    assert params["hll_sparse_max_bytes"] == 1024
    server = start_server(hll_sparse_max_bytes=300)
    client = redis.Redis(port=server.resp_port)
    client.pfadd("h", *ELEMENTS[:150])
    value = client.get("h")
    assert value[4] == hll.DENSE  # past 300 bytes of sparse form
    server.stop()
    again = start_server(hll_sparse_max_bytes=300)
    assert redis.Redis(port=again.resp_port).get("h") == value
