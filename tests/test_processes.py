"""The session's leak check (tests/processes.py, conftest.py's
pytest_sessionfinish) sees what a test left running, daemons included, and
nothing that is not this session's."""

from __future__ import annotations

import os
import subprocess
import sys

from tests import processes
from tests.conftest import SESSION_TOKEN

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]


def _orphan(env: dict | None) -> int:
    """Start a sleeper in a session of its own from a parent that exits at
    once, as kv-cluster up starts its shards and nutcracker: the sleeper is
    no longer a descendant of this process. Returns its pid."""
    launcher = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen({SLEEPER!r}, start_new_session=True, env={env!r},\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid)\n"
    )
    out = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=30)
    return int(out.stdout)


def test_the_check_finds_a_child_and_a_daemon_and_kills_them(spawn):
    child = spawn(SLEEPER, env={"PATH": os.environ.get("PATH", "")})  # no mark: found as a descendant
    daemon = _orphan(None)  # inherits the mark
    try:
        left = processes.started_by(SESSION_TOKEN, os.getpid())
        assert child.pid in left and daemon in left
        assert "time.sleep(300)" in processes.command_line(daemon)
    finally:
        processes.kill([child.pid, daemon])
    left = processes.started_by(SESSION_TOKEN, os.getpid())
    assert child.pid not in left and daemon not in left
    assert child.poll() is not None  # killed and reaped


def test_processes_of_others_are_not_counted():
    # Neither a descendant nor marked: another user's kvserver, as far as
    # the check can tell. It must be left alone (this test stops it itself).
    stranger = _orphan({"PATH": os.environ.get("PATH", "")})
    try:
        assert stranger not in processes.started_by(SESSION_TOKEN, os.getpid())
    finally:
        processes.kill([stranger])
