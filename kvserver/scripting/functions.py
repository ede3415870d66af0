"""Function libraries (Redis 7 FUNCTION LOAD): their registry, and the
payload FUNCTION DUMP and RESTORE exchange.

A library is Lua code whose first line is ``#!lua name=<library>`` and
whose top-level code calls ``redis.register_function``. Rules:

* The registry is server-wide (libraries are not per database) and lives
  on the keyspace's Engine. It changes only under the write lock, and each
  change swaps in new dicts and notes the old ones in the keyspace's undo
  journal, so a failed log append rolls a FUNCTION LOAD back, and readers
  (FUNCTION LIST, FCALL's look-up) see one state or the other, never half.
* The DUMP payload is Redis's: per library the RDB opcode FUNCTION2 (245)
  and the code as an RDB string, then the RDB version (10, Redis 7.0's)
  and a CRC64 (Jones) of all that, little-endian. kvserver writes the code
  uncompressed; redis-server writes long strings LZF-compressed, and both
  read either, so payloads pass between them in both directions.
"""

from __future__ import annotations

import re
import time

from kvserver import errors, rdb
from kvserver.errors import CommandError

KNOWN_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")
_NAME = re.compile(rb"[A-Za-z0-9_]+\Z")

# A library's top-level code registers functions and should return at
# once; one that loops is stopped after this long (Redis's
# LOAD_TIMEOUT_MS), since FUNCTION LOAD holds the write lock.
LOAD_TIMEOUT_S = 0.5
RDB_OPCODE_FUNCTION2 = 245  # rdb.h: a library's code
RDB_VERSION = 10  # Redis 7.0's RDB version: what DUMP writes and the most RESTORE reads


class Function:
    __slots__ = ("name", "callback", "flags", "description", "library")

    def __init__(self, name: str, callback, flags: tuple[str, ...], description: bytes | None, library) -> None:
        self.name = name
        self.callback = callback  # the Lua function
        self.flags = flags
        self.description = description
        self.library = library


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: str, code: bytes) -> None:
        self.name = name
        self.code = code
        self.functions: dict[str, Function] = {}

    def add_function(self, name: bytes, callback, flags: list[bytes], description: bytes | None) -> str | None:
        """redis.register_function's checks; an error text, or None."""
        if not _NAME.match(name):
            return errors.LIBRARY_BAD_NAME  # sic: Redis 7.0 words it so for functions too
        text = name.decode()
        if text in self.functions:
            return errors.FUNCTION_EXISTS_IN_LIBRARY
        chosen = []
        for flag in flags:
            flag = flag.decode("latin-1")
            if flag not in KNOWN_FLAGS:
                return errors.REGISTER_UNKNOWN_FLAG
            chosen.append(flag)
        self.functions[text] = Function(text, callback, tuple(chosen), description, self)
        return None


def parse_shebang(code: bytes) -> str:
    """The library name from the code's ``#!lua name=...`` line; raises
    Redis's errors for a missing or malformed one."""
    if not code.startswith(b"#!"):
        raise CommandError(errors.LIBRARY_MISSING_METADATA)
    line = code.split(b"\n", 1)[0][2:].decode("latin-1")
    parts = line.split(" ")
    engine = parts[0]
    if engine.lower() != "lua":
        raise errors.engine_not_found(engine)
    name = None
    for part in parts[1:]:
        if not part:
            continue
        if part.startswith("name="):
            name = part[5:]
        else:
            raise errors.invalid_metadata(part)
    if name is None:
        raise CommandError(errors.LIBRARY_NO_NAME)
    if not _NAME.match(name.encode("latin-1")):
        raise CommandError(errors.LIBRARY_BAD_NAME)
    return name


class Libraries:
    """The libraries and their functions (see the module docstring)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.libraries: dict[str, Library] = {}
        self.functions: dict[str, Function] = {}

    def compile(self, code: bytes) -> Library:
        """Run a library's top-level code (engine lock held); the library
        with the functions it registered, not yet installed."""
        name = parse_shebang(code)
        state = self.engine.function_state
        try:
            chunk = state.compile(b"--" + code, b"@user_function")  # "--": the shebang is not Lua
        except Exception as exc:
            raise errors.script_compile_error(str(exc), function=True) from None
        library = Library(name, code)
        state.registering = library
        state.load_deadline = time.monotonic() + LOAD_TIMEOUT_S
        try:
            ok, result = state.entry.load_library(chunk)
        finally:
            state.registering = None
        if not ok:
            raise errors.registering_failed(result[1].decode("utf-8", "replace"))
        if not library.functions:
            raise CommandError(errors.NO_FUNCTIONS_REGISTERED)
        return library

    def load(self, code: bytes, replace: bool) -> str:
        """FUNCTION LOAD (write lock held): the new library's name."""
        name = parse_shebang(code)
        if name in self.libraries and not replace:
            raise errors.library_exists(name)
        with self.engine.lock:
            library = self.compile(code)
        self._install([library], replace=True)
        return library.name

    def _install(self, new: list[Library], *, replace: bool, flush: bool = False) -> None:
        libraries = {} if flush else dict(self.libraries)
        for library in new:
            if library.name in libraries and not replace:
                raise errors.library_exists_restoring(library.name)
            libraries[library.name] = library
        functions: dict[str, Function] = {}
        for library in libraries.values():
            for fname, function in library.functions.items():
                if fname in functions:
                    raise errors.function_exists(fname)
                functions[fname] = function
        self._swap(libraries, functions)

    def delete(self, name: str) -> None:
        if name not in self.libraries:
            raise CommandError(errors.LIBRARY_NOT_FOUND)
        libraries = {k: v for k, v in self.libraries.items() if k != name}
        functions = {k: v for k, v in self.functions.items() if v.library.name != name}
        self._swap(libraries, functions)

    def flush(self) -> None:
        self._swap({}, {})

    def _swap(self, libraries: dict, functions: dict) -> None:
        journal = self.engine.keyspace.journal
        if journal is not None:
            old = (self.libraries, self.functions)
            journal.append(lambda: self._set(*old))
        self._set(libraries, functions)

    def _set(self, libraries: dict, functions: dict) -> None:
        self.libraries, self.functions = libraries, functions

    def code_bytes(self) -> int:
        return sum(len(library.code) for library in self.libraries.values())

    # -- DUMP / RESTORE -------------------------------------------------------------

    def dump(self) -> bytes:
        body = b"".join(bytes([RDB_OPCODE_FUNCTION2]) + rdb.encode_string(lib.code) for lib in self.libraries.values())
        body += RDB_VERSION.to_bytes(2, "little")
        return body + rdb.crc64(body).to_bytes(8, "little")

    def restore(self, payload: bytes, policy: str) -> None:
        """FUNCTION RESTORE (write lock held)."""
        codes = read_payload(payload)
        with self.engine.lock:
            new = [self.compile(code) for code in codes]
        if policy == "FLUSH":
            self._install(new, replace=True, flush=True)
        else:
            self._install(new, replace=policy == "REPLACE")


def read_payload(payload: bytes) -> list[bytes]:
    """The library codes in a DUMP payload; raises Redis's errors."""
    if len(payload) < 10:
        raise CommandError(errors.FUNCTION_RESTORE_BAD_PAYLOAD)
    body, trailer = payload[:-8], payload[-8:]
    version = int.from_bytes(body[-2:], "little")
    if version > RDB_VERSION or rdb.crc64(body) != int.from_bytes(trailer, "little"):
        raise CommandError(errors.FUNCTION_RESTORE_BAD_PAYLOAD)
    reader = rdb.Reader(body, 0, len(body) - 2)
    codes = []
    while reader.pos < reader.end:
        if reader.byte() != RDB_OPCODE_FUNCTION2:
            raise CommandError(errors.FUNCTION_RESTORE_FOREIGN)
        try:
            codes.append(reader.string())
        except rdb.RdbError:
            raise CommandError(errors.FUNCTION_RESTORE_BAD_PAYLOAD) from None
    return codes
