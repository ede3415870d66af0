"""Redis's own clients and tools against kvserver's RESP port, unchanged:
redis-py (RESP3, its default, and RESP2), redis-cli (arguments, --scan,
INFO, --latency, commands on stdin, an interactive session on a
terminal) and redis-benchmark (plain and pipelined).

redis-cli and redis-benchmark come with Redis (``apt-get install
redis-tools``); their tests are skipped when they are not installed.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time

import pytest

from tests.resp_client import RawRespClient

redis = pytest.importorskip("redis")

TOOL_TIMEOUT_S = 60.0
TOOLS_MISSING = "{} is not installed: 'apt-get install redis-tools' to test kvserver with Redis's own tools"


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(TOOLS_MISSING.format(name))
    return path


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture(params=[None, 2], ids=["default-protocol", "resp2"])
def client(request, server):
    options = {} if request.param is None else {"protocol": request.param}
    connection = redis.Redis(port=server.resp_port, socket_timeout=10, **options)
    yield connection
    connection.close()


# -- redis-py ----------------------------------------------------------------------------


def test_redis_py_speaks_resp3_by_default_and_resp2_when_asked(client):
    info = client.client_info()  # CLIENT INFO: the connection as the server sees it
    expected = "2" if client.get_connection_kwargs().get("protocol") == 2 else "3"
    assert str(info["resp"]) == expected
    assert info["lib-name"] == "redis-py"  # sent with CLIENT SETINFO on connect


def test_redis_py_strings_and_ttls(client):
    assert client.ping() is True
    assert client.set("greeting", "hello") is True
    assert client.get("greeting") == b"hello"
    assert client.get("missing") is None
    assert client.incr("counter") == 1
    assert client.incr("counter", 41) == 42
    assert client.mget("greeting", "missing", "counter") == [b"hello", None, b"42"]
    assert client.expire("greeting", 100) is True
    assert 99 <= client.ttl("greeting") <= 100
    assert client.ttl("counter") == -1
    assert client.delete("greeting", "missing") == 1


def test_redis_py_set_options(client):
    assert client.set("k", "v1", ex=10, nx=True) is True
    assert client.set("k", "v2", nx=True) is None
    assert 9 <= client.ttl("k") <= 10
    assert client.set("k", "v3", get=True) == b"v1"
    assert client.get("k") == b"v3"
    assert client.ttl("k") == -1


def test_redis_py_pipeline_of_1000_commands_in_order(client):
    pipe = client.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"key:{i}", f"value:{i}")
        pipe.get(f"key:{i}")
    replies = pipe.execute()
    assert len(replies) == 1000
    assert replies[0::2] == [True] * 500
    assert replies[1::2] == [f"value:{i}".encode() for i in range(500)]


def test_redis_py_scan_iter(client):
    wanted = {f"user:{i}".encode() for i in range(250)}
    for key in wanted:
        client.set(key, "x")
    client.set("other", "x")
    assert set(client.scan_iter(match="user:*", count=50)) == wanted
    assert len(set(client.scan_iter())) == 251


def test_redis_py_client_name(client):
    assert client.client_getname() is None
    assert client.client_setname("report-job") is True
    assert client.client_getname() == "report-job" or client.client_getname() == b"report-job"
    [me] = [c for c in client.client_list() if c["name"] == "report-job"]
    assert me["cmd"] == "client|list" and me["lib-name"] == "redis-py"


def test_redis_py_info_and_dbsize(client):
    client.set("a", "1")
    client.set("b", "2", px=60_000)
    info = client.info()
    assert info["redis_version"] == "7.0.15"
    assert info["role"] == "master" and info["aof_enabled"] == 1
    assert info["db0"] == {"keys": 2, "expires": 1, "avg_ttl": info["db0"]["avg_ttl"]}
    assert 0 < info["db0"]["avg_ttl"] <= 60_000
    assert client.info("keyspace")["db0"]["keys"] == 2
    assert client.dbsize() == 2
    assert client.config_get("appendonly") == {"appendonly": "yes"}


def test_a_killed_client_is_disconnected(server, client):
    victim = RawRespClient(server.resp_port)
    victim_id = int(victim.call("CLIENT", "ID")[1:-2])
    assert client.client_kill_filter(_id=victim_id) == 1
    with pytest.raises(ConnectionError):
        victim.call("PING")
    victim.close()
    assert client.ping() is True


def test_debug_sleep_stops_only_its_own_connection(server):
    sleeper, other = RawRespClient(server.resp_port), RawRespClient(server.resp_port)
    started = time.monotonic()
    sleeper.send("DEBUG", "SLEEP", "1")
    assert other.call("PING") == b"+PONG\r\n"
    assert time.monotonic() - started < 0.5
    assert sleeper.read_reply() == b"+OK\r\n"
    assert time.monotonic() - started >= 1.0
    sleeper.close()
    other.close()


# -- redis-cli -----------------------------------------------------------------------------


def cli(server, *args: str, stdin: str | None = None, timeout: float = TOOL_TIMEOUT_S) -> str:
    result = subprocess.run(
        [tool("redis-cli"), "-p", str(server.resp_port), *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0 and result.stderr == "", result
    return result.stdout


def test_redis_cli_set_get(server):
    assert cli(server, "SET", "a", "1") == "OK\n"
    assert cli(server, "GET", "a") == "1\n"
    assert cli(server, "GET", "nothing") == "\n"


def test_redis_cli_scan(server):
    for i in range(30):
        cli(server, "SET", f"k{i}", "v")
    assert sorted(cli(server, "--scan").split()) == sorted(f"k{i}" for i in range(30))
    assert sorted(cli(server, "--scan", "--pattern", "k1*").split()) == sorted(
        ["k1"] + [f"k1{i}" for i in range(10)]
    )


def test_redis_cli_info(server):
    out = cli(server, "INFO")
    assert out.startswith("# Server\nredis_version:7.0.15\n")  # (text mode turns CRLF into LF)
    assert "aof_enabled:1" in out


def test_redis_cli_latency(server):
    # Writing to a pipe, --latency reports once after the interval and exits.
    out = cli(server, "--latency", "-i", "0.2", timeout=20)
    assert re.fullmatch(r"\d+ \d+ \d+\.\d+ \d+\n", out), out


def test_redis_cli_reads_commands_from_stdin(server):
    out = cli(server, stdin="set b 2\nget b\nclient setname piped\nclient getname\nhelp get\n")
    lines = out.splitlines()
    assert lines[:4] == ["OK", "2", "OK", "piped"]
    # Its help comes from COMMAND DOCS: our summary of GET.
    assert "The value of key, or nil if it is missing or expired." in out


def test_redis_cli_monitor(server, spawn):
    watcher = spawn(
        [tool("redis-cli"), "-p", str(server.resp_port), "monitor"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def next_line() -> bytes:
        ready, _, _ = select.select([watcher.stdout], [], [], TOOL_TIMEOUT_S)
        assert ready, f"redis-cli monitor printed nothing in {TOOL_TIMEOUT_S:g} s"
        return watcher.stdout.readline()

    try:
        assert next_line() == b"OK\n"  # registered: nothing from here on is missed
        writer = RawRespClient(server.resp_port)
        assert writer.call("SET", "watched", "a b") == b"+OK\r\n"
        writer.close()
        line = next_line().decode()
        assert re.fullmatch(r'\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "watched" "a b"\n', line), line
    finally:
        watcher.kill()  # and reaped by spawn's teardown


def test_redis_cli_interactive_session(server, spawn):
    exe = tool("redis-cli")
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "dumb", "REDISCLI_HISTFILE": "/dev/null", "REDISCLI_RCFILE": "/dev/null"}
    proc = spawn([exe, "-p", str(server.resp_port)], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    prompt = f"127.0.0.1:{server.resp_port}> ".encode()

    def read_until(marker: bytes) -> bytes:
        seen = b""
        deadline = time.monotonic() + 10
        while marker not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the terminal closed: redis-cli exited
                    break
        return seen

    def type_line(line: str) -> list[str]:
        os.write(master, line.encode() + b"\r")
        screen = read_until(prompt).decode().replace("\r", "")
        assert screen.endswith(prompt.decode()), screen
        return screen.splitlines()[1:-1]  # the echoed line, the reply, the prompt

    try:
        assert read_until(prompt).endswith(prompt)
        assert type_line("set k hello") == ["OK"]
        assert type_line("get k") == ['"hello"']
        assert type_line("incr n") == ["(integer) 1"]
        assert type_line("client setname tty") == ["OK"]
        assert type_line("client getname") == ['"tty"']
        assert type_line("hello 3")[0] == "1# \"server\" => \"redis\""
        assert type_line("config get appendonly") == ['1# "appendonly" => "yes"']
        os.write(master, b"quit\r")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


# -- redis-benchmark -----------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", [1, 16])
def test_redis_benchmark_runs_to_the_end_without_errors(server, pipeline):
    result = subprocess.run(
        [
            tool("redis-benchmark"),
            "-p", str(server.resp_port),
            "-t", "set,get,incr,mset",
            "-n", "2000",
            "-P", str(pipeline),
            "-q",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ERR" not in output and "rror" not in output, output
    # -q prints a progress line, then (after a carriage return) the result.
    finals = [line.strip() for line in re.split(r"[\r\n]", result.stdout) if "requests per second," in line]
    tests = [re.match(r"(.+): [\d.]+ requests per second, p50=[\d.]+ msec$", line) for line in finals]
    assert all(tests), finals
    assert [m.group(1) for m in tests] == ["SET", "GET", "INCR", "MSET (10 keys)"]
