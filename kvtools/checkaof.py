"""``kv-check-aof PATH [--fix]``: check an append-only log, and repair it.

The check reads the log the way start-up does, without running anything:
every record must be a whole RESP array naming a known command with a
valid number of arguments. It reports the number of records and the byte
offset of the first problem. ``--fix`` cuts the file at the end of the last
valid record, after asking (or with ``--yes``), and keeps the original as a
backup beside it: what is cut is never needed to rebuild what clients were
told, only a torn or damaged tail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import click

from kvserver.aof import LogReader
from kvserver.commands import COMMANDS
from kvserver.errors import AofCorruptError


@dataclass(frozen=True)
class CheckResult:
    size: int  # bytes in the file
    records: int  # whole, valid records
    valid_up_to: int  # byte offset where the valid records end
    problem: str | None  # what is wrong at valid_up_to, or None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check(path: str) -> CheckResult:
    """Scan the log at ``path`` and describe the first problem, if any."""
    records = 0
    before_group = 0  # records before the open MULTI group, if one is torn off
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        reader = LogReader(path, file)
        try:
            for offset, request in reader:
                problem = _command_problem(request)
                if problem:
                    return CheckResult(size, records, offset, problem)
                if reader.open_group == offset:
                    before_group = records
                records += 1
        except AofCorruptError as exc:
            return CheckResult(size, records, exc.offset, exc.reason)
    if reader.open_group is not None:
        return CheckResult(
            size, before_group, reader.open_group, "the last MULTI/EXEC transaction is incomplete (torn write)"
        )
    if reader.torn_bytes:
        return CheckResult(size, records, reader.good_end, "the last record is incomplete (torn write)")
    return CheckResult(size, records, size, None)


def _command_problem(args: list[bytes]) -> str | None:
    cmd = COMMANDS.get(args[0].upper())
    if cmd is None:
        return f"unknown command '{args[0].decode('utf-8', 'replace')}'"
    if not cmd.arity_ok(len(args)):
        return f"wrong number of arguments for '{cmd.name}'"
    return None


def fix(path: str, result: CheckResult) -> str:
    """Back the file up, then cut it at ``result.valid_up_to``. Returns the backup's path."""
    # A new file of its own (O_EXCL, O_NOFOLLOW, mode 0600, a random tail):
    # shutil.copy2 to a predictable name wrote through a symlink planted
    # there, and gave the copy of every value the log's permissions.
    directory, name = os.path.split(os.path.abspath(path))
    fd, backup = tempfile.mkstemp(prefix=f"{name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-", dir=directory)
    with os.fdopen(fd, "wb") as copy, open(path, "rb") as original:
        shutil.copyfileobj(original, copy)
        copy.flush()
        os.fsync(copy.fileno())
    with open(path, "r+b") as file:
        file.truncate(result.valid_up_to)
        file.flush()
        os.fsync(file.fileno())
    return backup


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--fix", "do_fix", is_flag=True, help="Cut the log after its last valid record (keeps a backup).")
@click.option("--yes", "-y", is_flag=True, help="With --fix: do not ask first.")
def main(path: str, do_fix: bool, yes: bool) -> None:
    """Check the append-only log at PATH; exit 0 if it is valid."""
    result = check(path)
    click.echo(
        f"AOF analyzed: filename={path}, size={result.size}, records={result.records}, "
        f"ok_up_to={result.valid_up_to}, diff={result.size - result.valid_up_to}"
    )
    if result.ok:
        click.echo("AOF is valid")
        return
    click.echo(f"AOF is not valid: {result.problem} at byte offset {result.valid_up_to}")
    if not do_fix:
        click.echo(f"To repair it: kv-check-aof --fix {path}")
        raise SystemExit(1)
    dropped = result.size - result.valid_up_to
    if not yes and not click.confirm(
        f"This will cut {dropped} bytes from the end of {path}, keeping {result.records} records. Continue?"
    ):
        raise SystemExit(1)
    backup = fix(path, result)
    click.echo(f"Successfully truncated AOF {path} to {result.valid_up_to} bytes (backup: {backup})")
