"""The processes a test session started, found without psutil: for the
leak check at the end of the session (conftest.py's pytest_sessionfinish).

A process is this session's if it descends from the pytest process (its
parent chain in /proc reaches it), or if its environment carries the
session's mark: ``KVSERVER_TEST_SESSION=<token>``, set in os.environ before
any test runs, so every child inherits it, and so do the daemons that
``kv-cluster up`` starts in sessions of their own (their parent exits:
they are no longer our descendants). Nothing else on the machine is
counted, or killed: other people's kvservers and redis-servers carry
neither mark.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

MARKER = "KVSERVER_TEST_SESSION"
# Helpers that Python starts for the pytest process itself and that end
# with it: not a test's leftovers.
INFRASTRUCTURE = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
KILL_WAIT_S = 10.0  # for a SIGKILLed process to be gone


def mark_session() -> str:
    """Give this process (and so every child from now on) the session's mark."""
    token = os.environ.get(MARKER) or f"{os.getpid()}-{uuid.uuid4().hex}"
    os.environ[MARKER] = token
    return token


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def _has_mark(pid: int, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            return f"{MARKER}={token}".encode() in file.read().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


def started_by(token: str, root: int) -> list[int]:
    """Live processes (zombies aside) that this session started: the
    descendants of ``root`` and those carrying ``token``; ``root`` itself not."""
    parents: dict[int, int] = {}
    states: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                states[int(name)], parents[int(name)] = stat
    found = []
    for pid, state in states.items():
        if pid == root or state == "Z":
            continue
        ancestor, hops = parents.get(pid, 0), 0
        while ancestor not in (0, 1, root) and hops < 1000:
            ancestor, hops = parents.get(ancestor, 0), hops + 1
        if (ancestor == root or _has_mark(pid, token)) and not any(
            name in command_line(pid) for name in INFRASTRUCTURE
        ):
            found.append(pid)
    return sorted(found)


def kill(pids: list[int]) -> None:
    """SIGKILL each and wait (with a deadline) until it is gone; reaps the
    ones that are our own children."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + KILL_WAIT_S
    for pid in pids:
        while True:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:  # not our child: its parent reaps it
                pass
            stat = _stat(pid)
            if stat is None or stat[0] == "Z" or time.monotonic() > deadline:
                break
            time.sleep(0.01)  # polling for the exit, with a deadline
