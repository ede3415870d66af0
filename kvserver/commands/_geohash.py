"""The geohash arithmetic of Redis's GEO commands, with no values in it:
Redis's src/geohash.c, geohash_helper.c and the search part of geo.c,
ported line for line so every score, box and distance is the same double.

* A position is stored as a sorted-set score: a 52-bit integer, latitude
  and longitude each cut into 26 bits (``STEP_MAX``) and interleaved,
  latitude on the even bits (Redis's ``interleave64(lat, long)``).
* Latitudes are limited to +-85.05112878 (the Web Mercator square), not 90.
* Distances are haversine on a sphere of ``EARTH_RADIUS`` meters.
* A search covers the centre's box and its 8 neighbours at a step chosen
  from the radius (``areas``), walks each box's score range, and keeps the
  points inside the circle or rectangle (``points_in``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

LONG_MIN, LONG_MAX = -180.0, 180.0
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
STEP_MAX = 26  # 52 bits: a double holds the score exactly
EARTH_RADIUS = 6372797.560856  # Redis's EARTH_RADIUS_IN_METERS
MERCATOR_MAX = 20037726.37
_D_R = math.pi / 180.0
_U64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA
_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"

# Meters per unit (Redis's extractUnitOrReply).
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}


def _spread(value: int) -> int:
    """The low 32 bits of ``value`` on the even bits of a 64-bit word."""
    x = value & 0xFFFFFFFF
    x = (x | (x << 16)) & 0x0000FFFF0000FFFF
    x = (x | (x << 8)) & 0x00FF00FF00FF00FF
    x = (x | (x << 4)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x << 2)) & 0x3333333333333333
    return (x | (x << 1)) & _EVEN


def _gather(value: int) -> int:
    """The even bits of ``value``, packed into 32 bits (deinterleave64's half)."""
    x = value & _EVEN
    x = (x | (x >> 1)) & 0x3333333333333333
    x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0F
    x = (x | (x >> 4)) & 0x00FF00FF00FF00FF
    x = (x | (x >> 8)) & 0x0000FFFF0000FFFF
    return (x | (x >> 16)) & 0xFFFFFFFF


def encode(longitude: float, latitude: float, step: int = STEP_MAX,
           lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)) -> int:
    """geohashEncode: the ``2 * step`` bits of the cell holding the point."""
    lat_offset = (latitude - lat_range[0]) / (lat_range[1] - lat_range[0])
    long_offset = (longitude - LONG_MIN) / (LONG_MAX - LONG_MIN)
    lat_offset *= 1 << step
    long_offset *= 1 << step
    return _spread(int(lat_offset)) | (_spread(int(long_offset)) << 1)  # C's (uint32_t) truncates


def score_of(longitude: float, latitude: float) -> int:
    """The 52-bit score GEOADD stores (geohashAlign52Bits of the step-26 hash)."""
    return encode(longitude, latitude)


def decode_cell(bits: int, step: int) -> tuple[float, float, float, float]:
    """geohashDecode: the cell (long_min, long_max, lat_min, lat_max)."""
    ilato, ilono = _gather(bits), _gather(bits >> 1)
    lat_scale, long_scale = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN
    div = float(1 << step)
    return (
        LONG_MIN + (ilono * 1.0 / div) * long_scale,
        LONG_MIN + ((ilono + 1) * 1.0 / div) * long_scale,
        LAT_MIN + (ilato * 1.0 / div) * lat_scale,
        LAT_MIN + ((ilato + 1) * 1.0 / div) * lat_scale,
    )


def score_bits(score: float) -> int:
    """C's ``(uint64_t)score`` as gcc compiles it on x86-64, for any stored
    score: below 2**63 ``cvttsd2si`` (out of range: 2**63), else that of
    ``score - 2**63`` with the top bit flipped (so 2**64 and up give 0)."""
    if score < 2.0**63:
        return (1 << 63) if score < -(2.0**63) else int(score) & _U64
    if score >= 2.0**64:
        return 0
    return int(score)


def decode(score: float) -> tuple[float, float]:
    """decodeGeohash: the (longitude, latitude) a score stands for (the
    centre of its cell, clamped to the valid ranges)."""
    lo_x, hi_x, lo_y, hi_y = decode_cell(score_bits(score), STEP_MAX)
    x = min(max((lo_x + hi_x) / 2, LONG_MIN), LONG_MAX)
    y = min(max((lo_y + hi_y) / 2, LAT_MIN), LAT_MAX)
    return x, y


def hash_text(score: float) -> bytes:
    """GEOHASH's 11 characters: the position re-encoded with the standard
    latitude range -90..90."""
    x, y = decode(score)
    bits = encode(x, y, STEP_MAX, (-90.0, 90.0))
    # The 11th character's shift is -3: x86 masks a shift count to 6 bits,
    # so Redis shifts by 61 and always writes "0" there.
    return bytes(_ALPHABET[(bits >> ((52 - (i + 1) * 5) & 63)) & 0x1F] for i in range(11))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance: haversine, in meters."""
    lat1r, lon1r = lat1 * _D_R, lon1 * _D_R
    lat2r, lon2r = lat2 * _D_R, lon2 * _D_R
    u = math.sin((lat2r - lat1r) / 2)
    v = math.sin((lon2r - lon1r) / 2)
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(u * u + math.cos(lat1r) * math.cos(lat2r) * v * v))


# -- the search -----------------------------------------------------------------------


class Shape:
    """Redis's GeoShape: a centre and a circle (radius) or a box (width,
    height), in ``conversion`` meters per unit."""

    __slots__ = ("x", "y", "radius", "width", "height", "conversion", "box")

    def __init__(self) -> None:
        self.x = self.y = 0.0
        self.radius = self.width = self.height = 0.0
        self.conversion = 1.0
        self.box = False

    def contains(self, x: float, y: float) -> float | None:
        """The distance (meters) from the centre to a point inside, or None."""
        if not self.box:
            dist = distance(self.x, self.y, x, y)
            return None if dist > self.radius * self.conversion else dist
        # geohashGetDistanceIfInRectangle
        lon_distance = distance(x, y, self.x, y)
        lat_distance = distance(x, y, x, self.y)
        if lon_distance > self.width * self.conversion / 2 or lat_distance > self.height * self.conversion / 2:
            return None
        return distance(self.x, self.y, x, y)

    def bounds(self) -> tuple[float, float, float, float]:
        """geohashBoundingBox: (min_lon, min_lat, max_lon, max_lat)."""
        height = self.conversion * (self.height / 2 if self.box else self.radius)
        width = self.conversion * (self.width / 2 if self.box else self.radius)
        lat_delta = (height / EARTH_RADIUS) / _D_R
        long_delta_top = (width / EARTH_RADIUS / math.cos((self.y + lat_delta) * _D_R)) / _D_R
        long_delta_bottom = (width / EARTH_RADIUS / math.cos((self.y - lat_delta) * _D_R)) / _D_R
        delta = long_delta_bottom if self.y < 0 else long_delta_top
        return self.x - delta, self.y - lat_delta, self.x + delta, self.y + lat_delta


def _steps(range_meters: float, lat: float) -> int:
    """geohashEstimateStepsByRadius."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), 26)


def _move(bits: int, step: int, dx: int, dy: int) -> int:
    """geohash_move_x / geohash_move_y: the neighbouring cell."""
    if dx:
        x, y = bits & _ODD, bits & _EVEN
        zz = _EVEN >> (64 - step * 2)
        x = x + (zz + 1) if dx > 0 else (x | zz) - (zz + 1)
        bits = ((x & _U64) & (_ODD >> (64 - step * 2))) | y
    if dy:
        x, y = bits & _ODD, bits & _EVEN
        zz = _ODD >> (64 - step * 2)
        y = y + (zz + 1) if dy > 0 else (y | zz) - (zz + 1)
        bits = x | ((y & _U64) & (_EVEN >> (64 - step * 2)))
    return bits


# Redis's neighbour order in membersOfAllNeighbors, after the centre.
_NEIGHBOURS = (("north", 0, 1), ("south", 0, -1), ("east", 1, 0), ("west", -1, 0),
               ("north_east", 1, 1), ("north_west", -1, 1), ("south_east", 1, -1), ("south_west", -1, -1))


def areas(shape: Shape) -> list[tuple[int, int] | None]:
    """geohashCalculateAreasByShapeWGS84: the centre cell and its 8
    neighbours as (bits, step), None for a neighbour left out."""
    min_lon, min_lat, max_lon, max_lat = shape.bounds()
    if shape.box:
        radius = math.sqrt((shape.width / 2) ** 2 + (shape.height / 2) ** 2)
    else:
        radius = shape.radius
    steps = _steps(radius * shape.conversion, shape.y)
    for attempt in (0, 1):
        bits = encode(shape.x, shape.y, steps)
        cells = {name: _move(bits, steps, dx, dy) for name, dx, dy in _NEIGHBOURS}
        area = decode_cell(bits, steps)
        if attempt:
            break
        north, south = decode_cell(cells["north"], steps), decode_cell(cells["south"], steps)
        east, west = decode_cell(cells["east"], steps), decode_cell(cells["west"], steps)
        decrease = north[3] < max_lat or south[2] > min_lat or east[1] < max_lon or west[0] > min_lon
        if not (steps > 1 and decrease):
            break
        steps -= 1
    dropped: set[str] = set()
    if steps >= 2:
        if area[2] < min_lat:
            dropped |= {"south", "south_west", "south_east"}
        if area[3] > max_lat:
            dropped |= {"north", "north_east", "north_west"}
        if area[0] < min_lon:
            dropped |= {"west", "south_west", "north_west"}
        if area[1] > max_lon:
            dropped |= {"east", "south_east", "north_east"}
    result: list[tuple[int, int] | None] = [(bits, steps)]
    for name, _, _ in _NEIGHBOURS:
        result.append(None if name in dropped else (cells[name], steps))
    return result


def points_in(shape: Shape, score_range: Callable[[int, int], Iterable[tuple[float, bytes]]],
              limit: int = 0) -> list[tuple[float, bytes, float, float, float]]:
    """membersOfAllNeighbors: the points inside ``shape`` as (distance in
    meters, member, score, longitude, latitude), box by box in Redis's
    order; ``score_range(min, max)`` yields the (score, member) pairs with
    min <= score < max. ``limit`` (COUNT ANY) stops the walk once that many
    are found."""
    found: list[tuple[float, bytes, float, float, float]] = []
    cells = areas(shape)
    last = None  # the last neighbour walked (Redis never compares with the centre)
    for index, cell in enumerate(cells):
        if cell is None:
            continue
        if last is not None and cell == last:  # a huge radius: neighbours can coincide
            continue
        if found and limit and len(found) >= limit:
            break
        bits, step = cell
        low = bits << (52 - step * 2)
        high = (bits + 1) << (52 - step * 2)
        for score, member in score_range(low, high):
            x, y = decode(score)
            dist = shape.contains(x, y)
            if dist is None:
                continue
            found.append((dist, member, score, x, y))
            if limit and len(found) >= limit:
                break
        if index:
            last = cell
    return found
