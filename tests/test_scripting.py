"""EVAL / SCRIPT and FUNCTION / FCALL (commands/scripting.py, commands/functions.py,
kvserver/scripting): replies byte for byte beside redis-server 7.0, the log
holding a script's effects, rollback, busy scripts and SCRIPT KILL, and
libraries surviving a restart and a rewrite."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from kvserver.protocol.resp import encode_reply
from tests.resp_client import RawRespClient
from tests.support import resp, wait_for

redis = pytest.importorskip("redis")

LIB = "#!lua name=mylib\nredis.register_function('echo', function(keys, args) return args[1] end)"

# Lua -> reply conversions, sandbox and error texts: each script's reply
# must be redis-server's, byte for byte (the sha1 in error texts included).
SCRIPTS = [
    "return 3.99", "return -3.99", "return true", "return false", "return nil", "return 'abc'",
    "return {1,2,nil,4}", "return {1,{2,'a'},false,3}", "return {a=1}", "return 1e400", "return 2^53+1",
    "return redis.error_reply('x y')", "return {err='x y'}", "return redis.status_reply('FINE')",
    "return {ok='fine'}", "return {1, {err='bad'}, 2}", "return {double=3.5}", "return {map={a=1}}",
    "return {set={a=true}}", "return {big_number='123'}", "return redis.call('ping')",
    "return redis.call('get','nokey')", "return type(redis.call('get','nokey'))",
    "redis.call('set','k',3.7) return redis.call('get','k')", "return KEYS[1]..ARGV[1]", "return #KEYS..#ARGV",
    # errors and the sandbox
    "return x", "x = 1", "local function f() y = 1 end f()", "rawset(_G,'z',1)", "string.foo = 1",
    "return tostring(os)", "return tostring(loadfile)", "return tostring(require)", "return tostring(dofile)",
    "return redis.call('nosuch')", "return redis.pcall('nosuch')", "return redis.call('incr','a','b')",
    "local ok, e = pcall(redis.call, 'nosuch') return e", "redis.call('set','s','x') return redis.call('incr','s')",
    "redis.call('set','s','x') return redis.pcall('incr','s')", "return +", "error('boom')", "\n\nerror('x')",
    "error({err='MY boom'})", "error(3)", "error('x', 0)", "return redis.call()", "return redis.call({})",
    "return redis.pcall('eval','return 1', 0)", "return redis.error_reply(1)", "return redis.setresp(4)",
    "redis.log(99,'x')", "redis.log(redis.LOG_NOTICE)", "return redis.log(redis.LOG_WARNING,'hi')",
    "return redis.set_repl(99)", "return redis.set_repl(redis.REPL_ALL)", "return redis.replicate_commands()",
    "return redis.sha1hex('')", "return redis.sha1hex()", "return redis.REDIS_VERSION_NUM",
    # cjson and bit
    "return cjson.encode({1,2.5,'x',{a=1}})", "return cjson.encode(3.14159265358979)", "return cjson.encode(1e20)",
    "return cjson.encode({[1]=1,[3]=3})", "return cjson.encode('a/b\"\\n\\1')", "return cjson.encode(1/0)",
    "return cjson.decode('{\"a\":[1,2,{\"b\":true}]}').a[3].b", "return cjson.decode('[1,null]')[2] == cjson.null",
    "return cjson.decode('[')", "return cjson.encode({})",
    "return bit.tohex(65535)", "return bit.band(-1,255)", "return bit.tobit(2^32+5)", "return bit.tohex(-1, -4)",
    "return bit.rol(1, 33)", "return bit.arshift(-256, 4)", "return bit.bnot(0)", "return bit.lshift(1,31)",
    "return bit.bxor(5,3,1)",
]

RESP3_SCRIPTS = [
    "return {double=3.5}", "return {map={a={1,2}}}", "return {set={a=true}}", "return {big_number='123'}",
    "return nil", "return false", "return true", "redis.setresp(3) return true",
    "redis.setresp(3) return false", "redis.setresp(3) return redis.call('get','nokey')",
    "redis.setresp(3) return type(redis.call('get','nokey'))",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_replies_as_redis(side_by_side, script):
    side_by_side.both("EVAL", script, "1", "key1", "arg1")


def test_script_replies_in_resp3_as_redis(side_by_side):
    side_by_side.each("HELLO", "3")
    for script in RESP3_SCRIPTS:
        side_by_side.both("EVAL", script, "0")


def test_script_cache_and_numkeys_errors_as_redis(side_by_side):
    both = side_by_side.both
    both("SCRIPT", "FLUSH")
    both("EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0")
    sha = both("SCRIPT", "LOAD", "return 'cached'")
    both("SCRIPT", "EXISTS", sha.split(b"\r\n")[1], "0000")
    both("EVALSHA", sha.split(b"\r\n")[1], "0")
    both("EVAL", "return 1", "-1")
    both("EVAL", "return 1", "3", "a")
    both("EVAL", "return 1", "x")
    both("SCRIPT", "FLUSH", "bogus")
    both("SCRIPT", "FLUSH", "ASYNC")
    both("EVALSHA", sha.split(b"\r\n")[1], "0")
    both("SCRIPT", "KILL")
    both("EVAL_RO", "return redis.call('set','a','b')", "0")
    both("EVAL_RO", "return redis.call('get','a')", "0")
    both("COMMAND", "GETKEYS", "EVAL", "return 1", "2", "a", "b", "x")


def test_functions_as_redis(side_by_side):
    both = side_by_side.both
    both("FUNCTION", "FLUSH")
    both("FUNCTION", "LOAD", LIB)
    both("FUNCTION", "LOAD", LIB)
    both("FUNCTION", "LOAD", "REPLACE", LIB)
    both("FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('echo', function() return 1 end)")
    for code in [
        "return 1", "#!lua\nreturn 1", "#!js name=x\nreturn 1", "#!lua name=x foo=bar\nreturn 1",
        "#!lua name=bad-name!\nreturn 1", "#!lua name=x\nreturn 1",
        "#!lua name=x\nredis.register_function('a!', function() end)",
        "#!lua name=x\nredis.register_function('a', function() end, 5)",
        "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, flags={'bogus'}}",
        "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, foo=1}",
        "#!lua name=x\nredis.register_function{callback=function() end}",
        "#!lua name=x\nredis.register_function('x')",
        "#!lua name=x\nredis.call('ping')", "#!lua name=x\n+", "#!lua name=x\nerror('x')",
        "#!lua name=x\nredis.register_function('a', function() end)\nredis.register_function('a', function() end)",
    ]:
        both("FUNCTION", "LOAD", code)
    both("FCALL", "echo", "0", "hello")
    both("FCALL", "nosuch", "0")
    both("FCALL", "echo", "2", "k")
    both("FCALL_RO", "echo", "0", "x")
    both(
        "FUNCTION", "LOAD",
        "#!lua name=ro\nredis.register_function{function_name='ro', callback=function(keys, args) "
        "return redis.call('set', keys[1], 'v') end, flags={'no-writes'}, description='says no'}",
    )
    both("FCALL_RO", "ro", "1", "k")
    both(
        "FUNCTION", "LOAD",
        "#!lua name=bad\nredis.register_function('e', function() error('boom') end)\n"
        "redis.register_function('g', function() return gg end)",
    )
    both("FCALL", "e", "0")
    both("FCALL", "g", "0")
    both("FUNCTION", "LIST", "LIBRARYNAME", "my*", "WITHCODE")
    both("FUNCTION", "LIST", "LIBRARYNAME", "ro")
    both("FUNCTION", "LIST", "LIBRARYNAME")
    both("FUNCTION", "LIST", "bogus")
    both("FUNCTION", "STATS")
    both("FUNCTION", "DELETE", "nosuch")
    both("FUNCTION", "DELETE", "bad")
    both("FUNCTION", "KILL")
    both("FUNCTION", "FLUSH", "bogus")
    both("FUNCTION", "RESTORE", "garbage")
    both("FUNCTION", "RESTORE", "garbage", "bogus")
    side_by_side.each("HELLO", "3")
    both("FUNCTION", "LIST", "LIBRARYNAME", "ro")
    both("FUNCTION", "STATS")
    both("FUNCTION", "FLUSH")


def test_function_dump_restores_across_servers(side_by_side):
    """A payload from redis-server (LZF-compressed strings) restores into
    kvserver, and kvserver's into redis-server."""
    both = side_by_side.both
    both("FUNCTION", "FLUSH")
    side_by_side.redis.call("FUNCTION", "LOAD", LIB)
    theirs = bulk(side_by_side.redis.call("FUNCTION", "DUMP"))
    assert side_by_side.kv.call("FUNCTION", "RESTORE", theirs) == b"+OK\r\n"
    assert side_by_side.kv.call("FCALL", "echo", "0", "hi") == b"$2\r\nhi\r\n"
    both("FUNCTION", "RESTORE", theirs)  # APPEND: the library exists on both
    ours = bulk(side_by_side.kv.call("FUNCTION", "DUMP"))
    both("FUNCTION", "RESTORE", ours, "REPLACE")
    both("FUNCTION", "RESTORE", ours, "FLUSH")
    both("FCALL", "echo", "0", "hi")
    both("FUNCTION", "FLUSH")


def bulk(reply: bytes) -> bytes:
    head, _, rest = reply.partition(b"\r\n")
    assert head.startswith(b"$"), reply
    return rest[: int(head[1:])]


# -- the log -----------------------------------------------------------------------------


def test_the_log_holds_a_scripts_effects_not_the_eval(kv):
    before = kv.log()
    assert kv("EVAL", "redis.call('set','a','1') redis.call('set','b','2') return 1", "0") == 1
    assert _records(kv.log_after_setup(before)) == (
        resp("MULTI") + resp("SET", "a", "1") + resp("SET", "b", "2") + resp("EXEC")
    )
    mark = kv.log()
    kv("EVAL", "return redis.call('get', 'a')", "0")  # a read logs nothing
    kv("EVAL", "redis.call('set','c','3')", "0")
    assert _records(kv.log_after_setup(mark)) == resp("SET", "c", "3")


def _records(logged: bytes) -> bytes:
    """The log's records after the SELECT of the first write, if any."""
    select = resp("SELECT", "0")
    return logged[len(select) :] if logged.startswith(select) else logged


def test_a_failed_log_append_rolls_back_a_scripts_writes(failing_kv):
    failing_kv.aof.failing = True
    reply = failing_kv("EVAL", "redis.call('set','a','1') redis.call('set','b','2') return 1", "0")
    assert reply.message.startswith("MISCONF")
    assert failing_kv("EXISTS", "a", "b") == 0
    reply = failing_kv("FUNCTION", "LOAD", LIB)
    assert reply.message.startswith("MISCONF")
    failing_kv.aof.failing = False
    assert failing_kv("FCALL", "echo", "0", "x").message == "ERR Function not found"


def test_function_changes_are_logged_as_sent(kv):
    before = kv.log()
    kv("FUNCTION", "LOAD", LIB)
    kv("FUNCTION", "DELETE", "mylib")
    kv("FUNCTION", "FLUSH", "ASYNC")
    assert _records(kv.log_after_setup(before)) == (
        resp("FUNCTION", "LOAD", LIB) + resp("FUNCTION", "DELETE", "mylib") + resp("FUNCTION", "FLUSH", "ASYNC")
    )


def test_functions_survive_a_restart_and_a_rewrite(start_server, tmp_path):
    aof = str(tmp_path / "fn.aof")
    server = start_server(aof_path=aof)
    r = redis.Redis(port=server.resp_port, socket_timeout=10)
    r.function_load(LIB)
    r.set("k", "v")
    r.close()
    server.stop()
    server = start_server(aof_path=aof)
    r = redis.Redis(port=server.resp_port, socket_timeout=10)
    assert r.fcall("echo", 0, "back") == b"back"
    r.bgrewriteaof()
    wait_for(lambda: server.server.state.rewriter.rewrites == 1, "the rewrite")
    r.close()
    server.stop()
    with open(aof, "rb") as file:
        assert file.read().startswith(resp("FUNCTION", "LOAD", LIB))
    server = start_server(aof_path=aof)
    r = redis.Redis(port=server.resp_port, socket_timeout=10)
    assert r.fcall("echo", 0, "again") == b"again"
    assert r.get("k") == b"v"
    r.close()


# -- busy scripts ----------------------------------------------------------------------------


def _run_in_thread(port: int, *args) -> tuple[threading.Thread, list]:
    result: list = []

    def run():
        client = RawRespClient(port)
        result.append(client.call(*args))
        client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_a_busy_script_answers_busy_and_script_kill_stops_it(start_server):
    server = start_server(busy_reply_threshold_ms=100)
    port = server.resp_port
    thread, result = _run_in_thread(port, "EVAL", "while true do end", "0")
    other = RawRespClient(port)
    wait_for(lambda: server.server.keyspace.busy_script is not None, "the script to start")
    # Waits out the threshold, then BUSY; SCRIPT KILL gets through.
    assert other.call("PING") == encode_reply(_busy("SCRIPT"))
    assert other.call("FUNCTION", "KILL") == encode_reply(_busy("SCRIPT"))
    assert other.call("SCRIPT", "KILL") == b"+OK\r\n"
    thread.join(10)
    assert result[0].startswith(b"-ERR Script killed by user with SCRIPT KILL... script: ")
    assert other.call("PING") == b"+PONG\r\n"
    assert other.call("SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"
    other.close()


def test_a_busy_function_and_function_kill(start_server):
    server = start_server(busy_reply_threshold_ms=100)
    port = server.resp_port
    other = RawRespClient(port)
    other.call("FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('loop', function() while true do end end)")
    thread, result = _run_in_thread(port, "FCALL", "loop", "0")
    wait_for(lambda: server.server.keyspace.busy_script is not None, "the function to start")
    assert other.call("GET", "x") == encode_reply(_busy("FUNCTION"))
    assert other.call("SCRIPT", "KILL") == encode_reply(_busy("FUNCTION"))
    assert b"running_script" in other.call("FUNCTION", "STATS")
    assert other.call("FUNCTION", "KILL") == b"+OK\r\n"
    thread.join(10)
    assert result[0] == b"-ERR Script killed by user with SCRIPT KILL... script: loop, on @user_function:2.\r\n"
    other.close()


def test_a_script_that_wrote_cannot_be_killed(start_server):
    server = start_server(busy_reply_threshold_ms=50)
    port = server.resp_port
    # Writes, then spins for a fraction of a second (time is frozen inside
    # a script, so it counts instructions rather than reading TIME).
    spin = "redis.call('set','x','1') for i = 1, 3e7 do end return 'done'"
    thread, result = _run_in_thread(port, "EVAL", spin, "0")
    other = RawRespClient(port)
    wait_for(lambda: getattr(server.server.keyspace.busy_script, "wrote", False), "the script to write")
    assert other.call("SCRIPT", "KILL").startswith(b"-UNKILLABLE Sorry the script already executed write commands")
    thread.join(10)
    assert result[0] == b"$4\r\ndone\r\n"
    assert other.call("GET", "x") == b"$1\r\n1\r\n"
    other.close()


def _busy(kind: str):
    from kvserver import errors
    from kvserver.errors import CommandError

    return CommandError(errors.BUSY_FUNCTION if kind == "FUNCTION" else errors.BUSY_SCRIPT)


def test_busy_reply_threshold_in_config(start_server):
    server = start_server()
    r = redis.Redis(port=server.resp_port, socket_timeout=10)
    assert r.config_get("busy-reply-threshold") == {"busy-reply-threshold": "5000"}
    r.config_set("lua-time-limit", 250)
    assert r.config_get("busy-reply-threshold") == {"busy-reply-threshold": "250"}
    assert "number_of_cached_scripts" in r.info("memory")
    r.close()


# -- clients ----------------------------------------------------------------------------------


@pytest.fixture(params=[None, 2], ids=["default-protocol", "resp2"])
def client(request, start_server):
    server = start_server()
    options = {} if request.param is None else {"protocol": request.param}
    connection = redis.Redis(port=server.resp_port, socket_timeout=10, **options)
    yield connection
    connection.close()


def test_redis_py_lock(client):
    lock = client.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    assert not client.lock("resource", timeout=10).acquire(blocking=False)
    assert lock.extend(5)
    assert 10_000 < client.pttl("resource") <= 15_000
    assert lock.reacquire()
    assert client.pttl("resource") <= 10_000
    lock.release()
    assert client.get("resource") is None
    # The lock expired and someone else took it: the scripts see the token.
    assert lock.acquire(blocking=False)
    client.set("resource", "someone else")
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        lock.extend(1)
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        lock.release()
    assert client.get("resource") == b"someone else"


def test_redis_py_scripts(client):
    incr_by = client.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr_by(keys=["n"], args=[5]) == 5
    client.script_flush()  # the next call gets NOSCRIPT and loads the script again
    assert incr_by(keys=["n"], args=[2]) == 7
    assert client.eval("return {KEYS[1], ARGV[1]}", 1, "k", "a") == [b"k", b"a"]
    sha = client.script_load("return 'loaded'")
    assert client.script_exists(sha, "0" * 40) == [True, False]
    assert client.evalsha(sha, 0) == b"loaded"
    with pytest.raises(redis.exceptions.NoScriptError):
        client.evalsha("0" * 40, 0)


def test_redis_py_functions(client):
    assert client.function_load(LIB) in (b"mylib", "mylib")
    assert client.fcall("echo", 0, "hi") == b"hi"
    assert client.fcall_ro is not None
    listed = client.function_list()
    assert len(listed) == 1 and b"echo" in repr(listed).encode()


def test_redis_cli_eval(start_server, tmp_path):
    cli = shutil.which("redis-cli")
    if not cli:
        pytest.skip("redis-cli is not installed: 'apt-get install redis-tools'")
    server = start_server()
    script = tmp_path / "script.lua"
    script.write_text("redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])")
    result = subprocess.run(
        [cli, "-p", str(server.resp_port), "--eval", str(script), "key", ",", "value"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )
    assert result.stdout == "value\n", result
