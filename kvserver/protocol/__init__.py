"""Wire formats, with no I/O in them.

Each parser is fed bytes (``feed(data)``) and hands out requests
(``next_request()``: a list of byte-string arguments, or ``NEED_DATA`` until a
whole request has arrived). Each encoder turns a reply value into bytes. The
network code and the log replay call these; nothing here touches a socket or
a file, so every rule can be tested byte by byte.

Reply values are plain Python objects, the same for every protocol:

=================  ==============================  =========================
value              RESP                            text line
=================  ==============================  =========================
``Status("OK")``   ``+OK``                         ``OK``
``bytes``          bulk string                     as is, or quoted
``int``            ``:N``                          ``N``
``None``           null bulk                       ``nil``
``list``           array                           items joined by spaces
``CommandError``   ``-ERR ...``                    ``ERR ...``
=================  ==============================  =========================
"""

from __future__ import annotations


class Status(str):
    """A simple-string reply (``+OK``), as opposed to a bulk string."""

    __slots__ = ()


OK = Status("OK")
PONG = Status("PONG")


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


# Returned by next_request() when the buffer holds no complete request yet.
NEED_DATA = _NeedData()
