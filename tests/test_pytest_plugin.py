"""The pytest plugin (kvserver/pytest_plugin.py), as a project that installs
kvserver uses it: pytester runs small test files with the installed
entry point, in a directory of their own."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import kvserver.pytest_plugin

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parent / "examples" / "test_with_kvserver.py"

FIXTURES_IN_USE = '''
import socket

PORTS = {}

def test_writes(kvserver):
    PORTS["session"] = kvserver.port
    kvserver.client.set("left", "behind")
    assert kvserver.url == f"redis://127.0.0.1:{kvserver.port}/0"

def test_starts_empty_on_the_same_server(kvserver, kvserver_session):
    assert kvserver is kvserver_session and kvserver.port == PORTS["session"]
    assert kvserver.client.dbsize() == 0

def test_the_session_server_is_not_flushed_by_itself(kvserver_session):
    kvserver_session.client.set("kept", "1")

def test_sees_what_the_session_fixture_left(kvserver_session):
    assert kvserver_session.client.get("kept") == b"1"

def test_own_servers(kvserver_factory, tmp_path):
    thread = kvserver_factory(aof=tmp_path / "a.aof", requirepass="pw")
    child = kvserver_factory(subprocess=True)
    assert len({thread.port, child.port, PORTS["session"]}) == 3
    assert thread.server.client(password="pw").ping()
    child.client.set("k", "v")
    PORTS["own"] = (thread.port, child.port)

def test_own_servers_were_stopped_at_teardown():
    for port in PORTS["own"]:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            continue
        raise AssertionError(f"port {port} still open")

def test_text_port(kvserver):
    with socket.create_connection(("127.0.0.1", kvserver.text_port)) as sock:
        assert sock.recv(100) == b"OK mini-redis ready\\r\\n"
'''


def test_fixtures_share_one_server_flushed_per_test_and_own_servers_stopped(pytester):
    pytester.makepyfile(test_uses_fixtures=FIXTURES_IN_USE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


def test_the_session_server_stops_with_the_session(pytester):
    pytester.makepyfile(
        """
        def test_port(kvserver):
            open("port.txt", "w").write(str(kvserver.port))
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    port = int((pytester.path / "port.txt").read_text())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_readme_example_runs(pytester):
    pytester.makepyfile(test_with_kvserver=EXAMPLE.read_text())
    pytester.runpytest().assert_outcomes(passed=3)


def test_enabled_by_name_when_autoload_is_off(pytester, monkeypatch):
    pytester.makepyfile("def test_it(kvserver):\n    assert kvserver.client.ping()\n")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.runpytest().assert_outcomes(errors=1)  # fixture 'kvserver' not found
    pytester.runpytest("-p", "kvserver").assert_outcomes(passed=1)


def test_registered_once_in_this_suite_by_the_entry_point(request):
    manager = request.config.pluginmanager
    assert manager.get_plugin("kvserver") is kvserver.pytest_plugin
    assert [p for p in manager.get_plugins() if p is kvserver.pytest_plugin] == [kvserver.pytest_plugin]
