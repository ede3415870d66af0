"""Testing code that uses Redis against kvserver: `pip install kvserver redis`,
then `pytest` finds the fixtures by itself (kvserver's pytest plugin)."""


def test_counter(kvserver):  # the session's server, emptied before each test
    r = kvserver.client  # a redis.Redis on kvserver.url
    assert r.incr("hits") == 1
    assert r.incr("hits") == 2


def test_each_test_starts_empty(kvserver):
    assert kvserver.client.dbsize() == 0


def test_a_server_of_its_own(kvserver_factory, tmp_path):
    srv = kvserver_factory(aof=tmp_path / "app.aof", appendfsync="always")
    srv.client.rpush("jobs", "a", "b")
    assert srv.client.lrange("jobs", 0, -1) == [b"a", b"b"]
    assert srv.port != 0 and srv.url.startswith("redis://127.0.0.1:")
