"""BGREWRITEAOF: a compact log, writes during the rewrite kept, crash-safe steps."""

from __future__ import annotations

import os
import threading

import pytest

from kvserver.aof import AppendOnlyFile
from kvserver.dispatch import Dispatcher
from kvserver.protocol import Status
from kvserver import rewrite as rewrite_module
from kvserver.rewrite import AofRewriter, _write_snapshot
from kvserver.server import load_log
from kvserver.session import Session
from kvserver.store import Keyspace
from tests.support import T0, FakeClock, Harness, dump


def workload(tmp_path):
    """A log to rewrite: 200 keys set twice, deadlines, a key in database 3.
    ``run`` (a Harness) writes more through the same session."""
    run = Harness(tmp_path / "a.aof")
    for i in range(200):
        run("SET", f"k{i}", f"v{i}")
        run("SET", f"k{i}", f"final{i}")  # overwritten: the rewrite keeps one SET
    run("EXPIRE", "k1", "100")
    run("PEXPIREAT", "k2", str(T0 + 5))
    run("SELECT", "3")
    run("SET", "three", "\x00bin")
    run("SELECT", "0")
    return run.keyspace, run.aof, run.dispatcher, run, run.clock


def test_rewrite_is_smaller_and_replays_to_the_same_keyspace(tmp_path):
    keyspace, aof, _, _, clock = workload(tmp_path)
    before = aof.size
    rewriter = AofRewriter(keyspace, aof)
    assert rewriter.start()
    rewriter.wait(10)
    assert rewriter.last_status == "ok"
    assert aof.size < before / 1.5
    aof.close()
    replayed = Keyspace(clock=clock)
    load_log(replayed, aof.path)
    assert dump(replayed) == dump(keyspace)


def test_writes_during_the_rewrite_are_kept(tmp_path, monkeypatch):
    keyspace, aof, _, run, clock = workload(tmp_path)
    rewriter = AofRewriter(keyspace, aof)
    snapshot_written = threading.Event()
    go_on = threading.Event()
    import kvserver.rewrite as rewrite_module

    real = rewrite_module._write_snapshot

    def paused(*args):
        real(*args)
        snapshot_written.set()
        go_on.wait(10)  # the test writes while the new file waits for its tail

    monkeypatch.setattr(rewrite_module, "_write_snapshot", paused)
    rewriter.start()
    assert snapshot_written.wait(10)
    assert rewriter.in_progress
    assert run("SET", "during", "x") == Status("OK")
    assert run("DEL", "k5") == 1
    run("SELECT", "3")
    assert run("SET", "three", "changed") == Status("OK")  # must land in db 3 on replay
    go_on.set()
    rewriter.wait(10)
    assert rewriter.last_status == "ok"
    assert run("SET", "after", "y") == Status("OK")  # appends go to the new file
    aof.close()
    replayed = Keyspace(clock=clock)
    load_log(replayed, aof.path)
    assert dump(replayed) == dump(keyspace)
    assert replayed.dbs[3].data[b"three"] == b"changed"


def test_a_crash_before_the_rename_leaves_the_old_log_whole(tmp_path):
    # Step 2 of the rewrite done (the temporary file written), then a crash:
    # the log itself was never touched.
    keyspace, aof, _, _, clock = workload(tmp_path)
    original = (tmp_path / "a.aof").read_bytes()
    with open(tmp_path / "a.aof.rewrite-left.tmp", "wb") as file:
        _write_snapshot(file, [(0, {b"only": b"this"}, {})], T0)
    aof.close()
    assert (tmp_path / "a.aof").read_bytes() == original
    replayed = Keyspace(clock=clock)
    load_log(replayed, str(tmp_path / "a.aof"))
    assert dump(replayed) == dump(keyspace)


def test_bgrewriteaof_over_the_wire(start_server, tmp_path):
    from tests.resp_client import RawRespClient

    server = start_server()
    client = RawRespClient(server.resp_port)
    for i in range(50):
        client.call("SET", "key", str(i))
    assert client.call("BGREWRITEAOF") == b"+Background append only file rewriting started\r\n"
    server.server.rewriter.wait(10)
    assert server.server.rewriter.last_status == "ok"
    assert client.call("GET", "key") == b"$2\r\n49\r\n"


def test_automatic_rewrite_once_the_log_doubles(tmp_path):
    clock = FakeClock(T0)
    keyspace = Keyspace(clock=clock)
    aof = AppendOnlyFile(str(tmp_path / "a.aof"), fsync="no")
    dispatcher = Dispatcher(keyspace, aof)
    rewriter = AofRewriter(keyspace, aof, auto_percentage=100, auto_min_size=2000)
    session = Session(keyspace)
    for i in range(400):
        dispatcher.execute(session, [b"SET", b"same", b"%d" % i])
        rewriter.wait(10)  # let a triggered rewrite finish before the next write
    assert rewriter.rewrites >= 1
    assert aof.size < 4000  # 400 overwrites of one key never let it grow far
    aof.close()


def test_a_symlink_planted_beside_the_log_is_never_followed(tmp_path, monkeypatch):
    # The rewrite's temporary file once had a fixed name: a symlink planted
    # there made BGREWRITEAOF overwrite its target, and the log became the
    # symlink. Every name it might use now is created exclusively.
    keyspace, aof, _, run, clock = workload(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious"
    target.write_bytes(b"not yours")
    (tmp_path / "a.aof.rewrite-tmp").symlink_to(target)
    seen = {}

    def spying(file, *args):
        seen["mode"] = os.fstat(file.fileno()).st_mode & 0o777
        seen["name"] = file.name
        return real(file, *args)

    real = rewrite_module._write_snapshot
    monkeypatch.setattr(rewrite_module, "_write_snapshot", spying)
    rewriter = AofRewriter(keyspace, aof)
    rewriter.start()
    rewriter.wait(10)
    assert rewriter.last_status == "ok"
    assert target.read_bytes() == b"not yours"
    assert not os.path.islink(aof.path) and os.path.islink(tmp_path / "a.aof.rewrite-tmp")
    assert seen["mode"] == 0o600
    assert os.stat(aof.path).st_mode & 0o777 == 0o600
    assert run("SET", "after", "y") == Status("OK")  # appends go to the new file
    aof.close()
    replayed = Keyspace(clock=clock)
    load_log(replayed, aof.path)
    assert dump(replayed) == dump(keyspace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.aof", "a.aof.rewrite-tmp", "outside"]


def test_finishing_a_rewrite_refuses_a_symlink_swapped_in(tmp_path):
    # Even at the name the rewriter created itself: O_NOFOLLOW.
    keyspace, aof, _, run, _ = workload(tmp_path)
    before = (tmp_path / "a.aof").read_bytes()
    target = tmp_path / "precious"
    target.write_bytes(b"not yours")
    (tmp_path / "swapped.tmp").symlink_to(target)
    aof.begin_rewrite()
    with pytest.raises(OSError):
        aof.finish_rewrite(str(tmp_path / "swapped.tmp"))
    aof.abort_rewrite()
    assert target.read_bytes() == b"not yours"
    assert (tmp_path / "a.aof").read_bytes() == before and not os.path.islink(tmp_path / "a.aof")
    assert run("SET", "still", "works") == Status("OK")


def test_the_log_is_created_readable_by_its_owner_only(tmp_path):
    aof = AppendOnlyFile(str(tmp_path / "new.aof"), fsync="no")
    try:
        assert os.stat(tmp_path / "new.aof").st_mode & 0o777 == 0o600
    finally:
        aof.close()
