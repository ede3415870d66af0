"""Every command, one small function each, grouped by what they act on.

``registry.COMMANDS`` is the one table of commands; importing this package
fills it. Where does EXPIRE live? ``keyspace.py``. SET? ``strings.py``.
HELLO and CLIENT? ``connection.py``. INFO, CONFIG, COMMAND? ``server.py``.
"""

from kvserver.commands import connection, keyspace, persistence, server, strings  # noqa: F401  (registers them)
from kvserver.commands.registry import COMMANDS, Command

__all__ = ["COMMANDS", "Command"]
