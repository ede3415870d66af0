"""MULTI/EXEC/DISCARD/WATCH/UNWATCH (kvserver/commands/transactions.py and
the atomic units of kvserver/dispatch.py): replies and errors as Redis 7.0,
what the log holds, a torn group at the end of the log, isolation from
readers, and redis-py's pipelines and transactions over real sockets."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from kvserver.aof import replay
from kvtools.checkaof import check
from kvserver.errors import AofCorruptError
from kvserver.protocol import NullArray, Status
from kvserver.protocol.resp import encode_reply
from kvserver.server import load_log
from kvserver.store import Keyspace
from tests.resp_client import RawRespClient
from tests.support import error_text, race, resp

EXECABORT = "EXECABORT Transaction discarded because of previous errors."


# -- replies ----------------------------------------------------------------------


def test_queued_commands_run_at_exec_and_their_replies_come_back_in_order(kv):
    assert kv("MULTI") == "OK"
    assert kv("SET", "a", "1") == Status("QUEUED")
    assert kv("INCR", "a") == "QUEUED"
    assert kv("GET", "a") == "QUEUED"
    assert kv.db.lookup(b"a", kv.clock.now) is None  # nothing ran yet
    assert kv("EXEC") == ["OK", 2, b"2"]
    assert kv("GET", "a") == b"2"


def test_a_command_failing_inside_exec_fails_alone(kv):
    kv("SET", "s", "text")
    kv("MULTI")
    kv("SET", "a", "1")
    kv("INCR", "s")  # not an integer: fails when it runs
    kv("SET", "b", "2")
    replies = kv("EXEC")
    assert replies[0] == "OK" and replies[2] == "OK"
    assert error_text(replies[1]) == "ERR value is not an integer or out of range"
    assert kv("MGET", "a", "b") == [b"1", b"2"]


@pytest.mark.parametrize(
    "bad, error",
    [
        (("NOSUCH", "x"), "ERR unknown command 'NOSUCH', with args beginning with: 'x' "),
        (("GET",), "ERR wrong number of arguments for 'get' command"),
        (("SAVE",), "ERR Command not allowed inside a transaction"),
    ],
)
def test_a_command_refused_while_queuing_aborts_the_whole_transaction(kv, bad, error):
    kv("MULTI")
    kv("SET", "a", "1")
    assert error_text(kv(*bad)) == error
    assert kv("SET", "b", "2") == "QUEUED"  # queuing goes on, as in Redis
    assert error_text(kv("EXEC")) == EXECABORT
    assert kv("MGET", "a", "b") == [None, None]
    assert error_text(kv("EXEC")) == "ERR EXEC without MULTI"  # the transaction is over


def test_errors_outside_and_inside_multi(kv):
    assert error_text(kv("EXEC")) == "ERR EXEC without MULTI"
    assert error_text(kv("DISCARD")) == "ERR DISCARD without MULTI"
    kv("MULTI")
    assert error_text(kv("MULTI")) == "ERR MULTI calls can not be nested"
    assert error_text(kv("WATCH", "a")) == "ERR WATCH inside MULTI is not allowed"
    kv("SET", "a", "1")
    assert kv("EXEC") == ["OK"]  # neither of those errors fails the transaction, as in Redis


def test_exec_refused_itself_ends_the_transaction_with_its_reason(kv):
    kv("MULTI")
    kv("SET", "a", "1")
    assert error_text(kv("EXEC", "x")) == (
        "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"
    )
    assert kv("SET", "b", "2") == "OK"  # no longer in MULTI
    assert kv("GET", "a") is None


def test_discard_drops_the_queue(kv):
    kv("MULTI")
    kv("SET", "a", "1")
    assert kv("DISCARD") == "OK"
    assert kv("GET", "a") is None
    assert error_text(kv("EXEC")) == "ERR EXEC without MULTI"


def test_an_empty_transaction_answers_an_empty_array_and_logs_nothing(kv):
    before = kv.log()
    kv("MULTI")
    assert kv("EXEC") == []
    kv("MULTI")
    kv("GET", "a")
    assert kv("EXEC") == [None]
    assert kv.log() == before


def test_select_inside_a_transaction_applies_to_what_follows(kv):
    kv("MULTI")
    kv("SET", "k", "zero")
    kv("SELECT", "1")
    kv("SET", "k", "one")
    assert kv("EXEC") == ["OK", "OK", "OK"]
    assert kv.keyspace.dbs[0].data[b"k"] == b"zero"
    assert kv.keyspace.dbs[1].data[b"k"] == b"one"


def test_over_maxmemory_queuing_and_an_exec_that_adds_data_are_refused(kv):
    kv("SET", "big", "x" * 1000)
    kv.dispatcher.maxmemory = 1
    kv("MULTI")
    assert error_text(kv("GET", "big")).startswith("OOM ")  # anything queued grows the queue
    assert kv("DISCARD") == "OK"
    kv.dispatcher.maxmemory = 0
    kv("MULTI")
    kv("SET", "a", "1")
    kv.dispatcher.maxmemory = 1
    assert error_text(kv("EXEC")) == (
        "EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'."
    )
    assert kv("GET", "a") is None


def test_exec_reply_bytes_in_resp2_and_resp3():
    assert encode_reply(NullArray, 2) == b"*-1\r\n"
    assert encode_reply(NullArray, 3) == b"_\r\n"


# -- WATCH ------------------------------------------------------------------------


def _watched_exec(kv, setup, change):
    """Run ``setup``, WATCH k, let another client run ``change``, then try a
    transaction; EXEC's reply."""
    for args in setup:
        kv(*args)
    other = kv.new_session()
    kv("WATCH", "k")
    for args in change:
        kv(*args, session=other)
    kv("MULTI")
    kv("SET", "result", "done")
    return kv("EXEC")


@pytest.mark.parametrize(
    "setup, change",
    [
        ([("SET", "k", "1")], [("SET", "k", "1")]),  # the same value still counts
        ([("SET", "k", "1")], [("DEL", "k")]),
        ([("SET", "k", "1")], [("EXPIRE", "k", "100")]),
        ([("SET", "k", "1")], [("APPEND", "k", "x")]),
        ([("SET", "k", "1")], [("RENAME", "k", "k2")]),
        ([("SET", "k2", "1")], [("RENAME", "k2", "k")]),
        ([("SET", "k", "1")], [("MOVE", "k", "3")]),
        ([("SET", "k", "1")], [("FLUSHDB",)]),
        ([("SET", "k", "1")], [("FLUSHALL",)]),
        ([("SET", "k", "1")], [("SWAPDB", "0", "1")]),
        ([("SELECT", "1"), ("SET", "k", "1"), ("SELECT", "0")], [("SWAPDB", "0", "1")]),
        ([], [("SET", "k", "1"), ("DEL", "k")]),  # created and removed again
        ([], [("SET", "k", "1")]),
    ],
)
def test_exec_fails_when_a_watched_key_changed(kv, setup, change):
    assert _watched_exec(kv, setup, change) is NullArray
    assert kv("GET", "result") is None


@pytest.mark.parametrize(
    "setup, change",
    [
        ([], []),
        ([], [("DEL", "k")]),  # missing and still missing
        ([], [("FLUSHALL",)]),
        ([], [("SWAPDB", "0", "1")]),
        ([("SET", "k", "1")], [("PERSIST", "k")]),  # a no-op is no change
        ([("SET", "k", "1")], [("GET", "k"), ("SET", "other", "1")]),
        ([("SET", "k", "1")], [("SELECT", "1"), ("FLUSHDB",)]),  # another database's keys
    ],
)
def test_exec_runs_when_no_watched_key_changed(kv, setup, change):
    assert _watched_exec(kv, setup, change) == ["OK"]
    assert kv("GET", "result") == b"done"


def test_a_watched_key_that_expires_counts_as_changed(kv):
    kv("SET", "k", "1", "PX", "100")
    kv("WATCH", "k")
    kv.clock.advance(101)  # past its deadline; nobody has deleted it yet
    kv("MULTI")
    kv("SET", "result", "done")
    assert kv("EXEC") is NullArray


def test_a_key_already_expired_when_watched_and_then_reclaimed_is_unchanged(kv):
    kv("SET", "k", "1", "PX", "100")
    kv.clock.advance(101)
    kv("WATCH", "k")
    kv.keyspace.active_expire_cycle()  # the expired key is reclaimed
    kv("MULTI")
    kv("SET", "result", "done")
    assert kv("EXEC") == ["OK"]


def test_exec_discard_unwatch_and_reset_forget_the_watches(kv):
    other = kv.new_session()
    for forget in (("EXEC",), ("DISCARD",), ("UNWATCH",), ("RESET",)):
        kv("WATCH", "k")
        if forget[0] in ("EXEC", "DISCARD"):
            kv("MULTI")
        kv(*forget)
        kv("SET", "k", "changed", session=other)
        kv("MULTI")
        kv("SET", "result", forget[0])
        assert kv("EXEC") == ["OK"], forget
    assert not kv.db.watched  # nothing left behind in the store


def test_watched_keys_of_a_client_that_hung_up_are_released(start_server):
    server = start_server()
    client = RawRespClient(server.resp_port)
    client.call("WATCH", "a", "b")
    db = server.server.keyspace.dbs[0]
    assert set(db.watched) == {b"a", b"b"}
    client.close()
    from tests.support import wait_for

    wait_for(lambda: not db.watched, "the watches of a closed connection released")


# -- the log ---------------------------------------------------------------------


def test_a_transaction_is_logged_as_one_multi_exec_group(kv):
    kv("SET", "x", "0")
    before = kv.log()
    kv("MULTI")
    kv("SET", "a", "1")
    kv("GET", "a")
    kv("SELECT", "2")
    kv("SET", "b", "2")
    kv("EXEC")
    assert kv.log_after_setup(before) == (
        resp("MULTI") + resp("SET", "a", "1") + resp("SELECT", "2") + resp("SET", "b", "2") + resp("EXEC")
    )


def test_a_transaction_with_one_write_is_logged_without_multi(kv):
    kv("SET", "x", "0")
    before = kv.log()
    kv("MULTI")
    kv("SET", "a", "1")
    kv("GET", "a")
    kv("EXEC")
    assert kv.log_after_setup(before) == resp("SET", "a", "1")  # as Redis 7 propagates it


def test_a_failed_append_rolls_back_the_whole_transaction(failing_kv):
    kv = failing_kv
    kv("SET", "a", "old")
    kv("MULTI")
    kv("SET", "a", "new")
    kv("DEL", "a")
    kv("SET", "b", "1")
    kv.aof.failing = True
    reply = kv("EXEC")
    kv.aof.failing = False
    assert error_text(reply).startswith("MISCONF Errors writing to the AOF file")
    assert kv("MGET", "a", "b") == [b"old", None]


def test_a_transaction_replays_from_the_log(kv, tmp_path):
    kv("MULTI")
    kv("SET", "a", "1")
    kv("INCR", "a")
    kv("SET", "b", "x")
    kv("EXEC")
    kv.aof.close()
    keyspace = Keyspace()
    load_log(keyspace, kv.path)
    assert keyspace.dbs[0].data == {b"a": b"2", b"b": b"x"}


def _torn_group_log(path):
    whole = resp("SELECT", "0") + resp("SET", "before", "1")
    group = resp("MULTI") + resp("SET", "a", "1") + resp("SET", "b", "2") + resp("EXEC")
    return whole, group


@pytest.mark.parametrize("cut", ["after MULTI", "mid record", "before EXEC", "mid EXEC"])
def test_a_group_torn_off_the_end_of_the_log_is_dropped_whole(tmp_path, cut, caplog):
    path = tmp_path / "torn.aof"
    whole, group = _torn_group_log(path)
    cut_at = {
        "after MULTI": len(resp("MULTI")),
        "mid record": len(resp("MULTI")) + 5,
        "before EXEC": len(group) - len(resp("EXEC")),
        "mid EXEC": len(group) - 3,
    }[cut]
    path.write_bytes(whole + group[:cut_at])
    problem = check(str(path))
    assert problem.valid_up_to == len(whole) and "MULTI/EXEC" in problem.problem
    keyspace = Keyspace()
    load_log(keyspace, str(path))
    assert keyspace.dbs[0].data == {b"before": b"1"}  # none of the group
    assert path.read_bytes() == whole  # cut back to before the MULTI
    assert "incomplete MULTI/EXEC transaction" in caplog.text


def test_a_torn_group_cut_off_then_new_writes_replay_right(kv, tmp_path):
    path = tmp_path / "torn.aof"
    whole, group = _torn_group_log(path)
    path.write_bytes(whole + group[:-3])
    from tests.support import Harness

    harness = Harness(path)
    load_log(harness.keyspace, str(path))
    harness("SET", "after", "1")
    harness.aof.close()
    keyspace = Keyspace()
    load_log(keyspace, str(path))
    assert keyspace.dbs[0].data == {b"before": b"1", b"after": b"1"}


@pytest.mark.parametrize(
    "records, reason",
    [
        ([resp("MULTI"), resp("SET", "a", "1"), resp("MULTI")], "MULTI inside a MULTI group"),
        ([resp("SET", "a", "1"), resp("EXEC")], "EXEC without MULTI"),
    ],
)
def test_groups_that_do_not_pair_up_are_corruption(tmp_path, records, reason):
    path = tmp_path / "bad.aof"
    path.write_bytes(b"".join(records) + resp("SET", "z", "1"))
    with pytest.raises(AofCorruptError, match=reason):
        replay(str(path), lambda args: None)
    assert check(str(path)).problem == reason


# -- over real sockets ---------------------------------------------------------


def test_text_port_transaction_replies_one_line_each(start_server):
    server = start_server()
    client = server.client()
    assert client.call("MULTI") == b"OK"
    assert client.call("SET a 1") == b"QUEUED"
    assert client.call("INCR a") == b"QUEUED"
    assert client.call('SET b "two words"') == b"QUEUED"
    assert client.call("EXEC") == b'OK 2 OK'
    assert client.call("WATCH a") == b"OK"
    server.client().call("SET a 5")
    client.call("MULTI")
    client.call("INCR a")
    assert client.call("EXEC") == b"nil"


def test_side_by_side_transactions(side_by_side):
    both = side_by_side.both
    both("EXEC")
    both("DISCARD")
    both("MULTI")
    both("MULTI")
    both("WATCH", "a")
    both("SET", "a", "1")
    both("INCR", "a")
    both("LLEN_NOPE", "a")
    both("EXEC")
    both("MULTI")
    both("SET", "s", "text")
    both("INCR", "s")
    both("GET", "s")
    both("EXEC")
    both("MULTI")
    both("EXEC", "extra")
    both("MULTI")
    both("MONITOR")
    both("GET", "s")
    both("EXEC")
    both("MULTI")
    both("SAVE")
    both("DISCARD")
    both("EXEC")
    both("UNWATCH")
    both("WATCH", "s")
    both("SET", "s", "changed")  # by this same client: still a change
    both("MULTI")
    both("GET", "s")
    both("EXEC")  # *-1
    side_by_side.each("HELLO", "3")  # its reply holds the client id: not comparable
    both("WATCH", "s")
    both("DEL", "s")
    both("MULTI")
    both("GET", "s")
    both("EXEC")  # _ in RESP3


def test_side_by_side_watch_changed_by_another_client(side_by_side, redis_server_port):
    kv_other = RawRespClient(side_by_side.kv.sock.getpeername()[1])
    redis_other = RawRespClient(redis_server_port)
    try:
        for watcher_setup, other_change in [
            (("SET", "w", "1"), ("EXPIRE", "w", "100")),
            (("SET", "w", "1"), ("PERSIST", "w")),
            (("DEL", "w"), ("DEL", "w")),
            (("SET", "w", "1"), ("FLUSHALL",)),
            (("DEL", "w"), ("FLUSHALL",)),
        ]:
            side_by_side.both(*watcher_setup)
            side_by_side.both("PERSIST", "w")
            side_by_side.both("WATCH", "w")
            assert kv_other.call(*other_change) == redis_other.call(*other_change)
            side_by_side.both("MULTI")
            side_by_side.both("SET", "x", "1")
            side_by_side.both("EXEC")
    finally:
        kv_other.close()
        redis_other.close()


def test_readers_never_see_half_of_a_transaction(start_server):
    """Writers swap a pair of keys between two states in transactions while
    readers MGET the pair (and GET each key while a transaction writes both
    twice): no reader may ever see a mixed pair."""
    server = start_server()
    import redis

    redis.Redis(port=server.resp_port, protocol=2).mset({"x": "0", "y": "0"})

    def writer(n):
        rounds = itertools.count()

        def write(r) -> None:
            value = f"{n}-{next(rounds)}"
            pipe = r.pipeline()  # MULTI ... EXEC
            pipe.set("x", "partial").set("y", "partial").set("x", value).set("y", value)
            pipe.execute()

        return write

    def read(r):
        x, y = r.mget("x", "y")
        return (x, y) if x != y or x == b"partial" else None

    race(
        lambda: redis.Redis(port=server.resp_port, protocol=2),
        writers=[writer(n) for n in range(2)],
        readers=[read] * 3,
        writes=1500,
        reads=3000,
    )


def test_redis_py_pipelines_and_transaction_helper(start_server):
    import redis

    server = start_server()
    for protocol in (2, 3):
        r = redis.Redis(port=server.resp_port, protocol=protocol)
        r.delete("tx")
        # The failure the issue describes: one bad command, nothing applied.
        with pytest.raises(redis.ResponseError):
            r.pipeline().set("tx", 1).incr("tx").execute_command("NOSUCHCOMMAND").execute()
        assert r.get("tx") is None
        assert r.pipeline().set("tx", 1).incr("tx").execute() == [True, 2]

        def increment(pipe):
            value = int(pipe.get("counter") or 0)
            pipe.multi()
            pipe.set("counter", value + 1)

        before = int(r.get("counter") or 0)
        assert r.transaction(increment, "counter") == [True]
        assert int(r.get("counter")) == before + 1


_COUNTER_SCRIPT = """
import redis, sys
r = redis.Redis(port=int(sys.argv[1]), protocol=2)
def increment(pipe):
    value = int(pipe.get("shared") or 0)
    pipe.multi()
    pipe.set("shared", value + 1)
for _ in range(int(sys.argv[2])):
    r.transaction(increment, "shared")
"""


def test_two_processes_incrementing_through_watch_lose_no_increment(start_server):
    server = start_server()
    rounds = 2000
    procs = [
        subprocess.Popen([sys.executable, "-c", _COUNTER_SCRIPT, str(server.resp_port), str(rounds)])
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.wait(120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    import redis

    assert int(redis.Redis(port=server.resp_port).get("shared")) == 2 * rounds
