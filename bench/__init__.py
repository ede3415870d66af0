"""kv-bench: the load generator (installed as the package ``kvbench``).

``load`` is the one load loop; ``text`` and ``resp`` frame requests and split
replies for each protocol (no I/O in either); ``progress`` draws the bar;
``cli`` is the ``kv-bench`` command; ``compare`` is ``make bench``.
"""
