"""The command lines: kvserver's arguments and defaults, kv-bench's one line,
and what `make run` starts."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvbench.cli import main as kv_bench
from kvserver.cli import kvserver_main

ROOT = Path(__file__).resolve().parent.parent
BENCH_LINE = re.compile(
    r"^clients=(\d+) operations_per_client=(\d+) total_commands=(\d+) "
    r"elapsed_seconds=\d+\.\d\d throughput_cmds_per_sec=\d+ failures=(\d+)$"
)


def _parsed(*args: str) -> dict:
    return kvserver_main.make_context("kvserver", list(args)).params


def test_kvserver_defaults_are_port_6379_and_mini_redis_aof():
    params = _parsed()
    assert params["port"] == 6379
    assert params["aof_path"] == "mini_redis.aof"
    assert params["bind"] == ("127.0.0.1",)


def test_kvserver_positional_arguments():
    params = _parsed("7000", "other.aof")
    assert (params["port"], params["aof_path"]) == (7000, "other.aof")


def test_kvserver_help_explains_the_arguments():
    result = CliRunner().invoke(kvserver_main, ["--help"])
    assert result.exit_code == 0
    assert "Usage: kvserver [OPTIONS] [PORT] [AOF_PATH]" in result.output  # both optional
    assert "--bind" in result.output


def test_python_dash_m_kvserver_is_the_same_command():
    result = subprocess.run(
        [sys.executable, "-m", "kvserver", "--help"], capture_output=True, timeout=30, text=True
    )
    assert result.returncode == 0
    assert "AOF_PATH" in result.stdout


def test_make_run_starts_kvserver_6379_mini_redis_aof():
    result = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert re.search(r"kvserver 6379 mini_redis\.aof$", result.stdout, re.M), result.stdout


def test_kv_bench_prints_exactly_one_line(start_server, capsys):
    server = start_server()
    with pytest.raises(SystemExit) as exited:
        kv_bench.main([str(server.port), "4", "50"], standalone_mode=False)
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    match = BENCH_LINE.match(out.strip())
    assert match, out
    assert match.groups() == ("4", "50", "400", "0")


def test_kv_bench_counts_wrong_replies_and_exits_nonzero(capsys):
    # A fake server that greets, then answers every request with OK:
    # every GET reply is therefore wrong.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def liar() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"OK mini-redis ready\r\n")
        with conn, conn.makefile("rb") as reader:
            for _ in reader:
                conn.sendall(b"OK\r\n")

    thread = threading.Thread(target=liar, daemon=True)
    thread.start()
    with pytest.raises(SystemExit) as exited:
        kv_bench.main([str(port), "1", "10"], standalone_mode=False)
    listener.close()
    assert exited.value.code == 1
    match = BENCH_LINE.match(capsys.readouterr().out.strip())
    assert match and match.group(4) == "10"


def test_kv_bench_counts_wrong_resp_replies_and_exits_nonzero(capsys):
    # The same liar speaking RESP: no greeting, +OK to everything.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def liar() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as reader:
            for line in reader:
                if line.startswith(b"*"):  # one reply per command, not per line
                    conn.sendall(b"+OK\r\n")

    threading.Thread(target=liar, daemon=True).start()
    with pytest.raises(SystemExit) as exited:
        kv_bench.main([str(port), "1", "10", "--resp"], standalone_mode=False)
    listener.close()
    assert exited.value.code == 1
    match = BENCH_LINE.match(capsys.readouterr().out.strip())
    assert match and match.group(4) == "10"


def test_kv_bench_counts_a_lost_connection(capsys):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"OK mini-redis ready\r\nOK\r\n")
        conn.recv(100)
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    with pytest.raises(SystemExit) as exited:
        kv_bench.main([str(port), "1", "5"], standalone_mode=False)
    listener.close()
    assert exited.value.code == 1
    match = BENCH_LINE.match(capsys.readouterr().out.strip())
    assert match and int(match.group(4)) >= 9  # the GET and the 4 pairs that never ran


def test_kvserver_slowlog_options():
    params = _parsed("--slowlog-log-slower-than", "-1", "--slowlog-max-len", "0")
    assert (params["slowlog_log_slower_than"], params["slowlog_max_len"]) == (-1, 0)
    result = CliRunner().invoke(kvserver_main, ["--slowlog-log-slower-than", "-2"])
    assert result.exit_code == 2 and "-2 is not in the range x>=-1" in result.output


def test_kvserver_help_mentions_the_config_file():
    result = CliRunner().invoke(kvserver_main, ["--help"])
    assert "--config FILE" in result.output and "KVSERVER_CONFIG" in result.output
