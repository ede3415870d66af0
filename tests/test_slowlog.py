"""Tests for SLOWLOG (kvserver/commands/slowlog.py), the slow log and the
instantaneous rates behind it (kvserver/stats.py), and the dispatcher's
one comparison that feeds them.

Durations come from a fake ``perf_counter_ns`` patched into the
dispatcher, times from fake clocks: nothing sleeps. The ``side_by_side``
tests compare replies and error texts with a real redis-server 7.0.
"""

from __future__ import annotations

import re

import pytest

from kvserver import dispatch
from kvserver.config import Config
from kvserver.protocol import Status
from kvserver.session import Session
from kvserver.state import ServerState
from kvserver.stats import NEVER, STATS_METRIC_SAMPLES, InstantaneousMetric, SlowLog, StatsCron
from tests.support import T0, Harness, error_text

MS = 1_000_000  # nanoseconds


class SlowHarness(Harness):
    """The dispatch harness with a server state, a slow log on a fake wall
    clock, and commands whose duration the test decides (``next_ns``)."""

    def __init__(self, tmp_path, monkeypatch, **config) -> None:
        super().__init__(tmp_path / "appendonly.aof")
        self.state = ServerState(Config(aof_path=self.path, **config), self.keyspace, self.aof)
        self.state.slowlog = SlowLog(
            self.state.config.slowlog_log_slower_than,
            self.state.config.slowlog_max_len,
            clock=lambda: self.clock.now // 1000,
        )
        self.state.slowlog.attach(self.dispatcher)
        self.session = self.connect(1, "127.0.0.1:50001")
        self.next_ns = 0  # how long the next command takes
        ticks = iter(())

        def fake_perf_counter_ns() -> int:
            nonlocal ticks
            value = next(ticks, None)
            if value is None:  # a command's start: its end is next_ns later
                ticks = iter((self.next_ns,))
                return 0
            return value

        monkeypatch.setattr(dispatch, "perf_counter_ns", fake_perf_counter_ns)

    def connect(self, client_id: int, peer: str) -> Session:
        session = Session(self.keyspace, client_id, server=self.state, peer=peer)
        self.state.add_client(session)
        return session

    def slow(self, ms: float, *args, session: Session | None = None) -> object:
        """Run a command that takes ``ms`` milliseconds."""
        self.next_ns = int(ms * MS)
        try:
            return self(*args, session=session)
        finally:
            self.next_ns = 0

    def entries(self, *count) -> list:
        return self("SLOWLOG", "GET", *count)


@pytest.fixture
def kv(tmp_path, monkeypatch):
    harness = SlowHarness(tmp_path, monkeypatch)
    yield harness
    harness.aof.close()


# -- what is logged ---------------------------------------------------------------------


def test_a_command_of_10_ms_or_more_is_logged_and_a_faster_one_is_not(kv):
    kv.slow(9.999, "SET", "fast", "1")
    kv.slow(10, "SET", "slow", "1")
    kv.slow(25, "GET", "slow")
    entries = kv.entries()
    assert [entry[3] for entry in entries] == [[b"GET", b"slow"], [b"SET", b"slow", b"1"]]
    assert [entry[2] for entry in entries] == [25_000, 10_000]  # microseconds


def test_an_entry_is_id_time_microseconds_args_address_and_name(kv):
    kv("CLIENT", "SETNAME", "worker-7")
    kv.clock.advance(5_000)
    kv.slow(12.3456, "SET", "k", "v")
    [entry] = kv.entries(1)
    assert entry == [0, T0 // 1000 + 5, 12_345, [b"SET", b"k", b"v"], b"127.0.0.1:50001", b"worker-7"]


def test_entries_come_newest_first_10_by_default_and_minus_1_gives_all(kv):
    for i in range(12):
        kv.slow(20, "SET", f"k{i}", "v")
    assert [entry[0] for entry in kv.entries()] == list(range(11, 1, -1))
    assert [entry[0] for entry in kv.entries(-1)] == list(range(11, -1, -1))
    assert [entry[0] for entry in kv.entries(3)] == [11, 10, 9]
    assert kv.entries(0) == []
    assert len(kv.entries(1000)) == 12


def test_only_the_newest_slowlog_max_len_entries_are_kept(tmp_path, monkeypatch):
    kv = SlowHarness(tmp_path, monkeypatch, slowlog_max_len=3)
    try:
        for i in range(5):
            kv.slow(20, "SET", f"k{i}", "v")
        assert kv("SLOWLOG", "LEN") == 3
        assert [entry[3][1] for entry in kv.entries()] == [b"k4", b"k3", b"k2"]
        # Shrinking keeps the newest.
        assert kv("CONFIG", "SET", "slowlog-max-len", "2") == Status("OK")
        assert [entry[3][1] for entry in kv.entries()] == [b"k4", b"k3"]
        assert kv("CONFIG", "GET", "slowlog-max-len") == {b"slowlog-max-len": b"2"}
    finally:
        kv.aof.close()


def test_zero_logs_every_command_and_a_negative_threshold_none(kv):
    assert kv("CONFIG", "SET", "slowlog-log-slower-than", "0") == Status("OK")
    kv("PING")
    assert kv("SLOWLOG", "LEN") == 2  # CONFIG SET took 0 us too: logged
    kv("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    assert kv.dispatcher.slow_ns == NEVER
    kv.slow(10_000, "PING")
    assert kv("SLOWLOG", "LEN") == 3  # only the CONFIG SET that turned it off
    assert kv("CONFIG", "GET", "slowlog-log-slower-than") == {b"slowlog-log-slower-than": b"-1"}


def test_a_max_len_of_zero_turns_the_log_off(kv):
    kv("CONFIG", "SET", "slowlog-max-len", "0")
    assert kv.dispatcher.slow_ns == NEVER
    kv.slow(50, "PING")
    assert kv("SLOWLOG", "LEN") == 0


def test_reset_empties_the_log_and_ids_keep_counting(kv):
    kv.slow(20, "PING")
    kv.slow(20, "PING")
    # RESET itself is slow: logged after it emptied the log.
    assert kv.slow(20, "SLOWLOG", "RESET") == Status("OK")
    [entry] = kv.entries()  # GET ran fast
    assert (entry[0], entry[3]) == (2, [b"SLOWLOG", b"RESET"])


def test_long_commands_are_cut_as_redis_cuts_them(kv):
    kv.slow(20, "SET", "big", "x" * 200)
    kv.slow(20, "DEL", *[f"k{i}" for i in range(40)])
    mset, set_ = kv.entries(2)
    assert set_[3] == [b"SET", b"big", b"x" * 128 + b"... (72 more bytes)"]
    assert len(mset[3]) == 32
    assert mset[3][:2] == [b"DEL", b"k0"]
    assert mset[3][30:] == [b"k29", b"... (10 more arguments)"]


def test_passwords_are_redacted(tmp_path, monkeypatch):
    kv = SlowHarness(tmp_path, monkeypatch, requirepass="s3cret")
    try:
        kv.slow(20, "AUTH", "wrong")
        kv.slow(20, "AUTH", "default", "s3cret")
        kv.slow(20, "HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "me")
        kv.slow(20, "CONFIG", "SET", "requirepass", "s3cret", "maxclients", "10000")
        args = [entry[3] for entry in kv.entries()]
        assert args == [
            [b"CONFIG", b"SET", b"requirepass", b"(redacted)", b"maxclients", b"10000"],
            [b"HELLO", b"2", b"AUTH", b"(redacted)", b"(redacted)", b"SETNAME", b"me"],
            [b"AUTH", b"(redacted)", b"(redacted)"],
            [b"AUTH", b"(redacted)"],
        ]
        assert b"s3cret" not in repr(kv.state.slowlog.entries).encode()
    finally:
        kv.aof.close()


def test_a_malformed_hello_still_hides_what_follows_auth(tmp_path, monkeypatch):
    # HELLO answers these with an error, but they ran (and were slow): a
    # password typed without its username, or after a bad option, stays hidden.
    kv = SlowHarness(tmp_path, monkeypatch)
    try:
        kv.slow(20, "HELLO", "3", "AUTH", "s3cret")
        kv.slow(20, "HELLO", "3", "BOGUS", "AUTH", "default", "s3cret")
        assert [entry[3] for entry in kv.entries()] == [
            [b"HELLO", b"3", b"BOGUS", b"AUTH", b"(redacted)", b"(redacted)"],
            [b"HELLO", b"3", b"AUTH", b"(redacted)"],
        ]
    finally:
        kv.aof.close()


def test_commands_refused_before_running_are_not_logged(tmp_path, monkeypatch):
    kv = SlowHarness(tmp_path, monkeypatch, requirepass="pw")
    try:
        kv.slow(20, "NOSUCHCOMMAND")
        kv.slow(20, "GET")  # wrong arity
        kv.slow(20, "GET", "k")  # NOAUTH
        assert len(kv.state.slowlog) == 0
    finally:
        kv.aof.close()


def test_the_log_replay_records_nothing(kv):
    # A Dispatcher that no slow log is attached to (the replay's) never
    # reaches for one, however slow a command.
    replayer = dispatch.Dispatcher(kv.keyspace, None)
    kv.next_ns = 10**12
    assert replayer.execute(Session(kv.keyspace), [b"PING"]) == Status("PONG")


# -- arguments and errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (("GET", "-2"), "ERR count should be greater than or equal to -1"),
        (("GET", "ten"), "ERR count should be greater than or equal to -1"),
        (("GET", "99999999999999999999"), "ERR count should be greater than or equal to -1"),
        (("GET", "1", "2"), "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."),
        (("LEN", "x"), "ERR wrong number of arguments for 'slowlog|len' command"),
        (("RESET", "x"), "ERR wrong number of arguments for 'slowlog|reset' command"),
        (("NOPE",), "ERR unknown subcommand 'NOPE'. Try SLOWLOG HELP."),
        ((), "ERR wrong number of arguments for 'slowlog' command"),
    ],
)
def test_slowlog_errors(kv, args, message):
    assert error_text(kv("SLOWLOG", *args)) == message


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("slowlog-log-slower-than", "-2", "argument must be between -1 and 9223372036854775807 inclusive"),
        ("slowlog-max-len", "-1", "argument must be between 0 and 9223372036854775807 inclusive"),
        ("slowlog-max-len", "many", "argument couldn't be parsed into an integer"),
    ],
)
def test_config_set_refuses_bad_slowlog_values(kv, name, value, reason):
    reply = kv("CONFIG", "SET", name, value)
    assert error_text(reply) == f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    assert kv.state.slowlog.log_slower_than == 10_000 and kv.state.slowlog.max_len == 128


def test_slowlog_replies_match_redis(side_by_side):
    both = side_by_side.both
    both("SLOWLOG", "HELP")
    for args in [("GET", "-2"), ("GET", "x"), ("GET", "1", "2"), ("LEN", "x"), ("RESET", "x"), ("HELP", "x"), ("nope",)]:
        both("SLOWLOG", *args)
    both("SLOWLOG")
    both("CONFIG", "GET", "slowlog-max-len")  # one at a time: Redis's glob order is its hash order
    both("CONFIG", "GET", "slowlog-log-slower-than")
    for name, value in [("slowlog-log-slower-than", "-2"), ("slowlog-max-len", "-1"), ("slowlog-max-len", "x")]:
        both("CONFIG", "SET", name, value)


def _shape(reply: bytes) -> bytes:
    # Entry ids, times, durations and client ports differ between servers.
    reply = re.sub(rb":\d+\r\n", b":N\r\n", reply)
    return re.sub(rb"\$\d+\r\n127\.0\.0\.1:\d+\r\n", b"$-\r\n127.0.0.1:P\r\n", reply)


def test_slowlog_get_has_redis_shape(side_by_side):
    try:
        side_by_side.both("CONFIG", "SET", "slowlog-log-slower-than", "0")
        side_by_side.both("SLOWLOG", "RESET")
        side_by_side.both("CLIENT", "SETNAME", "cmp")
        side_by_side.both("SET", "big", "y" * 300)
        side_by_side.both("MSET", *[f"k{i}" for i in range(50)])
        side_by_side.both("AUTH", "user", "pw")
        ours, theirs = side_by_side.each("SLOWLOG", "GET", "-1")
        assert _shape(ours) == _shape(theirs)
        assert b"... (172 more bytes)" in ours and b"... (20 more arguments)" in ours
        ours, theirs = side_by_side.each("SLOWLOG", "LEN")
        assert ours == theirs
    finally:
        side_by_side.each("CONFIG", "SET", "slowlog-log-slower-than", "10000")


def test_a_real_server_logs_a_slow_command(start_server):
    from tests.resp_client import RawRespClient

    server = start_server(slowlog_log_slower_than=0)
    client = RawRespClient(server.resp_port)
    try:
        client.call("SET", "k", "v")
        reply = client.call("SLOWLOG", "GET", "1")
        assert reply.startswith(b"*1\r\n*6\r\n:0\r\n:")
        assert b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$15\r\n127.0.0.1:" in reply
    finally:
        client.close()


# -- instantaneous_ops_per_sec ----------------------------------------------------------


def test_the_rate_is_the_mean_of_the_last_16_samples():
    metric = InstantaneousMetric()
    metric.sample(1_000, 0)  # the baseline
    assert metric.value() == 0
    metric.sample(1_100, 160)  # 160 in 100 ms: 1600/s
    assert metric.value() == 1600 // STATS_METRIC_SAMPLES
    now, count = 1_100, 160
    for _ in range(STATS_METRIC_SAMPLES):
        now, count = now + 100, count + 50  # 500/s
        metric.sample(now, count)
    assert metric.value() == 500  # the 1600 has left the ring
    metric.sample(now, count)  # no time passed: counts as 0, not a division by zero
    assert metric.value() == 500 * 15 // 16


def test_reset_starts_again_from_a_baseline():
    metric = InstantaneousMetric()
    metric.sample(0, 0)
    metric.sample(100, 1000)
    metric.reset()
    metric.sample(200, 0)  # the counter was zeroed: a baseline, not a negative rate
    assert metric.value() == 0
    metric.sample(300, 16)
    assert metric.value() == 10


def test_info_shows_instantaneous_ops_per_sec_from_the_cron(kv):
    now = [0]
    cron = StatsCron(kv.state, clock=lambda: now[0])
    cron.tick()
    for _ in range(16):
        kv.state.total_commands_processed += 300
        now[0] += 100
        cron.tick()
    assert b"instantaneous_ops_per_sec:3000\r\n" in bytes(kv("INFO", "stats"))
    kv("CONFIG", "RESETSTAT")
    assert b"instantaneous_ops_per_sec:0\r\n" in bytes(kv("INFO", "stats"))


def test_info_shows_network_rates_from_the_cron(kv):
    now = [0]
    cron = StatsCron(kv.state, clock=lambda: now[0])
    cron.tick()
    for _ in range(16):
        kv.state.net_input_bytes += 1024  # 10 KiB/s in
        kv.state.net_output_bytes += 512  # 5 KiB/s out
        now[0] += 100
        cron.tick()
    stats = bytes(kv("INFO", "stats"))
    assert b"total_net_input_bytes:16384\r\n" in stats
    assert b"total_net_output_bytes:8192\r\n" in stats
    assert b"instantaneous_input_kbps:10.00\r\n" in stats
    assert b"instantaneous_output_kbps:5.00\r\n" in stats
    kv("CONFIG", "RESETSTAT")
    stats = bytes(kv("INFO", "stats"))
    assert b"total_net_input_bytes:0\r\n" in stats and b"instantaneous_input_kbps:0.00\r\n" in stats
