"""kvserver: an in-memory key-value server that speaks mini_redis's text
protocol, expires keys, and survives restarts through an append-only log."""

__version__ = "0.1.0"
