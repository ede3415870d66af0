"""The protocols a port can speak, as the network code sees them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kvserver.config import MAX_INLINE_BYTES
from kvserver.protocol import resp, text


@dataclass(frozen=True)
class WireProtocol:
    name: str
    new_parser: Callable[[int], object]  # max inline line -> parser
    encode_reply: Callable[[object], bytes]
    greeting: bytes  # sent when a client connects


TEXT = WireProtocol("text", lambda max_line=MAX_INLINE_BYTES: text.TextParser(max_line), text.encode_reply, text.GREETING)
RESP = WireProtocol(
    "resp", lambda max_line=MAX_INLINE_BYTES: resp.RespParser(max_inline=max_line), resp.encode_reply, b""
)
