"""MONITOR (commands/monitor.py, client.py, its MONITOR mode): the feed's
lines as Redis 7.0 writes them, compared with a real redis-server (the
time and the port normalised); what a monitor may still send; a monitor
that stops reading is disconnected, never the server stalled; and nothing
is left behind once nobody watches.
"""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from kvserver.commands.monitor import monitor_line
from kvserver.session import Session
from kvserver.store import Keyspace
from tests.conftest import REPLY_TIMEOUT_S
from tests.resp_client import RawRespClient
from tests.support import wait_for

KB = 1024
MB = 1024 * 1024
LINE = re.compile(rb"\+?(\d+)\.(\d{6}) \[(\d+) ([^\]]+)\] (.*)")


def start_monitor(port: int) -> RawRespClient:
    watcher = RawRespClient(port)
    assert watcher.call("MONITOR") == b"+OK\r\n"
    return watcher


def normalised(line: bytes, peer_port: int) -> bytes:
    """A feed line with its time replaced, and the client's port checked
    and replaced: what two servers can agree on."""
    match = LINE.fullmatch(line.rstrip(b"\r\n"))
    assert match, line
    assert match.group(4).endswith(b":%d" % peer_port), line
    return b"+T [%s CLIENT] %s\r\n" % (match.group(3), match.group(5))


# -- the line itself ------------------------------------------------------------------------


def session(peer: str = "127.0.0.1:5000") -> Session:
    return Session(Keyspace(lambda: 0), 1, peer=peer)


def test_the_line_quotes_every_argument_as_redis_sdscatrepr():
    args = [b"SET", b"k", b'va l\n\r\t\x07\x08\x00\xff"\'\\', b""]
    line = monitor_line(session(), args, 1_700_000_000_000_042)
    assert line == '1700000000.000042 [0 127.0.0.1:5000] "SET" "k" "va l\\n\\r\\t\\a\\b\\x00\\xff\\"\'\\\\" ""'


@pytest.mark.parametrize(
    "args, shown",
    [
        ([b"AUTH", b"pw"], '"AUTH" "(redacted)"'),
        ([b"auth", b"user", b"pw"], '"auth" "(redacted)" "(redacted)"'),
        ([b"AUTH", b"a", b"b", b"c"], '"AUTH" "(redacted)" "(redacted)" "(redacted)"'),
        ([b"HELLO", b"3", b"AUTH", b"default", b"pw"], '"HELLO" "3" "AUTH" "(redacted)" "(redacted)"'),
        (
            [b"HELLO", b"3", b"SETNAME", b"me", b"auth", b"AUTH", b"pw"],
            '"HELLO" "3" "SETNAME" "me" "auth" "(redacted)" "(redacted)"',
        ),
        ([b"HELLO", b"4", b"AUTH", b"default", b"pw"], '"HELLO" "4" "AUTH" "(redacted)" "(redacted)"'),
        ([b"HELLO", b"3", b"AUTH", b"default"], '"HELLO" "3" "AUTH" "(redacted)"'),
        ([b"GET", b"AUTH"], '"GET" "AUTH"'),
    ],
)
def test_passwords_are_redacted(args, shown):
    assert monitor_line(session(), args, 0).endswith("] " + shown)


# -- beside Redis --------------------------------------------------------------------------

# Each is run by a client while another monitors. Shown: what ran (errors
# raised while running included). Not shown: refused before running
# (unknown, wrong arity), admin commands (CONFIG, CLIENT LIST/KILL, DEBUG).
SCRIPT = [
    ("SET", "k", b'va l\n\x00\xff"\'\\'),
    ("get", "k"),
    ("INCR", "k"),  # fails while running: shown
    ("SELECT", "3"),
    ("SET", "x", "123"),
    ("SELECT", "0"),
    ("NOSUCHCOMMAND", "a"),
    ("GET",),
    ("AUTH", "u", "p"),
    ("HELLO", "2", "AUTH", "default", "whatever"),
    ("CONFIG", "GET", "maxmemory"),
    ("CLIENT", "ID"),
    ("CLIENT", "LIST"),
    ("CLIENT", "NOSUCH"),
    ("CLIENT", "GETNAME", "extra"),
    ("DEBUG", "SLEEP", "0"),
    ("PING",),
    ("ECHO", "hi"),
    ("MONITOR",),  # the client becomes a monitor too...
    ("DEL", "k", "x"),  # ...so this is refused, not shown
    ("QUIT",),
]


def run_script(port: int) -> tuple[list[bytes], int]:
    """SCRIPT from a fresh client while a monitor watches: the lines it got
    (up to the QUIT), and the client's port."""
    watcher = start_monitor(port)
    client = RawRespClient(port)
    client_port = client.sock.getsockname()[1]
    for args in SCRIPT:
        client.call(*args)
    lines = []
    while not lines or b'"QUIT"' not in lines[-1]:
        lines.append(watcher.read_reply())
    client.close()
    watcher.close()
    return lines, client_port


def test_the_feed_matches_redis_line_for_line(start_server, redis_server_port):
    ours, our_port = run_script(start_server().resp_port)
    theirs, their_port = run_script(redis_server_port)
    redis = RawRespClient(redis_server_port)
    redis.call("FLUSHALL")
    redis.close()
    assert [normalised(line, our_port) for line in ours] == [normalised(line, their_port) for line in theirs]


def test_what_a_monitor_may_still_send_matches_redis(start_server, redis_server_port):
    replies = []
    for port in (start_server().resp_port, redis_server_port):
        watcher = start_monitor(port)
        got = []
        for args in [("PING",), ("GET", "k"), ("DBSIZE",), ("SET", "k", "v"), ("NOSUCH",), ("GET",)]:
            got.append(watcher.call(*args))
            if args == ("PING",):
                got.append(normalised(watcher.read_reply(), watcher.sock.getsockname()[1]))
        watcher.send("MONITOR")  # no reply at all
        watcher.send("ECHO", "after")
        got.append(watcher.read_reply())
        got.append(normalised(watcher.read_reply(), watcher.sock.getsockname()[1]))
        got.append(watcher.call("RESET"))  # a normal client again
        got.append(watcher.call("GET", "k"))
        watcher.close()
        replies.append(got)
    assert replies[0] == replies[1]


def test_quit_from_a_monitor_gets_ok_and_no_line(start_server):
    running = start_server()
    watcher = start_monitor(running.resp_port)
    assert watcher.call("QUIT") == b"+OK\r\n"
    assert watcher.reader.read() == b""
    wait_for(lambda: not running.server.dispatcher.monitors, "nobody monitors")


# -- the text port -------------------------------------------------------------------------


def test_on_the_text_port_the_line_has_no_plus(start_server):
    running = start_server()
    watcher = running.client()
    assert watcher.call("MONITOR") == b"OK"
    client = running.client()
    client_port = client.sock.getsockname()[1]
    assert client.call('SET "a key" "x y"') == b"OK"
    line = watcher.read_line()
    assert LINE.fullmatch(line) and not line.startswith(b"+")
    assert line.endswith(b'[0 127.0.0.1:%d] "SET" "a key" "x y"' % client_port)
    assert watcher.call("GET k") == b"ERR Replica can't interact with the keyspace"
    assert watcher.call("RESET") == b"RESET"
    assert watcher.call("GET k") == b"nil"


def test_every_monitor_gets_every_line_in_order(start_server):
    running = start_server()
    watchers = [start_monitor(running.resp_port) for _ in range(3)]
    client = RawRespClient(running.resp_port)
    for i in range(200):
        client.call("SET", f"k{i}", str(i))
    for watcher in watchers:
        for i in range(200):
            assert watcher.read_reply().endswith(b'"SET" "k%d" "%d"\r\n' % (i, i))
        watcher.close()
    client.close()


# -- a monitor that stops reading -----------------------------------------------------------


def test_a_monitor_that_stops_reading_is_disconnected_and_nobody_waits(start_server):
    running = start_server(client_output_buffer_limit=(256 * KB, 0, 0))
    server = running.server
    lazy = socket.socket()
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.settimeout(REPLY_TIMEOUT_S)
    lazy.connect(("127.0.0.1", running.resp_port))
    lazy.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
    assert lazy.recv(5) == b"+OK\r\n"
    wait_for(lambda: server.dispatcher.monitors, "monitoring")
    writer = RawRespClient(running.resp_port)
    value = os.urandom(2 * KB).hex()  # lines of 4 KiB
    started = time.monotonic()
    for i in range(2000):  # 8 MiB of lines, never read
        assert writer.call("SET", f"k{i}", value) == b"+OK\r\n"
    elapsed = time.monotonic() - started
    wait_for(lambda: server.state.client_output_buffer_limit_disconnections == 1, "disconnected")
    wait_for(lambda: not server.dispatcher.monitors, "nobody monitors")
    assert writer.call("DBSIZE") == b":2000\r\n"
    assert elapsed < REPLY_TIMEOUT_S  # the writer was never held up
    writer.close()
    lazy.close()


def test_nothing_is_left_once_monitors_go(start_server):
    running = start_server()
    server = running.server
    gone = start_monitor(running.resp_port)
    reset = start_monitor(running.resp_port)
    assert len(server.dispatcher.monitors) == 2
    gone.close()
    assert reset.call("RESET") == b"+RESET\r\n"
    wait_for(lambda: server.dispatcher.monitors == (), "no monitors")
    client = RawRespClient(running.resp_port)
    assert client.call("PING") == b"+PONG\r\n"
    line = client.call("CLIENT", "LIST")
    assert b"flags=O" not in line and b"cmd=reset" in line
    client.close()
    reset.close()


def test_client_kill_ends_a_monitor(start_server):
    running = start_server()
    watcher = start_monitor(running.resp_port)
    killer = RawRespClient(running.resp_port)
    assert killer.call("CLIENT", "KILL", "TYPE", "normal") == b":1\r\n"  # monitors are normal clients
    assert watcher.reader.read() == b""
    wait_for(lambda: not running.server.dispatcher.monitors, "nobody monitors")
    killer.close()


def test_the_idle_timeout_spares_monitors(start_server):
    running = start_server(timeout_seconds=0.2)
    watcher = start_monitor(running.resp_port)
    idle = RawRespClient(running.resp_port)
    assert idle.reader.read() == b""  # closed for its silence
    client = RawRespClient(running.resp_port)
    assert client.call("PING") == b"+PONG\r\n"
    assert watcher.read_reply().endswith(b'"PING"\r\n')  # the monitor, as silent, stays
    client.close()
    watcher.close()


def test_client_list_flags_a_monitor_with_o(start_server):
    running = start_server()
    watcher = start_monitor(running.resp_port)
    client = RawRespClient(running.resp_port)
    listing = client.call("CLIENT", "LIST")
    assert b"flags=O" in listing and b"cmd=monitor" in listing
    client.close()
    watcher.close()


# -- redis-py ---------------------------------------------------------------------------------


def test_redis_py_monitor(start_server):
    redis = pytest.importorskip("redis")
    running = start_server()
    r = redis.Redis(port=running.resp_port, protocol=2)
    with r.monitor() as m:
        other = redis.Redis(port=running.resp_port, protocol=2)
        other.set("greeting", "hello world")
        for event in m.listen():
            if event["command"].startswith("SET"):
                break
        assert event["command"] == "SET greeting hello world"
        assert event["db"] == 0 and event["client_address"] == "127.0.0.1"
        other.close()
    r.close()
