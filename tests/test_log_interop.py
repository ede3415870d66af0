"""The log is Redis's format, for every type: redis-server 7.0, started on a
log kvserver wrote (as written, and after BGREWRITEAOF), holds the same
keyspace: the same strings, lists (same order), hashes and sets, in the same
databases, with the same TTLs; and redis-check-aof calls it valid."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.conftest import REDIS_MISSING, START_TIMEOUT_S
from tests.support import wait_for

# What the clients do, on the RESP port, to fill every type.
WORKLOAD = [
    ("SET", "s", "string value"),
    ("SET", "counter", "10"),
    ("INCRBY", "counter", "5"),
    ("APPEND", "s", " and more"),
    ("SET", "ttl:s", "v", "EX", "5000"),
    ("RPUSH", "l", "a", "b", "c"),
    ("LPUSH", "l", "z"),
    ("RPOP", "l"),
    ("RPUSH", "l2", *[f"item{i}" for i in range(150)]),  # more than one rewrite batch
    ("LTRIM", "l2", "10", "-10"),
    ("HSET", "h", "f1", "v1", "f2", "v2"),
    ("HSET", "big:h", *[x for i in range(200) for x in (f"field{i}", f"value{i}")]),
    ("HDEL", "big:h", "field7"),
    ("HINCRBY", "h", "n", "3"),
    ("SADD", "set", "x", "y", "z"),
    ("SADD", "ints", *[str(i) for i in range(100)]),
    ("SREM", "set", "y"),
    ("EXPIRE", "l", "5000"),
    ("EXPIRE", "h", "5000"),
    ("EXPIRE", "set", "5000"),
    ("SELECT", "3"),
    ("RPUSH", "db3:list", "one"),
    ("SADD", "db3:set", "m"),
    ("HSET", "db3:hash", "k", "v"),
    ("MULTI",),
    ("RPUSH", "tx:list", "1", "2"),
    ("SADD", "tx:set", "1"),
    ("EXEC",),
    ("SELECT", "0"),
]


def _read_keyspace(port: int) -> dict:
    """Every key of every database: (type, contents, has a TTL)."""
    import redis

    found = {}
    for db in range(16):
        r = redis.Redis(port=port, db=db, protocol=2)
        for key in r.scan_iter(count=1000):
            kind = r.type(key).decode()
            contents = {
                "string": lambda: r.get(key),
                "list": lambda: r.lrange(key, 0, -1),
                "hash": lambda: r.hgetall(key),
                "set": lambda: r.smembers(key),
            }[kind]()
            ttl = r.pttl(key)
            found[(db, key)] = (kind, contents, ttl > 0)
    return found


def _start_redis_on(log_path, workdir) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip(REDIS_MISSING)
    data = workdir / "redis-data"
    data.mkdir()
    # An appendonly.aof in dir and no manifest: Redis 7 loads it as the base
    # of a new appendonlydir (its upgrade path from Redis 6's single file).
    shutil.copy(log_path, data / "appendonly.aof")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--appendfilename", "appendonly.aof", "--dir", str(data)],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output = proc.communicate()[0].decode(errors="replace")
            raise AssertionError(f"redis-server did not load the log:\n{output[-2000:]}")
        time.sleep(0.05)  # polling for it to start, with a deadline


@pytest.mark.parametrize("rewrite", [False, True], ids=["as written", "after BGREWRITEAOF"])
def test_redis_server_loads_the_log_to_the_same_keyspace(tmp_path, start_server, rewrite):
    import redis

    log_path = tmp_path / "kv.aof"
    server = start_server(aof_path=str(log_path))
    r = redis.Redis(port=server.resp_port, protocol=2)
    pipe = r.pipeline(transaction=False)
    for args in WORKLOAD:
        pipe.execute_command(*args)
    replies = pipe.execute(raise_on_error=True)
    assert replies[-1] is True or replies[-1] == b"OK"
    if rewrite:
        r.bgrewriteaof()
        rewriter = server.server.rewriter
        wait_for(lambda: rewriter.rewrites == 1 and not rewriter.in_progress, "the rewrite to finish")
    ours = _read_keyspace(server.resp_port)
    server.stop()
    checker = shutil.which("redis-check-aof")
    if checker:
        result = subprocess.run([checker, str(log_path)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0 and " is valid" in result.stdout, result.stdout + result.stderr
    proc, port = _start_redis_on(log_path, tmp_path)
    try:
        theirs = _read_keyspace(port)
    finally:
        proc.kill()
        proc.wait()
    assert len(ours) == 14
    assert theirs == ours


def test_a_rewrite_while_writers_push_loses_and_duplicates_nothing(tmp_path, server_process):
    """20,000 concurrent RPUSH / INCR / HINCRBY / SADD while BGREWRITEAOF runs
    again and again (the containers are copied on write under the
    snapshot); after a restart every count is exact."""
    import threading

    import redis

    log_path = tmp_path / "busy.aof"
    server = server_process(log_path)
    writers, per_writer = 4, 5000
    rewrites = [0]
    stop = threading.Event()

    def write(n):
        r = redis.Redis(port=server.resp_port, protocol=2)
        for i in range(per_writer):
            pipe = r.pipeline(transaction=False)
            pipe.rpush("list", f"{n}:{i}")
            pipe.incr("counter")
            pipe.hincrby("hash", f"w{n}", 1)
            pipe.sadd("set", f"{n}:{i}")
            pipe.execute()

    def rewrite():
        r = redis.Redis(port=server.resp_port, protocol=2)
        while not stop.is_set():
            try:
                r.bgrewriteaof()
                rewrites[0] += 1
            except redis.ResponseError:
                pass  # one is already running
            stop.wait(0.05)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    rewriter = threading.Thread(target=rewrite)
    rewriter.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    stop.set()
    rewriter.join(30)
    assert rewrites[0] >= 3, "too few rewrites overlapped the writes to prove anything"
    r = redis.Redis(port=server.resp_port, protocol=2)
    # redis-py parses INFO into a dict (execute_command too): ask for the field.
    wait_for(lambda: r.info("persistence")["aof_rewrite_in_progress"] == 0, "the last rewrite")
    server.proc.terminate()
    assert server.finish() == 0
    restarted = server_process(log_path)
    r = redis.Redis(port=restarted.resp_port, protocol=2)
    total = writers * per_writer
    assert r.llen("list") == total
    assert int(r.get("counter")) == total
    assert r.scard("set") == total
    assert {k: int(v) for k, v in r.hgetall("hash").items()} == {b"w%d" % n: per_writer for n in range(writers)}
    items = r.lrange("list", 0, -1)
    assert len(set(items)) == total  # no duplicates
    for n in range(writers):  # each writer's pushes in its own order
        mine = [int(x.split(b":")[1]) for x in items if x.startswith(b"%d:" % n)]
        assert mine == list(range(per_writer))
