"""DUMP and RESTORE: a key's value as Redis 7.0's serialized payload.

The payload is Redis's (kvserver/rdb.py): the RDB type byte, the value in
its RDB encoding, the RDB version (10) and a CRC64, so payloads pass
between kvserver and redis-server both ways (MIGRATE-free moves, backups
taken with redis-cli --rdb aside).

Rules this module keeps:

* RESTORE parses and checks everything first (options, BUSYKEY, TTL, the
  payload's version and checksum, then the whole value) and only then
  touches the keyspace: a bad payload never leaves half a key.
* What is logged, as Redis 7.0 propagates it: RESTORE with a relative TTL
  is logged with the absolute deadline and ABSTTL added; a TTL already
  past logs nothing (or the DEL of the key REPLACE removed); otherwise as
  issued. The replay (``session.loading``) replaces whatever it finds and
  never drops a key for a TTL past on its clock (Redis's loading rule).
* IDLETIME and FREQ are checked as Redis checks them and then have nothing
  to set: kvserver keeps no LRU/LFU figures (OBJECT IDLETIME says so).
"""

from __future__ import annotations

from kvserver import errors, rdb
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.errors import CommandError
from kvserver.notify import GENERIC, notify
from kvserver.protocol import OK
from kvserver.session import Session


@command("dump", 2, keys=(1, 1, 1), flags=("readonly",))
def dump(session: Session, args: list[bytes]) -> object:
    """DUMP key

    The key's value serialized as Redis's RDB payload; nil if missing.
    """
    value = session.db.lookup(args[0], session.now)
    if value is None:
        return None
    return rdb.dump_payload(value, session.keyspace.encodings)


@command("restore", -4, write=True, keys=(1, 1, 1), flags=("denyoom",))
def restore(session: Session, args: list[bytes]) -> object:
    """RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]

    Create ``key`` from a DUMP payload, with a TTL in ms (0: none; with
    ABSTTL, an absolute Unix time in ms). BUSYKEY if the key exists and
    REPLACE was not given.
    """
    key, payload = args[0], args[2]
    replace = absttl = False
    idle = freq = -1
    i = 3
    while i < len(args):
        word = args[i].upper()
        more = len(args) - i - 1
        if word == b"REPLACE":
            replace = True
        elif word == b"ABSTTL":
            absttl = True
        elif word == b"IDLETIME" and more >= 1 and freq == -1:
            idle = parse_int(args[i + 1])
            if idle < 0:
                raise CommandError(errors.RESTORE_BAD_IDLETIME)
            i += 1
        elif word == b"FREQ" and more >= 1 and idle == -1:
            freq = parse_int(args[i + 1])
            if not 0 <= freq <= 255:
                raise CommandError(errors.RESTORE_BAD_FREQ)
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    db, now = session.db, session.now
    replace = replace or session.loading  # see the module docstring
    if not replace and db.lookup(key, now) is not None:
        raise CommandError(errors.RESTORE_BUSYKEY)
    ttl = parse_int(args[1])
    if ttl < 0:
        raise CommandError(errors.RESTORE_BAD_TTL)
    try:
        value = rdb.read_payload(payload)
    except rdb.PayloadTrailerError:
        raise CommandError(errors.DUMP_PAYLOAD_WRONG) from None
    except rdb.RdbError:
        raise CommandError(errors.RESTORE_BAD_DATA) from None
    deadline = None
    if ttl:
        deadline = ttl if absttl else ttl + now
        if deadline <= now and not session.loading:  # already expired: Redis's checkAlreadyExpired
            if replace and db.delete(key):
                session.log(b"DEL", key)
                notify(session, GENERIC, b"del", key)
            return OK
    db.set(key, value, deadline)
    if type(value) is not bytes:
        value.epoch = session.keyspace.snapshot_epoch  # new: nothing to copy before a change
    notify(session, GENERIC, b"restore", key)
    if ttl and not absttl:
        session.log(b"RESTORE", key, b"%d" % deadline, *args[2:], b"ABSTTL")
    else:
        session.log(b"RESTORE", *args)
    return OK
