"""Tests for kvserver/commands/objectcmd.py (OBJECT) and the encoding
thresholds in CONFIG (configcmd.py), and the keyspace commands on sets:
side by side with redis-server 7.0.15 where Redis has the same command,
at the harness level where kvserver has no command yet (hashes)."""

from __future__ import annotations

from kvserver.values import Hash

SUBCOMMANDS = ("ENCODING", "REFCOUNT", "IDLETIME", "FREQ")


def test_side_by_side_object_replies(side_by_side):
    both = side_by_side.both
    for value in ("5", "0", "9999", "10000", "-1", "hello", "x" * 44, "x" * 45, "007", "1.5"):
        both("SET", "k", value)
        for sub in ("ENCODING", "REFCOUNT", "FREQ"):
            both("OBJECT", sub, "k")
    both("SADD", "s", "1")
    for sub in ("ENCODING", "REFCOUNT", "FREQ"):
        both("OBJECT", sub, "s")
    for sub in SUBCOMMANDS:
        both("OBJECT", sub, "nokey")
        both("OBJECT", sub)
        both("OBJECT", sub, "a", "b")
    both("OBJECT", "HELP")
    both("OBJECT", "help", "x")
    both("OBJECT", "foo", "k")
    both("OBJECT")
    ours, theirs = side_by_side.each("OBJECT", "IDLETIME", "s")
    assert ours == b":0\r\n" and theirs.startswith(b":")  # see objectcmd.py


def test_side_by_side_set_encoding_transitions(side_by_side):
    both = side_by_side.both
    both("SADD", "s", "1", "2", "-3")
    assert both("OBJECT", "ENCODING", "s") == b"$6\r\nintset\r\n"
    both("SADD", "s", "x")  # a member that is not an integer
    assert both("OBJECT", "ENCODING", "s") == b"$9\r\nhashtable\r\n"
    both("SREM", "s", "x")
    both("OBJECT", "ENCODING", "s")  # Redis never converts back
    both("SADD", "n", *[str(i) for i in range(512)])
    assert both("OBJECT", "ENCODING", "n") == b"$6\r\nintset\r\n"
    both("SADD", "n", "512")  # past set-max-intset-entries
    assert both("OBJECT", "ENCODING", "n") == b"$9\r\nhashtable\r\n"
    both("CONFIG", "SET", "set-max-intset-entries", "3")
    both("SADD", "m", "1", "2", "3")
    both("OBJECT", "ENCODING", "m")
    both("SADD", "m", "4")
    both("OBJECT", "ENCODING", "m")
    both("SADD", "str", "01")  # not canonical: not an integer to an intset
    both("OBJECT", "ENCODING", "str")
    both("CONFIG", "SET", "set-max-intset-entries", "512")


def test_hash_encoding_transitions_follow_the_config(kv):
    """No HSET yet: a Hash stored directly, changed through its own methods."""
    value = Hash({b"f": b"v"})
    kv.db.set(b"h", value)
    assert kv("OBJECT", "ENCODING", "h") == b"listpack"
    for i in range(512):
        value.set_field(b"f%d" % i, b"v")
    assert kv("OBJECT", "ENCODING", "h") == b"hashtable"  # 513 fields, past 512
    kv.keyspace.encodings.hash_max_listpack_entries = 1000  # CONFIG SET's effect (no server state here)
    assert kv("OBJECT", "ENCODING", "h") == b"listpack"  # (Redis would not convert back)
    long = Hash({b"f": b"v" * 64})
    kv.db.set(b"long", long)
    assert kv("OBJECT", "ENCODING", "long") == b"listpack"
    long.set_field(b"g", b"v" * 65)  # a value past hash-max-listpack-value
    assert kv("OBJECT", "ENCODING", "long") == b"hashtable"


CONFIG_NAMES = [
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "set-max-intset-entries",
]


def test_side_by_side_config_encoding_settings(side_by_side):
    both = side_by_side.both
    for name in CONFIG_NAMES:
        both("CONFIG", "GET", name)
    for name, value in [
        ("set-max-intset-entries", "x"),
        ("set-max-intset-entries", "-1"),
        ("set-max-intset-entries", "100"),
        ("list-max-listpack-size", "0"),
        ("list-max-listpack-size", "-5"),
        ("list-max-ziplist-size", "2147483648"),
        ("hash-max-listpack-entries", "-1"),
        ("hash-max-ziplist-value", "100"),
        ("hash-max-listpack-value", "1kb"),
        ("hash-max-listpack-value", "x"),
        ("hash-max-ziplist-entries", "9223372036854775808"),
    ]:
        both("CONFIG", "SET", name, value)
        for shown in CONFIG_NAMES:
            both("CONFIG", "GET", shown)
    # Put Redis's defaults back for the other tests sharing that redis-server.
    both("CONFIG", "SET", "list-max-listpack-size", "-2", "hash-max-listpack-entries", "512")
    both("CONFIG", "SET", "hash-max-listpack-value", "64", "set-max-intset-entries", "512")


def test_side_by_side_keyspace_commands_on_sets(side_by_side):
    both = side_by_side.both
    both("SADD", "s", "a", "b")
    both("SET", "str", "v")
    both("SADD", "n", "1")
    for args in [
        ("TYPE", "s"),
        ("EXISTS", "s", "n", "nokey"),
        ("SCAN", "0", "TYPE", "set", "COUNT", "1000"),
        ("EXPIRE", "s", "100"),
        ("TTL", "s"),
        ("RENAME", "s", "s2"),
        ("TYPE", "s2"),
        ("COPY", "s2", "c"),
        ("SADD", "c", "z"),  # the copy changes, the source does not
        ("SCARD", "s2"),
        ("SCARD", "c"),
        ("SISMEMBER", "s2", "z"),
        ("MOVE", "c", "1"),
        ("SELECT", "1"),
        ("SCARD", "c"),
        ("SELECT", "0"),
        ("SWAPDB", "0", "1"),
        ("SCARD", "c"),
        ("SCARD", "s2"),
        ("SWAPDB", "0", "1"),
        ("DEL", "s2", "n"),
        ("EXISTS", "s2"),
    ]:
        ours, theirs = side_by_side.each(*args)
        if args[0] == "SCAN":
            assert sorted(ours.split(b"\r\n")[3:]) == sorted(theirs.split(b"\r\n")[3:])
        else:
            assert ours == theirs, args


def test_scan_type_set_and_memory_usage_grows(kv):
    kv("SADD", "s1", "a")
    kv("SADD", "s2", "b")
    kv("SET", "str", "x")
    cursor, keys = kv("SCAN", 0, "TYPE", "set", "COUNT", 1000)
    assert sorted(keys) == [b"s1", b"s2"]
    sizes = [kv("MEMORY", "USAGE", "s1")]
    for n in (10, 100, 1000):
        kv("SADD", "s1", *[b"member-%d" % i for i in range(n)])
        sizes.append(kv("MEMORY", "USAGE", "s1"))
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    assert kv("COPY", "s1", "c1") == 1
    kv("SREM", "c1", "a")
    assert kv("SISMEMBER", "s1", "a") == 1  # a deep copy


def test_config_set_changes_object_encoding_live(start_server):
    import redis

    server = start_server()
    r = redis.Redis(port=server.resp_port)
    r.sadd("s", "1", "2", "3")
    assert r.object("encoding", "s") == b"intset"
    assert r.config_set("set-max-intset-entries", 2)
    assert r.config_get("set-max-*") == {"set-max-intset-entries": "2"}
    assert r.object("encoding", "s") == b"hashtable"
    assert r.config_set("hash-max-ziplist-entries", 7)
    assert r.config_get("hash-max-listpack-entries") == {"hash-max-listpack-entries": "7"}
