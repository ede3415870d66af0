"""Every command, one small function each, grouped by what they act on.

``registry.COMMANDS`` is the one table of commands; importing this package
fills it. Where does a command live?

* EXPIRE, DEL, KEYS, SCAN ...: ``keyspace.py``; SET, GET, INCR ...: ``strings.py``
* SADD, SMEMBERS, SINTER, SSCAN ...: ``sets.py``
* OBJECT (ENCODING, REFCOUNT, IDLETIME, FREQ): ``objectcmd.py``
* HSET, HGET, HSCAN ...: ``hashes.py``
* HELLO, AUTH, CLIENT ...: ``connection.py``; BGREWRITEAOF: ``persistence.py``
* COMMAND (INFO, DOCS, LIST, ...): ``introspection.py``
* CONFIG (GET, SET, ...) and its settings table: ``configcmd.py``
* INFO and its sections: ``info.py``
* TIME, LASTSAVE, SAVE, BGSAVE, WAIT, ROLE, DEBUG, MEMORY: ``server.py``
* SLOWLOG (GET, LEN, RESET): ``slowlog.py``
* MONITOR and its feed: ``monitor.py``
* (P|S)SUBSCRIBE, PUBLISH, PUBSUB ...: ``pubsub.py`` (the registry: kvserver/pubsub.py)
* MULTI, EXEC, DISCARD, WATCH, UNWATCH: ``transactions.py``
* SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD: ``bitmaps.py``; LCS: ``lcs.py``
* EVAL, EVALSHA, SCRIPT: ``scripting.py``; FUNCTION, FCALL: ``functions.py``
  (the Lua side is the package kvserver/scripting)
* LPUSH, LPOP, LRANGE, LMOVE ... (lists): ``lists.py``
* PFADD, PFCOUNT, PFMERGE: ``hyperloglog.py`` (the representation: kvserver/hll.py)
* ZADD, ZRANGE, ZUNIONSTORE ... (sorted sets): ``zsets.py``
* GEOADD, GEOSEARCH, GEORADIUS ... (on sorted sets): ``geo.py`` (the math: ``_geohash.py``)
* SORT, SORT_RO: ``sort.py``
* XADD, XRANGE, XREADGROUP, XINFO ... (streams): ``streams.py``
* DUMP, RESTORE (Redis's RDB payload, kvserver/rdb.py): ``dump.py``
* BLPOP, BLMOVE, BZPOPMIN ... (blocking; the waiting: kvserver/blocking.py): ``blocking.py``
"""

# Keep this order (not alphabetical): it is the order of COMMANDS, which
# COMMAND and COMMAND LIST report.
from kvserver.commands import (  # noqa: F401  (registers them)
    connection,
    keyspace,
    persistence,
    introspection,
    configcmd,
    info,
    server,
    strings,
    slowlog,
    monitor,
    transactions,
    scripting,
    functions,
    lists,
    sets,
    objectcmd,
    hyperloglog,
    bitmaps,
    lcs,
    hashes,
    zsets,
    pubsub,
    geo,
    sort,
    streams,
    dump,
    blocking,
)
from kvserver.commands.registry import COMMANDS, Command

__all__ = ["COMMANDS", "Command"]
