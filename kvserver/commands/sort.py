"""SORT and SORT_RO over lists, sets and sorted sets, as Redis 7.0's sort.c.

    SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
         [ASC|DESC] [ALPHA] [STORE destination]

The rules kept from Redis:

* Elements sort as numbers (C's strtod over the whole element, an empty one
  is 0; anything else is "One or more scores can't be converted into
  double"), equal numbers by their bytes; ALPHA sorts by bytes (Redis uses
  strcoll, byte order up to the first NUL in the C locale, for a reply, and
  memcmp for STORE); equal ones keep the order they were read in.
* ``BY pattern``: the ``*`` of the pattern is replaced by the element and
  the key (or ``key->field`` of a hash) read gives its weight; a missing
  one weighs 0 (first with ALPHA). A pattern without ``*`` (``nosort``)
  skips sorting: a list or sorted set keeps its order (reversed by DESC),
  a set is sorted ALPHA anyway when the result is stored.
* ``GET pattern``: ``#`` is the element itself; a missing key is nil
  (an empty string once stored).
* ``STORE``: the result replaces destination as a list, an empty result
  deletes it; logged as issued when either changed something.

SORT is registered as a write (Redis flags it "write denyoom movablekeys"),
so it always runs under the write lock; SORT_RO is a read and refuses STORE.
"""

from __future__ import annotations

import math

from kvserver import errors
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.commands.zsets import _strtod
from kvserver.errors import CommandError
from kvserver.notify import GENERIC, LIST, notify
from kvserver.session import Session
from kvserver.values import Hash, List, Set, Zset


def _c_string(raw: bytes) -> bytes:
    """What C's string functions (strchr, strstr, strtod) see of ``raw``."""
    return raw.split(b"\0", 1)[0]


def _lookup(session: Session, pattern: bytes, element: bytes) -> bytes | None:
    """Redis's lookupKeyByPattern: the string at the pattern's key with
    ``*`` replaced by ``element``, or the hash field after ``->``; None if
    missing or of another type."""
    if pattern == b"#" or pattern.startswith(b"#\0"):
        return element
    text = _c_string(pattern)
    star = text.find(b"*")
    if star < 0:
        return None
    arrow = text.find(b"->", star + 1)
    field = None
    fieldlen = 0
    if arrow >= 0 and arrow + 2 < len(pattern) and pattern[arrow + 2] != 0:
        field = pattern[arrow + 2 :]
        fieldlen = len(field)
    postfixlen = len(pattern) - (star + 1) - (fieldlen + 2 if fieldlen else 0)
    key = pattern[:star] + element + pattern[star + 1 : star + 1 + postfixlen]
    value = session.db.lookup(key, session.now)
    if value is None:
        return None
    if field is not None:
        return value.get(field) if type(value) is Hash else None
    return value if type(value) is bytes else None


def _weight(raw: bytes) -> float | None:
    """The element's number as Redis's strtod check reads it; None if it is not one."""
    text = _c_string(raw)
    value, end, erange = _strtod(text)
    if end != len(text) or erange or math.isnan(value):
        return None
    return value


def _sort(session: Session, args: list[bytes], readonly: bool) -> object:
    key = args[0]
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby = store = None
    gets: list[bytes] = []
    j = 1
    while j < len(args):
        word, left = args[j].lower(), len(args) - j - 1
        if word == b"asc":
            desc = False
        elif word == b"desc":
            desc = True
        elif word == b"alpha":
            alpha = True
        elif word == b"limit" and left >= 2:
            limit_start, limit_count = parse_int(args[j + 1]), parse_int(args[j + 2])
            j += 2
        elif not readonly and word == b"store" and left >= 1:
            store = args[j + 1]
            j += 1
        elif word == b"by" and left >= 1:
            sortby = args[j + 1]
            dontsort = b"*" not in _c_string(sortby)  # a constant pattern: nothing to sort by
            j += 1
        elif word == b"get" and left >= 1:
            gets.append(args[j + 1])
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1

    value = session.db.lookup(key, session.now)
    if value is not None and type(value) not in (List, Set, Zset):
        raise CommandError(errors.WRONGTYPE)
    if value is None:
        value = List()
    if dontsort and type(value) is Set and store is not None:
        # A set has no order of its own: what is stored (and logged) must not
        # depend on it, so Redis sorts it ALPHA.
        dontsort, alpha, sortby = False, True, None

    n = len(value)
    start = max(limit_start, 0)
    end = n - 1 if limit_count < 0 else start + limit_count - 1
    if start >= n:
        start, end = n - 1, n - 2
    end = min(end, n - 1)

    if type(value) is Zset:
        elements = [member for _, member in value.order]
    else:
        elements = list(value)
    if dontsort:
        if type(value) is not Set and desc:
            elements.reverse()
    else:
        elements = _sorted(session, elements, sortby, alpha, desc, store is not None)
    chosen = elements[start : end + 1] if end >= start else []

    if store is None:
        if not gets:
            return chosen
        return [_lookup(session, pattern, element) for element in chosen for pattern in gets]
    if gets:
        result = [_lookup(session, pattern, e) or b"" for e in chosen for pattern in gets]
    else:
        result = chosen
    db = session.db
    if result:
        stored = List(result)
        stored.epoch = session.keyspace.snapshot_epoch
        db.lookup(store, session.now)  # one past its deadline expires first, as in Redis
        db.set(store, stored, None)
        session.log(b"SORT", *args)
        notify(session, LIST, b"sortstore", store)
        return len(result)
    if not (db.lookup(store, session.now) is not None and db.delete(store)):
        return 0
    session.log(b"SORT", *args)
    notify(session, GENERIC, b"del", store)
    return len(result)


def _sorted(session: Session, elements: list[bytes], sortby: bytes | None, alpha: bool, desc: bool,
            storing: bool) -> list[bytes]:
    """The elements in Redis's sortCompare order (a stable sort: equal
    weights keep the order they were read in, as glibc's qsort does)."""
    if alpha:
        # ALPHA compares with strcoll (C strings: up to a NUL) for a reply,
        # with memcmp (the whole bytes) for STORE, so a replica agrees.
        text = (lambda raw: raw) if storing else _c_string
        if sortby is None:
            return sorted(elements, key=text, reverse=desc)
        # A missing weight sorts first: (False, b"") before (True, weight).
        weights = []
        for element in elements:
            found = _lookup(session, sortby, element)
            weights.append((False, b"") if found is None else (True, text(found)))
        order = sorted(range(len(elements)), key=weights.__getitem__, reverse=desc)
        return [elements[i] for i in order]
    keyed = []
    for element in elements:
        raw = element if sortby is None else _lookup(session, sortby, element)
        number = 0.0 if raw is None else _weight(raw)
        if number is None:
            raise CommandError(errors.SORT_NOT_DOUBLE)
        keyed.append((number, element))
    keyed.sort(reverse=desc)
    return [element for _, element in keyed]


@command("sort", -2, write=True, keys=(1, 1, 1), flags=("denyoom", "movablekeys"))
def sort(session: Session, args: list[bytes]) -> object:
    """SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA] [STORE destination]

    The elements of a list, set or sorted set, sorted (or stored as a list).
    """
    return _sort(session, args, readonly=False)


@command("sort_ro", -2, keys=(1, 1, 1), flags=("movablekeys",))
def sort_ro(session: Session, args: list[bytes]) -> object:
    """SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA]

    SORT without STORE.
    """
    return _sort(session, args, readonly=True)


def _sort_keys(args: list[bytes]) -> list[bytes]:
    """sortGetKeys: the key, and the last STORE destination (LIMIT, GET and
    BY skip their arguments)."""
    stored = None
    skips = {b"limit": 2, b"get": 1, b"by": 1}
    i = 1
    while i < len(args):
        word = args[i].lower()
        if word in skips:
            i += skips[word]
        elif word == b"store" and i + 1 < len(args):
            stored = args[i + 1]
        i += 1
    return args[:1] + ([stored] if stored is not None else [])


KEY_FINDERS["sort"] = _sort_keys
