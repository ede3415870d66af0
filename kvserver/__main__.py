"""``python -m kvserver``: the same as the ``kvserver`` command."""

from kvserver.cli import kvserver_main

kvserver_main()
