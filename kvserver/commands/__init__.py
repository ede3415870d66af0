"""Every command, one small function each, grouped by what they act on.

``registry.COMMANDS`` is the one table of commands; importing this package
fills it. Where does EXPIRE live? ``keyspace.py``. SET? ``strings.py``.
"""

from kvserver.commands import connection, keyspace, strings  # noqa: F401  (registers them)
from kvserver.commands.registry import COMMANDS, Command

__all__ = ["COMMANDS", "Command"]
