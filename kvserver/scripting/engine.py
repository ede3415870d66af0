"""The Lua states that run EVAL scripts and FUNCTION libraries.

One ``Engine`` per keyspace (``engine_for``), holding two Lua 5.1 states as
Redis does: one for EVAL scripts and their cache (sha1 -> compiled
function), one for function libraries. Rules it keeps:

* Lua runs only with ``Engine.lock`` held: a Lua state is not thread safe.
  Scripts run inside ``Dispatcher.run_atomic`` (write lock first, then this
  lock, always in that order), so a script is atomic and its commands'
  effects are logged, never the script.
* The sandbox is Redis 7.0.15's: the globals are a read-only table
  (``Attempt to modify a readonly table``), reading a missing global is an
  error, and there is no os, io, debug, require, loadfile or dofile.
  ``loadstring`` stays, its chunks getting the sandbox as their globals.
* ``redis.call`` raises a command's error, ``redis.pcall`` returns it as
  ``{err=...}``; an error that leaves the script is answered as Redis
  words it: ``<error> script: <sha or function>, on @user_script:<line>.``
* While a script runs, ``keyspace.busy_script`` holds its ``Busy``: the
  dispatcher answers other clients BUSY once it has run past
  busy-reply-threshold, and SCRIPT KILL / FUNCTION KILL set its ``killed``
  flag. A Lua count hook (every HOOK_INSTRUCTIONS instructions) calls back
  into Python to look at that flag; lupa lets go of the GIL while Lua runs,
  so the other threads carry on meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

import lupa.lua51 as lua51

from kvserver import errors
from kvserver.commands.containers import CONTAINERS
from kvserver.commands.registry import COMMANDS
from kvserver.errors import CommandError
from kvserver.scripting import libs
from kvserver.scripting.convert import from_lua, to_lua

log = logging.getLogger("kvserver.script")

# Redis's count hook period (script_lua.c, LUA_MASKCOUNT 100000): often
# enough that a kill lands within a millisecond or so, rarely enough that
# the call back into Python costs nothing measurable.
HOOK_INSTRUCTIONS = 100_000
# What a cached script costs beyond its text (dict entry, sha1 key, the
# compiled function): an estimate for INFO, as Redis's own figure is.
SCRIPT_OVERHEAD_BYTES = 64
REDIS_VERSION = "7.0.15"  # state.REDIS_VERSION, which redis.REDIS_VERSION reports
REDIS_VERSION_NUM = 0x07000F
LOG_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.INFO, 3: logging.WARNING}

# Lua's own functions a script may use (Redis 7.0's list, less what it hides).
_SAFE_GLOBALS = (
    "assert error ipairs next pairs pcall rawequal rawget select tonumber tostring type unpack "
    "xpcall gcinfo collectgarbage getmetatable _VERSION"
).split()

# The sandbox and the runner, in Lua. Run once per state with the Python
# helpers as its argument; returns the entry points. The functions scripts
# call (redis.*, cjson.*, bit.*) are the Python callables themselves: Lua
# calls them as C functions, so a tail call (``return redis.call(...)``)
# keeps the script's frame and the error handler can name its line. They
# raise ``LuaRaise``; the handler (and the pcall wrapper) turn that into
# Redis's error text. This chunk's name "=kvserver" lets the handler skip
# its frames when it looks for the script line to blame.
_BOOT = r"""
local py, safe_names = ...
local debug_getinfo, sethook = debug.getinfo, debug.sethook
local type, error, tostring, select, pairs, ipairs = type, error, tostring, select, pairs, ipairs
local setmetatable, rawset, rawget, unpack, format = setmetatable, rawset, rawget, unpack, string.format
local loadstring, setfenv, xpcall, pcall = loadstring, setfenv, xpcall, pcall
local raised = py.raised

local readonly = setmetatable({}, {__mode = 'k'})
local function ro_newindex() error(py.READONLY, 2) end
local function protect(t)
  local view = setmetatable({}, {__index = t, __newindex = ro_newindex})
  readonly[view] = true
  return view
end
local function copy(from)
  local t = {}
  for k, v in pairs(from) do t[k] = v end
  return t
end

local env = {}
for _, name in ipairs(safe_names) do env[name] = _G[name] end
env.string, env.table = protect(string), protect(table)
env.math, env.coroutine = protect(math), protect(coroutine)
env.setmetatable = function(t, mt)
  if readonly[t] then error(py.READONLY, 0) end
  return setmetatable(t, mt)
end
env.rawset = function(t, k, v)
  if readonly[t] then error(py.READONLY, 0) end
  return rawset(t, k, v)
end
-- pcall and xpcall hand a script the text of an error raised in Python,
-- as Redis hands it the string.
local function fix(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'userdata' then
    local text, positional = raised(e)
    if text then e = text end
  end
  return ok, e
end
env.pcall = function(f, ...) return fix(pcall(f, ...)) end
env.xpcall = function(f, h)
  return xpcall(f, function(e)
    if type(e) == 'userdata' then
      local text = raised(e)
      if text then e = text end
    end
    return h(e)
  end)
end

local current = env  -- what a global name means now (functions: load time or run time)
local G = setmetatable({}, {
  __index = function(_, k)
    local v = current[k]
    if v == nil then error(format(py.NO_GLOBAL, tostring(k)), 2) end
    return v
  end,
  __newindex = ro_newindex,
})
readonly[G] = true
env._G = G
env.loadstring = function(s, name)
  local f, e = loadstring(s, name)
  if f then setfenv(f, G) end
  return f, e
end

env.bit = protect(copy(py.bit))
local cjson = copy(py.cjson)
cjson.null = py.null
env.cjson = protect(cjson)

local redis = copy(py.redis)
redis.error_reply = function(s)
  if type(s) ~= 'string' then return {err = py.WRONG_ARGS} end
  return {err = s}
end
redis.status_reply = function(s)
  if type(s) ~= 'string' then return {ok = s} end
  return {ok = s}
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
env.redis = protect(redis)

-- Functions: what a library's top-level code sees while it loads.
-- Its redis table is strict, as Redis's: redis.call is "nonexistent" there.
local load_redis = copy(py.load_redis)
local strict_redis = setmetatable({}, {
  __index = function(_, k)
    local v = load_redis[k]
    if v == nil then error(format(py.NO_GLOBAL, tostring(k)), 2) end
    return v
  end,
  __newindex = ro_newindex,
})
readonly[strict_redis] = true
local load_env = {redis = strict_redis}

local killed = false
local function hook()
  if killed or py.tick() then
    killed = true
    sethook(hook, '', 1)  -- a pcall in the script cannot swallow the kill
    error(py.KILLED_RAISE, 0)
  end
end

local function handler(err)
  sethook()
  local level, info = 2, nil
  repeat
    info = debug_getinfo(level, 'Sl')
    level = level + 1
  until not info or (info.what ~= 'C' and info.source ~= '=kvserver')
  local msg
  if err == py.KILLED_RAISE then
    msg = py.KILLED
  elseif type(err) == 'userdata' then
    local text, positional = raised(err)
    if text and positional and info then
      msg = 'ERR ' .. info.short_src .. ':' .. info.currentline .. ': ' .. text
    elseif text then
      msg = positional and ('ERR ' .. text) or text
    else
      msg = 'ERR ' .. tostring(err)
    end
  elseif type(err) == 'table' and type(rawget(err, 'err')) == 'string' then
    msg = rawget(err, 'err')
  else
    msg = 'ERR ' .. tostring(err)
  end
  if info then return {msg, info.source, info.currentline} end
  return {msg}
end

local function run(fn, ...)
  local args = {...}
  local n = select('#', ...)
  killed = false
  sethook(hook, '', py.HOOK_COUNT)
  local ok, result = xpcall(function() return fn(unpack(args, 1, n)) end, handler)
  sethook()
  return ok, result
end

local entry = {}
function entry.compile(code, chunkname)
  local f, e = loadstring(code, chunkname)
  if not f then return nil, e end
  setfenv(f, G)
  return f
end
function entry.run_script(fn, keys, argv)
  rawset(env, 'KEYS', keys)
  rawset(env, 'ARGV', argv)
  return run(fn)
end
function entry.run_function(fn, keys, args)
  return run(fn, keys, args)
end
function entry.load_library(fn)
  current = load_env
  local ok, result = run(fn)
  current = env
  return ok, result
end
function entry.memory()
  return collectgarbage('count') * 1024
end
return entry
"""


class LuaRaise(Exception):
    """An error a Python function called from Lua raises into the script.
    ``positional``: Lua words it with the script's line in front
    (``user_script:1: ...``), as the C libraries' errors are; otherwise it
    is a Redis error text as is (``ERR Unknown Redis command ...``)."""

    def __init__(self, text: str | bytes, positional: bool = False) -> None:
        super().__init__(text)
        self.text = text.encode() if isinstance(text, str) else text
        self.positional = positional


def _raised(error) -> tuple:
    if isinstance(error, LuaRaise):
        return error.text, error.positional
    return None, None


class Busy:
    """The script running now (``keyspace.busy_script``): when it started,
    what it is, whether it has written (then it cannot be killed) and
    whether SCRIPT KILL / FUNCTION KILL asked it to stop."""

    __slots__ = ("started", "kind", "name", "argv", "wrote", "killed")

    def __init__(self, kind: str, name: str, argv: list[bytes]) -> None:
        self.started = time.monotonic()
        self.kind = kind  # "script" (EVAL) or "function" (FCALL)
        self.name = name  # sha1 or function name
        self.argv = argv  # the command that runs it, for FUNCTION STATS
        self.wrote = False
        self.killed = False

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000


class _Run:
    """One script or function call: what ``redis.call`` needs to know."""

    __slots__ = ("call", "readonly", "resp", "busy", "allow_oom", "session")

    def __init__(self, session, call, readonly: bool, busy: Busy | None, allow_oom: bool = False) -> None:
        self.session = session
        self.call = call  # run_atomic's: one command of the atomic unit
        self.readonly = readonly
        self.resp = 2  # redis.setresp changes it
        self.busy = busy
        self.allow_oom = allow_oom


class LuaState:
    """One sandboxed Lua state and its entry points (see _BOOT)."""

    def __init__(self, keyspace) -> None:
        self.keyspace = keyspace
        self.runtime = lua51.LuaRuntime(
            encoding=None, register_eval=False, register_builtins=False, unpack_returned_tuples=True
        )
        self.run: _Run | None = None
        self.registering = None  # the Library being loaded (functions.py)
        self.load_deadline = 0.0
        rt = self.runtime
        null = rt.eval("newproxy(false)")  # cjson.null: a value equal only to itself
        cjson = libs.Cjson(rt, null)
        table = self._table
        redis = {
            "call": self._call,
            "pcall": self._pcall,
            "sha1hex": _sha1hex,
            "log": _log,
            "setresp": self._setresp,
            "set_repl": _set_repl,
            "REDIS_VERSION": REDIS_VERSION.encode(),
            "REDIS_VERSION_NUM": REDIS_VERSION_NUM,
            **_LOG_CONSTANTS,
            "REPL_NONE": 0,
            "REPL_AOF": 1,
            "REPL_SLAVE": 2,
            "REPL_REPLICA": 2,
            "REPL_ALL": 3,
        }
        load_redis = {
            "register_function": self._register_function,
            "log": _log,
            "setresp": self._setresp,
            "REDIS_VERSION": REDIS_VERSION.encode(),
            "REDIS_VERSION_NUM": REDIS_VERSION_NUM,
            **_LOG_CONSTANTS,
        }
        helpers = {
            "raised": _raised,
            "null": null,
            "cjson": table({"encode": _positional(cjson.encode), "decode": _positional(cjson.decode)}),
            "bit": table({name: _positional(f) for name, f in libs.BIT_FUNCTIONS.items()}),
            "redis": table(redis),
            "load_redis": table(load_redis),
            "tick": self._tick,
            "HOOK_COUNT": HOOK_INSTRUCTIONS,
            "READONLY": errors.LUA_READONLY_TABLE.encode(),
            "NO_GLOBAL": errors.LUA_NO_GLOBAL.encode(),
            "WRONG_ARGS": errors.SCRIPT_WRONG_ARGS.encode(),
            "KILLED": errors.SCRIPT_KILLED.encode(),
            "KILLED_RAISE": b"\x00kvserver: killed\x00",
        }
        loader = rt.globals()[b"loadstring"]
        chunk = loader(_BOOT.encode(), b"=kvserver")
        if isinstance(chunk, tuple):  # (nil, message): a bug in _BOOT
            raise RuntimeError(chunk[1])
        self.entry = chunk(table(helpers), rt.table_from([n.encode() for n in _SAFE_GLOBALS]))

    def _table(self, items: dict):
        return self.runtime.table_from({name.encode(): value for name, value in items.items()})

    # -- called from Lua ---------------------------------------------------------

    def _call(self, *args):
        ok, value = self._command(args)
        if not ok:
            raise LuaRaise(value)
        return value

    def _pcall(self, *args):
        ok, value = self._command(args)
        if not ok:
            return self.runtime.table_from({b"err": value})
        return value

    def _command(self, args: tuple) -> tuple[bool, object]:
        """Run one command for redis.call / redis.pcall: (True, Lua value)
        or (False, error text)."""
        run = self.run
        if not args:
            return False, errors.SCRIPT_NO_ARGS.encode()
        argv = []
        for arg in args:
            kind = type(arg)
            if kind is bytes:
                argv.append(arg)
            elif kind is int or kind is float:
                # Lua's own tostring would lose digits: Redis prints %.17g.
                argv.append(b"%.17g" % arg)
            else:
                return False, errors.SCRIPT_BAD_ARG.encode()
        if run is None:  # a callback kept past its script: nothing to run it in
            return False, errors.SCRIPT_UNKNOWN_COMMAND.encode()
        cmd = COMMANDS.get(argv[0].upper())
        if cmd is None:
            return False, errors.SCRIPT_UNKNOWN_COMMAND.encode()
        if not cmd.arity_ok(len(argv)):
            return False, errors.SCRIPT_WRONG_ARITY.encode()
        flags = cmd.flags
        container = CONTAINERS.get(cmd.name)
        if container is not None and len(argv) > 1:
            sub = container.subcommands.get(argv[1].upper())
            if sub is not None:
                flags = flags + sub.flags
        if "noscript" in flags:
            return False, errors.SCRIPT_NOSCRIPT_COMMAND.encode()
        # A write flagged "readonly" (PFCOUNT, registry.py) is one to Redis.
        if (cmd.write and "readonly" not in flags) or "write" in flags:
            if run.readonly:
                return False, errors.SCRIPT_READONLY_WRITE.encode()
            dispatcher = run.session.dispatcher
            if (
                not run.allow_oom
                and "denyoom" in flags
                and getattr(dispatcher, "maxmemory", 0)
                and self.keyspace.used_bytes > dispatcher.maxmemory
            ):
                return False, errors.OOM.encode()
            if run.busy is not None:
                run.busy.wrote = True
        reply = run.call(argv)
        if type(reply) is CommandError:
            return False, reply.message.encode()
        return True, to_lua(self.runtime, reply, run.resp)

    def _setresp(self, *args) -> None:
        if len(args) != 1:
            raise LuaRaise(errors.SCRIPT_SETRESP_ARGS)
        if args[0] not in (2, 3) or type(args[0]) is bool:
            raise LuaRaise(errors.SCRIPT_SETRESP_VERSION)
        if self.run is not None:
            self.run.resp = int(args[0])

    def _tick(self) -> bool:
        """The count hook's question: stop now?"""
        if self.registering is not None:
            return time.monotonic() > self.load_deadline
        busy = self.keyspace.busy_script
        return busy is not None and busy.killed

    def _register_function(self, *args):
        """redis.register_function(name, callback) or ({function_name=...,
        callback=..., flags={...}, description=...}), at load time."""
        library = self.registering
        if library is None:
            raise LuaRaise(errors.REGISTER_ARGS)
        flags: list = []
        description = None
        if len(args) == 1:
            named = args[0]
            if lua51.lua_type(named) != "table":
                raise LuaRaise(errors.REGISTER_SINGLE_ARG)
            name = callback = None
            for key, value in named.items():
                if key == b"function_name":
                    name = value
                elif key == b"callback":
                    callback = value
                elif key == b"flags":
                    if lua51.lua_type(value) != "table":
                        raise LuaRaise(errors.REGISTER_UNKNOWN_FLAG)
                    flags = list(value.values())
                elif key == b"description":
                    description = value
                else:
                    raise LuaRaise(errors.REGISTER_UNKNOWN_ARG)
            if name is None:
                raise LuaRaise(errors.REGISTER_NO_NAME)
            if callback is None:
                raise LuaRaise(errors.REGISTER_NO_CALLBACK)
        elif len(args) == 2:
            name, callback = args
        else:
            raise LuaRaise(errors.REGISTER_ARGS)
        if type(name) in (int, float) and type(name) is not bool:
            name = b"%.14g" % name  # lua_tostring's form of a number
        if type(name) is not bytes:
            raise LuaRaise(errors.REGISTER_NO_NAME)
        if lua51.lua_type(callback) != "function":
            raise LuaRaise(errors.REGISTER_NO_CALLBACK)
        if any(type(flag) is not bytes for flag in flags):
            raise LuaRaise(errors.REGISTER_UNKNOWN_FLAG)
        if description is not None and type(description) is not bytes:
            raise LuaRaise(errors.REGISTER_UNKNOWN_ARG)
        problem = library.add_function(name, callback, flags, description)
        if problem:
            raise LuaRaise(problem)

    # -- used by the engine --------------------------------------------------------

    def compile(self, code: bytes, chunkname: bytes):
        """The compiled chunk, or raises with Lua's message as its text."""
        compiled = self.entry.compile(code, chunkname)
        if isinstance(compiled, tuple):  # (nil, Lua's message)
            raise _CompileError(compiled[1].decode("utf-8", "replace"))
        return compiled

    def table(self, items: list[bytes]):
        return self.runtime.table_from(items)

    def memory(self) -> int:
        return int(self.entry.memory())


_LOG_CONSTANTS = {"LOG_DEBUG": 0, "LOG_VERBOSE": 1, "LOG_NOTICE": 2, "LOG_WARNING": 3}


def _positional(func):
    """A libs.py function as Lua calls it: its FAIL result raised as an
    error with the script's line in front."""

    def run(*args):
        result = func(*args)
        if type(result) is tuple and result and result[0] == libs.FAIL:
            raise LuaRaise(result[1], positional=True)
        return result

    return run


def _sha1hex(*args) -> bytes:
    if len(args) != 1:
        raise LuaRaise(errors.SCRIPT_SHA1HEX_ARGS)
    text = args[0]
    if type(text) in (int, float) and type(text) is not bool:
        text = b"%.14g" % text
    if type(text) is not bytes:
        text = b""
    return hashlib.sha1(text).hexdigest().encode()


def _log(*args) -> None:
    if len(args) < 2:
        raise LuaRaise(errors.SCRIPT_LOG_ARGS)
    level = args[0]
    if type(level) not in (int, float) or type(level) is bool or level not in LOG_LEVELS:
        raise LuaRaise(errors.SCRIPT_LOG_LEVEL)
    parts = []
    for part in args[1:]:
        if type(part) is bytes:
            parts.append(part)
        elif type(part) in (int, float) and type(part) is not bool:
            parts.append(b"%.14g" % part)
    log.log(LOG_LEVELS[int(level)], "%s", b" ".join(parts).decode("utf-8", "replace"))


def _set_repl(*args) -> None:
    if len(args) != 1:
        raise LuaRaise("ERR redis.set_repl() requires one argument.")
    if args[0] not in (0, 1, 2, 3) or type(args[0]) is bool:
        raise LuaRaise(errors.SCRIPT_REPL_FLAGS)


class _CompileError(Exception):
    pass


def script_error(result, name: str) -> CommandError:
    """The reply for an error that left a script (the handler's table)."""
    message = result[1].decode("utf-8", "replace")
    source = result[2]
    if source is None:
        return CommandError(message)
    where = source.decode("utf-8", "replace")
    return CommandError(f"{message} script: {name}, on {where}:{result[3]}.")


class Engine:
    """Scripts and libraries of one keyspace (see the module docstring)."""

    def __init__(self, keyspace) -> None:
        self.keyspace = keyspace
        self.lock = threading.RLock()  # guards both Lua states (see module docstring)
        self.eval_state = LuaState(keyspace)
        self.function_state = LuaState(keyspace)
        self.scripts: dict[bytes, tuple[bytes, object]] = {}  # sha1 hex -> (body, function)
        self._vm_bytes = (0, 0)  # the Lua states' sizes when INFO last could look
        # Imported here: functions.py builds on this module.
        from kvserver.scripting.functions import Libraries

        self.libraries = Libraries(self)

    # -- EVAL ----------------------------------------------------------------------

    def load_script(self, body: bytes) -> bytes:
        """Compile and cache ``body``; its sha1 (SCRIPT LOAD, and EVAL first)."""
        sha = hashlib.sha1(body).hexdigest().encode()
        with self.lock:
            if sha not in self.scripts:
                code = body
                if body.startswith(b"#!"):
                    code = b"--" + body  # the shebang line (flags) is not Lua
                try:
                    fn = self.eval_state.compile(code, b"@user_script")
                except _CompileError as exc:
                    raise errors.script_compile_error(str(exc)) from None
                self.scripts[sha] = (body, fn)
        return sha

    def script_flags(self, sha: bytes) -> set[str] | None:
        """The flags a script's ``#!lua flags=...`` line gives (Redis 7);
        None for a script with no such line (it may write, even from EVAL_RO)."""
        body = self.scripts[sha][0]
        if not body.startswith(b"#!lua"):
            return None
        line = body.split(b"\n", 1)[0].decode("latin-1")
        for part in line.split()[1:]:
            if part.startswith("flags="):
                return set(filter(None, part[6:].split(",")))
        return set()

    def run_script(self, session, call, sha: bytes, keys: list[bytes], argv: list[bytes], readonly: bool):
        """Run a cached script as part of the atomic unit ``call`` belongs
        to; returns its reply value."""
        fn = self.scripts[sha][1]
        flags = self.script_flags(sha) or set()
        readonly = readonly or "no-writes" in flags
        state = self.eval_state
        name = sha.decode()
        return self._run(
            session, call, state, Busy("script", name, []), name, readonly, "allow-oom" in flags,
            lambda: state.entry.run_script(fn, state.table(keys), state.table(argv)),
        )

    def run_function(self, session, call, function, keys, args, readonly: bool, argv: list[bytes]):
        state = self.function_state
        return self._run(
            session, call, state, Busy("function", function.name, argv), function.name,
            readonly or "no-writes" in function.flags, "allow-oom" in function.flags,
            lambda: state.entry.run_function(function.callback, state.table(keys), state.table(args)),
        )

    def _run(self, session, call, state, busy, name, readonly, allow_oom, start):
        keyspace = self.keyspace
        db = session.db
        with self.lock:
            run = state.run = _Run(session, call, readonly, busy, allow_oom)
            keyspace.busy_script = busy
            try:
                ok, result = start()
            finally:
                keyspace.busy_script = None
                state.run = None
                session.db = db  # a SELECT inside the script is the script's alone
            if not ok:
                return script_error(result, name)
            return from_lua(result, run.resp)

    def flush_scripts(self) -> None:
        with self.lock:
            self.scripts = {}

    def memory(self) -> dict[str, int]:
        """INFO memory's script figures. The Lua states' sizes need the
        engine lock; while a script holds it, the last figures are shown
        rather than making INFO wait."""
        if self.lock.acquire(blocking=False):
            try:
                self._vm_bytes = (self.eval_state.memory(), self.function_state.memory())
            finally:
                self.lock.release()
        lua, functions = self._vm_bytes
        scripts = sum(len(body) + SCRIPT_OVERHEAD_BYTES for body, _ in self.scripts.values())
        libraries = self.libraries
        function_bytes = libraries.code_bytes()
        return {
            "used_memory_lua": lua,
            "used_memory_lua_human": lua,
            "used_memory_scripts_eval": scripts,
            "number_of_cached_scripts": len(self.scripts),
            "number_of_functions": len(libraries.functions),
            "used_memory_vm_functions": functions,
            "used_memory_functions": function_bytes,
            "used_memory_scripts": scripts + function_bytes,
            "used_memory_scripts_human": scripts + function_bytes,
        }


def memory_figures(keyspace) -> dict[str, int]:
    """INFO memory's script lines; zeros, without starting Lua, on a
    server that has run no script."""
    engine = keyspace.scripting
    if engine is not None:
        return engine.memory()
    return dict.fromkeys(_MEMORY_FIELDS, 0)


_MEMORY_FIELDS = (
    "used_memory_lua used_memory_lua_human used_memory_scripts_eval number_of_cached_scripts "
    "number_of_functions used_memory_vm_functions used_memory_functions used_memory_scripts "
    "used_memory_scripts_human"
).split()

_ENGINE_LOCK = threading.Lock()  # makes the first engine_for of a keyspace create one engine


def engine_for(keyspace) -> Engine:
    """The keyspace's engine, created on first use (a server that never
    runs a script never starts Lua)."""
    engine = keyspace.scripting
    if engine is None:
        with _ENGINE_LOCK:
            engine = keyspace.scripting
            if engine is None:
                engine = keyspace.scripting = Engine(keyspace)
    return engine
