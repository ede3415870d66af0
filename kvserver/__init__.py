"""kvserver: an in-memory key-value server that speaks mini_redis's text
protocol, expires keys, and survives restarts through an append-only log."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # kvserver.run (kvserver/api.py) imported on first use: `import kvserver`
    # stays as cheap as this file, for the CLI and the pytest plugin.
    if name == "run":
        from kvserver.api import run

        return run
    raise AttributeError(f"module 'kvserver' has no attribute {name!r}")
