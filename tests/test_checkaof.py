"""kv-check-aof: reports, repairs with a backup, and agrees with redis-check-aof."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner

from kvtools import checkaof
from kvtools.checkaof import check, main
from kvserver.protocol.resp import encode_command

RECORDS = [
    encode_command([b"SELECT", b"0"]),
    encode_command([b"SET", b"a", b"1"]),
    encode_command([b"PEXPIREAT", b"a", b"99999999999999"]),
    encode_command([b"SET", b"b", b"\x00\r\nbinary"]),
]
GOOD = b"".join(RECORDS)


def test_a_valid_log(tmp_path):
    path = tmp_path / "a.aof"
    path.write_bytes(GOOD)
    result = CliRunner().invoke(main, [str(path)])
    assert result.exit_code == 0
    assert "records=4" in result.output and "AOF is valid" in result.output


@pytest.mark.parametrize(
    "damage, reason",
    [
        (b"*1\r\n$3\r\nSET", "not terminated by CRLF"),
        (b"garbage\r\n", "expected '*'"),
        (encode_command([b"NOSUCH", b"x"]), "unknown command 'NOSUCH'"),
        (encode_command([b"GET"]), "wrong number of arguments for 'get'"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
    ],
)
def test_reports_the_first_problem_and_its_offset(tmp_path, damage, reason):
    path = tmp_path / "a.aof"
    path.write_bytes(GOOD + damage + RECORDS[1])
    result = check(str(path))
    assert not result.ok and reason in result.problem
    assert result.valid_up_to == len(GOOD) and result.records == 4
    cli = CliRunner().invoke(main, [str(path)])
    assert cli.exit_code == 1
    assert f"at byte offset {len(GOOD)}" in cli.output
    assert f"kv-check-aof --fix {path}" in cli.output


def test_a_torn_last_record_is_reported_as_incomplete(tmp_path):
    path = tmp_path / "a.aof"
    path.write_bytes(GOOD + RECORDS[1][:-4])
    result = check(str(path))
    assert not result.ok and "incomplete" in result.problem
    assert (result.valid_up_to, result.records) == (len(GOOD), 4)


def test_fix_asks_then_truncates_and_keeps_a_backup(tmp_path):
    path = tmp_path / "a.aof"
    damaged = GOOD + b"*2\r\n$3\r\nDEL\r\n$1\r"
    path.write_bytes(damaged)
    refused = CliRunner().invoke(main, [str(path), "--fix"], input="n\n")
    assert refused.exit_code == 1 and path.read_bytes() == damaged
    fixed = CliRunner().invoke(main, [str(path), "--fix"], input="y\n")
    assert fixed.exit_code == 0, fixed.output
    assert path.read_bytes() == GOOD
    backups = list(tmp_path.glob("a.aof.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == damaged
    assert check(str(path)).ok


def test_fix_with_yes_does_not_ask(tmp_path):
    path = tmp_path / "a.aof"
    path.write_bytes(GOOD + b"junk")
    assert CliRunner().invoke(main, [str(path), "--fix", "--yes"]).exit_code == 0
    assert path.read_bytes() == GOOD


def test_redis_check_aof_accepts_what_kvserver_writes(tmp_path, start_server):
    tool = shutil.which("redis-check-aof")
    if not tool:
        pytest.skip("redis-check-aof is not installed: 'apt-get install redis-tools' (.ci/run installs it)")
    aof = tmp_path / "written.aof"
    server = start_server(aof_path=str(aof))
    client = server.client()
    for line in ["SET a 1", 'SET "b c" "x\\x00y"', "EXPIRE a 100", "DEL a", "SELECT 3", "SET z 9", "EXPIRE z -1"]:
        assert not client.call(line).startswith(b"ERR")
    server.stop()
    result = subprocess.run([tool, str(aof)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " is valid" in result.stdout


def test_fix_never_writes_its_backup_through_a_planted_symlink(tmp_path, monkeypatch):
    path = tmp_path / "a.aof"
    damaged = GOOD + b"junk"
    path.write_bytes(damaged)
    target = tmp_path / "precious"
    target.write_bytes(b"not yours")
    monkeypatch.setattr(checkaof.time, "strftime", lambda _format: "20240101-000000")
    (tmp_path / "a.aof.bak-20240101-000000").symlink_to(target)  # the name it used to pick
    assert CliRunner().invoke(main, [str(path), "--fix", "--yes"]).exit_code == 0
    assert target.read_bytes() == b"not yours"
    backups = [p for p in tmp_path.glob("a.aof.bak-*") if not p.is_symlink()]
    assert len(backups) == 1 and backups[0].read_bytes() == damaged
    assert backups[0].stat().st_mode & 0o777 == 0o600
