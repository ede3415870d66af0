"""Tests for kvserver/rdb.py (Redis's RDB format), DUMP/RESTORE
(kvserver/commands/dump.py), SAVE/BGSAVE (kvserver/rdbsave.py) and the
import of a redis-server's files (kvserver/rdbimport.py).

* the format alone: CRC64's test vector, every value type and encoding
  written and read back, files redis-server 7.0 wrote (committed bytes in
  tests/data, so they run without it), Redis 6.2's ziplist forms, and
  mutated payloads that must raise RdbError and nothing else;
* DUMP byte for byte against redis-server (with rdbcompression off: the
  only difference left is LZF, which kvserver does not write), and
  payloads moved both ways;
* RESTORE's replies, what it logs, the replay, no half-restored key;
* SAVE's file checked by redis-check-rdb and loaded by a redis-server,
  value by value, in all 16 databases with TTLs; BGSAVE's snapshot not
  changed by writes made while it runs;
* the import of a dump.rdb and of an appendonlydir.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kvserver import rdb
from kvserver.rdbimport import ImportError_, import_to_log
from kvserver.server import load_log
from kvserver.store import Keyspace
from kvserver.values import EncodingSettings, Hash, List, Set, Stream, Zset
from kvserver.values.streams import Undo, make_id
from tests.resp_client import RawRespClient
from tests.support import T0, error_text, resp, wait_for

DATA = Path(__file__).parent / "data"
SETTINGS = EncodingSettings()
REDIS_MISSING = "redis-server is not installed: 'apt-get install redis-server'"


def stream_with_group() -> Stream:
    stream = Stream()
    undo = Undo()
    stream.append(make_id(1, 1), (b"a", b"1", b"b", b"2"), undo)
    stream.append(make_id(1, 2), (b"a", b"3", b"b", b"4"), undo)
    stream.append(make_id(2, 0), (b"c", b"5"), undo)
    group = stream.create_group(b"g", make_id(1, 2), 2, undo)
    alice = stream.create_consumer(group, b"alice", T0, undo)
    stream.create_consumer(group, b"bob", T0 + 5, undo)
    from kvserver.values.streams import Nack

    stream.add_nack(group, make_id(1, 1), Nack(alice, T0 + 1, 3), undo)
    return stream


def samples() -> dict[str, object]:
    """One value of each type and encoding kvserver writes."""
    return {
        "string": b"hello",
        "int8": b"-7",
        "int32": b"2147483647",
        "int64-as-text": b"4294967296",
        "binary": bytes(range(256)),
        "list": List([b"a", b"1", b"300", b"-5", b"70000", b"x" * 100, b"y" * 5000]),
        "list-of-nodes": List([b"item%d" % i for i in range(3000)]),
        "hash-listpack": Hash({b"f": b"v", b"n": b"12"}),
        "hash-table": Hash({b"f%d" % i: b"v" * i for i in range(100)}),
        "set-intset": Set([b"1", b"-100", b"100000", b"9223372036854775807"]),
        "set-table": Set([b"a", b"b", b"c"]),
        "zset-listpack": Zset([(b"a", 1.0), (b"b", 2.5), (b"c", -0.1), (b"d", 1e300), (b"e", float("inf")), (b"z", -0.0)]),
        "zset-skiplist": Zset([(b"m%d" % i, i / 3) for i in range(300)]),
        "stream": stream_with_group(),
        "stream-empty": Stream(),
    }


# -- the format ---------------------------------------------------------------------


def test_crc64_is_redis_jones_crc():
    assert rdb.crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert rdb.crc64(b"6789", rdb.crc64(b"12345")) == 0xE9C6D914C4B8D9CA  # continued
    assert rdb.crc64_reference(b"123456789") == 0xE9C6D914C4B8D9CA
    data = bytes(range(256)) * 40 + b"tail"
    for cut in (0, 1, 7, 255, len(data)):  # anycrc's C agrees with the definition, continued or not
        assert rdb.crc64(data[cut:], rdb.crc64(data[:cut])) == rdb.crc64_reference(data)


@pytest.mark.parametrize("name", list(samples()))
def test_every_value_round_trips(name):
    value = samples()[name]
    back = rdb.read_payload(rdb.dump_payload(value, SETTINGS))
    assert type(back) is type(value) and back == value
    if type(value) is not bytes:
        assert back.encoding(SETTINGS) == value.encoding(SETTINGS)


def test_the_encodings_chosen_are_redis_types():
    kinds = {name: rdb.encode_value(value, SETTINGS)[0] for name, value in samples().items()}
    assert kinds["list"] == rdb.TYPE_LIST_QUICKLIST_2
    assert kinds["hash-listpack"] == rdb.TYPE_HASH_LISTPACK and kinds["hash-table"] == rdb.TYPE_HASH
    assert kinds["set-intset"] == rdb.TYPE_SET_INTSET and kinds["set-table"] == rdb.TYPE_SET
    assert kinds["zset-listpack"] == rdb.TYPE_ZSET_LISTPACK and kinds["zset-skiplist"] == rdb.TYPE_ZSET_2
    assert kinds["stream"] == rdb.TYPE_STREAM_LISTPACKS_2
    assert rdb.encode_value(b"-7", SETTINGS)[1] == b"\xc0\xf9"  # integer-encoded, as rdbTryIntegerEncoding


def test_a_file_written_reads_back_with_ttls_and_databases():
    writer = rdb.FileWriter(SETTINGS)
    parts = [writer.header({b"redis-ver": b"7.0.15"}), writer.function(b"#!lua name=lib\n")]
    parts.append(writer.select(0, 2, 1))
    parts.append(writer.key(b"a", b"1", T0))
    parts.append(writer.key(b"l", List([b"x"]), None))
    parts.append(writer.select(15, 1, 0))
    parts.append(writer.key(b"z", Zset([(b"m", 2.0)]), None))
    parts.append(writer.footer())
    data = b"".join(parts)
    codes = []
    got = [(e.db, e.key, e.value, e.deadline) for e in rdb.read_file(data, on_function=codes.append)]
    assert got == [(0, b"a", b"1", T0), (0, b"l", List([b"x"]), None), (15, b"z", Zset([(b"m", 2.0)]), None)]
    assert codes == [b"#!lua name=lib\n"]
    with pytest.raises(rdb.RdbError, match="checksum"):
        list(rdb.read_file(data[:-1] + bytes([data[-1] ^ 1])))


def test_reads_files_redis_7_wrote():
    # redis-server 7.0.15: tests/data/redis-7.0-*.rdb (rdbcompression no,
    # and yes: LZF strings), every type, an intset, a skiplist, a stream
    # with a group, a PEL and two consumers, a TTL, a key in database 3.
    for name in ("redis-7.0-plain.rdb", "redis-7.0-lzf.rdb"):
        entries = {(e.db, e.key): e for e in rdb.read_file((DATA / name).read_bytes())}
        assert entries[(3, b"db3key")].value == b"v"
        assert entries[(0, b"ttl")].deadline is not None
        assert entries[(0, b"l")].value == List([b"a", b"b", b"c", b"1", b"2", b"300", b"-5", b"70000"])
        assert entries[(0, b"si")].value == Set([b"1", b"2", b"3", b"-100", b"100000"])
        assert entries[(0, b"z")].value == Zset([(b"a", 1), (b"b", 2.5), (b"c", -0.1), (b"d", 1e300)])
        assert entries[(0, b"long")].value == b"x" * 100
        stream = entries[(0, b"st")].value
        assert list(stream.entries) == [make_id(1, 1), make_id(1, 2), make_id(2, 0)]
        group = stream.groups[b"g"]
        assert sorted(group.consumers) == [b"alice", b"bob"] and len(group.consumers[b"alice"].pel) == 2
    lzf = {e.key: e.value for e in rdb.read_file((DATA / "redis-7.0-lzf.rdb").read_bytes())}
    assert lzf[b"biglist"] == List([b"item%d" % i for i in range(40)])
    assert lzf[b"bighash"][b"f0"] == b"v" * 70


def _ziplist(items: list[bytes | int]) -> bytes:
    """A ziplist (Redis <= 6.2), strings and small ints, for the tests."""
    body = b""
    prev = 0
    for item in items:
        entry = bytes([prev]) if prev < 254 else b"\xfe" + prev.to_bytes(4, "little")
        if isinstance(item, int):
            entry += b"\xfe" + item.to_bytes(1, "little", signed=True) if not 0 <= item <= 12 else bytes([0xF1 + item])
        else:
            entry += bytes([len(item)]) + item
        body += entry
        prev = len(entry)
    total = 10 + len(body) + 1
    return total.to_bytes(4, "little") + (total - 1 - prev).to_bytes(4, "little") + len(items).to_bytes(2, "little") + body + b"\xff"


def test_reads_redis_6_ziplist_forms_and_version_9():
    zl = rdb.encode_string
    records = [
        (rdb.TYPE_LIST_QUICKLIST, rdb.encode_length(1) + zl(_ziplist([b"a", 5, -3]))),
        (rdb.TYPE_HASH_ZIPLIST, zl(_ziplist([b"f", b"v", b"n", 12]))),
        (rdb.TYPE_ZSET_ZIPLIST, zl(_ziplist([b"m", b"1.5", b"n", 3]))),
        (rdb.TYPE_ZSET, rdb.encode_length(1) + zl(b"old") + b"\x032.5"),
    ]
    body = b"REDIS0009" + bytes([rdb.OPCODE_SELECTDB, 0])
    for i, (kind, payload) in enumerate(records):
        body += bytes([kind]) + zl(b"k%d" % i) + payload
    body += b"\xff"
    data = body + rdb.crc64(body).to_bytes(8, "little")
    values = [e.value for e in rdb.read_file(data)]
    assert values == [
        List([b"a", b"5", b"-3"]),
        Hash({b"f": b"v", b"n": b"12"}),
        Zset([(b"m", 1.5), (b"n", 3.0)]),
        Zset([(b"old", 2.5)]),
    ]


def test_mutated_payloads_raise_rdb_error_only():
    rng = random.Random(18)
    payloads = [rdb.dump_payload(value, SETTINGS)[:-10] for value in samples().values()]
    for _ in range(1500):
        body = bytearray(rng.choice(payloads))
        for _ in range(rng.randint(1, 4)):
            action = rng.random()
            if action < 0.5 and body:
                body[rng.randrange(len(body))] = rng.randrange(256)
            elif action < 0.75:
                del body[rng.randrange(len(body) + 1) :]
            else:
                body[rng.randrange(len(body) + 1) : 0] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        data = bytes(body) + b"\x0a\x00"
        payload = data + rdb.crc64(data).to_bytes(8, "little")  # a good CRC: the parser must cope
        try:
            rdb.read_payload(payload)
        except rdb.RdbError:
            pass


def test_bad_trailers_are_trailer_errors():
    good = rdb.dump_payload(b"v", SETTINGS)
    for bad in (b"", good[:9], good[:-1] + bytes([good[-1] ^ 1]), good[:-10] + b"\x0b\x00" + good[-8:]):
        with pytest.raises(rdb.PayloadTrailerError):
            rdb.read_payload(bad)


# -- DUMP / RESTORE through the dispatcher --------------------------------------------


def test_restore_replies_logs_and_replays(kv):
    kv("RPUSH", "l", "a", "b")
    payload = kv("DUMP", "l")
    assert kv("DUMP", "missing") is None
    assert error_text(kv("RESTORE", "l", "0", payload)) == "BUSYKEY Target key name already exists."
    before = kv.log()
    assert kv("RESTORE", "l2", "1000", payload) == rdb_ok()
    assert kv("PTTL", "l2") == 1000
    deadline = b"%d" % (T0 + 1000)
    assert kv.log_after_setup(before) == resp("RESTORE", "l2", deadline, payload, "ABSTTL")
    before = kv.log()
    assert kv("RESTORE", "l", "0", payload, "REPLACE") == rdb_ok()
    assert kv.log_after_setup(before) == resp("RESTORE", "l", "0", payload, "REPLACE")
    before = kv.log()
    assert kv("RESTORE", "l", str(T0 - 1), payload, "REPLACE", "ABSTTL") == rdb_ok()  # already past
    assert kv("EXISTS", "l") == 0
    assert kv.log_after_setup(before) == resp("DEL", "l")
    kv.aof.close()
    replayed = Keyspace()
    load_log(replayed, kv.path, drop_expired=False)
    assert replayed.dbs[0].data == {b"l2": List([b"a", b"b"])}
    assert replayed.dbs[0].expires == {b"l2": T0 + 1000}


def rdb_ok():
    from kvserver.protocol import OK

    return OK


def test_restore_refuses_bad_input_and_changes_nothing(kv):
    kv("SET", "k", "old")
    good = kv("DUMP", "k")
    cases = [
        (["k", "0", good, "REPLACE", "IDLETIME", "-1"], "ERR Invalid IDLETIME value, must be >= 0"),
        (["k", "0", good, "REPLACE", "FREQ", "256"], "ERR Invalid FREQ value, must be >= 0 and <= 255"),
        (["k", "-1", good, "REPLACE"], "ERR Invalid TTL value, must be >= 0"),
        (["k", "0", good[:-1], "REPLACE"], "ERR DUMP payload version or checksum are wrong"),
        (["k", "0", b"\x63" + good[1:-8] + rdb.crc64(b"\x63" + good[1:-8]).to_bytes(8, "little"), "REPLACE"],
         "ERR Bad data format"),
        (["k", "0", good, "REPLACE", "BOGUS"], "ERR syntax error"),
    ]  # fmt: skip
    before = kv.log()
    for args, message in cases:
        assert error_text(kv("RESTORE", *args)) == message
    assert kv("GET", "k") == b"old" and kv.log() == before


def test_restore_fuzzed_never_fails_inside(kv):
    rng = random.Random(7)
    payloads = [rdb.dump_payload(value, SETTINGS) for value in samples().values()]
    for i in range(600):
        body = bytearray(rng.choice(payloads)[:-10])
        body[rng.randrange(len(body))] = rng.randrange(256)
        data = bytes(body) + b"\x0a\x00"
        reply = kv("RESTORE", b"f%d" % i, "0", data + rdb.crc64(data).to_bytes(8, "little"))
        assert reply == rdb_ok() or error_text(reply) == "ERR Bad data format", reply


# -- side by side with redis-server ---------------------------------------------------


def _fill(call) -> None:
    call("SET", "s", "hello")
    call("SET", "n", "12345")
    call("SET", "big", "4294967296")
    call("RPUSH", "l", "a", "b", "c", "1", "2", "300", "-5", "70000")
    call("HSET", "h", "f1", "v1", "f2", "2")
    call("SADD", "si", "1", "2", "3", "-100", "100000")
    call("ZADD", "z", "1", "a", "2.5", "b", "-0.1", "c", "1e300", "d", "inf", "e")
    call("XADD", "st", "1-1", "a", "1", "b", "2")
    call("XADD", "st", "1-2", "a", "3", "b", "4")
    call("XADD", "st", "2-0", "c", "5")
    call("XGROUP", "CREATE", "st", "g", "0")
    call("XGROUP", "CREATECONSUMER", "st", "g", "bob")
    call("PFADD", "hll", "a", "b", "c")
    call("SET", "long", "x" * 300)


def test_dump_bytes_match_redis(side_by_side):
    side_by_side.redis.call("CONFIG", "SET", "rdbcompression", "no")  # kvserver writes no LZF
    try:
        _fill(side_by_side.both)
        for key in ("s", "n", "big", "l", "h", "si", "z", "st", "hll", "long"):
            side_by_side.both("DUMP", key)
    finally:
        side_by_side.redis.call("CONFIG", "SET", "rdbcompression", "yes")


def test_payloads_move_both_ways(start_server, redis_server_port):
    import redis

    theirs = redis.Redis(port=redis_server_port)
    theirs.flushall()
    _fill(theirs.execute_command)
    theirs.sadd("ss", "a", "b", "c")  # hash tables: their order is free, so no byte comparison
    theirs.hset("ht", mapping={b"f%d" % i: b"v" for i in range(600)})
    theirs.zadd("zs", {b"m%d" % i: i + 0.5 for i in range(200)})
    ours = redis.Redis(port=start_server().resp_port)
    for key in theirs.keys():
        ours.restore(key, 0, theirs.dump(key), replace=True)  # LZF-compressed ones too
        theirs.restore(b"back:" + key, 0, ours.dump(key))
        assert _content(theirs, b"back:" + key) == _content(theirs, key) == _content(ours, key), key
    assert ours.object("encoding", "ht") == b"hashtable" and ours.object("encoding", "zs") == b"skiplist"
    theirs.flushall()


def _content(client, key):
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"hash":
        return client.hgetall(key)
    if kind == b"set":
        return client.smembers(key)
    if kind == b"zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == b"stream":
        groups = client.xinfo_groups(key)
        detail = []
        for group in groups:
            name = group["name"]
            consumers = sorted((c["name"], c["pending"]) for c in client.xinfo_consumers(key, name))
            pending = client.xpending_range(key, name, "-", "+", 1000)
            detail.append((name, group["last-delivered-id"], consumers,
                           [(p["message_id"], p["consumer"], p["times_delivered"]) for p in pending]))  # fmt: skip
        info = client.xinfo_stream(key)
        return client.xrange(key), detail, info["last-generated-id"], info.get("entries-added")
    raise AssertionError(kind)


# -- SAVE / BGSAVE, checked by Redis's own tools ---------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_redis(spawn, directory: Path, dbfilename: str = "dump.rdb", extra=()):
    import redis

    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip(REDIS_MISSING)
    port = _free_port()
    spawn([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--dbfilename",
           dbfilename, "--appendonly", "no", "--save", "", *extra],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    client = redis.Redis(port=port)

    def up() -> bool:
        try:
            return client.ping() and client.info("persistence")["loading"] == 0
        except redis.exceptions.ConnectionError:
            return False
        except redis.exceptions.BusyLoadingError:
            return False

    wait_for(up, "redis-server to start")
    return client


def _fill_databases(client) -> None:
    for db in range(16):
        client.execute_command("SELECT", db)
        _fill(client.execute_command)
        client.execute_command("SET", "ttl", "v", "PX", "100000000")
        client.execute_command("HSET", "ht", *[x for i in range(600) for x in (b"f%d" % i, b"v")])
        client.execute_command("ZADD", "zs", *[x for i in range(200) for x in (b"%d.5" % i, b"m%d" % i)])
        client.execute_command("SADD", "ss", "a", "b", "c")
        client.execute_command("RPUSH", "ll", *[b"item%d" % i for i in range(5000)])
        client.execute_command("XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "st", ">")
        client.execute_command("SET", "db", str(db))
    client.execute_command("SELECT", 0)


def _keyspace_of(port: int) -> dict:
    import redis

    out = {}
    for db in range(16):
        client = redis.Redis(port=port, db=db)
        for key in client.keys():
            out[(db, key)] = (_content(client, key), client.pexpiretime(key))
    return out


def test_save_is_valid_for_redis_check_rdb_and_redis_server(start_server, spawn, tmp_path):
    import redis

    checker = shutil.which("redis-check-rdb")
    if not checker:
        pytest.skip(REDIS_MISSING)
    save_dir = tmp_path / "rdb"
    save_dir.mkdir()
    server = start_server(rdb_dir=str(save_dir), rdb_filename="snap.rdb")
    ours = redis.Redis(port=server.resp_port)
    _fill_databases(ours)
    ours.execute_command("FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function() return 1 end)")
    assert ours.config_get("dir") == {"dir": str(save_dir)}
    assert ours.config_get("dbfilename") == {"dbfilename": "snap.rdb"}
    assert ours.info("persistence")["rdb_changes_since_last_save"] > 0
    assert ours.save()
    assert ours.info("persistence")["rdb_changes_since_last_save"] == 0
    assert not [name for name in os.listdir(save_dir) if name.endswith(".tmp")]
    check = subprocess.run([checker, str(save_dir / "snap.rdb")], capture_output=True, text=True)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout
    theirs = _start_redis(spawn, save_dir, "snap.rdb")
    assert _keyspace_of(theirs.connection_pool.connection_kwargs["port"]) == _keyspace_of(server.resp_port)
    assert theirs.fcall("f", 0) == 1


def test_overlapping_snapshots_keep_copy_on_write_until_the_last_ends():
    keyspace = Keyspace()
    keyspace.begin_snapshot()  # a log rewrite
    keyspace.begin_snapshot()  # a BGSAVE meanwhile
    keyspace.end_snapshot()  # the BGSAVE is done: the rewrite's snapshot still needs copies
    assert keyspace.snapshot_epoch
    keyspace.end_snapshot()
    assert not keyspace.snapshot_epoch


def test_config_set_dir_is_refused(start_server):
    import redis

    ours = redis.Redis(port=start_server().resp_port)
    for name in ("dir", "dbfilename"):
        with pytest.raises(redis.ResponseError, match=f"argument '{name}'.* can't set protected config"):
            ours.config_set(name, "/tmp")


def test_bgsave_holds_the_keyspace_as_it_began(start_server, tmp_path):
    import redis

    server = start_server(rdb_dir=str(tmp_path))
    ours = redis.Redis(port=server.resp_port)
    ours.rpush("l", *range(50))
    ours.hset("h", mapping={b"f%d" % i: b"v" for i in range(50)})
    saver = server.server.saver
    gate = threading.Event()
    real = rdb.FileWriter.key

    def slow_key(self, key, value, deadline):  # hold the writer until the test has written
        gate.wait(10)
        return real(self, key, value, deadline)

    rdb.FileWriter.key = slow_key
    try:
        assert ours.bgsave()
        assert ours.info("persistence")["rdb_bgsave_in_progress"] == 1
        with pytest.raises(redis.ResponseError, match="Background save already in progress"):
            ours.bgsave()
        ours.rpush("l", "new")  # a client is not held up, and the snapshot does not see it
        ours.hset("h", "f0", "changed")
        ours.set("late", "x")
    finally:
        gate.set()
        rdb.FileWriter.key = real
    saver.wait()
    info = ours.info("persistence")
    assert info["rdb_bgsave_in_progress"] == 0 and info["rdb_last_bgsave_status"] == "ok" and info["rdb_saves"] == 1
    saved = {e.key: e.value for e in rdb.read_file((tmp_path / "dump.rdb").read_bytes())}
    assert saved == {b"l": List([b"%d" % i for i in range(50)]), b"h": Hash({b"f%d" % i: b"v" for i in range(50)})}
    assert ours.lrange("l", -1, -1) == [b"new"]


def test_shutdown_save_writes_the_file(start_server, tmp_path):
    import redis

    server = start_server(rdb_dir=str(tmp_path))
    ours = redis.Redis(port=server.resp_port)
    ours.set("k", "v")
    RawRespClient(server.resp_port).send("SHUTDOWN", "SAVE")
    server.thread.join(10)
    assert [(e.key, e.value) for e in rdb.read_file((tmp_path / "dump.rdb").read_bytes())] == [(b"k", b"v")]


def test_shutdown_nosave_writes_nothing(start_server, tmp_path):
    import redis

    server = start_server(rdb_dir=str(tmp_path))
    ours = redis.Redis(port=server.resp_port)
    ours.set("k", "v")
    RawRespClient(server.resp_port).send("SHUTDOWN", "NOSAVE")
    server.thread.join(10)
    assert not server.thread.is_alive()
    assert not (tmp_path / "dump.rdb").exists()


# -- import ---------------------------------------------------------------------------


def test_import_committed_dump(tmp_path):
    log_path = tmp_path / "imported.aof"
    report = import_to_log(str(DATA / "redis-7.0-lzf.rdb"), str(log_path), now_ms=T0)
    keyspace = Keyspace()
    load_log(keyspace, str(log_path), drop_expired=False)
    expected = {(e.db, e.key): e.value for e in rdb.read_file((DATA / "redis-7.0-lzf.rdb").read_bytes())}
    got = {(db.index, key): value for db in keyspace.dbs for key, value in db.data.items()}
    assert got == expected and report.keys == report.loaded_keys == len(expected)
    with pytest.raises(ImportError_, match="not empty"):
        import_to_log(str(DATA / "redis-7.0-lzf.rdb"), str(log_path))
    with pytest.raises(ImportError_, match="not a valid RDB"):
        bad = tmp_path / "bad.rdb"
        bad.write_bytes((DATA / "redis-7.0-lzf.rdb").read_bytes()[:-20])
        import_to_log(str(bad), str(tmp_path / "other.aof"))
    assert not (tmp_path / "other.aof").exists()


def test_import_what_redis_server_wrote(spawn, tmp_path, start_server):
    import redis

    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    theirs = _start_redis(spawn, redis_dir, extra=("--appendonly", "yes", "--aof-use-rdb-preamble", "yes"))
    _fill_databases(theirs)
    theirs.save()
    theirs.bgrewriteaof()
    wait_for(lambda: theirs.info("persistence")["aof_rewrite_in_progress"] == 0
             and theirs.info("persistence")["aof_rewrite_scheduled"] == 0, "the AOF rewrite")  # fmt: skip
    theirs.execute_command("SELECT", 5)
    theirs.rpush("after-rewrite", "x")  # lands in the incremental AOF
    theirs.execute_command("SELECT", 0)
    wait_for(lambda: b"after-rewrite" in b"".join(p.read_bytes() for p in (redis_dir / "appendonlydir").glob("*.incr.aof")),
             "the incremental AOF")  # fmt: skip
    port = theirs.connection_pool.connection_kwargs["port"]
    expected = _keyspace_of(port)
    for source, name in ((redis_dir / "dump.rdb", "from-rdb"), (redis_dir / "appendonlydir", "from-aof")):
        log_path = tmp_path / f"{name}.aof"
        import_to_log(str(source), str(log_path))
        server = start_server(aof_path=str(log_path))
        got = _keyspace_of(server.resp_port)
        if name == "from-rdb":
            expected_rdb = {k: v for k, v in expected.items() if k != (5, b"after-rewrite")}
            assert got == expected_rdb
        else:
            assert got == expected
        server.stop()
