"""Operator tools that run beside a kvserver, not inside it: ``kv-cluster``
(shards behind twemproxy, cluster.py) and ``kv-check-aof`` (check and
repair a log, checkaof.py). They use the server's modules; the server never
imports them."""
