"""kvtools/cluster.py: `kv-cluster up|status|down`, with real kvserver
processes behind a real twemproxy (nutcracker) on free ports.

Most tests share one 3-shard cluster (starting one takes under a second;
each test uses keys of its own). Every process is stopped at teardown,
whether or not the test passed. nutcracker comes from Debian's package
(`apt-get install nutcracker`; .ci/run installs it): without it these tests
skip, saying so, except the one checking the message for that case.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvtools import cluster as kvcluster

redis = pytest.importorskip("redis")

NUTCRACKER = shutil.which("nutcracker") or next(
    (p for p in ("/usr/sbin/nutcracker", "/usr/local/sbin/nutcracker") if os.access(p, os.X_OK)), None
)
needs_nutcracker = pytest.mark.skipif(
    NUTCRACKER is None,
    reason="nutcracker (twemproxy) is not installed: 'apt-get install nutcracker' (.ci/run installs it)",
)
COMMAND_TIMEOUT_S = 60.0
DEADLINE_S = 20.0


def kv_cluster(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run kv-cluster as a user would: a process of its own."""
    result = subprocess.run(
        [sys.executable, "-m", "kvtools.cluster", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    if check:
        assert result.returncode == 0, f"kv-cluster {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports (RESP ports are consecutive)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        if not any(kvcluster.port_in_use(port) for port in range(base, base + count)):
            return base
    raise RuntimeError("no run of free ports")


def proxy_client(port: int):
    """redis-py as twemproxy needs it: RESP2, and no CLIENT SETINFO on connect
    (twemproxy does not know CLIENT and closes the connection)."""
    if "driver_info" in inspect.signature(redis.Redis).parameters:
        quiet = {"driver_info": None}
    else:
        quiet = {"lib_name": None, "lib_version": None}
    return redis.Redis(port=port, protocol=2, socket_timeout=10, **quiet)


def shard_client(port: int):
    return redis.Redis(port=port, protocol=2, socket_timeout=10)


@dataclass
class RunningCluster:
    directory: Path
    base_port: int
    proxy_port: int
    stats_port: int
    shards: int
    up_output: str

    def state(self) -> dict:
        return json.loads((self.directory / "cluster.json").read_text())

    def pids(self) -> list[int]:
        state = self.state()
        return [p for p in [state["proxy"]["pid"]] + [s["pid"] for s in state["shards"]] if p]

    def shard_ports(self) -> list[int]:
        return [self.base_port + n for n in range(self.shards)]

    def shard_holding(self, key: str) -> int:
        """Which shard (0-based) holds ``key``, asking each directly."""
        holders = [n for n, port in enumerate(self.shard_ports()) if shard_client(port).exists(key)]
        assert len(holders) == 1, f"{key} is on shards {holders}"
        return holders[0]


def start_cluster(directory: Path, shards: int) -> RunningCluster:
    base, proxy, stats = free_port_run(shards), free_port(), free_port()
    result = kv_cluster(
        "up", "--shards", str(shards), "--base-port", str(base), "--text-base-port", "0",
        "--proxy-port", str(proxy), "--stats-port", str(stats), "--dir", str(directory),
    )  # fmt: skip
    return RunningCluster(directory, base, proxy, stats, shards, result.stdout)


def stop_cluster(running: RunningCluster) -> None:
    stop_cluster_in(running.directory)


def stop_cluster_in(directory: Path) -> None:
    """kv-cluster down; then SIGKILL anything it left, so a failing test
    leaves no process behind either."""
    try:
        kv_cluster("down", "--dir", str(directory), "--kill", check=False)
    finally:
        state = directory / "cluster.json"
        recorded = json.loads(state.read_text()) if state.exists() else {"proxy": {}, "shards": []}
        for pid in [recorded["proxy"].get("pid")] + [s.get("pid") for s in recorded["shards"]]:
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def stop_clusters_left_in_tmp_path(tmp_path) -> Iterator[None]:
    """Whatever a test started with kv-cluster up in its tmp_path is
    stopped afterwards, passed or failed: test_up_refuses_ports_in_use once
    left a nutcracker running for an hour (its up, refused in a passing
    run, started a whole cluster in a failing one)."""
    yield
    for state in tmp_path.rglob("cluster.json"):
        stop_cluster_in(state.parent)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def three_shards(tmp_path_factory) -> Iterator[RunningCluster]:
    running = None
    try:
        running = start_cluster(tmp_path_factory.mktemp("cluster"), 3)
        yield running
    finally:
        if running:
            stop_cluster(running)


# -- without nutcracker ---------------------------------------------------------------------


def test_without_nutcracker_up_says_how_to_install_it_and_starts_nothing(tmp_path):
    result = kv_cluster("up", "--dir", str(tmp_path), "--nutcracker", str(tmp_path / "no-such"), check=False)
    assert result.returncode != 0
    assert "apt-get install nutcracker" in result.stderr
    assert not (tmp_path / "cluster.json").exists()


def test_nutcracker_yml_is_commented_and_never_moves_keys():
    text = kvcluster.nutcracker_yml(kvcluster.Cluster.plan(3, 7001, 8001, 22121, 22222))
    for line in (
        "listen: 127.0.0.1:22121",
        "redis: true",
        "distribution: ketama",
        "hash: murmur",
        'hash_tag: "{}"',
        "auto_eject_hosts: false",
        "- 127.0.0.1:7001:1 shard-1",
        "- 127.0.0.1:7003:1 shard-3",
    ):
        assert line in text
    settings = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))]
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) > len(settings)


# -- one cluster, shared ------------------------------------------------------------------------


@needs_nutcracker
def test_up_starts_every_piece_and_says_where_to_connect(three_shards):
    out = three_shards.up_output
    assert f"redis-cli -p {three_shards.proxy_port}" in out
    assert "protocol=2" in out
    assert out.count("(started)") == 4
    for port in three_shards.shard_ports():
        assert shard_client(port).ping()
    assert proxy_client(three_shards.proxy_port).ping()
    config = (three_shards.directory / "nutcracker.yml").read_text()
    assert f"listen: 127.0.0.1:{three_shards.proxy_port}" in config


@needs_nutcracker
def test_ten_thousand_keys_spread_fairly_and_read_back(three_shards):
    proxy = proxy_client(three_shards.proxy_port)
    keys = [f"fair:{n}" for n in range(10_000)]
    for start in range(0, len(keys), 1000):
        with proxy.pipeline(transaction=False) as pipe:
            for key in keys[start : start + 1000]:
                pipe.set(key, "v-" + key)
            assert pipe.execute() == [True] * 1000
    counts = [len(shard_client(port).keys("fair:*")) for port in three_shards.shard_ports()]
    assert sum(counts) == len(keys)
    for count in counts:
        assert 0.20 <= count / len(keys) <= 0.45, counts
    # MGET is split per shard by the proxy and put back together in order.
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        assert proxy.mget(chunk) == [("v-" + key).encode() for key in chunk]


@needs_nutcracker
def test_keys_with_the_same_hash_tag_land_on_one_shard(three_shards):
    proxy = proxy_client(three_shards.proxy_port)
    tagged = [f"user:{{42}}:field{n}" for n in range(30)]
    proxy.mset({key: "x" for key in tagged})
    assert {three_shards.shard_holding(key) for key in tagged} == {three_shards.shard_holding(tagged[0])}
    # Different tags still spread over the shards.
    others = [f"user:{{{n}}}:name" for n in range(30)]
    proxy.mset({key: "y" for key in others})
    assert len({three_shards.shard_holding(key) for key in others}) == 3


@needs_nutcracker
def test_a_pipelined_batch_of_1000_commands_comes_back_in_order(three_shards):
    proxy = proxy_client(three_shards.proxy_port)
    expected = []
    with proxy.pipeline(transaction=False) as pipe:
        for n in range(250):
            key = f"order:{n}"
            pipe.execute_command("set", key, n)  # lower case, as twemproxy forwards it
            pipe.execute_command("incrby", key, n)
            pipe.get(key)
            pipe.execute_command("exists", key, f"order:missing:{n}")
            expected += [True, 2 * n, str(2 * n).encode(), 1]
        replies = pipe.execute()
    assert len(replies) == 1000
    assert replies == expected


@needs_nutcracker
def test_errors_and_multi_key_commands_through_the_proxy(three_shards):
    proxy = proxy_client(three_shards.proxy_port)
    proxy.set("err:text", "abc")
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        proxy.incr("err:text")
    assert proxy.ping()  # the connection survives an error reply
    proxy.mset({f"multi:{n}": n for n in range(20)})
    assert [proxy.exists(f"multi:{n}") for n in range(21)] == [1] * 20 + [0]
    # twemproxy 0.5.0 does not split EXISTS (its notes say it does): the whole
    # command goes to the first key's shard, which counts only its own keys
    # (the same with redis-server shards). Keys under one hash tag are right.
    proxy.mset({"{multi}1": 1, "{multi}2": 2, "{multi}3": 3})
    assert proxy.exists("{multi}1", "{multi}2", "{multi}3", "{multi}none") == 3
    assert proxy.delete(*[f"multi:{n}" for n in range(10)]) == 10
    assert proxy.mget([f"multi:{n}" for n in range(8, 12)]) == [None, None, b"10", b"11"]


@needs_nutcracker
def test_redis_cli_and_redis_benchmark_work_through_the_proxy(three_shards):
    cli, bench = shutil.which("redis-cli"), shutil.which("redis-benchmark")
    if not cli or not bench:
        pytest.skip("redis-cli/redis-benchmark are not installed: 'apt-get install redis-tools'")
    port = str(three_shards.proxy_port)
    assert subprocess.run([cli, "-p", port, "set", "cli:a", "1"], capture_output=True, text=True).stdout == "OK\n"
    assert subprocess.run([cli, "-p", port, "get", "cli:a"], capture_output=True, text=True).stdout == "1\n"
    result = subprocess.run(
        [bench, "-p", port, "-t", "set,get,incr,mset", "-n", "2000", "-c", "10", "-q"],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for test in ("SET", "GET", "INCR", "MSET"):
        assert f"{test}" in result.stdout and "requests per second" in result.stdout


@needs_nutcracker
def test_status_shows_each_shards_health_keys_and_memory(three_shards):
    proxy_client(three_shards.proxy_port).set("status:a", "1")
    result = kv_cluster("status", "--dir", str(three_shards.directory))
    assert f"proxy    127.0.0.1:{three_shards.proxy_port}" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("shard-")]
    assert [row[0] for row in rows] == ["shard-1", "shard-2", "shard-3"]
    state = three_shards.state()["shards"]
    for row, shard in zip(rows, state):
        assert row[1] == f"127.0.0.1:{shard['resp_port']}" and row[2] == str(shard["text_port"])
        assert row[4] == "up"
        assert int(row[5]) >= 0  # keys
        assert row[6][-1] in "BKMG"  # memory, as INFO's used_memory_human
    assert sum(int(row[5]) for row in rows) >= 1


@needs_nutcracker
def test_a_stopped_shard_fails_only_its_keys_and_comes_back_from_its_log(three_shards):
    proxy = proxy_client(three_shards.proxy_port)
    keys = [f"down:{n}" for n in range(60)]
    proxy.mset({key: key.upper() for key in keys})
    where = {key: three_shards.shard_holding(key) for key in keys}
    victim = three_shards.state()["shards"][1]
    os.kill(victim["pid"], signal.SIGTERM)
    wait_until(lambda: not alive(victim["pid"]), "shard-2 to exit")

    for key in keys:
        if where[key] == 1:
            with pytest.raises((redis.ResponseError, redis.ConnectionError)):
                proxy.get(key)
        else:
            assert proxy.get(key) == key.upper().encode()
            assert proxy.set(key, key.upper())  # the others still take writes
    status = kv_cluster("status", "--dir", str(three_shards.directory), check=False)
    assert status.returncode == 1 and "DOWN" in status.stdout

    again = kv_cluster("up", "--dir", str(three_shards.directory))
    assert "shard-2" in again.stdout and again.stdout.count("(started)") == 1
    assert three_shards.state()["shards"][1]["pid"] != victim["pid"]
    assert [proxy.get(key) for key in keys] == [key.upper().encode() for key in keys]


@needs_nutcracker
def test_up_refuses_ports_in_use_and_starts_nothing(three_shards, tmp_path):
    result = kv_cluster(
        "up", "--dir", str(tmp_path), "--base-port", str(three_shards.base_port),
        "--proxy-port", str(free_port()), "--stats-port", str(free_port()),
    check=False)  # fmt: skip
    assert result.returncode == 1
    assert f"port in use on 127.0.0.1: {three_shards.base_port} (shard-1)" in result.stderr
    assert not list(tmp_path.glob("*.log"))


# -- a cluster of its own ------------------------------------------------------------------------


@needs_nutcracker
def test_down_stops_everything_and_up_brings_the_same_keys_back(tmp_path):
    running = start_cluster(tmp_path / "c", 2)
    try:
        proxy = proxy_client(running.proxy_port)
        proxy.mset({f"keep:{n}": n for n in range(100)})
        pids = running.pids()
        assert len(pids) == 3 and all(alive(pid) for pid in pids)

        down = kv_cluster("down", "--dir", str(running.directory))
        assert not any(alive(pid) for pid in pids)
        assert down.stdout.count("log flushed and closed") == 2
        assert "proxy (pid" in down.stdout
        assert running.pids() == []

        kv_cluster(
            "up", "--shards", "2", "--base-port", str(running.base_port), "--text-base-port", "0",
            "--proxy-port", str(running.proxy_port), "--stats-port", str(running.stats_port),
            "--dir", str(running.directory),
        )  # fmt: skip
        assert proxy.mget([f"keep:{n}" for n in range(100)]) == [str(n).encode() for n in range(100)]
    finally:
        stop_cluster(running)
    assert not any(alive(pid) for pid in running.pids() + pids)
