"""Tests for kvserver/commands/geo.py and _geohash.py: GEO on sorted sets.

* harness tests (``kv``): GEOADD logged as the ZADD Redis rewrites it into,
  the STORE forms logged as issued, a failed log append rolled back
  exactly, the replay;
* side by side with redis-server 7.0: scores, positions, hashes, distances
  and every search option and error, byte for byte, RESP2 and RESP3;
* redis-py's geo methods against the RESP port, RESP2 and RESP3.
"""

from __future__ import annotations

import random

import pytest
import redis

from tests.support import dump, resp, replayed

SELECT0 = resp("SELECT", "0")

SICILY = ["13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]


@pytest.fixture
def kv(failing_kv):
    return failing_kv


# -- harness --------------------------------------------------------------------------------


def test_geoadd_is_a_zadd_of_geohash_scores_and_logs_as_one(kv):
    assert kv("GEOADD", "Sicily", *SICILY) == 2
    assert kv("ZSCORE", "Sicily", "Palermo") == 3479099956230698.0
    assert kv("GEOADD", "Sicily", "NX", "CH", "13.361389", "38.115556", "Palermo") == 0  # nothing: not logged
    assert kv("GEOADD", "Sicily", "xx", "CH", "13.361389", "38.2", "Palermo") == 1
    assert kv("GEODIST", "Sicily", "Palermo", "Catania", "km") == b"170.2626"
    assert kv.log() == SELECT0 + (
        resp("zadd", "Sicily", "3479099956230698", "Palermo", "3479447370796909", "Catania")
        + resp("zadd", "Sicily", "xx", "CH", "3479101030759983", "Palermo")
    )


def test_store_forms_log_as_issued_only_when_they_change_something(kv):
    kv("GEOADD", "Sicily", *SICILY)
    search = ("FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC")
    assert kv("GEOSEARCHSTORE", "d", "Sicily", *search, "STOREDIST") == 2
    assert kv("ZRANGE", "d", "0", "-1", "WITHSCORES") == [b"Catania", 56.4412578701582, b"Palermo", 190.44242984775784]
    assert kv("GEORADIUS", "Sicily", "15", "37", "1", "km", "STORE", "d") == 0  # deletes d: logged
    assert kv("GEORADIUS", "Sicily", "15", "37", "1", "km", "STORE", "d") == 0  # nothing to delete
    assert kv("GEOSEARCH", "Sicily", *search) == [b"Catania", b"Palermo"]
    assert kv("GEORADIUSBYMEMBER", "nokey", "x", "1", "km", "STORE", "d") == 0
    assert kv("GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STORE", "e") == 2
    assert kv("ZSCORE", "e", "Catania") == 3479447370796909.0
    assert kv.log() == SELECT0 + (
        resp("zadd", "Sicily", "3479099956230698", "Palermo", "3479447370796909", "Catania")
        + resp("GEOSEARCHSTORE", "d", "Sicily", *search, "STOREDIST")
        + resp("GEORADIUS", "Sicily", "15", "37", "1", "km", "STORE", "d")
        + resp("GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STORE", "e")
    )


def test_failed_log_append_rolls_geo_writes_back(kv):
    kv("GEOADD", "Sicily", *SICILY)
    kv("SET", "d", "x")
    before = dump(kv.keyspace)
    kv.aof.failing = True
    for args in [
        ("GEOADD", "Sicily", "1", "2", "new", "3", "4", "Palermo"),
        ("GEOSEARCHSTORE", "d", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "900", "900", "km"),
        ("GEOSEARCHSTORE", "d", "nokey", "FROMMEMBER", "Palermo", "BYBOX", "900", "900", "km"),
        ("GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "d"),
        ("GEORADIUSBYMEMBER", "Sicily", "Palermo", "200", "km", "STORE", "Sicily"),
    ]:
        reply = kv(*args)
        assert reply.message.startswith("MISCONF"), args
        assert dump(kv.keyspace) == before, args


def test_replay_rebuilds_the_same_geo_sets(kv):
    rng = random.Random(15)
    for i in range(150):
        x, y = "%.6f" % rng.uniform(-180, 180), "%.6f" % rng.uniform(-85, 85)
        op = rng.randrange(4)
        if op < 2:
            kv("GEOADD", "g", rng.choice(["NX", "XX", "CH"]), x, y, "m%d" % rng.randrange(40))
        elif op == 2:
            kv("GEOSEARCHSTORE", "s", "g", "FROMLONLAT", x, y, "BYRADIUS", "3000", "km", "STOREDIST")
        else:
            kv("GEORADIUS", "g", x, y, "5000", "km", "COUNT", "3", "STORE", "r")
    kv.aof.close()
    assert dump(replayed(kv)) == dump(kv.keyspace)


# -- side by side -----------------------------------------------------------------------------

PLACES = ["13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania",
          "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2",
          "-73.9454966", "40.747533", "nyc", "0", "0", "origin", "180", "85.05112878", "corner",
          "-180", "-85.05112878", "corner2", "139.6917", "35.6895", "tokyo", "13.5", "38.2", "near"]


def test_side_by_side_scores_positions_hashes_distances(side_by_side):
    sb = side_by_side
    sb.both("GEOADD", "g", *PLACES)
    rng = random.Random(3)
    points = []
    for i in range(200):
        points += ["%.7f" % rng.uniform(-180, 180), "%.7f" % rng.uniform(-85.05, 85.05), "p%d" % i]
    sb.both("GEOADD", "r", *points)
    sb.both("ZRANGE", "r", "0", "-1", "WITHSCORES")
    sb.both("ZRANGE", "g", "0", "-1", "WITHSCORES")
    names = [PLACES[i] for i in range(2, len(PLACES), 3)]
    sb.both("GEOPOS", "g", *names, "missing")
    sb.both("GEOHASH", "g", *names, "missing")
    sb.both("GEOPOS", "r", *["p%d" % i for i in range(200)])
    sb.both("GEOHASH", "r", *["p%d" % i for i in range(200)])
    sb.both("GEOPOS", "nokey", "a", "b")
    sb.both("GEOHASH", "nokey", "a")
    sb.both("GEOPOS", "g")
    for unit in ["m", "km", "ft", "mi", "KM", "Mi"]:
        sb.both("GEODIST", "g", "Palermo", "Catania", unit)
    for a, b in [("nyc", "tokyo"), ("corner", "corner2"), ("origin", "origin"), ("edge1", "edge2"), ("x", "Palermo")]:
        sb.both("GEODIST", "g", a, b)
    for i in range(0, 200, 2):
        sb.both("GEODIST", "r", "p%d" % i, "p%d" % (i + 1), "km")
    sb.both("GEODIST", "nokey", "a", "b")
    sb.both("ZADD", "g", "-5", "neg", "1e300", "huge", "4503599627370496", "big")  # not geohashes
    sb.both("GEOPOS", "g", "neg", "huge", "big")
    sb.both("GEOHASH", "g", "neg", "huge", "big")
    sb.both("GEODIST", "g", "neg", "big")
    sb.both("ZADD", "h", "-1e300", "a", "inf", "b", "-inf", "c", "1.5e19", "d", "-9.3e18", "e")
    sb.both("GEOPOS", "h", "a", "b", "c", "d", "e")


def test_side_by_side_geoadd_options_and_errors(side_by_side):
    sb = side_by_side
    for args in [("GEOADD", "g", *PLACES[:6]), ("GEOADD", "g", "NX", "1", "2", "Palermo", "3", "4", "x"),
                 ("GEOADD", "g", "XX", "1", "2", "Palermo", "3", "4", "y"), ("GEOADD", "g", "CH", "XX", "5", "6", "Palermo"),
                 ("GEOADD", "g", "NX", "XX", "1", "2", "z"), ("GEOADD", "g", "1", "2"), ("GEOADD", "g", "1", "2", "a", "3"),
                 ("GEOADD", "g", "GT", "1", "2", "a"), ("GEOADD", "g", "CH", "CH", "CH"), ("GEOADD", "g", "NX", "NX", "NX"),
                 ("GEOADD", "g", "200", "10", "x"), ("GEOADD", "g", "10", "86", "x"), ("GEOADD", "g", "-180.5", "-86", "x"),
                 ("GEOADD", "g", "abc", "10", "x"), ("GEOADD", "g", "1", " 2", "x"), ("GEOADD", "g", "nan", "1", "x"),
                 ("GEOADD", "g", "1", "2", "ok", "500", "1", "bad"), ("ZCARD", "g"), ("GEOADD", "g", "1", "2"),
                 ("SET", "str", "v"), ("GEOADD", "str", "1", "2", "a"), ("GEOPOS", "str", "a"), ("GEOHASH", "str", "a"),
                 ("GEODIST", "str", "a", "b"), ("GEOSEARCH", "str", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "m"),
                 ("GEODIST", "g", "a"), ("GEODIST", "g", "a", "b", "c", "d"), ("GEODIST", "g", "Palermo", "Catania", "yd"),
                 ("GEOADD", "g", "0x10", "1e1", "hexy"), ("GEOPOS", "g", "hexy"), ("GEOADD", "g")]:
        sb.both(*args)


SEARCHES = [
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "DESC", "WITHCOORD", "WITHDIST", "WITHHASH"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYBOX", "300", "90", "mi", "ASC", "WITHDIST"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "0", "m", "WITHDIST"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "1"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "COUNT", "1", "DESC"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "20000", "km", "COUNT", "3", "ANY", "ASC"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "20000", "km", "ASC", "COUNT", "100", "WITHDIST"),
    ("GEOSEARCH", "g", "FROMLONLAT", "0", "85", "BYRADIUS", "5000", "km", "ASC", "WITHDIST"),
    ("GEOSEARCH", "g", "FROMLONLAT", "-179.9", "-85", "BYBOX", "20000", "500", "km", "ASC", "WITHDIST"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "ft"),
    ("GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"),
    ("GEOSEARCH", "g", "BYRADIUS", "100", "km", "ASC"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "ASC", "DESC"),
    ("GEOSEARCH", "nokey", "FROMLONLAT", "15", "37", "ASC", "DESC"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "100", "km", "ANY"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "100", "km", "STOREDIST"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "100", "km", "STORE", "x"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "FROMMEMBER", "Palermo", "BYRADIUS", "100", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "100", "km", "BYBOX", "1", "1", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "-1", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "x", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "yd"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "-1", "2", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "x", "2", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYBOX", "1", "x", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "100", "km", "COUNT", "0"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "100", "km", "COUNT", "x"),
    ("GEOSEARCH", "g", "FROMLONLAT", "200", "37", "BYRADIUS", "100", "km"),
    ("GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "100", "km", "COUNT"),
    ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "300", "km", "WITHDIST"),
    ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "300", "km", "STOREDIST", "COUNT", "1"),
    ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    ("GEOSEARCHSTORE", "d", "g", "FROMMEMBER", "Catania", "BYBOX", "1000", "1000", "km", "DESC"),
    ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    ("GEOSEARCHSTORE", "d", "nokey", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"),
    ("EXISTS", "d"),
    ("GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"),
    ("GEORADIUS", "g", "15", "37", "200", "km"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "WITHDIST", "WITHCOORD", "WITHHASH", "ASC"),
    ("GEORADIUS", "g", "15", "37", "2000", "km", "COUNT", "2", "DESC"),
    ("GEORADIUS", "g", "15", "37", "2000", "km", "COUNT", "2", "ANY"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "e", "WITHDIST"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "e"),
    ("ZRANGE", "e", "0", "-1", "WITHSCORES"),
    ("GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "e", "ASC"),
    ("ZRANGE", "e", "0", "-1", "WITHSCORES"),
    ("GEORADIUS", "g", "15", "37", "-3", "km"),
    ("GEORADIUS", "g", "15", "37", "3", "yd"),
    ("GEORADIUS", "g", "15", "100", "3", "km"),
    ("GEORADIUS", "g", "15", "37", "3", "km", "BYBOX", "1", "1", "km"),
    ("GEORADIUS", "g", "15", "37", "3", "km", "FROMMEMBER", "x"),
    ("GEORADIUS", "nokey", "15", "37", "3", "km"),
    ("GEORADIUS", "nokey", "15", "37", "3", "km", "STORE", "e"),
    ("EXISTS", "e"),
    ("GEORADIUSBYMEMBER", "g", "Palermo", "200", "km", "WITHDIST", "ASC"),
    ("GEORADIUSBYMEMBER", "g", "nope", "200", "km"),
    ("GEORADIUSBYMEMBER", "nokey", "nope", "abc", "xyz"),
    ("GEORADIUSBYMEMBER", "nokey", "nope", "abc", "xyz", "BAD"),
    ("GEORADIUSBYMEMBER", "g", "Palermo", "200", "km", "STOREDIST", "f", "DESC"),
    ("ZRANGE", "f", "0", "-1", "WITHSCORES"),
    ("GEORADIUS_RO", "g", "15", "37", "200", "km", "WITHDIST", "ASC"),
    ("GEORADIUS_RO", "g", "15", "37", "200", "km", "STORE", "x"),
    ("GEORADIUSBYMEMBER_RO", "g", "Catania", "200", "km", "WITHCOORD", "ASC"),
    ("GEORADIUSBYMEMBER_RO", "g", "Catania", "200", "km", "STOREDIST", "x"),
    ("COMMAND", "GETKEYS", "GEORADIUS", "g", "1", "2", "3", "km", "STORE", "a", "STOREDIST", "b"),
    ("COMMAND", "GETKEYS", "GEOSEARCHSTORE", "d", "g", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km"),
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_side_by_side_searches(side_by_side, protocol):
    sb = side_by_side
    if protocol == 3:
        sb.kv.call("HELLO", "3")
        sb.redis.call("HELLO", "3")
    sb.both("GEOADD", "g", *PLACES)
    for args in SEARCHES:
        sb.both(*args)


def test_side_by_side_random_searches_match(side_by_side):
    """Many points and searches of every size: the same members, distances
    and order as Redis's neighbour-box walk."""
    sb = side_by_side
    rng = random.Random(11)
    points = []
    for i in range(400):
        points += ["%.6f" % rng.uniform(5, 25), "%.6f" % rng.uniform(30, 50), "p%d" % i]
    for i in range(100):
        points += ["%.6f" % rng.uniform(-180, 180), "%.6f" % rng.uniform(-85, 85), "w%d" % i]
    sb.both("GEOADD", "g", *points)
    for _ in range(60):
        x, y = "%.5f" % rng.uniform(0, 30), "%.5f" % rng.uniform(25, 55)
        radius = "%.3f" % rng.choice([rng.uniform(0, 50), rng.uniform(0, 500), rng.uniform(0, 8000)])
        sb.both("GEOSEARCH", "g", "FROMLONLAT", x, y, "BYRADIUS", radius, "km", "ASC", "WITHDIST", "WITHHASH")
        sb.both("GEOSEARCH", "g", "FROMLONLAT", x, y, "BYBOX", radius, "%.2f" % rng.uniform(0, 900), "km",
                "DESC", "WITHDIST", "WITHCOORD")
        sb.both("GEORADIUS", "g", x, y, radius, "mi", "COUNT", "7", "WITHDIST")
        sb.both("GEOSEARCH", "g", "FROMMEMBER", "p%d" % rng.randrange(400), "BYRADIUS", radius, "km", "ASC")


def test_side_by_side_command_info(side_by_side):
    from tests.test_commands_zsets import _fields

    sb = side_by_side
    for name in ["geoadd", "geodist", "geohash", "geopos", "geosearch", "geosearchstore", "georadius",
                 "georadiusbymember", "georadius_ro", "georadiusbymember_ro"]:
        ours, theirs = sb.each("COMMAND", "INFO", name)
        assert _fields(ours, 6) == _fields(theirs, 6), name


# -- redis-py ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_geo_methods(start_server, protocol):
    server = start_server()
    r = redis.Redis(port=server.resp_port, protocol=protocol)
    assert r.geoadd("Sicily", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]) == 2
    assert r.geoadd("Sicily", [13.361389, 38.115556, "Palermo"], nx=True) == 0
    assert r.geodist("Sicily", "Palermo", "Catania") == 166274.1516
    assert r.geodist("Sicily", "Palermo", "Catania", unit="km") == 166.2742
    hashes = r.geohash("Sicily", "Palermo", "nope")  # redis-py decodes them in RESP2 only
    assert [h.decode() if isinstance(h, bytes) else h for h in hashes] == ["sqc8b49rny0", None]
    (lon, lat), missing = r.geopos("Sicily", "Palermo", "nope")
    assert (round(lon, 6), round(lat, 6), missing) == (13.361389, 38.115556, None)
    assert r.geosearch("Sicily", longitude=15, latitude=37, radius=200, unit="km", sort="ASC") == [b"Catania", b"Palermo"]
    found = r.geosearch("Sicily", member="Palermo", width=400, height=400, unit="km", withdist=True, sort="DESC")
    assert [(m, d) for m, d in found] == [(b"Catania", 166.2742), (b"Palermo", 0.0)]
    assert r.georadius("Sicily", 15, 37, 200, unit="km", count=1) == [b"Catania"]
    assert r.georadiusbymember("Sicily", "Palermo", 10, unit="km") == [b"Palermo"]
    assert r.geosearchstore("dst", "Sicily", longitude=15, latitude=37, radius=200, unit="km", storedist=True) == 2
    assert round(r.zscore("dst", "Catania"), 4) == 56.4413
    assert r.georadius("Sicily", 15, 37, 200, unit="km", store="dst2") == 2
    assert r.zscore("dst2", "Palermo") == 3479099956230698.0
