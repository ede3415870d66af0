"""Tests for kvserver/aof.py: appending, replay, a torn tail, corruption, and
the round trip "run writes, close, replay, get the same keyspace".

Files live in pytest's tmp_path; time is a fake clock, so every deadline in
the log is exact.
"""

from __future__ import annotations

import os
import random

import pytest

from kvserver import aof as aof_module
from kvserver.aof import AppendOnlyFile, ReplayResult, replay
from kvserver.dispatch import Dispatcher
from kvserver.errors import AofCorruptError, AofError, CommandError
from kvserver.protocol import Status
from kvserver.session import Session
from kvserver.server import load_log
from kvserver.store import Keyspace
from tests.support import T0, FakeClock, FlakyAof, dump, live_dump, resp


def load(path, clock: FakeClock) -> tuple[Keyspace, ReplayResult]:
    """Replay ``path`` into a fresh keyspace the way the server does."""
    keyspace = Keyspace(clock=clock)
    return keyspace, load_log(keyspace, str(path))


def collect(path) -> tuple[list[list[bytes]], ReplayResult]:
    seen: list[list[bytes]] = []

    def apply(args):
        seen.append(args)
        return Status("OK")

    result = replay(str(path), apply)
    return seen, result


def write(path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)


# A small log as this server writes it, record by record.
RECORDS = [
    resp("SELECT", "0"),
    resp("SET", "a", "1"),
    resp("SET", "b", "two"),
    resp("PEXPIREAT", "b", str(T0 + 60_000)),
    resp("SELECT", "3"),
    resp("SET", "c", b"x\r\ny"),
    resp("DEL", "c"),
    resp("SET", "key:last", "hello, world"),  # the record the torn-tail tests cut
]
LOG = b"".join(RECORDS)
LAST_START = len(LOG) - len(RECORDS[-1])


# -- AppendOnlyFile ----------------------------------------------------------------


def test_append_writes_select_then_records(tmp_path):
    path = tmp_path / "a.aof"
    aof = AppendOnlyFile(str(path), fsync="no")
    aof.append(0, [[b"SET", b"a", b"1"]])
    aof.append(0, [[b"DEL", b"a"], [b"DEL", b"b"]])
    aof.append(2, [[b"SET", b"x", b""]])
    aof.close()
    assert path.read_bytes() == (
        resp("SELECT", "0")
        + resp("SET", "a", "1")
        + resp("DEL", "a")
        + resp("DEL", "b")
        + resp("SELECT", "2")
        + resp("SET", "x", "")
    )


def test_append_tracks_size_of_whole_records(tmp_path):
    path = tmp_path / "a.aof"
    aof = AppendOnlyFile(str(path), fsync="no")
    assert aof.size == 0
    aof.append(0, [[b"SET", b"a", b"1"]])
    assert aof.size == len(resp("SELECT", "0") + resp("SET", "a", "1")) == path.stat().st_size
    aof.close()


def test_reopened_log_appends_and_selects_again(tmp_path):
    path = tmp_path / "a.aof"
    aof = AppendOnlyFile(str(path), fsync="no")
    aof.append(5, [[b"SET", b"a", b"1"]])
    aof.close()
    aof = AppendOnlyFile(str(path), fsync="no")
    assert aof.size == path.stat().st_size
    aof.append(5, [[b"SET", b"b", b"2"]])
    aof.close()
    assert path.read_bytes() == (
        resp("SELECT", "5") + resp("SET", "a", "1") + resp("SELECT", "5") + resp("SET", "b", "2")
    )


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_every_fsync_policy_writes_the_same_bytes(tmp_path, fsync):
    path = tmp_path / "a.aof"
    aof = AppendOnlyFile(str(path), fsync=fsync)
    aof.append(0, [[b"SET", b"a", b"1"]])
    aof.close()
    aof.close()  # safe twice
    assert path.read_bytes() == resp("SELECT", "0") + resp("SET", "a", "1")


def test_unknown_fsync_policy_is_refused(tmp_path):
    with pytest.raises(ValueError, match="appendfsync"):
        AppendOnlyFile(str(tmp_path / "a.aof"), fsync="sometimes")


def test_unopenable_log_is_an_aof_error(tmp_path):
    with pytest.raises(AofError, match="cannot open the append only file"):
        AppendOnlyFile(str(tmp_path / "no" / "such" / "dir.aof"), fsync="no")


# -- replay: whole logs ----------------------------------------------------------------


def test_missing_file_is_an_empty_log(tmp_path):
    path = tmp_path / "missing.aof"
    seen, result = collect(path)
    assert seen == [] and result.records == 0 and result.truncated_bytes == 0
    assert not path.exists()


def test_empty_file_is_an_empty_log(tmp_path):
    path = tmp_path / "empty.aof"
    write(path, b"")
    seen, result = collect(path)
    assert seen == [] and result.records == 0 and result.truncated_bytes == 0


def test_replay_feeds_every_record_in_order(tmp_path):
    path = tmp_path / "a.aof"
    write(path, LOG)
    seen, result = collect(path)
    assert result.records == len(RECORDS) == len(seen)
    assert seen[0] == [b"SELECT", b"0"]
    assert seen[5] == [b"SET", b"c", b"x\r\ny"]
    assert seen[-1] == [b"SET", b"key:last", b"hello, world"]
    assert result.truncated_bytes == 0
    assert path.read_bytes() == LOG


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1024 * 1024])
def test_replay_reads_in_chunks_of_any_size(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(aof_module, "REPLAY_CHUNK_BYTES", chunk)
    path = tmp_path / "a.aof"
    write(path, LOG)
    seen, result = collect(path)
    assert b"".join(resp(*args) for args in seen) == LOG
    assert result.records == len(RECORDS)


def test_replay_through_the_dispatcher_rebuilds_the_keyspace(tmp_path):
    path = tmp_path / "a.aof"
    write(path, LOG)
    keyspace, result = load(path, FakeClock())
    assert result.records == len(RECORDS)
    assert dump(keyspace) == {
        0: ({b"a": b"1", b"b": b"two"}, {b"b": T0 + 60_000}),
        3: ({b"key:last": b"hello, world"}, {}),
    }


def test_replay_drops_keys_whose_deadline_has_passed(tmp_path):
    path = tmp_path / "a.aof"
    write(path, LOG)
    keyspace, _ = load(path, FakeClock(T0 + 60_001))
    assert dump(keyspace) == {
        0: ({b"a": b"1"}, {}),
        3: ({b"key:last": b"hello, world"}, {}),
    }


def test_replay_at_exactly_a_deadline_keeps_the_key_as_the_live_server_would(tmp_path):
    # Live, a key at its deadline still reads (Redis: expired only when
    # now > deadline); a replay at that instant must rebuild the same.
    path = tmp_path / "a.aof"
    write(path, resp("SET", "k", "v") + resp("PEXPIREAT", "k", str(T0)))
    keyspace, _ = load(path, FakeClock(T0))
    assert keyspace.dbs[0].lookup(b"k", T0) == b"v"
    keyspace, _ = load(path, FakeClock(T0 + 1))
    assert dump(keyspace) == {}


def test_replay_of_a_log_written_in_two_runs(tmp_path):
    path = tmp_path / "a.aof"
    aof = AppendOnlyFile(str(path), fsync="no")
    aof.append(1, [[b"SET", b"a", b"1"]])
    aof.close()
    aof = AppendOnlyFile(str(path), fsync="no")
    aof.append(0, [[b"SET", b"b", b"2"]])
    aof.append(1, [[b"DEL", b"a"]])
    aof.close()
    keyspace, result = load(path, FakeClock())
    assert result.records == 6  # SELECT 1, SET, then SELECT 0, SET, SELECT 1, DEL
    assert dump(keyspace) == {0: ({b"b": b"2"}, {})}


# -- replay: a torn tail -----------------------------------------------------------------


@pytest.mark.parametrize("chunk", [3, 1024 * 1024])
def test_torn_tail_is_truncated_at_every_cut(tmp_path, monkeypatch, chunk):
    # The process died part way through its last append: whatever prefix of
    # the last record reached the file, replay drops it and cuts the file
    # back to the end of the record before.
    monkeypatch.setattr(aof_module, "REPLAY_CHUNK_BYTES", chunk)
    path = tmp_path / "a.aof"
    for cut in range(LAST_START + 1, len(LOG)):
        write(path, LOG[:cut])
        seen, result = collect(path)
        assert result.records == len(RECORDS) - 1, cut
        assert len(seen) == len(RECORDS) - 1
        assert result.truncated_bytes == cut - LAST_START, cut
        assert os.path.getsize(path) == LAST_START, cut
        assert path.read_bytes() == LOG[:LAST_START]


def test_cut_exactly_at_a_record_boundary_is_not_torn(tmp_path):
    path = tmp_path / "a.aof"
    write(path, LOG[:LAST_START])
    _, result = collect(path)
    assert result.records == len(RECORDS) - 1
    assert result.truncated_bytes == 0
    assert os.path.getsize(path) == LAST_START


def test_torn_tail_through_the_dispatcher(tmp_path):
    path = tmp_path / "a.aof"
    write(path, LOG[:-1])
    keyspace, result = load(path, FakeClock())
    assert result.truncated_bytes == len(RECORDS[-1]) - 1
    assert keyspace.dbs[3].data == {}  # the torn SET never happened


def test_log_with_only_a_torn_record_is_emptied(tmp_path):
    path = tmp_path / "a.aof"
    for cut in range(1, len(RECORDS[0])):
        write(path, RECORDS[0][:cut])
        seen, result = collect(path)
        assert seen == [] and result.records == 0
        assert result.truncated_bytes == cut
        assert os.path.getsize(path) == 0


def test_torn_tail_with_a_large_value(tmp_path, monkeypatch):
    monkeypatch.setattr(aof_module, "REPLAY_CHUNK_BYTES", 4096)
    path = tmp_path / "a.aof"
    big = resp("SET", "big", b"v" * 100_000)
    head = RECORDS[0] + RECORDS[1]
    for cut in (1, 20, 50_000, len(big) - 2, len(big) - 1):
        write(path, head + big[:cut])
        _, result = collect(path)
        assert result.records == 2
        assert result.truncated_bytes == cut
        assert os.path.getsize(path) == len(head)


def test_after_truncation_the_log_can_be_appended_and_replayed(tmp_path):
    path = tmp_path / "a.aof"
    write(path, LOG[:-5])
    load(path, FakeClock())
    aof = AppendOnlyFile(str(path), fsync="no")
    aof.append(0, [[b"SET", b"after", b"crash"]])
    aof.close()
    keyspace, result = load(path, FakeClock())
    assert result.truncated_bytes == 0
    assert result.records == len(RECORDS) - 1 + 2
    assert keyspace.dbs[0].data[b"after"] == b"crash"


def test_torn_tail_is_reported_in_the_log(tmp_path, caplog):
    path = tmp_path / "a.aof"
    write(path, LOG[:-3])
    collect(path)
    assert "incomplete record" in caplog.text
    assert f"byte offset {LAST_START}" in caplog.text


# -- replay: corruption in the middle ----------------------------------------------------------

GOOD_HEAD = RECORDS[0] + RECORDS[1]  # SELECT 0, SET a 1
GOOD_TAIL = RECORDS[2]  # SET b two


def corrupt_cases():
    # (name, bytes, the offset at which the damage must be reported)
    at = len(GOOD_HEAD)
    set_a = resp("SET", "a", "12")  # ... $2\r\n12\r\n

    def damaged(record: bytes, old: bytes, new: bytes) -> bytes:
        assert old in record
        return GOOD_HEAD + record.replace(old, new) + GOOD_TAIL

    return [
        ("bad prefix", damaged(RECORDS[2], b"*3", b"x3"), at),
        ("bad array length", damaged(RECORDS[2], b"*3", b"*x"), at),
        ("bulk length too long", damaged(set_a, b"$2\r\n12", b"$3\r\n12"), at),
        ("bulk length too short", damaged(set_a, b"$2\r\n12", b"$1\r\n12"), at),
        ("bulk length not a number", damaged(set_a, b"$2\r\n12", b"$z\r\n12"), at),
        ("negative bulk length", damaged(set_a, b"$2\r\n12", b"$-2\r\n12"), at),
        ("missing $", damaged(set_a, b"$2\r\n12", b"#2\r\n12"), at),
        ("junk", GOOD_HEAD + b"hello world\r\n" + GOOD_TAIL, at),
        ("junk without line end", GOOD_HEAD + b"hello" + GOOD_TAIL, at),
        ("half a record then a whole one", GOOD_HEAD + RECORDS[2][:-6] + GOOD_TAIL, at),
        ("unknown command", GOOD_HEAD + resp("FROB", "a") + GOOD_TAIL, at),
        ("unknown command last", GOOD_HEAD + resp("FROB", "a"), at),
        ("wrong arity", GOOD_HEAD + resp("GET") + GOOD_TAIL, at),
        ("invalid argument", GOOD_HEAD + resp("PEXPIREAT", "a", "soon") + GOOD_TAIL, at),
        ("junk at the start", b"?" + LOG, 0),
        ("SET with a bad option", resp("SET", "a", "1", "NX", "XX") + GOOD_TAIL, 0),
    ]


@pytest.mark.parametrize("chunk", [5, 1024 * 1024])
@pytest.mark.parametrize("name, data, offset", corrupt_cases(), ids=[c[0] for c in corrupt_cases()])
def test_corruption_stops_replay_with_the_fix_spelled_out(tmp_path, monkeypatch, chunk, name, data, offset):
    monkeypatch.setattr(aof_module, "REPLAY_CHUNK_BYTES", chunk)
    path = tmp_path / "appendonly.aof"
    write(path, data)
    with pytest.raises(AofCorruptError) as info:
        load(path, FakeClock())
    error = info.value
    message = str(error)
    assert str(path) in message
    assert f"byte offset {offset}" in message
    assert f"kv-check-aof --fix {path}" in message
    assert error.offset == offset and error.path == str(path)
    assert path.read_bytes() == data  # nothing is cut off a damaged log


def test_corruption_names_the_rejected_command(tmp_path):
    path = tmp_path / "a.aof"
    write(path, GOOD_HEAD + resp("FROB", "a") + GOOD_TAIL)
    with pytest.raises(AofCorruptError, match="unknown command 'FROB'"):
        load(path, FakeClock())


def test_corruption_is_an_aof_error(tmp_path):
    path = tmp_path / "a.aof"
    write(path, b"junk\r\n")
    with pytest.raises(AofError):
        collect(path)


def test_error_reply_from_apply_is_corruption(tmp_path):
    path = tmp_path / "a.aof"
    write(path, LOG)
    count = 0

    def apply(args):
        nonlocal count
        count += 1
        return CommandError("ERR no") if count == 3 else Status("OK")

    with pytest.raises(AofCorruptError) as info:
        replay(str(path), apply)
    assert info.value.offset == len(RECORDS[0]) + len(RECORDS[1])
    assert "ERR no" in str(info.value)


# -- round trip: random writes, close, replay, same keyspace --------------------------------------

KEYS = [b"k%d" % i for i in range(12)] + [b"", b"with space", b"cr\r\nlf", b"\x00\xff"]


def random_command(rng: random.Random, now: int) -> list[bytes]:
    key = rng.choice(KEYS)
    kind = rng.random()
    options = rng.choice([[], [], [], [b"NX"], [b"XX"], [b"GT"], [b"LT"], [b"xx", b"gt"], [b"XX", b"LT"]])
    if kind < 0.30:
        value = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 12)))
        return [b"SET", key, value]
    if kind < 0.40:
        return [b"DEL"] + rng.sample(KEYS, rng.randrange(1, 4))
    if kind < 0.55:
        return [b"EXPIRE", key, b"%d" % rng.randrange(-2, 20)] + options
    if kind < 0.70:
        return [b"PEXPIRE", key, b"%d" % rng.randrange(-500, 20_000)] + options
    if kind < 0.77:
        return [b"EXPIREAT", key, b"%d" % (now // 1000 + rng.randrange(-5, 20))] + options
    if kind < 0.85:
        return [b"PEXPIREAT", key, b"%d" % (now + rng.randrange(-2000, 20_000))] + options
    if kind < 0.92:
        return [b"SELECT", b"%d" % rng.choice([0, 0, 1, 2, 15])]
    return [rng.choice([b"GET", b"TTL", b"PTTL"]), key]


def run_workload(path, seed: int, steps: int, failure_rate: float = 0.0) -> tuple[Keyspace, FakeClock]:
    rng = random.Random(seed)
    clock = FakeClock()
    keyspace = Keyspace(clock=clock)
    aof = FlakyAof(str(path), rng, failure_rate)
    dispatcher = Dispatcher(keyspace, aof)
    sessions = [Session(keyspace, client_id=i) for i in range(3)]
    try:
        for _ in range(steps):
            clock.advance(rng.choice([0, 0, 1, 7, 250, 1000, 3000]))
            args = random_command(rng, clock())
            reply = dispatcher.execute(rng.choice(sessions), args)
            if isinstance(reply, CommandError):
                assert reply.message.startswith(("MISCONF", "ERR NX and XX", "ERR GT and LT")), (args, reply)
            if rng.random() < 0.05:
                keyspace.active_expire_cycle(budget_s=0)
    finally:
        aof.close()
    if failure_rate:
        assert aof.failures, "the workload never hit a failing append"
    return keyspace, clock


@pytest.mark.parametrize("seed", range(6))
def test_round_trip_gives_the_same_keyspace(tmp_path, seed):
    path = tmp_path / "a.aof"
    original, clock = run_workload(path, seed, steps=400)
    replayed, result = load(path, FakeClock(clock()))
    assert result.truncated_bytes == 0
    assert dump(replayed) == live_dump(original, clock())
    assert dump(replayed), "the workload left nothing to compare"


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_with_failing_appends(tmp_path, seed):
    # A refused write is not applied and not logged, so the log still
    # rebuilds exactly what clients were told.
    path = tmp_path / "a.aof"
    original, clock = run_workload(path, 100 + seed, steps=400, failure_rate=0.2)
    replayed, _ = load(path, FakeClock(clock()))
    assert dump(replayed) == live_dump(original, clock())


@pytest.mark.parametrize("later_ms", [1, 1000, 10_000, 10**9])
def test_round_trip_later_drops_keys_whose_deadline_has_passed(tmp_path, later_ms):
    path = tmp_path / "a.aof"
    original, clock = run_workload(path, 42, steps=400)
    replay_now = clock() + later_ms
    replayed, _ = load(path, FakeClock(replay_now))
    assert dump(replayed) == live_dump(original, replay_now)
    for db in replayed.dbs:
        assert all(deadline >= replay_now for deadline in db.expires.values())
        assert set(db.expires) <= set(db.data)


def test_round_trip_twice_is_stable(tmp_path):
    # Replaying, then writing more and replaying again, still matches: the
    # second run's log starts with its own SELECT.
    path = tmp_path / "a.aof"
    clock = FakeClock()
    keyspace = Keyspace(clock=clock)
    aof = AppendOnlyFile(str(path), fsync="no")
    dispatcher = Dispatcher(keyspace, aof)
    session = Session(keyspace)
    dispatcher.execute(session, [b"SELECT", b"2"])
    dispatcher.execute(session, [b"SET", b"a", b"1"])
    dispatcher.execute(session, [b"EXPIRE", b"a", b"100"])
    aof.close()

    clock.advance(1000)
    keyspace, _ = load(path, clock)
    aof = AppendOnlyFile(str(path), fsync="no")
    dispatcher = Dispatcher(keyspace, aof)
    session = Session(keyspace)  # a new client starts in database 0
    dispatcher.execute(session, [b"SET", b"b", b"2"])
    dispatcher.execute(session, [b"SELECT", b"2"])
    dispatcher.execute(session, [b"PEXPIRE", b"a", b"5"])
    aof.close()

    replayed, _ = load(path, FakeClock(clock()))
    assert dump(replayed) == dump(keyspace) == {
        0: ({b"b": b"2"}, {}),
        2: ({b"a": b"1"}, {b"a": T0 + 1005}),
    }


# -- group commit (appendfsync always) ---------------------------------------------------


def test_concurrent_writers_share_fsyncs(tmp_path, monkeypatch):
    import threading

    path = tmp_path / "a.aof"
    aof = AppendOnlyFile(str(path), fsync="always")
    keyspace = Keyspace(clock=FakeClock())
    dispatcher = Dispatcher(keyspace, aof)
    fsyncs = []
    real_fsync = os.fsync
    in_flight = threading.Event()

    def slow_fsync(fd):
        # A disk that takes a moment: the writers that arrive meanwhile
        # must wait for the next fsync, not issue one each.
        fsyncs.append(fd)
        in_flight.set()
        threading.Event().wait(0.002)
        real_fsync(fd)

    monkeypatch.setattr(aof_module.os, "fsync", slow_fsync)
    writers, per_writer = 20, 25
    acknowledged = []

    def writer(n: int) -> None:
        session = Session(keyspace, client_id=n)
        for i in range(per_writer):
            if dispatcher.execute(session, [b"SET", b"w%d:%d" % (n, i), b"v"]) == Status("OK"):
                acknowledged.append((n, i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.setattr(aof_module.os, "fsync", real_fsync)
    aof.close()
    assert len(acknowledged) == writers * per_writer
    assert len(fsyncs) < writers * per_writer / 3, f"{len(fsyncs)} fsyncs for {writers * per_writer} writes"
    replayed, _ = load(path, FakeClock())
    assert len(replayed.dbs[0].data) == writers * per_writer


def test_sync_to_returns_only_once_the_offset_is_on_disk(tmp_path, monkeypatch):
    aof = AppendOnlyFile(str(tmp_path / "a.aof"), fsync="always")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(aof_module.os, "fsync", lambda fd: (synced.append(aof.size), real_fsync(fd)))
    offset = aof.write(0, [[b"SET", b"a", b"1"]])
    assert synced == []  # write alone does not fsync
    aof.sync_to(offset)
    assert synced == [offset]
    aof.sync_to(offset)  # already durable: no second fsync
    assert synced == [offset]
    monkeypatch.setattr(aof_module.os, "fsync", real_fsync)
    aof.close()
