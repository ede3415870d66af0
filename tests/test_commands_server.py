"""Tests for the connection and server commands (kvserver/commands/
connection.py, introspection.py, configcmd.py, info.py, server.py,
containers.py): HELLO, AUTH, RESET, CLIENT,
COMMAND, CONFIG, INFO, TIME, LASTSAVE, SAVE, BGSAVE, DEBUG, WAIT, ROLE,
MEMORY.

Unit tests run them as clients do, through ``Dispatcher.execute`` with a
``Session`` registered in a ``ServerState`` and a fake clock; the
``side_by_side`` tests send the deterministic ones to kvserver and to a real
redis-server 7.0 and compare the reply bytes.
"""

from __future__ import annotations

import re

import os

import pytest

from kvserver.commands import COMMANDS
from kvserver.commands.glob import glob_matcher
from kvserver.commands.info import human_bytes
from kvserver.config import Config
from kvserver.protocol import SetReply, Status, Verbatim
from kvserver.protocol.resp import encode_reply
from kvserver.protocol.text import encode_reply as encode_text
from kvserver.session import DetachedHandle, Session
from kvserver import rdb
from kvserver.state import REDIS_VERSION, ServerState
from tests.support import T0, Harness, error_text


class _Handle(DetachedHandle):
    """A connection's handle that notes CLIENT KILL in a shared list."""

    __slots__ = ("_killed", "_id")

    def __init__(self, killed: list, client_id: int) -> None:
        super().__init__()
        self._killed, self._id = killed, client_id

    def kill(self) -> None:
        self._killed.append(self._id)


class ServerHarness(Harness):
    """The dispatch harness plus the server state, its sessions connected
    as clients are (registered, with an id and a peer)."""

    def __init__(self, tmp_path, appendfsync: str = "no") -> None:
        super().__init__(tmp_path / "appendonly.aof", fsync=appendfsync)
        self.config = Config(port=7000, resp_port=7001, aof_path=self.path, appendfsync=appendfsync)
        self.state = ServerState(self.config, self.keyspace, self.aof)
        self.state.started_at = T0 / 1000 - 90_000  # up for a day and a bit
        self.state.tcp_port, self.state.resp_port = 7000, 7001
        self.killed: list[int] = []
        self.session = self.connect(1, "127.0.0.1:50001")

    def connect(self, client_id: int, peer: str) -> Session:
        session = Session(self.keyspace, client_id, server=self.state, peer=peer, local="127.0.0.1:7001")
        session.created = self.clock.now / 1000
        session.conn = _Handle(self.killed, client_id)
        self.state.add_client(session)
        return session


@pytest.fixture
def kv(tmp_path):
    harness = ServerHarness(tmp_path)
    yield harness
    harness.aof.close()


def parse_info(text: bytes) -> dict[str, dict[str, str]]:
    """INFO's text as {section: {field: value}}, checking its layout."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:], {})
        elif line:
            key, _, value = line.partition(":")
            assert current is not None and key and _ == ":", line
            current[key] = value
    return sections


# -- HELLO, AUTH, RESET ---------------------------------------------------------------


def test_hello_3_switches_the_session_to_resp3_and_describes_the_server(kv):
    reply = kv("HELLO", "3")
    assert kv.session.resp == 3
    assert reply == {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": 3,
        b"id": 1,
        b"mode": b"standalone",
        b"role": b"master",
        b"modules": [],
    }
    assert encode_reply(reply, kv.session.resp).startswith(b"%7\r\n$6\r\nserver\r\n")


def test_hello_without_a_version_keeps_the_protocol(kv):
    kv("HELLO", "3")
    assert kv("HELLO")[b"proto"] == 3
    assert kv("HELLO", "2")[b"proto"] == 2
    assert kv.session.resp == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["4"], "NOPROTO unsupported protocol version"),
        (["1"], "NOPROTO unsupported protocol version"),
        (["three"], "ERR Protocol version is not an integer or out of range"),
        (["3", "AUTH", "default"], "ERR Syntax error in HELLO option 'AUTH'"),
        (["3", "SETNAME"], "ERR Syntax error in HELLO option 'SETNAME'"),
        (["3", "LOUDLY"], "ERR Syntax error in HELLO option 'LOUDLY'"),
        (["3", "AUTH", "alice", "pw"], "WRONGPASS invalid username-password pair or user is disabled."),
        (["3", "SETNAME", "a b"], "ERR Client names cannot contain spaces, newlines or special characters."),
    ],
)
def test_hello_errors_leave_the_session_as_it_was(kv, args, message):
    assert error_text(kv("HELLO", *args)) == message
    assert kv.session.resp == 2 and kv.session.name == b""


def test_hello_options_take_effect_in_order(kv):
    # As Redis 7.0: the name is set before the bad option is reached.
    assert error_text(kv("HELLO", "3", "SETNAME", "kept", "LOUDLY")) == "ERR Syntax error in HELLO option 'LOUDLY'"
    assert kv.session.name == b"kept" and kv.session.resp == 2


def test_hello_auth_and_setname(kv):
    reply = kv("HELLO", "3", "AUTH", "default", "anything", "SETNAME", "worker-1")
    assert reply[b"proto"] == 3
    assert kv("CLIENT", "GETNAME") == b"worker-1"


def test_auth_with_no_password_configured(kv):
    assert error_text(kv("AUTH", "secret")).startswith(
        "ERR AUTH <password> called without any password configured for the default user."
    )
    assert kv("AUTH", "default", "whatever") == Status("OK")
    assert error_text(kv("AUTH", "alice", "pw")) == "WRONGPASS invalid username-password pair or user is disabled."
    assert error_text(kv("AUTH", "a", "b", "c")) == "ERR syntax error"


def test_reset_restores_the_connection_state(kv):
    kv("SELECT", "3")
    kv("HELLO", "3", "SETNAME", "x")
    kv("CLIENT", "SETINFO", "LIB-NAME", "mylib")
    reply = kv("RESET")
    assert reply == Status("RESET") and type(reply) is Status
    assert (kv.session.db.index, kv.session.resp, kv.session.name) == (0, 2, b"")
    assert kv.session.lib_name == b"mylib"  # as Redis: RESET keeps the library


# -- CLIENT --------------------------------------------------------------------------------


def test_client_setname_getname_id(kv):
    assert kv("CLIENT", "GETNAME") is None
    assert kv("CLIENT", "SETNAME", "job-7") == Status("OK")
    assert kv("CLIENT", "GETNAME") == b"job-7"
    assert kv("CLIENT", "SETNAME", "") == Status("OK")
    assert kv("CLIENT", "GETNAME") is None
    assert kv("CLIENT", "ID") == 1


@pytest.mark.parametrize("name", [b"a b", b"tab\there", b"line\nbreak", "caf\u00e9".encode(), b"nul\x00"])
def test_client_setname_refuses_what_would_break_client_list(kv, name):
    assert error_text(kv("CLIENT", "SETNAME", name)) == (
        "ERR Client names cannot contain spaces, newlines or special characters."
    )


def test_client_setinfo(kv):
    assert kv("CLIENT", "SETINFO", "lib-name", "redis-py") == Status("OK")
    assert kv("CLIENT", "SETINFO", "LIB-VER", "8.1.0") == Status("OK")
    assert b" lib-name=redis-py lib-ver=8.1.0\n" in kv("CLIENT", "INFO")
    assert error_text(kv("CLIENT", "SETINFO", "colour", "x")) == "ERR Unrecognized option 'colour'"
    assert error_text(kv("CLIENT", "SETINFO", "lib-name", "a b")) == (
        "ERR lib-name cannot contain spaces, newlines or special characters."
    )


def test_client_subcommand_errors_name_the_subcommand(kv):
    assert error_text(kv("CLIENT", "Frobnicate")) == "ERR unknown subcommand 'Frobnicate'. Try CLIENT HELP."
    assert error_text(kv("CLIENT")) == "ERR wrong number of arguments for 'client' command"
    assert error_text(kv("CLIENT", "SETNAME")) == "ERR wrong number of arguments for 'client|setname' command"
    assert error_text(kv("CLIENT", "ID", "x")) == "ERR wrong number of arguments for 'client|id' command"


def test_client_list_describes_every_connected_client(kv):
    other = kv.connect(2, "127.0.0.1:50002")
    kv("SELECT", "5", session=other)
    kv("CLIENT", "SETNAME", "worker", session=other)
    kv("HELLO", "3", session=other)
    kv.clock.now += 7_000  # the other client idles for 7 s
    kv("CLIENT", "SETNAME", "me")
    listing = kv("CLIENT", "LIST")
    assert type(listing) is Verbatim
    lines = listing.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 3
    mine, theirs = (dict(field.split("=", 1) for field in line.split(" ")) for line in lines[:2])
    assert mine["id"] == "1" and mine["name"] == "me" and mine["cmd"] == "client|list"
    assert mine["addr"] == "127.0.0.1:50001" and mine["laddr"] == "127.0.0.1:7001"
    assert theirs["id"] == "2" and theirs["name"] == "worker" and theirs["db"] == "5"
    assert theirs["cmd"] == "hello" and theirs["resp"] == "3"
    assert (theirs["age"], theirs["idle"]) == ("7", "7")
    assert (mine["age"], mine["idle"]) == ("7", "0")
    assert list(mine)[:5] == ["id", "addr", "laddr", "fd", "name"]
    assert list(mine)[-5:] == ["user", "redir", "resp", "lib-name", "lib-ver"]


def test_client_list_filters(kv):
    kv.connect(2, "127.0.0.1:50002")
    ids = lambda listing: [int(m) for m in re.findall(rb"^id=(\d+)", listing, re.M)]  # noqa: E731
    assert ids(kv("CLIENT", "LIST", "TYPE", "normal")) == [1, 2]
    assert kv("CLIENT", "LIST", "TYPE", "pubsub") == b""
    assert ids(kv("CLIENT", "LIST", "ID", "2", "99", "1")) == [2, 1]
    assert error_text(kv("CLIENT", "LIST", "TYPE", "robot")) == "ERR Unknown client type 'robot'"
    assert error_text(kv("CLIENT", "LIST", "ID", "two")) == "ERR Invalid client ID"
    assert error_text(kv("CLIENT", "LIST", "ALL")) == "ERR syntax error"


def test_client_kill_by_id_and_address(kv):
    kv.connect(2, "127.0.0.1:50002")
    kv.connect(3, "127.0.0.1:50003")
    assert kv("CLIENT", "KILL", "ID", "2") == 1
    assert kv("CLIENT", "KILL", "ADDR", "127.0.0.1:50003") == 1
    assert kv("CLIENT", "KILL", "ID", "99") == 0
    assert kv.killed == [2, 3]
    assert kv("CLIENT", "KILL", "127.0.0.1:50002") == Status("OK")  # the old form
    assert error_text(kv("CLIENT", "KILL", "10.0.0.1:1")) == "ERR No such client"


def test_client_kill_skips_the_caller_unless_told(kv):
    kv.connect(2, "127.0.0.1:50002")
    assert kv("CLIENT", "KILL", "USER", "default") == 1
    assert not kv.session.conn.closing
    assert kv("CLIENT", "KILL", "ID", "1", "SKIPME", "no") == 1
    assert kv.session.conn.closing  # after this reply, as Redis
    assert kv.killed == [2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["ID", "0"], "ERR client-id should be greater than 0"),
        (["ID", "x"], "ERR client-id should be greater than 0"),
        (["ID", "5", "SKIPME"], "ERR syntax error"),
        (["SKIPME", "maybe"], "ERR syntax error"),
        (["COLOUR", "red"], "ERR syntax error"),
        (["USER", "nobody"], "ERR No such user 'nobody'"),
        (["TYPE", "robot"], "ERR Unknown client type 'robot'"),
    ],
)
def test_client_kill_errors(kv, args, message):
    assert error_text(kv("CLIENT", "KILL", *args)) == message


def test_client_no_evict_and_reply(kv):
    assert kv("CLIENT", "NO-EVICT", "on") == Status("OK")
    assert error_text(kv("CLIENT", "NO-EVICT", "maybe")) == "ERR syntax error"
    assert kv("CLIENT", "REPLY", "ON") == Status("OK")
    assert error_text(kv("CLIENT", "REPLY", "OFF")).startswith("ERR CLIENT REPLY OFF")
    assert error_text(kv("CLIENT", "REPLY", "LOUD")) == "ERR syntax error"


def test_container_help_lists_every_subcommand(kv):
    for name in ("CLIENT", "CONFIG", "COMMAND", "MEMORY"):
        lines = kv(name, "HELP")
        assert all(type(line) is Status for line in lines)
        assert lines[0] == f"{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
        assert lines[-2:] == ["HELP", "    Prints this help."]
    assert "SETNAME connection-name" in kv("CLIENT", "HELP")


# -- COMMAND -------------------------------------------------------------------------------


def test_command_count_is_the_registry(kv):
    assert kv("COMMAND", "COUNT") == len(COMMANDS)
    assert len(kv("COMMAND")) == len(COMMANDS)


def test_command_info_describes_a_command_from_the_registry(kv):
    [get, missing, setname] = kv("COMMAND", "INFO", "get", "nosuch", "CLIENT|SETNAME")
    assert missing is None
    name, arity, flags, first, last, step, categories, tips, specs, subs = get
    assert (name, arity, first, last, step) == (b"get", 2, 1, 1, 1)
    assert "readonly" in flags and "@read" in categories and "@string" in categories
    assert type(flags) is SetReply and tips == [] and subs == []
    [spec] = specs
    assert spec[b"begin_search"] == {b"type": b"index", b"spec": {b"index": 1}}
    assert spec[b"find_keys"][b"spec"] == {b"lastkey": 0, b"keystep": 1, b"limit": 0}
    assert setname[0] == b"client|setname" and setname[1] == 3


def test_command_info_of_a_container_lists_its_subcommands(kv):
    [client] = kv("COMMAND", "INFO", "client")
    assert client[1] == -2
    assert {sub[0] for sub in client[9]} >= {b"client|list", b"client|kill", b"client|help"}
    [delete] = kv("COMMAND", "INFO", "del")
    assert delete[3:6] == [1, -1, 1] and "write" in delete[2]
    assert delete[8][0][b"find_keys"][b"spec"][b"lastkey"] == -1


def test_command_docs_gives_summary_and_group_for_every_command(kv):
    docs = kv("COMMAND", "DOCS")
    assert set(docs) == {cmd.name.encode() for cmd in COMMANDS.values()}
    for doc in docs.values():  # redis-cli reads both for every entry
        assert doc[b"summary"] and doc[b"group"]
    assert docs[b"get"][b"group"] == b"string"
    assert docs[b"client"][b"subcommands"][b"client|setname"][b"group"] == b"connection"
    assert kv("COMMAND", "DOCS", "nosuch") == {}
    assert list(kv("COMMAND", "DOCS", "ping", "nosuch")) == [b"ping"]


def test_command_list_and_filters(kv):
    names = kv("COMMAND", "LIST")
    assert b"get" in names and b"config|get" in names
    assert kv("COMMAND", "LIST", "FILTERBY", "PATTERN", "CONFIG|G*") == [b"config|get"]
    assert kv("COMMAND", "LIST", "FILTERBY", "MODULE", "json") == []
    assert b"client" in kv("COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection")
    assert b"get" not in kv("COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection")
    assert error_text(kv("COMMAND", "LIST", "FILTERBY", "COLOUR", "x")) == "ERR syntax error"


def test_command_getkeys(kv):
    assert kv("COMMAND", "GETKEYS", "get", "k") == [b"k"]
    assert kv("COMMAND", "GETKEYS", "del", "a", "b") == [b"a", b"b"]
    assert error_text(kv("COMMAND", "GETKEYS", "nosuch", "a")) == "ERR Invalid command specified"
    assert error_text(kv("COMMAND", "GETKEYS", "ping", "a")) == "ERR The command has no key arguments"
    assert error_text(kv("COMMAND", "GETKEYS", "get", "a", "b")) == (
        "ERR Invalid number of arguments specified for command"
    )


# -- CONFIG --------------------------------------------------------------------------------


def test_config_get_what_redis_benchmark_asks_first(kv):
    assert kv("CONFIG", "GET", "save") == {b"save": b""}
    assert kv("CONFIG", "GET", "appendonly") == {b"appendonly": b"yes"}
    assert encode_reply(kv("CONFIG", "GET", "save"), 2) == b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    assert encode_reply(kv("CONFIG", "GET", "save"), 3) == b"%1\r\n$4\r\nsave\r\n$0\r\n\r\n"


def test_config_get_patterns_and_spelling(kv):
    assert kv("CONFIG", "GET", "nosuch") == {}
    assert kv("CONFIG", "GET", "APPENDONLY") == {b"APPENDONLY": b"yes"}  # spelt as asked
    assert kv("CONFIG", "GET", "save", "SAVE", "sa*") == {b"save": b""}
    assert kv("CONFIG", "GET", "append*") == {
        b"appendonly": b"yes",
        b"appendfsync": b"no",
        b"appendfilename": b"appendonly.aof",
    }
    assert kv("CONFIG", "GET", "databases", "port", "maxmemory") == {
        b"databases": b"16",
        b"port": b"7000",
        b"maxmemory": b"0",
    }
    assert len(kv("CONFIG", "GET", "*")) > 10


def test_config_set_appendfsync_changes_the_log_policy(kv):
    assert kv("CONFIG", "SET", "appendfsync", "always") == Status("OK")
    assert kv.aof.fsync_policy == "always"
    assert kv("CONFIG", "GET", "appendfsync") == {b"appendfsync": b"always"}
    assert kv("CONFIG", "SET", "APPENDFSYNC", "NO") == Status("OK")
    assert kv.aof.fsync_policy == "no"


def test_config_set_appendfsync_everysec_on_a_server_started_without_it(kv):
    assert kv("CONFIG", "SET", "appendfsync", "everysec") == Status("OK")
    assert kv.aof.fsync_policy == "everysec"
    assert kv("CONFIG", "GET", "appendfsync") == {b"appendfsync": b"everysec"}


def test_config_set_other_settings_accept_their_current_value_only(kv):
    assert kv("CONFIG", "SET", "save", "", "maxmemory", "0", "timeout", "0") == Status("OK")
    assert kv("CONFIG", "SET", "appendonly", "YES") == Status("OK")
    assert error_text(kv("CONFIG", "SET", "appendonly", "no")) == (
        "ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config"
    )
    assert error_text(kv("CONFIG", "SET", "maxmemory", "1gb")).endswith("can't set immutable config")
    assert error_text(kv("CONFIG", "SET", "save", "900 1")).endswith("can't set immutable config")


def test_config_set_is_all_or_nothing(kv):
    reply = kv("CONFIG", "SET", "appendfsync", "always", "maxmemory", "10mb")
    assert error_text(reply).endswith("can't set immutable config")
    assert kv.aof.fsync_policy == "no"


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch", "1"], "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
        (["appendfsync", "sometimes"], "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - "
         "argument(s) must be one of the following: everysec, always, no"),
        (["databases", "4"], "ERR CONFIG SET failed (possibly related to argument 'databases') - "
         "can't set immutable config"),
        (["appendfsync", "no", "APPENDFSYNC", "no"], "ERR CONFIG SET failed (possibly related to argument "
         "'APPENDFSYNC') - duplicate parameter"),
        (["maxmemory", "lots"], "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - "
         "argument must be a memory value"),
        (["timeout", "soon"], "ERR CONFIG SET failed (possibly related to argument 'timeout') - "
         "argument couldn't be parsed into an integer"),
        (["appendonly", "maybe"], "ERR CONFIG SET failed (possibly related to argument 'appendonly') - "
         "argument must be 'yes' or 'no'"),
        (["save", "often"], "ERR CONFIG SET failed (possibly related to argument 'save') - "
         "Invalid save parameters"),
        (["appendfsync", "no", "timeout"], "ERR syntax error"),
        (["appendfsync"], "ERR wrong number of arguments for 'config|set' command"),
    ],
)
def test_config_set_errors(kv, args, message):
    assert error_text(kv("CONFIG", "SET", *args)) == message


def test_config_resetstat_and_rewrite(kv):
    kv.state.total_commands_processed = 42
    kv.state.total_connections_received = 7
    assert kv("CONFIG", "RESETSTAT") == Status("OK")
    stats = parse_info(kv("INFO", "stats"))["Stats"]
    assert stats["total_commands_processed"] == "0" and stats["total_connections_received"] == "0"
    assert error_text(kv("CONFIG", "REWRITE")) == "ERR The server is running without a config file"


# -- INFO ----------------------------------------------------------------------------------


def test_info_default_sections_in_redis_order(kv):
    reply = kv("INFO")
    assert type(reply) is Verbatim
    assert reply.startswith(b"# Server\r\nredis_version:" + REDIS_VERSION.encode() + b"\r\n")
    assert re.findall(rb"^# (\w+)\r$", reply, re.M) == [
        b"Server", b"Clients", b"Memory", b"Persistence", b"Stats",
        b"Replication", b"CPU", b"Modules", b"Cluster", b"Keyspace",
    ]
    assert b"\r\n\r\n# Clients\r\n" in reply  # a blank line between sections
    headers = lambda text: re.findall(rb"^# \w+\r$", text, re.M)  # noqa: E731
    # all/everything add commandstats, where Redis 7.0 puts it.
    everything = headers(kv("INFO", "all"))
    assert everything == headers(kv("INFO", "everything"))
    assert everything == headers(reply)[:8] + [b"# Commandstats\r"] + headers(reply)[8:]
    assert headers(reply) == headers(kv("INFO", "default", "nosuch"))


def test_info_figures(kv):
    kv("SET", "a", "1")
    kv("SET", "b", "2")
    kv("PEXPIRE", "b", "60000")
    kv("SELECT", "2")
    kv("SET", "c", "3")
    info = parse_info(kv("INFO"))
    server = info["Server"]
    assert server["redis_mode"] == "standalone" and server["tcp_port"] == "7000"
    assert server["uptime_in_seconds"] == "90000" and server["uptime_in_days"] == "1"
    assert server["server_time_usec"] == str(T0 * 1000)
    assert server["run_id"] == kv.state.run_id and len(server["run_id"]) == 40
    assert info["Clients"]["connected_clients"] == "1"
    assert info["Persistence"]["aof_enabled"] == "1"
    assert info["Persistence"]["aof_last_write_status"] == "ok"
    assert int(info["Persistence"]["aof_current_size"]) == kv.aof.size > 0
    assert info["Replication"]["role"] == "master"
    assert float(info["CPU"]["used_cpu_user"]) > 0
    assert info["Keyspace"] == {
        "db0": "keys=2,expires=1,avg_ttl=60000",
        "db2": "keys=1,expires=0,avg_ttl=0",
    }


def test_info_used_memory_grows_with_the_data(kv):
    def used() -> int:
        memory = parse_info(kv("INFO", "memory"))["Memory"]
        assert memory["used_memory_human"] == human_bytes(int(memory["used_memory"]))
        return int(memory["used_memory"])

    empty = used()
    for i in range(1000):
        kv("SET", f"key:{i}", "x" * 100)
    assert used() > empty + 1000 * 100


def test_info_sections_by_name(kv):
    assert kv("INFO", "keyspace") == b"# Keyspace\r\n"
    assert kv("INFO", "nosuch") == b""
    reply = kv("INFO", "CLUSTER", "server")
    assert list(parse_info(reply)) == ["Server", "Cluster"]  # Redis's order, not the asked one


def test_human_bytes_as_redis():
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536, 3 * 1024**2, 5 * 1024**3)] == [
        "0B", "1023B", "1.00K", "1.50K", "3.00M", "5.00G",
    ]


def test_verbatim_replies_by_protocol():
    assert encode_reply(Verbatim(b"a:1\r\n"), 3) == b"=9\r\ntxt:a:1\r\n\r\n"
    assert encode_reply(Verbatim(b"a:1\r\n"), 2) == b"$5\r\na:1\r\n\r\n"
    assert encode_text(Verbatim(b"a:1\r\n")) == b'"a:1\\r\\n"\r\n'


# -- TIME, LASTSAVE, SAVE, BGSAVE, DEBUG, WAIT, ROLE, MEMORY ---------------------------------


def test_time_reads_the_injected_clock(kv):
    kv.clock.now = 1_700_000_123_456
    assert kv("TIME") == [b"1700000123", b"456000"]


def test_save_and_bgsave_write_the_rdb_file_and_move_lastsave(kv):
    assert kv("LASTSAVE") == T0 // 1000  # start-up time: no save yet
    kv("SET", "k", "v")
    kv.clock.now = T0 + 5_000
    assert kv("SAVE") == Status("OK")
    assert kv("LASTSAVE") == (T0 + 5_000) // 1000
    path = os.path.join(os.path.dirname(kv.path), "dump.rdb")
    assert [(e.key, e.value) for e in rdb.read_file(open(path, "rb").read())] == [(b"k", b"v")]
    kv.clock.now = T0 + 9_000
    assert kv("BGSAVE", "SCHEDULE") == Status("Background saving started")
    kv.state.saver.wait()
    assert kv("LASTSAVE") == (T0 + 9_000) // 1000
    assert error_text(kv("BGSAVE", "NOW")) == "ERR syntax error"


def test_debug(kv):
    assert kv("DEBUG", "SLEEP", "0") == Status("OK")
    assert kv("DEBUG", "SLEEP", "not-a-number") == Status("OK")  # strtod reads 0, as Redis
    assert error_text(kv("DEBUG", "JMAP")) == (
        "ERR unknown subcommand or wrong number of arguments for 'JMAP'. Try DEBUG HELP."
    )
    assert error_text(kv("DEBUG", "SLEEP")).startswith("ERR unknown subcommand or wrong number")
    assert kv("DEBUG", "HELP")[1] == "SLEEP <seconds>"


def test_wait_role_memory(kv):
    assert kv("WAIT", "0", "0") == 0
    assert kv("WAIT", "2", "100") == 0  # no replicas will ever answer
    assert error_text(kv("WAIT", "0", "-1")) == "ERR timeout is negative"
    assert error_text(kv("WAIT", "0", "soon")) == "ERR timeout is not an integer or out of range"
    assert kv("ROLE") == [b"master", 0, []]
    assert kv("MEMORY", "USAGE", "nosuch") is None
    kv("SET", "small", "x")
    kv("SET", "big", "x" * 10_000)
    assert 0 < kv("MEMORY", "USAGE", "small") < kv("MEMORY", "USAGE", "big", "SAMPLES", "5")
    assert error_text(kv("MEMORY", "USAGE", "big", "SAMPLES")) == "ERR syntax error"
    assert error_text(kv("MEMORY", "DOCTOR")) == "ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP."


def test_server_commands_are_never_logged(kv):
    for args in (["CONFIG", "SET", "appendfsync", "always"], ["CLIENT", "SETNAME", "x"], ["SAVE"], ["INFO"]):
        kv(*args)
    assert kv.aof.size == 0


# -- glob patterns: CONFIG GET and COMMAND LIST ignore case ----------------------------------


@pytest.mark.parametrize(
    "pattern, text, matches",
    [
        (b"APPEND*", b"appendonly", True),
        (b"[A-C]*", b"bind", True),
        (b"[^A-C]*", b"bind", False),
        (b"\\Save", b"save", True),
        (b"sa?e", b"save", True),
        (b"sa?e", b"sa", False),
    ],
)
def test_glob_matcher_ignores_case(pattern, text, matches):
    assert glob_matcher(pattern)(text) is matches


# -- side by side with redis-server 7.0 --------------------------------------------------------


def test_client_hello_auth_replies_match_redis(side_by_side):
    for command in [
        ("CLIENT", "SETNAME", "a b"),
        ("CLIENT", "SETNAME", "caf\u00e9"),
        ("CLIENT", "SETNAME", "ok-name"),
        ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", ""),
        ("CLIENT", "GETNAME"),
        ("CLIENT", "FOO"),
        ("CLIENT",),
        ("CLIENT", "SETNAME"),
        ("CLIENT", "GETNAME", "x"),
        ("CLIENT", "LIST", "TYPE", "foo"),
        ("CLIENT", "LIST", "ID", "abc"),
        ("CLIENT", "LIST", "FOO"),
        ("CLIENT", "LIST", "TYPE", "pubsub"),
        ("CLIENT", "KILL", "1.2.3.4:5"),
        ("CLIENT", "KILL", "ID", "999"),
        ("CLIENT", "KILL", "ID", "abc"),
        ("CLIENT", "KILL", "ID", "5", "x"),
        ("CLIENT", "KILL", "ADDR", "1.2.3.4:5"),
        ("CLIENT", "KILL", "FOO", "bar"),
        ("CLIENT", "KILL", "USER", "nobody"),
        ("CLIENT", "KILL", "TYPE", "foo"),
        ("CLIENT", "NO-EVICT", "on"),
        ("CLIENT", "NO-EVICT", "x"),
        ("CLIENT", "REPLY", "ON"),
        ("CLIENT", "REPLY", "FOO"),
        ("HELLO", "4"),
        ("HELLO", "1"),
        ("HELLO", "abc"),
        ("HELLO", "99999999999999999999"),
        ("HELLO", "3", "AUTH", "foo", "x"),
        ("HELLO", "3", "AUTH"),
        ("HELLO", "3", "SETNAME"),
        ("HELLO", "3", "FOO"),
        ("HELLO", "3", "SETNAME", "a b"),
        ("HELLO", "2", "auth", "foo", "x", "setname", "a b"),
        ("HELLO", "2", "setname", "a b", "auth", "foo", "x"),
        ("HELLO", "3", "SETNAME", "kept", "FOO"),
        ("CLIENT", "GETNAME"),
        ("HELLO", "3", "SETNAME", "x", "AUTH", "default"),
        ("CLIENT", "GETNAME"),
        ("AUTH", "x"),
        ("AUTH", "default", "x"),
        ("AUTH", "foo", "x"),
        ("AUTH", "a", "b", "c"),
        ("RESET", "x"),
        ("RESET",),
    ]:
        side_by_side.both(*command)


def test_hello_matches_redis_but_for_the_client_id(side_by_side):
    for version in ("3", "2"):
        ours, theirs = side_by_side.each("HELLO", version, "AUTH", "default", "pw", "SETNAME", "n")
        same_id = lambda reply: re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"ID", reply)  # noqa: E731
        assert same_id(ours) == same_id(theirs)
    side_by_side.both("CLIENT", "GETNAME")


def test_config_replies_match_redis(side_by_side):
    for command in [
        ("CONFIG", "GET", "save"),
        ("CONFIG", "GET", "nosuch"),
        ("CONFIG", "GET", "maxmemory"),
        ("CONFIG", "GET", "Timeout"),
        ("CONFIG", "GET", "appendfs*"),
        ("CONFIG", "GET"),
        ("CONFIG", "SET", "nosuch", "1"),
        ("CONFIG", "SET", "appendfsync", "foo"),
        ("CONFIG", "SET", "databases", "4"),
        ("CONFIG", "SET", "maxmemory", "abc"),
        ("CONFIG", "SET", "timeout", "abc"),
        ("CONFIG", "SET", "appendonly", "maybe"),
        ("CONFIG", "SET", "maxmemory-policy", "foo"),
        ("CONFIG", "SET", "daemonize", "no"),
        ("CONFIG", "SET", "save", "bogus"),
        ("CONFIG", "SET", "appendfsync", "always", "appendfsync", "no"),
        ("CONFIG", "SET", "appendfsync", "no", "timeout"),
        ("CONFIG", "SET", "appendfsync"),
        ("CONFIG", "SET", "save", ""),
        ("CONFIG", "SET", "timeout", "0"),
        ("CONFIG", "SET", "maxmemory", "0"),
        ("CONFIG", "SET", "appendfsync", "always"),
        ("CONFIG", "GET", "appendfsync"),
        ("CONFIG", "SET", "appendfsync", "everysec"),
        ("CONFIG", "GET", "appendfsync"),
        ("CONFIG", "RESETSTAT"),
        ("CONFIG", "REWRITE"),
        ("CONFIG", "FOO"),
        ("CONFIG",),
    ]:
        side_by_side.both(*command)
    # redis-benchmark's first question: the same shape (the fixture's Redis
    # runs without its log, so the value differs).
    ours, theirs = side_by_side.each("CONFIG", "GET", "appendonly")
    assert (ours, theirs) == (b"*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n", b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n")


def test_command_and_server_replies_match_redis(side_by_side):
    for command in [
        ("COMMAND", "FOO"),
        ("COMMAND", "COUNT", "x"),
        ("COMMAND", "INFO", "nosuch"),
        ("COMMAND", "DOCS", "nosuch"),
        ("COMMAND", "GETKEYS", "nosuch", "a"),
        ("COMMAND", "GETKEYS", "get"),
        ("COMMAND", "GETKEYS", "ping", "a", "b"),
        ("COMMAND", "GETKEYS", "get", "a", "b"),
        ("COMMAND", "GETKEYS", "get", "a"),
        ("COMMAND", "GETKEYS", "del", "a", "b", "c"),
        ("COMMAND", "LIST", "x"),
        ("COMMAND", "LIST", "FILTERBY", "FOO", "x"),
        ("COMMAND", "LIST", "FILTERBY", "MODULE", "foo"),
        ("WAIT", "0", "0"),
        ("WAIT", "0"),
        ("WAIT", "a", "0"),
        ("WAIT", "0", "a"),
        ("WAIT", "a", "a"),
        ("WAIT", "0", "-1"),
        ("WAIT", "-1", "0"),
        ("ROLE",),
        ("ROLE", "x"),
        ("LASTSAVE", "x"),
        ("TIME", "x"),
        ("SAVE", "x"),
        ("BGSAVE", "x"),
        ("DEBUG",),
        ("MEMORY",),
        ("MEMORY", "FOO"),
        ("MEMORY", "USAGE"),
        ("MEMORY", "USAGE", "nosuch"),
        ("MEMORY", "USAGE", "k", "SAMPLES"),
        ("MEMORY", "USAGE", "k", "SAMPLES", "x"),
        ("MEMORY", "USAGE", "k", "x"),
        ("INFO", "nosuch"),
        ("INFO", "keyspace"),
        ("SET", "a", "1"),
        ("INFO", "keyspace"),
        ("SELECT", "3"),
        ("SET", "b", "2"),
        ("INFO", "KEYSPACE"),
    ]:
        side_by_side.both(*command)
    count = side_by_side.each("COMMAND", "COUNT")
    assert all(re.fullmatch(rb":\d+\r\n", reply) for reply in count)
    time_replies = side_by_side.each("TIME")
    assert all(re.fullmatch(rb"\*2\r\n\$10\r\n\d{10}\r\n\$\d\r\n\d+\r\n", reply) for reply in time_replies)


def test_resp3_verbatim_replies_match_redis(side_by_side):
    side_by_side.each("HELLO", "3")
    side_by_side.both("INFO", "keyspace")
    side_by_side.both("CONFIG", "GET", "save")
    side_by_side.both("SET", "k", "v")
    side_by_side.both("INFO", "keyspace")
    for reply in side_by_side.each("CLIENT", "INFO"):
        header, _, text = reply.partition(b"\r\n")
        assert header == b"=%d" % (len(text) - 2) and text.startswith(b"txt:id=")
        assert b" cmd=client|info user=default redir=-1 resp=3" in text
