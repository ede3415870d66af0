"""The Lua bridge: EVAL scripts and FUNCTION libraries, as Redis 7.0 runs them.

* ``engine.py``: the Lua states (real Lua 5.1, embedded by lupa), their
  sandbox, ``redis.call`` and friends, the busy-script watch and SCRIPT KILL.
* ``convert.py``: reply values <-> Lua values, both ways, RESP2 and RESP3.
* ``libs.py``: the ``cjson`` and ``bit`` libraries scripts expect.
* ``functions.py``: function libraries (``#!lua name=...``), their registry
  on the keyspace, FUNCTION DUMP / RESTORE's payload.

Rules: Lua runs only with ``Engine.lock`` held (a Lua state is not thread
safe), and a script's commands run inside ``Dispatcher.run_atomic``, so a
script is one atomic unit whose *effects* are logged. The engine lives on
the keyspace (``engine_for``): scripts and libraries are server-wide.
"""

from __future__ import annotations

from kvserver.scripting.engine import Busy, Engine, engine_for

__all__ = ["Busy", "Engine", "engine_for"]
