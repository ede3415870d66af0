"""Commands on keys whatever their value: DEL, EXPIRE and its family, TTL, PTTL."""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.parsing import INT64_MAX, INT64_MIN, parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.session import Session


@command("del", -2, write=True, keys=(1, -1, 1))
def del_(session: Session, args: list[bytes]) -> object:
    """DEL key [key ...]

    Remove the keys; the number that existed.
    """
    removed = 0
    for key in args:
        if session.db.lookup(key, session.now) is not None and session.db.delete(key):
            session.log(b"DEL", key)
            removed += 1
    return removed


@command("expire", -3, write=True, keys=(1, 1, 1))
def expire(session: Session, args: list[bytes]) -> object:
    """EXPIRE key seconds [NX | XX | GT | LT]

    Set a TTL in seconds. 1 if set (a TTL of zero or less deletes the key),
    0 if the key is missing or a condition was not met.
    """
    return _expire(session, args, "expire", base_ms=session.now, unit_ms=1000)


@command("pexpire", -3, write=True, keys=(1, 1, 1))
def pexpire(session: Session, args: list[bytes]) -> object:
    """PEXPIRE key milliseconds [NX | XX | GT | LT]"""
    return _expire(session, args, "pexpire", base_ms=session.now, unit_ms=1)


@command("expireat", -3, write=True, keys=(1, 1, 1))
def expireat(session: Session, args: list[bytes]) -> object:
    """EXPIREAT key unix-time-seconds [NX | XX | GT | LT]"""
    return _expire(session, args, "expireat", base_ms=0, unit_ms=1000)


@command("pexpireat", -3, write=True, keys=(1, 1, 1))
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
    # Redis deletes at once when the deadline is now or past. A replay must
    # rebuild what the live server held, and a key exactly at its deadline
    # is still live there (store.py), so replay deletes only strictly past.
    already_expired = when < session.now if session.loading else when <= session.now
    if already_expired:
        db.delete(key)
        session.log(b"DEL", key)
    else:
        db.set_deadline(key, when)
        session.log(b"PEXPIREAT", key, b"%d" % when)
    return 1


@command("ttl", 2, keys=(1, 1, 1))
def ttl(session: Session, args: list[bytes]) -> object:
    """TTL key

    Seconds left (rounded), -1 if the key has no TTL, -2 if it is missing.
    """
    left = session.db.ttl_ms(args[0], session.now)
    return left if left < 0 else (left + 500) // 1000


@command("pttl", 2, keys=(1, 1, 1))
def pttl(session: Session, args: list[bytes]) -> object:
    """PTTL key

    Milliseconds left, -1 if the key has no TTL, -2 if it is missing.
    """
    return session.db.ttl_ms(args[0], session.now)
