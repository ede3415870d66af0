"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, on string values in
Redis 7.0's own representation (kvserver/hll.py), so that a HyperLogLog
GET from redis-server and SET here counts the same, and the reverse.

Rules this module keeps:

* A HyperLogLog is a ``bytes`` value. Another type gets the usual
  WRONGTYPE; a string without a HyperLogLog header gets Redis's
  ``WRONGTYPE Key is not a valid HyperLogLog string value.``; a header over
  registers that do not add up, ``INVALIDOBJ Corrupted HLL object
  detected``, with the value left as it was.
* Every change stores a new bytes value, keeping the key's TTL.
* The log: PFADD and PFMERGE are logged as issued, as Redis 7.0 writes
  them to its AOF: replayed, they rebuild the same bytes. A PFADD that
  changes no register logs nothing.
* PFCOUNT of one key stores the count it computed in the value's header
  (the cache Redis keeps there) and is then logged as ``PFCOUNT key``, as
  Redis 7.0 propagates it, so that replay leaves the same bytes. Since it
  may change a value it runs as a write here (write lock, undo journal,
  seqlock), though COMMAND INFO calls it readonly, as Redis does
  (registry.py: a write command flagged "readonly").
* A key found expired (PFADD's key, PFMERGE's destination and sources) is
  gone from the replay too: its expiry was logged as a DEL (store.py).
"""

from __future__ import annotations

from kvserver import errors, hll
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import STRING, notify
from kvserver.protocol import OK
from kvserver.session import Session


def _hll(session: Session, key: bytes) -> bytes | None:
    """The HyperLogLog at ``key``, None if missing; WRONGTYPE otherwise."""
    value = session.db.lookup(key, session.now)
    if value is None:
        return None
    if type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    if not hll.is_hll(value):
        raise CommandError(errors.HLL_WRONGTYPE)
    return value


def _store(session: Session, key: bytes, value: bytearray) -> None:
    db = session.db
    db.set(key, bytes(value), db.expires.get(key))


def _sparse_max_bytes(session: Session) -> int:
    return session.keyspace.hll_sparse_max_bytes


@command("pfadd", -2, write=True, keys=(1, 1, 1), flags=("denyoom", "fast"))
def pfadd(session: Session, args: list[bytes]) -> object:
    """PFADD key [element [element ...]]

    1 if a register changed (or the key was created), else 0.
    """
    key, elements = args[0], args[1:]
    value = _hll(session, key)
    if value is None:
        registers, updated = hll.new_sparse(), 1
    else:
        registers, updated = bytearray(value), 0
    try:
        registers, grew = hll.add(registers, elements, _sparse_max_bytes(session))
    except hll.Corrupt:
        raise CommandError(errors.HLL_CORRUPT) from None
    if not (updated or grew):
        return 0
    hll.invalidate_cache(registers)
    _store(session, key, registers)
    session.log(b"PFADD", *args)
    notify(session, STRING, b"pfadd", key)
    return 1


@command("pfcount", -2, write=True, keys=(1, -1, 1), flags=("readonly",))
def pfcount(session: Session, args: list[bytes]) -> object:
    """PFCOUNT key [key ...]

    The estimated number of distinct elements added (of the union, for
    several keys); 0 for missing keys. One key's count is cached in its
    value (logged as PFCOUNT key when it had to be computed).
    """
    try:
        if len(args) > 1:
            union = bytearray(hll.REGISTERS)
            for key in args:
                value = _hll(session, key)
                if value is not None:
                    hll.merge_registers(union, hll.registers(value))
            return hll.estimate(hll.raw_histogram(union))
        key = args[0]
        value = _hll(session, key)
        if value is None:
            return 0
        cached = hll.cached_count(value)
        if cached is not None:
            return cached
        count = hll.count(value)
    except hll.Corrupt:
        raise CommandError(errors.HLL_CORRUPT) from None
    updated = bytearray(value)
    hll.set_cached_count(updated, count)
    _store(session, key, updated)
    session.log(b"PFCOUNT", key)
    return count


@command("pfmerge", -2, write=True, keys=(1, -1, 1), flags=("denyoom",))
def pfmerge(session: Session, args: list[bytes]) -> object:
    """PFMERGE destkey [sourcekey [sourcekey ...]]

    Store at ``destkey`` the union of the keys (``destkey`` included);
    dense if any of them is. Always OK, always logged as issued.
    """
    union = bytearray(hll.REGISTERS)
    use_dense = False
    dest = None
    try:
        for i, key in enumerate(args):
            value = _hll(session, key)
            if value is None:
                continue
            if i == 0:
                dest = value
            use_dense = use_dense or value[4] == hll.DENSE
            hll.merge_registers(union, hll.registers(value))
        merged = hll.store_registers(
            bytearray(dest) if dest is not None else None, union, use_dense, _sparse_max_bytes(session)
        )
    except hll.Corrupt:
        raise CommandError(errors.HLL_CORRUPT) from None
    _store(session, args[0], merged)
    session.log(b"PFMERGE", *args)
    notify(session, STRING, b"pfadd", args[0])
    return OK
