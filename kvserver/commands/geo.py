"""Geo commands: GEOADD ... GEOSEARCHSTORE and the older GEORADIUS family,
on sorted sets, as Redis 7.0's geo.c.

A position is a member whose score is its 52-bit geohash (the arithmetic
is in _geohash.py), so a geo set is a plain ``Zset``: ZSCORE, ZRANGE and
ZREM work on it, and GEOADD is a ZADD. Replies follow Redis byte for byte:
distances as "%.4f" bulk strings, coordinates as Redis prints a long double
(%.17Lf, trailing zeros trimmed; RESP3 doubles), WITHHASH as an integer.

The log records what Redis 7.0's AOF records: GEOADD as the ``zadd`` it
rewrites itself into (lower case, with the NX/XX/CH options and the
computed scores), GEOSEARCHSTORE and GEORADIUS* ... STORE as issued when
they changed something; the read-only forms nothing.
"""

from __future__ import annotations

from fractions import Fraction

from kvserver import errors
from kvserver.commands import _geohash as geohash
from kvserver.commands.access import read
from kvserver.commands.introspection import KEY_FINDERS
from kvserver.commands.longdouble import format_human
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.commands.zsets import _store, _zadd, parse_score
from kvserver.errors import CommandError
from kvserver.protocol import DoubleText, NullArray
from kvserver.session import Session
from kvserver.values import Zset

# -- arguments --------------------------------------------------------------------------


def _lonlat(raw_x: bytes, raw_y: bytes) -> tuple[float, float]:
    """extractLongLatOrReply: a longitude and latitude in Redis's ranges."""
    x, y = parse_score(raw_x), parse_score(raw_y)
    if not (geohash.LONG_MIN <= x <= geohash.LONG_MAX and geohash.LAT_MIN <= y <= geohash.LAT_MAX):
        raise errors.geo_invalid_pair(x, y)
    return x, y


def _unit(raw: bytes) -> float:
    """Meters per unit (m, km, ft, mi, any case)."""
    meters = geohash.UNITS.get(raw.lower())
    if meters is None:
        raise CommandError(errors.GEO_UNIT)
    return meters


def _radius(raw: bytes, unit: bytes) -> tuple[float, float]:
    radius = parse_score(raw, errors.GEO_NEED_RADIUS)
    if radius < 0:
        raise CommandError(errors.GEO_NEGATIVE_RADIUS)
    return radius, _unit(unit)


def _coordinate(value: float) -> DoubleText:
    return DoubleText(format_human(Fraction(value)))


# -- GEOADD, GEODIST, GEOHASH, GEOPOS --------------------------------------------------


@command("geoadd", -5, write=True, keys=(1, 1, 1), flags=("denyoom",))
def geoadd(session: Session, args: list[bytes]) -> object:
    """GEOADD key [NX|XX] [CH] longitude latitude member [longitude latitude member ...]

    Add or move members to positions (a ZADD with their geohashes as scores).
    """
    options = {b"NX": False, b"XX": False, b"CH": False}
    at = 1
    while at < len(args) and args[at].upper() in options:
        options[args[at].upper()] = True
        at += 1
    if (len(args) - at) % 3 or (options[b"NX"] and options[b"XX"]):
        raise CommandError(errors.SYNTAX)
    zadd_args = list(args[:at])
    for j in range(at, len(args), 3):
        x, y = _lonlat(args[j], args[j + 1])
        zadd_args += (b"%d" % geohash.score_of(x, y), args[j + 2])
    # Redis rewrites itself into this ZADD, which is also what its AOF holds.
    return _zadd(session, b"zadd", zadd_args, at, nx=options[b"NX"], xx=options[b"XX"],
                 ch=options[b"CH"], incr=False, gt=False, lt=False)


@command("geodist", -4, keys=(1, 1, 1))
def geodist(session: Session, args: list[bytes]) -> object:
    """GEODIST key member1 member2 [M|KM|FT|MI]

    The distance between two members (nil if either is missing).
    """
    to_meters = 1.0
    if len(args) == 4:
        to_meters = _unit(args[3])
    elif len(args) > 4:
        raise CommandError(errors.SYNTAX)
    value = read(session, args[0], Zset)
    if value is None:
        return None
    first, second = value.score(args[1]), value.score(args[2])
    if first is None or second is None:
        return None
    meters = geohash.distance(*geohash.decode(first), *geohash.decode(second))
    return b"%.4f" % (meters / to_meters)


@command("geohash", -2, keys=(1, 1, 1))
def geohash_command(session: Session, args: list[bytes]) -> object:
    """GEOHASH key [member ...]

    Each member's standard 11-character geohash (nil for a missing one).
    """
    value = read(session, args[0], Zset)
    scores = [None if value is None else value.score(m) for m in args[1:]]
    return [None if score is None else geohash.hash_text(score) for score in scores]


@command("geopos", -2, keys=(1, 1, 1))
def geopos(session: Session, args: list[bytes]) -> object:
    """GEOPOS key [member ...]

    Each member's [longitude, latitude] (a null array for a missing one).
    """
    value = read(session, args[0], Zset)
    replies: list[object] = []
    for member in args[1:]:
        score = None if value is None else value.score(member)
        if score is None:
            replies.append(NullArray)
        else:
            x, y = geohash.decode(score)
            replies.append([_coordinate(x), _coordinate(y)])
    return replies


# -- the searches -------------------------------------------------------------------------

RADIUS_COORDS, RADIUS_MEMBER, SEARCH = "coords", "member", "search"


def _search(session: Session, name: bytes, args: list[bytes], kind: str, *, store_allowed: bool,
            search_store: bool = False) -> object:
    """Redis's georadiusGeneric: ``args`` after the command name."""
    src_index = 1 if search_store else 0
    value = read(session, args[src_index], Zset)
    shape = geohash.Shape()
    store_key = None
    storedist = False
    if kind == RADIUS_COORDS:
        base = 5
        shape.x, shape.y = _lonlat(args[1], args[2])
        shape.radius, shape.conversion = _radius(args[3], args[4])
    elif kind == RADIUS_MEMBER:
        base = 4
        if value is not None:  # without the key Redis reads neither member nor radius
            shape.x, shape.y = _member_position(value, args[1])
            shape.radius, shape.conversion = _radius(args[2], args[3])
    else:
        base = 2 if search_store else 1
        if search_store:
            store_key = args[0]
    withdist = withhash = withcoord = any_ = False
    frommember = fromloc = byradius = bybox = False
    sort = None
    count = 0
    i = base
    while i < len(args):
        word, remaining = args[i].lower(), len(args) - i - 1
        if word == b"withdist":
            withdist = True
        elif word == b"withhash":
            withhash = True
        elif word == b"withcoord":
            withcoord = True
        elif word == b"any":
            any_ = True
        elif word in (b"asc", b"desc"):
            sort = word
        elif word == b"count" and remaining >= 1:
            count = parse_int(args[i + 1])
            if count <= 0:
                raise CommandError(errors.GEO_COUNT)
            i += 1
        elif word in (b"store", b"storedist") and remaining >= 1 and store_allowed and kind != SEARCH:
            store_key, storedist = args[i + 1], word == b"storedist"
            i += 1
        elif word == b"storedist" and search_store:
            storedist = True
        elif word == b"frommember" and remaining >= 1 and kind == SEARCH and not fromloc:
            if value is not None:
                shape.x, shape.y = _member_position(value, args[i + 1])
            frommember = True
            i += 1
        elif word == b"fromlonlat" and remaining >= 2 and kind == SEARCH and not frommember:
            shape.x, shape.y = _lonlat(args[i + 1], args[i + 2])
            fromloc = True
            i += 2
        elif word == b"byradius" and remaining >= 2 and kind == SEARCH and not bybox:
            shape.radius, shape.conversion = _radius(args[i + 1], args[i + 2])
            shape.box, byradius = False, True
            i += 2
        elif word == b"bybox" and remaining >= 3 and kind == SEARCH and not byradius:
            width = parse_score(args[i + 1], errors.GEO_NEED_WIDTH)
            height = parse_score(args[i + 2], errors.GEO_NEED_HEIGHT)
            if width < 0 or height < 0:
                raise CommandError(errors.GEO_NEGATIVE_BOX)
            shape.width, shape.height, shape.conversion = width, height, _unit(args[i + 3])
            shape.box, bybox = True, True
            i += 3
        else:
            raise CommandError(errors.SYNTAX)
        i += 1

    if store_key is not None and (withdist or withhash or withcoord):
        raise errors.geo_store_with(search_store)
    if kind == SEARCH and not (frommember or fromloc):
        raise errors.geo_exactly_one("FROMMEMBER or FROMLONLAT", name)
    if kind == SEARCH and not (byradius or bybox):
        raise errors.geo_exactly_one("BYRADIUS and BYBOX", name)
    if any_ and not count:
        raise CommandError(errors.GEO_ANY_NEEDS_COUNT)

    if value is None:
        return [] if store_key is None else _store(session, name, store_key, Zset(), args, _store_event(search_store))
    if count and sort is None and not any_:
        sort = b"asc"  # the closest COUNT, so they must be sorted

    def score_range(low: int, high: int):
        order = value.order
        for rank in range(value.first_at_least(float(low), False), len(order)):
            score, member = order[rank]
            if score >= high:
                break
            yield score, member

    found = geohash.points_in(shape, score_range, count if any_ else 0)
    if sort is not None:  # Redis's qsort by distance (ties: as found)
        found.sort(key=lambda point: point[0], reverse=sort == b"desc")
    if count:
        found = found[:count]

    if store_key is not None:
        if storedist:
            result = Zset((member, dist / shape.conversion) for dist, member, _, _, _ in found)
        else:
            result = Zset((member, score) for _, member, score, _, _ in found)
        return _store(session, name, store_key, result, args, _store_event(search_store))

    replies: list[object] = []
    for dist, member, score, x, y in found:
        if not (withdist or withhash or withcoord):
            replies.append(member)
            continue
        item: list[object] = [member]
        if withdist:
            item.append(b"%.4f" % (dist / shape.conversion))
        if withhash:
            item.append(int(score))
        if withcoord:
            item.append([_coordinate(x), _coordinate(y)])
        replies.append(item)
    return replies


def _store_event(search_store: bool) -> bytes:
    # What Redis's georadiusGeneric notifies for the stored result.
    return b"geosearchstore" if search_store else b"georadiusstore"


def _member_position(value: Zset, member: bytes) -> tuple[float, float]:
    score = value.score(member)
    if score is None:
        raise CommandError(errors.GEO_NO_MEMBER)
    return geohash.decode(score)


@command("georadius", -6, write=True, keys=(1, 1, 1), flags=("denyoom", "movablekeys"))
def georadius(session: Session, args: list[bytes]) -> object:
    """GEORADIUS key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key|STOREDIST key]

    The members within the radius of a point (deprecated: GEOSEARCH).
    """
    return _search(session, b"GEORADIUS", args, RADIUS_COORDS, store_allowed=True)


@command("georadiusbymember", -5, write=True, keys=(1, 1, 1), flags=("denyoom", "movablekeys"))
def georadiusbymember(session: Session, args: list[bytes]) -> object:
    """GEORADIUSBYMEMBER key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC] [STORE key|STOREDIST key]

    The members within the radius of a member (deprecated: GEOSEARCH).
    """
    return _search(session, b"GEORADIUSBYMEMBER", args, RADIUS_MEMBER, store_allowed=True)


@command("georadius_ro", -6, keys=(1, 1, 1))
def georadius_ro(session: Session, args: list[bytes]) -> object:
    """GEORADIUS_RO key longitude latitude radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]

    GEORADIUS without STORE.
    """
    return _search(session, b"GEORADIUS_RO", args, RADIUS_COORDS, store_allowed=False)


@command("georadiusbymember_ro", -5, keys=(1, 1, 1))
def georadiusbymember_ro(session: Session, args: list[bytes]) -> object:
    """GEORADIUSBYMEMBER_RO key member radius M|KM|FT|MI [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] [ASC|DESC]

    GEORADIUSBYMEMBER without STORE.
    """
    return _search(session, b"GEORADIUSBYMEMBER_RO", args, RADIUS_MEMBER, store_allowed=False)


@command("geosearch", -7, keys=(1, 1, 1))
def geosearch(session: Session, args: list[bytes]) -> object:
    """GEOSEARCH key FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]

    The members within a circle or box around a member or a point.
    """
    return _search(session, b"GEOSEARCH", args, SEARCH, store_allowed=False)


@command("geosearchstore", -8, write=True, keys=(1, 2, 1), flags=("denyoom",))
def geosearchstore(session: Session, args: list[bytes]) -> object:
    """GEOSEARCHSTORE destination source FROMMEMBER member|FROMLONLAT longitude latitude BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] [COUNT count [ANY]] [STOREDIST]

    GEOSEARCH's members stored in destination (with STOREDIST, their
    distances as scores); how many.
    """
    return _search(session, b"GEOSEARCHSTORE", args, SEARCH, store_allowed=False, search_store=True)


def _radius_keys(args: list[bytes]) -> list[bytes]:
    """The key, and every STORE/STOREDIST key (Redis 7.0's key specs)."""
    keys = args[:1]
    i = 4
    while i < len(args):
        if args[i].lower() in (b"store", b"storedist") and i + 1 < len(args):
            keys.append(args[i + 1])
            i += 1
        i += 1
    return keys


KEY_FINDERS["georadius"] = _radius_keys
KEY_FINDERS["georadiusbymember"] = _radius_keys
