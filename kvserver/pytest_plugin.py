"""pytest fixtures for code that talks to Redis, on a kvserver (installed
with the package: the ``pytest11`` entry point ``kvserver``; with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, enable it with ``-p kvserver``).

``kvserver``
    Function-scoped: the session's server (``kvserver_session``), FLUSHALLed
    before the test, so every test starts empty and none pays for a start.
    ``.url`` ("redis://127.0.0.1:PORT/0"), ``.port`` (RESP), ``.text_port``,
    ``.client`` (a ready ``redis.Redis``), ``.server`` (the ``kvserver.run``
    handle).
``kvserver_session``
    Session-scoped: the same object, never flushed (share data across tests,
    or flush yourself).
``kvserver_factory``
    ``kvserver_factory(**options)`` starts a server of the test's own (the
    options of ``kvserver.run``: ``aof=``, ``subprocess=True``,
    ``appendfsync=``, ``requirepass=``...); all are stopped at teardown.

::

    def test_counter(kvserver):
        kvserver.client.incr("hits")
        assert kvserver.client.get("hits") == b"1"

Importing this module costs only pytest's own import: ``kvserver.api`` and
redis-py are imported when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


class KvServerFixture:
    """What the fixtures give a test: where the server is, and a client."""

    def __init__(self, server) -> None:
        self.server = server  # kvserver.api.RunningServer
        self._client = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def text_port(self) -> int:
        return self.server.text_port

    @property
    def client(self):
        """A ``redis.Redis`` on the RESP port, made on first use and shared."""
        if self._client is None:
            self._client = self.server.client()
        return self._client

    def flushall(self) -> None:
        self.client.flushall()

    def stop(self) -> None:
        self.server.stop()


def _start(**options) -> KvServerFixture:
    from kvserver.api import start

    return KvServerFixture(start(**options))


@pytest.fixture(scope="session")
def kvserver_session() -> Iterator[KvServerFixture]:
    """A kvserver on free ports (a thread of this process, a temporary log)
    for the whole test session."""
    fixture = _start()
    try:
        yield fixture
    finally:
        fixture.stop()


@pytest.fixture
def kvserver(kvserver_session: KvServerFixture) -> KvServerFixture:
    """The session's kvserver, emptied (FLUSHALL) before this test."""
    kvserver_session.flushall()
    return kvserver_session


@pytest.fixture
def kvserver_factory() -> Iterator:
    """``kvserver_factory(**options)`` -> a new server's fixture object; all
    of them stopped at teardown."""
    started: list[KvServerFixture] = []

    def factory(**options) -> KvServerFixture:
        fixture = _start(**options)
        started.append(fixture)
        return fixture

    yield factory
    errors = []
    for fixture in started:
        try:
            fixture.stop()
        except Exception as exc:  # stop the others all the same
            errors.append(exc)
    if errors:
        raise errors[0]
