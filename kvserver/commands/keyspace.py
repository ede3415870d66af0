"""Commands on keys whatever their value: DEL/UNLINK, EXISTS, TYPE, the
EXPIRE family, TTL and friends, PERSIST, KEYS, SCAN, RANDOMKEY, RENAME,
COPY, MOVE, and the whole-database commands DBSIZE, FLUSHDB, FLUSHALL,
SWAPDB. Redis 7.0's replies and errors, checked side by side with
redis-server (tests/test_commands_keyspace.py).

Rules this module keeps:

* A key past its deadline is missing for every command (``db.lookup``).
  DBSIZE alone counts what is stored, expired keys nobody has reclaimed
  yet included, as Redis's DBSIZE does.
* Changes go through ``Database`` methods only, in whichever database they
  land (COPY ... DB, MOVE, SWAPDB, FLUSHALL), so a write whose log append
  fails is undone everywhere.
* What is logged: DEL and UNLINK as one DEL per removed key; an expiry as
  PEXPIREAT with the absolute deadline (DEL if already reached); PERSIST,
  RENAME, RENAMENX, COPY, MOVE, SWAPDB as issued, FLUSHDB and FLUSHALL bare,
  each only when it changed something.
* Replay (``session.loading``) runs those records again. A record was
  logged because its conditions held live (RENAMENX's and MOVE's target
  free, COPY's target free or REPLACE), so replay does not test them
  again: a key the live server had already found expired there may still
  be stored in the replayed keyspace, and must simply be replaced. If a
  record's source key is missing (a replay on a real clock, after its
  deadline), the copy it made would be expired too: replay removes the
  target and goes on, rather than refusing to start.
"""

from __future__ import annotations

import random

from kvserver import errors
from kvserver.commands.glob import compile_pattern
from kvserver.commands.parsing import INT64_MAX, INT64_MIN, parse_int, parse_int32
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import GENERIC, notify, notify_db
from kvserver.protocol import OK, Status
from kvserver.session import Session
from kvserver.store import SCAN_BUCKETS, Database
from kvserver.values import duplicate, type_name

DEFAULT_SCAN_COUNT = 10  # Redis's default COUNT
ULONG_MAX = 2**64 - 1  # SCAN's cursor is a C unsigned long
# RANDOMKEY picks among all keys directly up to this many (a list this long
# is cheap to build); past it, it picks a random SCAN bucket instead.
RANDOMKEY_LIST_MAX = 1024

# Flags given to @command below are Redis 7.0's COMMAND INFO flags beyond
# "write" and "readonly" (which the registry infers where there are keys).

# TYPE and SCAN TYPE name a value by values.type_name; COPY's new key
# shares nothing changeable with its source (values.duplicate).


# -- removing keys -----------------------------------------------------------------


@command("del", -2, write=True, keys=(1, -1, 1))
def del_(session: Session, args: list[bytes]) -> object:
    """DEL key [key ...]

    Remove the keys; the number that existed.
    """
    return _delete(session, args)


@command("unlink", -2, write=True, keys=(1, -1, 1), flags=("fast",))
def unlink(session: Session, args: list[bytes]) -> object:
    """UNLINK key [key ...]

    DEL (Redis frees the values in the background; here there is nothing to
    gain from that). Logged as DEL.
    """
    return _delete(session, args)


def _delete(session: Session, keys: list[bytes]) -> int:
    removed = 0
    for key in keys:
        if session.db.lookup(key, session.now) is not None and session.db.delete(key):
            session.log(b"DEL", key)
            notify(session, GENERIC, b"del", key)
            removed += 1
    return removed


# -- reading keys ------------------------------------------------------------------


@command("exists", -2, keys=(1, -1, 1), flags=("fast",))
def exists(session: Session, args: list[bytes]) -> object:
    """EXISTS key [key ...]

    How many of the keys exist; a key named twice counts twice.
    """
    db, now = session.db, session.now
    return sum(1 for key in args if db.lookup(key, now) is not None)


@command("type", 2, keys=(1, 1, 1), flags=("fast",))
def type_(session: Session, args: list[bytes]) -> object:
    """TYPE key

    The type of the key's value ("string"), or "none" if it is missing.
    """
    value = session.db.lookup(args[0], session.now)
    return Status("none" if value is None else type_name(value))


# -- expiry ------------------------------------------------------------------------


@command("expire", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def expire(session: Session, args: list[bytes]) -> object:
    """EXPIRE key seconds [NX | XX | GT | LT]

    Set a TTL in seconds. 1 if set (a TTL of zero or less deletes the key),
    0 if the key is missing or a condition was not met.
    """
    return _expire(session, args, "expire", base_ms=session.now, unit_ms=1000)


@command("pexpire", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def pexpire(session: Session, args: list[bytes]) -> object:
    """PEXPIRE key milliseconds [NX | XX | GT | LT]"""
    return _expire(session, args, "pexpire", base_ms=session.now, unit_ms=1)


@command("expireat", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def expireat(session: Session, args: list[bytes]) -> object:
    """EXPIREAT key unix-time-seconds [NX | XX | GT | LT]"""
    return _expire(session, args, "expireat", base_ms=0, unit_ms=1000)


@command("pexpireat", -3, write=True, keys=(1, 1, 1), flags=("fast",))
def pexpireat(session: Session, args: list[bytes]) -> object:
    """PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]

    The form every TTL is logged in: an absolute deadline.
    """
    return _expire(session, args, "pexpireat", base_ms=0, unit_ms=1)


def _expire(session: Session, args: list[bytes], name: str, base_ms: int, unit_ms: int) -> object:
    # Redis's expireGenericCommand, step for step: options, then the number,
    # then overflow checks, then the key.
    key, amount, options = args[0], args[1], args[2:]
    nx = xx = gt = lt = False
    for option in options:
        word = option.upper()
        if word == b"NX":
            nx = True
        elif word == b"XX":
            xx = True
        elif word == b"GT":
            gt = True
        elif word == b"LT":
            lt = True
        else:
            raise CommandError(errors.unsupported_option(option))
    if nx and (xx or gt or lt):
        raise CommandError(errors.EXPIRE_NX_CONFLICT)
    if gt and lt:
        raise CommandError(errors.EXPIRE_GT_LT_CONFLICT)
    when = parse_int(amount)
    # The product must fit in 64 bits. (Not "INT64_MIN // unit_ms <= when":
    # Python's // floors where C's LLONG_MIN / 1000 rounds toward zero, and
    # would let through a value whose product is below INT64_MIN.)
    when *= unit_ms
    if not INT64_MIN <= when <= INT64_MAX:
        raise errors.invalid_expire(name)
    if when > INT64_MAX - base_ms:
        raise errors.invalid_expire(name)
    when += base_ms

    db = session.db
    if db.lookup(key, session.now) is None:
        return 0
    current = db.expires.get(key)
    if nx and current is not None:
        return 0
    if xx and current is None:
        return 0
    if gt and (current is None or when <= current):
        return 0
    if lt and current is not None and when >= current:
        return 0
    # Redis deletes at once when the deadline is now or past. (The replay,
    # server.load_log, runs with "now" before every deadline, so there it
    # never deletes: a later record may extend this deadline, and load_log
    # drops what is past due once the whole log has run.)
    if when <= session.now:
        db.delete(key)
        session.log(b"DEL", key)
        notify(session, GENERIC, b"del", key)
    else:
        db.set_deadline(key, when)
        session.log(b"PEXPIREAT", key, b"%d" % when)
        notify(session, GENERIC, b"expire", key)
    return 1


@command("ttl", 2, keys=(1, 1, 1), flags=("fast",))
def ttl(session: Session, args: list[bytes]) -> object:
    """TTL key

    Seconds left (rounded), -1 if the key has no TTL, -2 if it is missing.
    """
    left = session.db.ttl_ms(args[0], session.now)
    return left if left < 0 else (left + 500) // 1000


@command("pttl", 2, keys=(1, 1, 1), flags=("fast",))
def pttl(session: Session, args: list[bytes]) -> object:
    """PTTL key

    Milliseconds left, -1 if the key has no TTL, -2 if it is missing.
    """
    return session.db.ttl_ms(args[0], session.now)


@command("expiretime", 2, keys=(1, 1, 1), flags=("fast",))
def expiretime(session: Session, args: list[bytes]) -> object:
    """EXPIRETIME key

    The deadline as a Unix time in seconds (rounded, as Redis), -1 if the
    key has no TTL, -2 if it is missing.
    """
    deadline = _deadline(session, args[0])
    return deadline if deadline < 0 else (deadline + 500) // 1000


@command("pexpiretime", 2, keys=(1, 1, 1), flags=("fast",))
def pexpiretime(session: Session, args: list[bytes]) -> object:
    """PEXPIRETIME key

    The deadline as a Unix time in milliseconds, -1 if the key has no TTL,
    -2 if it is missing.
    """
    return _deadline(session, args[0])


def _deadline(session: Session, key: bytes) -> int:
    db = session.db
    if db.lookup(key, session.now) is None:
        return -2
    deadline = db.expires.get(key)
    return -1 if deadline is None else max(deadline, 0)


@command("persist", 2, write=True, keys=(1, 1, 1), flags=("fast",))
def persist(session: Session, args: list[bytes]) -> object:
    """PERSIST key

    Remove the key's TTL: 1 if it had one, 0 if not or if the key is missing.
    """
    key = args[0]
    db = session.db
    if db.lookup(key, session.now) is None or key not in db.expires:
        return 0
    db.set_deadline(key, None)
    session.log(b"PERSIST", key)
    notify(session, GENERIC, b"persist", key)
    return 1


# -- finding keys ------------------------------------------------------------------


@command("keys", 2, flags=("readonly",))
def keys(session: Session, args: list[bytes]) -> object:
    """KEYS pattern

    Every key matching the glob ``pattern`` (see glob.py), in no particular
    order. Walks the whole database: SCAN is the way to do it bit by bit.
    """
    pattern = args[0]
    db, now = session.db, session.now
    match = None if pattern == b"*" else compile_pattern(pattern)  # as Redis: "*" takes all
    found = []
    # A copy of the keys (atomic under the GIL), since writers may change
    # the dict meanwhile. Expired keys are left out but not deleted here,
    # as Redis's KEYS does.
    for key in list(db.data):
        if match is None or match(key):
            deadline = db.expires.get(key)
            if deadline is None or deadline >= now:
                found.append(key)
    return found


@command("scan", -2, flags=("readonly",))
def scan(session: Session, args: list[bytes]) -> object:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]

    The next cursor (0 once the walk is over) and a batch of keys. A key
    present from the first call to the last is returned at least once;
    MATCH and TYPE filter each batch after it is taken, so a batch may
    come back empty before the walk ends.
    """
    cursor = parse_cursor(args[0])
    count, pattern, wanted_type = scan_options(args[1:], with_type=True)

    db, now = session.db, session.now
    # Cursors are bucket numbers (store.py); any other number Redis accepts
    # as a cursor is taken as "the walk is over".
    cursor, batch = db.scan(cursor, count) if cursor < SCAN_BUCKETS else (0, [])
    match = None if pattern is None or pattern == b"*" else compile_pattern(pattern)
    found = []
    for key in batch:
        if match is not None and not match(key):
            continue
        value = db.lookup(key, now)  # an expired key is reclaimed, as Redis's SCAN does
        if value is None:
            continue
        if wanted_type is not None and type_name(value).encode() != wanted_type:
            continue
        found.append(key)
    return [b"%d" % cursor, found]


def scan_options(options: list[bytes], with_type: bool = False) -> tuple[int, bytes | None, bytes | None]:
    """SCAN's options and HSCAN/SSCAN/ZSCAN's (``with_type``: SCAN's TYPE
    too): COUNT (at least 1), MATCH, TYPE, each a word and its value, as
    Redis reads them; (count, pattern or None, type name or None)."""
    count = DEFAULT_SCAN_COUNT
    pattern = wanted_type = None
    words = (b"COUNT", b"MATCH", b"TYPE") if with_type else (b"COUNT", b"MATCH")
    i = 0
    while i < len(options):
        word = options[i].upper()
        if i + 1 >= len(options) or word not in words:
            raise CommandError(errors.SYNTAX)
        if word == b"COUNT":
            count = parse_int(options[i + 1])
            if count < 1:
                raise CommandError(errors.SYNTAX)
        elif word == b"MATCH":
            pattern = options[i + 1]
        else:
            # Redis compares the name with strcasecmp: case-blind, up to a NUL.
            wanted_type = options[i + 1].split(b"\0", 1)[0].lower()
        i += 2
    return count, pattern, wanted_type


_C_SPACE = b" \t\n\v\f\r"


def parse_cursor(raw: bytes) -> int:
    """SCAN's cursor as Redis reads it: C's strtoul, base 10, refusing a
    leading space, anything after the digits, and values past 64 bits.

    So "+5" is 5, "-1" is 2**64-1, and "" is 0, as in Redis.
    """
    if raw[:1] and raw[0] in _C_SPACE:
        raise CommandError(errors.INVALID_CURSOR)
    text = raw.split(b"\0", 1)[0]  # strtoul reads a C string
    sign = text[:1] if text[:1] in (b"+", b"-") else b""
    digits = text[len(sign) :]
    if not digits:
        if sign:  # nothing converted: the end pointer stays on the sign
            raise CommandError(errors.INVALID_CURSOR)
        return 0
    digits = digits.lstrip(b"0") or b"0"  # before int(): it caps its input's digits
    if not digits.isdigit() or len(digits) > 20 or int(digits) > ULONG_MAX:
        raise CommandError(errors.INVALID_CURSOR)
    value = int(digits)
    return -value % 2**64 if sign == b"-" else value


@command("randomkey", 1, flags=("readonly",))
def randomkey(session: Session, args: list[bytes]) -> object:
    """RANDOMKEY

    A random key, or nil if the database is empty. Never an expired key:
    one drawn is reclaimed and another drawn, as Redis does.
    """
    db, now = session.db, session.now
    while True:
        key = _random_key(db)
        if key is None or db.lookup(key, now) is not None:
            return key
        # lookup reclaimed the expired key: each round removes one, so this ends.


def _random_key(db: Database) -> bytes | None:
    # Not uniform over large databases (a key sharing its SCAN bucket is
    # less likely), nor is Redis's: fair enough for sampling.
    if len(db) <= RANDOMKEY_LIST_MAX:
        names = list(db.data)
        return random.choice(names) if names else None
    _, batch = db.scan(random.randrange(SCAN_BUCKETS), 1)
    if not batch:
        _, batch = db.scan(0, 1)  # past the last bucket in use: wrap around
    return random.choice(batch) if batch else None


@command("dbsize", 1, flags=("readonly", "fast"))
def dbsize(session: Session, args: list[bytes]) -> object:
    """DBSIZE

    How many keys the database holds, counting (as Redis does) expired keys
    not yet reclaimed.
    """
    return len(session.db)


# -- renaming and copying ----------------------------------------------------------


@command("rename", 3, write=True, keys=(1, 2, 1))
def rename(session: Session, args: list[bytes]) -> object:
    """RENAME key newkey

    Move the value and TTL of ``key`` to ``newkey``, replacing what was
    there. Error if ``key`` is missing.
    """
    _rename(session, args[0], args[1], nx=False)
    return OK


@command("renamenx", 3, write=True, keys=(1, 2, 1), flags=("fast",))
def renamenx(session: Session, args: list[bytes]) -> object:
    """RENAMENX key newkey

    RENAME if ``newkey`` does not exist: 1 if renamed, 0 if it exists.
    """
    return int(_rename(session, args[0], args[1], nx=True))


def _rename(session: Session, key: bytes, newkey: bytes, nx: bool) -> bool:
    """True if renamed. Redis's order: the source, then the same name, then
    the target."""
    db, now = session.db, session.now
    value = db.lookup(key, now)
    if value is None:
        if session.loading:  # see the module docstring
            db.delete(newkey)
            return True
        raise CommandError(errors.NO_SUCH_KEY)
    if key == newkey:
        return not nx  # nothing to do, nothing logged
    if nx and not session.loading and db.lookup(newkey, now) is not None:
        return False
    # The target goes first, then comes back new, as in Redis (whose dbAdd
    # then sends the "new" event).
    db.delete(newkey)
    db.set(newkey, value, db.expires.get(key))
    db.delete(key)
    session.log(b"RENAMENX" if nx else b"RENAME", key, newkey)
    notify(session, GENERIC, b"rename_from", key)
    notify(session, GENERIC, b"rename_to", newkey)
    return True


@command("copy", -3, write=True, keys=(1, 2, 1), flags=("denyoom",))
def copy_(session: Session, args: list[bytes]) -> object:
    """COPY source destination [DB destination-db] [REPLACE]

    Copy the value and TTL of ``source`` to ``destination`` (in another
    database with DB): 1 if copied, 0 if ``source`` is missing or
    ``destination`` exists and REPLACE was not given.
    """
    source, destination = args[0], args[1]
    target = session.db
    replace = False
    i = 2
    while i < len(args):
        word = args[i].upper()
        if word == b"REPLACE":
            replace = True
        elif word == b"DB" and i + 1 < len(args):
            target = _database(session, parse_int32(args[i + 1]))
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    db, now = session.db, session.now
    if target is db and source == destination:
        raise CommandError(errors.SAME_OBJECT)
    value = db.lookup(source, now)
    if value is None:
        if session.loading:  # see the module docstring
            target.delete(destination)
        return 0
    if not replace and not session.loading and target.lookup(destination, now) is not None:
        return 0
    target.delete(destination)  # then added new, as Redis does (the "new" event)
    target.set(destination, duplicate(value), db.expires.get(source))
    session.log(b"COPY", *args)
    notify_db(session, target, GENERIC, b"copy_to", destination)
    return 1


@command("move", 3, write=True, keys=(1, 1, 1), flags=("fast",))
def move(session: Session, args: list[bytes]) -> object:
    """MOVE key db

    Move ``key`` with its TTL to database ``db``: 1 if moved, 0 if it is
    missing here or exists there.
    """
    key = args[0]
    target = _database(session, parse_int32(args[1]))
    db, now = session.db, session.now
    if target is db:
        raise CommandError(errors.SAME_OBJECT)
    value = db.lookup(key, now)
    if value is None:
        return 0
    if not session.loading and target.lookup(key, now) is not None:
        return 0
    target.set(key, value, db.expires.get(key))
    db.delete(key)
    session.log(b"MOVE", key, args[1])
    notify(session, GENERIC, b"move_from", key)
    notify_db(session, target, GENERIC, b"move_to", key)
    return 1


# -- whole databases ---------------------------------------------------------------


@command("flushdb", -1, write=True)
def flushdb(session: Session, args: list[bytes]) -> object:
    """FLUSHDB [ASYNC | SYNC]

    Remove every key of the selected database (ASYNC and SYNC alike).
    """
    _flush_mode(args)
    if session.db.flush(session.now):
        session.log(b"FLUSHDB")
    return OK


@command("flushall", -1, write=True)
def flushall(session: Session, args: list[bytes]) -> object:
    """FLUSHALL [ASYNC | SYNC]

    Remove every key of every database (ASYNC and SYNC alike).
    """
    _flush_mode(args)
    removed = session.keyspace.flush_all(session.now)
    if removed:
        session.log(b"FLUSHALL")
    return OK


def _flush_mode(args: list[bytes]) -> None:
    if len(args) > 1 or (args and args[0].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(errors.SYNTAX)


@command("swapdb", 3, write=True, flags=("fast",))
def swapdb(session: Session, args: list[bytes]) -> object:
    """SWAPDB index1 index2

    Exchange the contents of two databases: clients using one see the
    other's keys from then on.
    """
    first = parse_int32(args[0], errors.INVALID_FIRST_DB_INDEX)
    second = parse_int32(args[1], errors.INVALID_SECOND_DB_INDEX)
    dbs = session.keyspace.dbs
    if not (0 <= first < len(dbs) and 0 <= second < len(dbs)):
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    if first != second and (len(dbs[first]) or len(dbs[second])):
        dbs[first].swap_with(dbs[second], session.now)
        session.log(b"SWAPDB", args[0], args[1])
    return OK


def _database(session: Session, index: int) -> Database:
    dbs = session.keyspace.dbs
    if not 0 <= index < len(dbs):
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    return dbs[index]
