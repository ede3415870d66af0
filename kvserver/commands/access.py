"""How a command gets at a key's value of the type it works on, and says
that it changed it: the one path every list, hash and set command takes.

    value = read(session, key, List)            # None if missing; WRONGTYPE if not a list
    value = write(session, key, List)           # the same, safe to change in place
    value = value or List()                     # a command that creates the key
    before = value.nbytes
    undo = value.push(items, left=True)         # the value's own change, and its undo
    changed(session, key, value, before, undo)  # memory, undo journal, WATCH, delete-if-empty

``changed`` stores a new value, deletes one left empty, and keeps the memory
estimate, WATCH and the undo journal right (store.Database.changed); the
write command still records its effects with ``session.log`` as every write
does. Reads go through ``read`` and must answer with new objects, never the
stored container (values/__init__.py says why).
"""

from __future__ import annotations

from collections.abc import Callable

from kvserver import errors
from kvserver.errors import CommandError
from kvserver.session import Session


def read(session: Session, key: bytes, kind: type):
    """The live value at ``key`` if it is a ``kind``; None if missing;
    WRONGTYPE for a value of another type."""
    value = session.db.lookup(key, session.now)
    if value is not None and type(value) is not kind:
        raise CommandError(errors.WRONGTYPE)
    return value


def write(session: Session, key: bytes, kind: type):
    """As ``read``, for a write command: the value returned may be changed
    in place (write lock held), then passed to ``changed``."""
    db = session.db  # read's test, inlined: every container write comes here
    value = db.lookup(key, session.now)
    if value is None:
        return None
    if type(value) is not kind:
        raise CommandError(errors.WRONGTYPE)
    return db.writable(key, value)


def changed(session: Session, key: bytes, value, before: int, undo: Callable[[], None] | None) -> None:
    """``value`` at ``key`` was changed in place from ``before`` bytes
    (``undo`` reverts it), or is new: see the module docstring."""
    session.db.changed(key, value, before, undo)
