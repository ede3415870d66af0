"""Tests for ``kvserver --config FILE`` (kvserver/configfile.py): how a
file is read, how it combines with the command line and the environment,
how a bad one stops start-up, and a real server started from one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from kvserver import configfile
from kvserver.cli import kvserver_main


def _write(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "kvserver.conf"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def _params(*args: str, env: dict | None = None, monkeypatch=None) -> dict:
    if monkeypatch is not None:
        monkeypatch.delenv("KVSERVER_REQUIREPASS", raising=False)
        monkeypatch.delenv("KVSERVER_CONFIG", raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
    return kvserver_main.make_context("kvserver", list(args)).params


def test_a_file_sets_every_kind_of_option(tmp_path, monkeypatch):
    path = _write(
        tmp_path,
        "# kvserver settings\n"
        "\n"
        "   # an indented comment\n"
        "port 7000\n"
        "aof-path data/kv.aof\n"
        "bind 127.0.0.1 ::1\n"
        "RESP-PORT 7001\n"  # names are case-insensitive
        'requirepass "two words\\x21"\n'  # Redis's quoting
        "maxclients 50\n"
        "maxmemory 2mb\n"
        "timeout 2.5\n"
        "appendfsync always\n"
        "sched-batch no\n"
        "no-resp yes\n"
        "slowlog-log-slower-than 0\n"
        "slowlog-max-len 5\n"
        "log-level warning\r\n",  # CRLF lines too
    )
    params = _params("--config", path, monkeypatch=monkeypatch)
    assert params["port"] == 7000 and params["aof_path"] == "data/kv.aof"
    assert params["bind"] == ("127.0.0.1", "::1")
    assert params["resp_port"] == 7001 and params["no_resp"] is True
    assert params["requirepass"] == "two words!"
    assert (params["maxclients"], params["maxmemory"], params["timeout_seconds"]) == (50, 2 * 1024 * 1024, 2.5)
    assert (params["appendfsync"], params["sched_batch"], params["log_level"]) == ("always", False, "warning")
    assert (params["slowlog_log_slower_than"], params["slowlog_max_len"]) == (0, 5)
    assert params["config_file"] == path


def test_the_last_of_a_repeated_directive_counts(tmp_path, monkeypatch):
    path = _write(tmp_path, "maxclients 5\nmaxclients 6\n")
    assert _params("--config", path, monkeypatch=monkeypatch)["maxclients"] == 6


def test_the_command_line_and_the_environment_override_the_file(tmp_path, monkeypatch):
    path = _write(tmp_path, "port 7000\nmaxclients 50\nrequirepass fromfile\nbind 10.0.0.1\n")
    params = _params("9000", "--config", path, "--maxclients", "60", "--bind", "::1", monkeypatch=monkeypatch)
    assert (params["port"], params["maxclients"], params["bind"]) == (9000, 60, ("::1",))
    assert params["requirepass"] == "fromfile"
    env = {"KVSERVER_REQUIREPASS": "fromenv"}
    assert _params("--config", path, env=env, monkeypatch=monkeypatch)["requirepass"] == "fromenv"


def test_the_config_file_can_come_from_the_environment(tmp_path, monkeypatch):
    path = _write(tmp_path, "maxclients 42\n")
    params = _params(env={"KVSERVER_CONFIG": path}, monkeypatch=monkeypatch)
    assert params["maxclients"] == 42 and params["config_file"] == path


def test_without_a_file_the_defaults_stand(monkeypatch):
    params = _params(monkeypatch=monkeypatch)
    assert params["config_file"] is None
    assert (params["slowlog_log_slower_than"], params["slowlog_max_len"]) == (10_000, 128)


@pytest.mark.parametrize(
    "text, line_number, shown, reason",
    [
        ("port 7000\n\n# ok\nsave 900 1\n", 4, "save 900 1", "Bad directive or wrong number of arguments"),
        ("maxclients\n", 1, "maxclients", "Bad directive or wrong number of arguments"),
        ("maxclients 1 2\n", 1, "maxclients 1 2", "Bad directive or wrong number of arguments"),
        ("maxclients lots\n", 1, "maxclients lots", "'lots' is not a valid integer range."),
        ("maxclients 0\n", 1, "maxclients 0", "0 is not in the range x>=1."),
        ("appendfsync sometimes\n", 1, "appendfsync sometimes", "'sometimes' is not one of 'always', 'everysec', 'no'."),
        ("maxmemory 3x\n", 1, "maxmemory 3x", "argument must be a memory value"),
        ("sched-batch maybe\n", 1, "sched-batch maybe", "argument must be 'yes' or 'no'"),
        ('bind "127.0.0.1\n', 1, 'bind "127.0.0.1', "Unbalanced quotes in configuration line"),
        # The line is shown, but never a password.
        ('requirepass "hunter2\n', 1, "requirepass (redacted)", "Unbalanced quotes in configuration line"),
        ("config other.conf\n", 1, "config other.conf", "Bad directive or wrong number of arguments"),
    ],
)
def test_a_bad_line_stops_start_up_naming_file_line_and_reason(tmp_path, monkeypatch, text, line_number, shown, reason):
    monkeypatch.delenv("KVSERVER_REQUIREPASS", raising=False)
    path = _write(tmp_path, text)
    result = CliRunner().invoke(kvserver_main, ["--config", path])
    assert result.exit_code == 1
    assert result.stderr == (
        f"\n*** FATAL CONFIG FILE ERROR (kvserver {configfile.__version__}) ***\n"
        f"Reading the configuration file {path}, at line {line_number}\n"
        f">>> '{shown}'\n"
        f"{reason}\n"
    )
    assert "hunter2" not in result.output


def test_a_missing_file_stops_start_up(tmp_path):
    missing = tmp_path / "nope.conf"
    result = CliRunner().invoke(kvserver_main, ["--config", str(missing)])
    assert result.exit_code == 1
    assert result.stderr == f"Fatal error, can't open config file '{missing}': No such file or directory\n"


def test_a_world_readable_file_with_a_password_is_warned_about(tmp_path):
    open_file = _write(tmp_path, "requirepass pw\n", mode=0o644)
    _, warnings = configfile.read(open_file, kvserver_main)
    assert warnings == [f"{open_file} holds requirepass and every user can read it: chmod o-r {open_file}"]
    os.chmod(open_file, 0o640)
    assert configfile.read(open_file, kvserver_main)[1] == []
    no_password = _write(tmp_path, "maxclients 5\n", mode=0o644)
    assert configfile.read(no_password, kvserver_main)[1] == []


def test_directives_follow_the_options(tmp_path):
    known = configfile.directives(kvserver_main)
    assert {"port", "aof-path", "bind", "requirepass", "timeout", "slowlog-max-len"} <= set(known)
    assert known["timeout"].name == "timeout_seconds"
    assert not {"help", "version", "config"} & set(known)


def test_a_server_started_from_a_file_asks_for_its_password(tmp_path, server_process):
    # What the issue asks: the password in a file, not on the command line.
    conf = _write(tmp_path, "requirepass 'file secret'\nmaxclients 64\nslowlog-max-len 7\n", mode=0o644)
    proc = server_process(tmp_path / "kv.aof", "--config", conf)
    client = proc.client()
    try:
        assert client.call("GET k") == b"NOAUTH Authentication required."
        assert client.call('AUTH "file secret"') == b"OK"
        assert client.call("CONFIG GET maxclients slowlog-max-len") == b"maxclients 64 slowlog-max-len 7"
        assert f"config_file:{conf}".encode() in client.call("INFO server")
        assert client.call("CONFIG REWRITE") == (
            b"ERR Rewriting config file: not supported, edit the file by hand"
        )
    finally:
        client.close()
    proc.proc.terminate()
    assert proc.finish() == 0
    output = proc.output.decode()
    assert f"configuration loaded from {conf}" in output
    assert "holds requirepass and every user can read it" in output
    assert "access: password required" in output
    assert "file secret" not in output


@pytest.mark.parametrize(
    "line", ["client-output-buffer-limit normal 1mb 512kb 10", 'client-output-buffer-limit "normal 1mb 512kb 10"']
)
def test_client_output_buffer_limit_as_redis_conf_writes_it(tmp_path, monkeypatch, line):
    path = _write(tmp_path, line + "\n")
    params = _params("--config", path, monkeypatch=monkeypatch)
    assert params["output_limit"] == (1024 * 1024, 512 * 1024, 10)


def test_settings_without_an_option_come_from_the_file_as_config_set_would_apply_them(tmp_path, server_process):
    conf = _write(tmp_path, "hash-max-listpack-entries 2\nset-max-intset-entries 3\nzset-max-listpack-value 1kb\n")
    proc = server_process(tmp_path / "kv.aof", "--config", conf)
    client = proc.client()
    try:
        assert client.call("CONFIG GET hash-max-listpack-entries") == b"hash-max-listpack-entries 2"
        assert client.call("CONFIG GET zset-max-listpack-value") == b"zset-max-listpack-value 1024"
        assert client.call("HSET h a 1 b 2") == b"2"
        assert client.call("OBJECT ENCODING h") == b"listpack"
        assert client.call("HSET h c 3") == b"1"
        assert client.call("OBJECT ENCODING h") == b"hashtable"
        assert client.call("SADD s 1 2 3 4") == b"4"
        assert client.call("OBJECT ENCODING s") == b"hashtable"
    finally:
        client.close()


@pytest.mark.parametrize(
    "text, reason",
    [
        ("hash-max-listpack-entries x\n", "argument couldn't be parsed into an integer"),
        ("hash-max-listpack-entries 1 2\n", "Bad directive or wrong number of arguments"),
        ("no-such-setting 1\n", "Bad directive or wrong number of arguments"),
    ],
)
def test_a_bad_setting_without_an_option_stops_start_up(tmp_path, text, reason):
    path = _write(tmp_path, text)
    result = CliRunner().invoke(kvserver_main, ["--config", path])
    assert result.exit_code == 1
    assert "FATAL CONFIG FILE ERROR" in result.output and reason in result.output
