"""Redis's RDB format, sans I/O: values to bytes and bytes to values.

What it reads and writes (Redis 7.0's src/rdb.c, rdb.h, listpack.c,
ziplist.c, intset.c, lzf_d.c):

* files: ``REDIS0010`` (Redis 7.0; 9, Redis 6.2's, and older are read
  too), aux fields, function libraries (FUNCTION2), SELECTDB, RESIZEDB,
  expiry times (ms, and the old seconds form), LRU/LFU hints (read and
  dropped), EOF and the CRC64 trailer (0: not checked, as Redis);
* values, written the way Redis 7.0 writes them: strings (an integer that
  fits 32 bits integer-encoded, the rest raw: kvserver never compresses,
  and reads LZF), lists as a quicklist of listpacks (18), hashes as a
  listpack (16) or a hash table (4), sets as an intset (11) or a hash
  table (2), sorted sets as a listpack (17) or a skiplist with binary
  doubles (5), streams as listpacks with groups, consumers and PELs (19);
  read also: the ziplist forms (10, 12, 13, 14), the plain old types
  (0-4), streams of Redis 5-6 (15);
* DUMP payloads: a value, the RDB version (2 bytes) and a CRC64, all
  little-endian.

Every malformed input raises ``RdbError`` (``EmptyKeyError``, a subclass,
for a container with nothing in it, which Redis skips when it loads a file
and refuses in RESTORE), never anything else: the readers catch the
lookup and arithmetic errors a truncated or lying input causes and turn
them into it. Time is not read here: callers pass ``now`` where it matters.
"""

from __future__ import annotations

import anycrc

import math
import struct
from collections.abc import Callable, Iterator

from kvserver.values import Hash, List, Set, Stream, Zset
from kvserver.values.sets import is_int64
from kvserver.values.streams import INVALID_ENTRIES_READ, SEQ_BITS, SEQ_MASK, Nack, Undo

RDB_VERSION = 10  # Redis 7.0's: what kvserver writes and the newest it reads
MAGIC = b"REDIS"

# Value types (rdb.h).
TYPE_STRING = 0
TYPE_LIST = 1
TYPE_SET = 2
TYPE_ZSET = 3
TYPE_HASH = 4
TYPE_ZSET_2 = 5
TYPE_MODULE = 6
TYPE_MODULE_2 = 7
TYPE_HASH_ZIPMAP = 9
TYPE_LIST_ZIPLIST = 10
TYPE_SET_INTSET = 11
TYPE_ZSET_ZIPLIST = 12
TYPE_HASH_ZIPLIST = 13
TYPE_LIST_QUICKLIST = 14
TYPE_STREAM_LISTPACKS = 15
TYPE_HASH_LISTPACK = 16
TYPE_ZSET_LISTPACK = 17
TYPE_LIST_QUICKLIST_2 = 18
TYPE_STREAM_LISTPACKS_2 = 19

# Opcodes (rdb.h).
OPCODE_FUNCTION2 = 245
OPCODE_FUNCTION = 246  # a pre-GA form Redis 7.0 itself refuses
OPCODE_MODULE_AUX = 247
OPCODE_IDLE = 248
OPCODE_FREQ = 249
OPCODE_AUX = 250
OPCODE_RESIZEDB = 251
OPCODE_EXPIRETIME_MS = 252
OPCODE_EXPIRETIME = 253
OPCODE_SELECTDB = 254
OPCODE_EOF = 255

# String encodings, under the 0b11 length prefix.
ENC_INT8 = 0
ENC_INT16 = 1
ENC_INT32 = 2
ENC_LZF = 3

QUICKLIST_NODE_PLAIN = 1  # quicklist.h: a node holding one big element
QUICKLIST_NODE_PACKED = 2  # ...or a listpack

# A listpack node of a list holds at most this many bytes: Redis's
# list-max-listpack-size -2 (its default), quicklist.c's optimization_level.
LIST_NODE_MAX_BYTES = 8192
# Redis's stream-node-max-entries: entries per listpack of a stream we write.
STREAM_NODE_MAX_ENTRIES = 100
STREAM_ITEM_FLAG_DELETED = 1
STREAM_ITEM_FLAG_SAMEFIELDS = 2

LISTPACK_HEADER = 6  # total bytes (u32) and element count (u16)
LISTPACK_EOF = 0xFF


class RdbError(ValueError):
    """Malformed RDB data (a file or a DUMP payload)."""


class EmptyKeyError(RdbError):
    """A container with no elements: Redis skips such a key when loading."""


# -- CRC64 and LZF ------------------------------------------------------------------


def _crc64_table() -> list[int]:
    poly = 0x95AC9329AC4BC9B5  # Jones' 0xad93d23594c935a9, bit-reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64 = _crc64_table()


def crc64_reference(data: bytes, crc: int = 0) -> int:
    """Redis's crc64 (Jones polynomial, reflected, no final xor), a byte at a
    time: the definition ``crc64`` is tested against (~3 MB/s)."""
    table = _CRC64
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# anycrc computes any CRC model in C (the same parameters as Redis's
# crc64.c): ~14 GB/s against 3 MB/s in Python, which made a BGSAVE or an
# import of a 25 MB dump spend seconds on its checksum alone.
_JONES = anycrc.CRC(width=64, poly=0xAD93D23594C935A9, init=0, refin=True, refout=True, xorout=0)


def crc64(data: bytes, crc: int = 0) -> int:
    """Redis's crc64; pass the previous result as ``crc`` to go on over
    more data."""
    return _JONES.calc(data, crc) if crc else _JONES.calc(data)


def lzf_decompress(data: bytes, size: int) -> bytes:
    """liblzf's lzf_decompress: literal runs and back references; raises
    RdbError for a reference before the start or a size other than ``size``."""
    out = bytearray()
    pos = 0
    end = len(data)
    while pos < end:
        ctrl = data[pos]
        pos += 1
        if ctrl < 32:
            if pos + ctrl + 1 > end:
                raise RdbError("LZF literal past the end")
            out += data[pos : pos + ctrl + 1]
            pos += ctrl + 1
        else:
            length = ctrl >> 5
            if length == 7:
                length += data[pos]
                pos += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[pos] - 1
            pos += 1
            if ref < 0:
                raise RdbError("LZF back reference before the start")
            length += 2
            if ref + length <= len(out):
                out += out[ref : ref + length]
            else:  # overlapping its own copy: byte by byte
                for _ in range(length):
                    out.append(out[ref])
                    ref += 1
        if len(out) > size:
            raise RdbError("LZF data longer than announced")
    if len(out) != size:
        raise RdbError("LZF data shorter than announced")
    return bytes(out)


# -- writing ---------------------------------------------------------------------------


def encode_length(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return bytes([0x40 | n >> 8, n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def encode_string(raw: bytes) -> bytes:
    """An RDB string: integer-encoded when it is a canonical integer that
    fits 32 bits (rdbTryIntegerEncoding), raw otherwise."""
    if len(raw) <= 11 and is_int64(raw):
        value = int(raw)
        if -(1 << 7) <= value < 1 << 7:
            return bytes([0xC0 | ENC_INT8]) + value.to_bytes(1, "little", signed=True)
        if -(1 << 15) <= value < 1 << 15:
            return bytes([0xC0 | ENC_INT16]) + value.to_bytes(2, "little", signed=True)
        if -(1 << 31) <= value < 1 << 31:
            return bytes([0xC0 | ENC_INT32]) + value.to_bytes(4, "little", signed=True)
    return encode_length(len(raw)) + raw


def _lp_backlen(size: int) -> bytes:
    if size <= 127:
        return bytes([size])
    if size < 16383:
        return bytes([size >> 7, (size & 127) | 128])
    if size < 2097151:
        return bytes([size >> 14, ((size >> 7) & 127) | 128, (size & 127) | 128])
    if size < 268435455:
        return bytes([size >> 21, ((size >> 14) & 127) | 128, ((size >> 7) & 127) | 128, (size & 127) | 128])
    return bytes(
        [size >> 28, ((size >> 21) & 127) | 128, ((size >> 14) & 127) | 128, ((size >> 7) & 127) | 128, (size & 127) | 128]
    )


def lp_int(value: int) -> bytes:
    """A listpack element holding an integer (lpEncodeIntegerGetType)."""
    if 0 <= value <= 127:
        body = bytes([value])
    elif -4096 <= value <= 4095:
        value &= 0x1FFF
        body = bytes([0xC0 | value >> 8, value & 0xFF])
    elif -(1 << 15) <= value < 1 << 15:
        body = b"\xf1" + value.to_bytes(2, "little", signed=True)
    elif -(1 << 23) <= value < 1 << 23:
        body = b"\xf2" + value.to_bytes(3, "little", signed=True)
    elif -(1 << 31) <= value < 1 << 31:
        body = b"\xf3" + value.to_bytes(4, "little", signed=True)
    else:
        body = b"\xf4" + value.to_bytes(8, "little", signed=True)
    return body + _lp_backlen(len(body))


def lp_entry(data: bytes) -> bytes:
    """A listpack element for ``data``: an integer when it is one in
    canonical form (lpAppend's lpStringToInt64), a string otherwise."""
    if len(data) <= 20 and is_int64(data):
        return lp_int(int(data))
    size = len(data)
    if size < 64:
        body = bytes([0x80 | size]) + data
    elif size < 4096:
        body = bytes([0xE0 | size >> 8, size & 0xFF]) + data
    else:
        body = b"\xf0" + size.to_bytes(4, "little") + data
    return body + _lp_backlen(len(body))


def listpack(elements: list[bytes]) -> bytes:
    """A listpack of already-encoded elements."""
    body = b"".join(elements)
    total = LISTPACK_HEADER + len(body) + 1
    count = len(elements) if len(elements) < 65535 else 65535
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"


def score_string(score: float) -> bytes:
    """A score as Redis's d2string writes it into a listpack."""
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    if score == 0:
        return b"-0" if math.copysign(1, score) < 0 else b"0"
    if -4503599627370495 < score < 4503599627370496 and score == int(score):
        return b"%d" % int(score)
    return b"%.17g" % score


def encode_value(value: object, settings) -> tuple[int, bytes]:
    """(RDB type, serialized value), as Redis 7.0's rdbSaveObject; ``settings``
    are the encoding thresholds (values.EncodingSettings)."""
    kind = type(value)
    if kind is bytes:
        return TYPE_STRING, encode_string(value)
    if kind is List:
        return TYPE_LIST_QUICKLIST_2, _encode_list(value)
    if kind is Hash:
        if value.encoding(settings) == "listpack":
            return TYPE_HASH_LISTPACK, encode_string(listpack([lp_entry(x) for pair in value.items() for x in pair]))
        parts = [encode_length(len(value))]
        for field, item in value.items():
            parts += (encode_string(field), encode_string(item))
        return TYPE_HASH, b"".join(parts)
    if kind is Set:
        if value.encoding(settings) == "intset":
            return TYPE_SET_INTSET, encode_string(_intset(sorted(int(m) for m in value)))
        return TYPE_SET, encode_length(len(value)) + b"".join(encode_string(m) for m in value)
    if kind is Zset:
        if value.encoding(settings) == "listpack":
            elements = []
            for score, member in value.order:
                elements += (lp_entry(member), lp_entry(score_string(score)))
            return TYPE_ZSET_LISTPACK, encode_string(listpack(elements))
        # From the greatest to the smallest, as Redis (better for its loading).
        parts = [encode_length(len(value))]
        for score, member in reversed(value.order):
            parts += (encode_string(member), struct.pack("<d", score))
        return TYPE_ZSET_2, b"".join(parts)
    if kind is Stream:
        return TYPE_STREAM_LISTPACKS_2, _encode_stream(value)
    raise TypeError(f"no RDB form for {kind.__name__}")


def _encode_list(items: List) -> bytes:
    nodes: list[bytes] = []
    elements: list[bytes] = []
    size = LISTPACK_HEADER + 1
    for item in items:
        element = lp_entry(item)
        if elements and size + len(element) > LIST_NODE_MAX_BYTES:
            nodes.append(listpack(elements))
            elements, size = [], LISTPACK_HEADER + 1
        elements.append(element)
        size += len(element)
    if elements:
        nodes.append(listpack(elements))
    packed = encode_length(QUICKLIST_NODE_PACKED)
    return encode_length(len(nodes)) + b"".join(packed + encode_string(node) for node in nodes)


def _intset(values: list[int]) -> bytes:
    low, high = (values[0], values[-1]) if values else (0, 0)
    width = 2 if -(1 << 15) <= low and high < 1 << 15 else 4 if -(1 << 31) <= low and high < 1 << 31 else 8
    return (
        width.to_bytes(4, "little")
        + len(values).to_bytes(4, "little")
        + b"".join(v.to_bytes(width, "little", signed=True) for v in values)
    )


def _raw_id(entry_id: int) -> bytes:
    return (entry_id >> SEQ_BITS).to_bytes(8, "big") + (entry_id & SEQ_MASK).to_bytes(8, "big")


def _encode_stream(stream: Stream) -> bytes:
    # The live entries, in listpacks of STREAM_NODE_MAX_ENTRIES, each with
    # its master entry (the first entry's fields) as streamAppendItem makes
    # them. (Redis keeps deleted entries flagged inside their listpack;
    # kvserver does not keep them, and a listpack without them is as valid.)
    ids = list(stream.entries.keys())
    parts = [encode_length((len(ids) + STREAM_NODE_MAX_ENTRIES - 1) // STREAM_NODE_MAX_ENTRIES)]
    for start in range(0, len(ids), STREAM_NODE_MAX_ENTRIES):
        chunk = ids[start : start + STREAM_NODE_MAX_ENTRIES]
        master = chunk[0]
        master_fields = stream.entries[master][0::2]
        elements = [lp_int(len(chunk)), lp_int(0), lp_int(len(master_fields))]
        elements += [lp_entry(f) for f in master_fields]
        elements.append(lp_int(0))
        for entry_id in chunk:
            fields = stream.entries[entry_id]
            names = fields[0::2]
            same = names == master_fields
            elements.append(lp_int(STREAM_ITEM_FLAG_SAMEFIELDS if same else 0))
            elements.append(lp_int((entry_id >> SEQ_BITS) - (master >> SEQ_BITS)))
            elements.append(lp_int((entry_id & SEQ_MASK) - (master & SEQ_MASK)))
            if same:
                elements += [lp_entry(v) for v in fields[1::2]]
                elements.append(lp_int(len(names) + 3))
            else:
                elements.append(lp_int(len(names)))
                elements += [lp_entry(x) for x in fields]
                elements.append(lp_int(2 * len(names) + 4))
        parts.append(encode_string(_raw_id(master)))
        parts.append(encode_string(listpack(elements)))
    first = stream.first_id()
    for number in (
        len(stream.entries),
        stream.last_id >> SEQ_BITS, stream.last_id & SEQ_MASK,
        first >> SEQ_BITS, first & SEQ_MASK,
        stream.max_deleted >> SEQ_BITS, stream.max_deleted & SEQ_MASK,
        stream.entries_added,
        len(stream.groups),
    ):  # fmt: skip
        parts.append(encode_length(number))
    for name, group in stream.groups.items():
        parts += (encode_string(name), encode_length(group.last_id >> SEQ_BITS), encode_length(group.last_id & SEQ_MASK))
        # entries-read is a signed number saved as a length: -1 as 2**64-1.
        parts.append(encode_length(group.entries_read & 0xFFFFFFFFFFFFFFFF))
        parts.append(encode_length(len(group.pel)))
        for entry_id, nack in group.pel.items():
            parts += (_raw_id(entry_id), nack.delivery_time.to_bytes(8, "little", signed=True))
            parts.append(encode_length(nack.delivery_count))
        consumers = group.sorted_consumers()
        parts.append(encode_length(len(consumers)))
        for consumer in consumers:
            parts += (encode_string(consumer.name), consumer.seen_time.to_bytes(8, "little", signed=True))
            parts.append(encode_length(len(consumer.pel)))
            parts += [_raw_id(entry_id) for entry_id in consumer.pel]
    return b"".join(parts)


def dump_payload(value: object, settings) -> bytes:
    """DUMP's payload: type, value, RDB version, CRC64."""
    kind, body = encode_value(value, settings)
    data = bytes([kind]) + body + RDB_VERSION.to_bytes(2, "little")
    return data + crc64(data).to_bytes(8, "little")


class FileWriter:
    """The pieces of an RDB file, as bytes, with the running CRC64:
    ``header()``, then per database ``select()`` and ``key()`` for each
    key, ``function()`` for each library first, and ``footer()`` last.
    The caller writes each piece where it likes (sans I/O)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.crc = 0

    def _out(self, data: bytes) -> bytes:
        self.crc = crc64(data, self.crc)
        return data

    def header(self, aux: dict[bytes, bytes]) -> bytes:
        parts = [MAGIC + b"%04d" % RDB_VERSION]
        for name, value in aux.items():
            parts += (bytes([OPCODE_AUX]), encode_string(name), encode_string(value))
        return self._out(b"".join(parts))

    def function(self, code: bytes) -> bytes:
        return self._out(bytes([OPCODE_FUNCTION2]) + encode_string(code))

    def select(self, index: int, keys: int, expires: int) -> bytes:
        return self._out(
            bytes([OPCODE_SELECTDB]) + encode_length(index) + bytes([OPCODE_RESIZEDB])
            + encode_length(keys) + encode_length(expires)
        )  # fmt: skip

    def key(self, key: bytes, value: object, deadline: int | None) -> bytes:
        kind, body = encode_value(value, self.settings)
        head = b"" if deadline is None else bytes([OPCODE_EXPIRETIME_MS]) + deadline.to_bytes(8, "little", signed=True)
        return self._out(head + bytes([kind]) + encode_string(key) + body)

    def footer(self) -> bytes:
        data = self._out(bytes([OPCODE_EOF]))
        return data + self.crc.to_bytes(8, "little")


# -- reading ---------------------------------------------------------------------------


class Reader:
    """A cursor over RDB bytes (bytes, or an mmap of a file)."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise RdbError("unexpected end of data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def byte(self) -> int:
        if self.pos >= self.end:
            raise RdbError("unexpected end of data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def length_or_encoding(self) -> tuple[int, bool]:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return (first & 0x3F) << 8 | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise RdbError("unknown length encoding")

    def length(self) -> int:
        value, encoded = self.length_or_encoding()
        if encoded:
            raise RdbError("an encoded string where a length was expected")
        return value

    def string(self) -> bytes:
        value, encoded = self.length_or_encoding()
        if not encoded:
            return self.take(value)
        if value == ENC_LZF:
            compressed, size = self.length(), self.length()
            return lzf_decompress(self.take(compressed), size)
        if value in (ENC_INT8, ENC_INT16, ENC_INT32):
            return b"%d" % int.from_bytes(self.take(1 << value), "little", signed=True)
        raise RdbError("unknown string encoding")

    def double_text(self) -> float:
        # RDB_TYPE_ZSET's scores: a length byte, 253 nan, 254 inf, 255 -inf.
        size = self.byte()
        if size == 253:
            raise RdbError("NaN score")
        if size == 254:
            return math.inf
        if size == 255:
            return -math.inf
        return _float(self.take(size))

    def binary_double(self) -> float:
        value = struct.unpack("<d", self.take(8))[0]
        if math.isnan(value):
            raise RdbError("NaN score")
        return value


def _float(text: bytes) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RdbError("bad score") from None
    if math.isnan(value):
        raise RdbError("NaN score")
    return value


def read_listpack(blob: bytes) -> list[bytes]:
    """The elements of a listpack, integers as their decimal text."""
    if len(blob) < LISTPACK_HEADER + 1 or int.from_bytes(blob[0:4], "little") != len(blob):
        raise RdbError("bad listpack header")
    count = int.from_bytes(blob[4:6], "little")
    out: list[bytes] = []
    pos, end = LISTPACK_HEADER, len(blob) - 1
    if blob[end] != LISTPACK_EOF:
        raise RdbError("listpack without its end byte")
    while pos < end:
        first = blob[pos]
        if first < 0x80:
            value, size = b"%d" % first, 1
        elif first < 0xC0:
            length = first & 0x3F
            value, size = blob[pos + 1 : pos + 1 + length], 1 + length
        elif first < 0xE0:
            number = ((first & 0x1F) << 8) | blob[pos + 1]
            if number >= 1 << 12:
                number -= 1 << 13
            value, size = b"%d" % number, 2
        elif first < 0xF0:
            length = ((first & 0x0F) << 8) | blob[pos + 1]
            value, size = blob[pos + 2 : pos + 2 + length], 2 + length
        elif first == 0xF0:
            length = int.from_bytes(blob[pos + 1 : pos + 5], "little")
            value, size = blob[pos + 5 : pos + 5 + length], 5 + length
        elif first in _LP_INT_WIDTHS:
            width = _LP_INT_WIDTHS[first]
            value, size = b"%d" % int.from_bytes(blob[pos + 1 : pos + 1 + width], "little", signed=True), 1 + width
        else:
            raise RdbError("bad listpack element")
        backlen = _lp_backlen(size)
        if pos + size + len(backlen) > end or blob[pos + size : pos + size + len(backlen)] != backlen:
            raise RdbError("listpack element overruns")
        out.append(bytes(value))
        pos += size + len(backlen)
    if count != 65535 and count != len(out):
        raise RdbError("listpack count mismatch")
    return out


_LP_INT_WIDTHS = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}


def read_ziplist(blob: bytes) -> list[bytes]:
    """The elements of a ziplist (Redis before 7.0), integers as text."""
    if len(blob) < 11 or int.from_bytes(blob[0:4], "little") != len(blob) or blob[-1] != 0xFF:
        raise RdbError("bad ziplist header")
    out: list[bytes] = []
    pos, end = 10, len(blob) - 1
    while pos < end:
        pos += 5 if blob[pos] == 0xFE else 1  # the previous entry's length
        first = blob[pos]
        kind = first >> 6
        if kind == 0:
            length, pos = first & 0x3F, pos + 1
        elif kind == 1:
            length, pos = (first & 0x3F) << 8 | blob[pos + 1], pos + 2
        elif kind == 2:
            length, pos = int.from_bytes(blob[pos + 1 : pos + 5], "big"), pos + 5
        else:
            width = _ZL_INT_WIDTHS.get(first)
            if width is not None:
                out.append(b"%d" % int.from_bytes(blob[pos + 1 : pos + 1 + width], "little", signed=True))
                pos += 1 + width
            elif 0xF1 <= first <= 0xFD:
                out.append(b"%d" % ((first & 0x0F) - 1))
                pos += 1
            else:
                raise RdbError("bad ziplist entry")
            if pos > end:
                raise RdbError("ziplist entry overruns")
            continue
        if pos + length > end:
            raise RdbError("ziplist entry overruns")
        out.append(bytes(blob[pos : pos + length]))
        pos += length
    return out


_ZL_INT_WIDTHS = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def read_intset(blob: bytes) -> list[bytes]:
    if len(blob) < 8:
        raise RdbError("bad intset header")
    width = int.from_bytes(blob[0:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise RdbError("bad intset")
    return [b"%d" % int.from_bytes(blob[i : i + width], "little", signed=True) for i in range(8, len(blob), width)]


def _pairs(items: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(items) % 2:
        raise RdbError("odd number of elements")
    return list(zip(items[0::2], items[1::2]))


def _nonempty(value):
    if not value:
        raise EmptyKeyError("empty key")
    return value


def read_value(kind: int, r: Reader) -> object:
    """The value of RDB type ``kind`` at the reader's position."""
    if kind == TYPE_STRING:
        return r.string()
    if kind == TYPE_LIST:
        return _nonempty(List(r.string() for _ in range(r.length())))
    if kind == TYPE_LIST_ZIPLIST:
        return _nonempty(List(read_ziplist(r.string())))
    if kind in (TYPE_LIST_QUICKLIST, TYPE_LIST_QUICKLIST_2):
        items = List()
        for _ in range(r.length()):
            container = r.length() if kind == TYPE_LIST_QUICKLIST_2 else QUICKLIST_NODE_PACKED
            blob = r.string()
            if container == QUICKLIST_NODE_PLAIN:
                items.append(blob)
            elif container == QUICKLIST_NODE_PACKED:
                node = read_listpack(blob) if kind == TYPE_LIST_QUICKLIST_2 else read_ziplist(blob)
                if not node:
                    raise RdbError("empty quicklist node")
                items.extend(node)
            else:
                raise RdbError("unknown quicklist node container")
        return _nonempty(List(items))
    if kind == TYPE_SET:
        return _nonempty(Set(r.string() for _ in range(r.length())))
    if kind == TYPE_SET_INTSET:
        return _nonempty(Set(read_intset(r.string())))
    if kind == TYPE_HASH:
        count = r.length()
        return _nonempty(Hash((r.string(), r.string()) for _ in range(count)))
    if kind in (TYPE_HASH_LISTPACK, TYPE_HASH_ZIPLIST):
        blob = r.string()
        items = read_listpack(blob) if kind == TYPE_HASH_LISTPACK else read_ziplist(blob)
        pairs = _pairs(items)
        value = Hash(pairs)
        if len(value) != len(pairs):
            raise RdbError("duplicate hash field")
        return _nonempty(value)
    if kind in (TYPE_ZSET, TYPE_ZSET_2):
        count = r.length()
        read_score = r.binary_double if kind == TYPE_ZSET_2 else r.double_text
        pairs = []
        for _ in range(count):
            member = r.string()
            pairs.append((member, read_score()))
        return _nonempty(Zset(pairs))
    if kind in (TYPE_ZSET_LISTPACK, TYPE_ZSET_ZIPLIST):
        blob = r.string()
        items = read_listpack(blob) if kind == TYPE_ZSET_LISTPACK else read_ziplist(blob)
        pairs = [(member, _float(score)) for member, score in _pairs(items)]
        value = Zset(pairs)
        if len(value) != len(pairs):
            raise RdbError("duplicate sorted set member")
        return _nonempty(value)
    if kind in (TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_2):
        return _read_stream(r, kind == TYPE_STREAM_LISTPACKS_2)
    if kind in (TYPE_MODULE, TYPE_MODULE_2):
        raise RdbError("module values are not supported")
    if kind == TYPE_HASH_ZIPMAP:
        raise RdbError("zipmap hashes (Redis 2.x) are not supported")
    raise RdbError(f"unknown value type {kind}")


def _read_id(r: Reader) -> int:
    raw = r.take(16)
    return int.from_bytes(raw[:8], "big") << SEQ_BITS | int.from_bytes(raw[8:], "big")


def _read_stream(r: Reader, v2: bool) -> Stream:
    stream = Stream()
    undo = Undo()  # nothing to undo: a fresh stream, thrown away on error
    previous = -1
    for _ in range(r.length()):
        key = r.string()
        if len(key) != 16:
            raise RdbError("bad stream node key")
        master = int.from_bytes(key[:8], "big") << SEQ_BITS | int.from_bytes(key[8:], "big")
        items = read_listpack(r.string())
        if not items:
            raise RdbError("empty listpack inside a stream")
        for entry_id, fields in _stream_node_entries(master, items):
            if entry_id <= previous:
                raise RdbError("stream entries out of order")
            previous = entry_id
            stream.append(entry_id, fields, undo)
    length = r.length()
    last_id = r.length() << SEQ_BITS | r.length()
    if v2:
        r.length(), r.length()  # the first entry's ID: the entries have it
        stream.max_deleted = r.length() << SEQ_BITS | r.length()
        stream.entries_added = r.length()
    else:
        stream.entries_added = len(stream.entries)
    if length != len(stream.entries) or (stream.entries and last_id < stream.entries.keys()[-1]):
        raise RdbError("stream length or last ID disagrees with its entries")
    stream.last_id = last_id
    for _ in range(r.length()):
        name = r.string()
        group_id = r.length() << SEQ_BITS | r.length()
        entries_read = INVALID_ENTRIES_READ
        if v2:
            entries_read = r.length()
            if entries_read >= 1 << 63:
                entries_read -= 1 << 64
        if name in stream.groups:
            raise RdbError("duplicate consumer group")
        group = stream.create_group(name, group_id, entries_read, undo)
        for _ in range(r.length()):
            entry_id = _read_id(r)
            delivery_time = int.from_bytes(r.take(8), "little", signed=True)
            if entry_id in group.pel:
                raise RdbError("duplicate group PEL entry")
            stream.add_nack(group, entry_id, Nack(None, delivery_time, r.length()), undo)
        for _ in range(r.length()):
            cname = r.string()
            if cname in group.consumers:
                raise RdbError("duplicate consumer")
            consumer = stream.create_consumer(group, cname, int.from_bytes(r.take(8), "little", signed=True), undo)
            for _ in range(r.length()):
                entry_id = _read_id(r)
                nack = group.pel.get(entry_id)
                if nack is None or nack.consumer is not None:
                    raise RdbError("consumer PEL entry not in the group's PEL")
                nack.consumer = consumer
                consumer.pel[entry_id] = nack
        if any(nack.consumer is None for nack in group.pel.values()):
            raise RdbError("group PEL entry without a consumer")
    return stream


def _stream_node_entries(master: int, items: list[bytes]) -> Iterator[tuple[int, tuple]]:
    ints = _ints(items)
    pos = 3
    live, deleted, nfields = ints(0), ints(1), ints(2)
    master_fields = tuple(items[pos : pos + nfields])
    pos += nfields
    if len(master_fields) != nfields or ints(pos) != 0:
        raise RdbError("bad stream master entry")
    pos += 1
    seen = 0
    while pos < len(items):
        flags, ms, seq = ints(pos), ints(pos + 1), ints(pos + 2)
        pos += 3
        if flags & STREAM_ITEM_FLAG_SAMEFIELDS:
            values = items[pos : pos + nfields]
            pos += nfields
            fields = tuple(x for pair in zip(master_fields, values) for x in pair)
            count = nfields
        else:
            count = ints(pos)
            flat = items[pos + 1 : pos + 1 + 2 * count]
            pos += 1 + 2 * count
            fields = tuple(flat)
        if len(fields) != 2 * count or count == 0:
            raise RdbError("stream entry overruns its listpack")
        pos += 1  # lp-count
        if pos > len(items):
            raise RdbError("stream entry overruns its listpack")
        seen += 1
        entry_ms, entry_seq = (master >> SEQ_BITS) + ms, (master & SEQ_MASK) + seq
        if ms < 0 or not 0 <= entry_seq <= SEQ_MASK or entry_ms > SEQ_MASK or (ms == 0 and seq < 0):
            raise RdbError("stream entry ID below its master")
        entry_id = entry_ms << SEQ_BITS | entry_seq
        if not flags & STREAM_ITEM_FLAG_DELETED:
            yield entry_id, fields
    if seen != live + deleted:
        raise RdbError("stream listpack counts disagree")


def _ints(items: list[bytes]) -> Callable[[int], int]:
    def get(i: int) -> int:
        try:
            return int(items[i])
        except (IndexError, ValueError):
            raise RdbError("bad stream listpack") from None

    return get


def read_payload(payload: bytes) -> object:
    """The value in a DUMP payload; RdbError("version or checksum") when
    the trailer is wrong, RdbError otherwise for bad data."""
    check_payload(payload)
    r = Reader(payload, 1, len(payload) - 10)
    try:
        value = read_value(payload[0], r)
    except RdbError:
        raise
    except (IndexError, ValueError, OverflowError, struct.error, MemoryError) as exc:
        raise RdbError(f"bad data: {exc}") from None
    return value  # bytes left after the value are ignored, as Redis's RESTORE ignores them


class PayloadTrailerError(RdbError):
    """A DUMP payload whose version is too new or whose CRC64 is wrong."""


def check_payload(payload: bytes) -> None:
    if len(payload) < 10:
        raise PayloadTrailerError("payload too short")
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION:
        raise PayloadTrailerError("RDB version too new")
    stored = int.from_bytes(payload[-8:], "little")
    if crc64(payload[:-8]) != stored:  # (a file's 0 means "unchecked"; a payload's does not)
        raise PayloadTrailerError("checksum mismatch")


class Entry:
    """One key read from a file."""

    __slots__ = ("db", "key", "value", "deadline")

    def __init__(self, db: int, key: bytes, value: object, deadline: int | None) -> None:
        self.db = db
        self.key = key
        self.value = value
        self.deadline = deadline


def read_file(
    data, on_aux: Callable[[bytes, bytes], None] | None = None, on_function=None, position: list | None = None
) -> Iterator[Entry]:
    """Every key of an RDB file (bytes or an mmap), in file order; aux
    fields and function libraries go to the callbacks. Empty containers are
    skipped, as Redis does. The CRC64 is checked at the end (unless it is
    0), so a consumer must not trust what it got before the generator ends
    without error. ``position``, if given, gets ``[offset]`` updated as the
    reading goes on: at the end, where the RDB data ended (an AOF's RDB
    preamble is followed by records)."""
    if len(data) < 9 or bytes(data[:5]) != MAGIC:
        raise RdbError("not an RDB file (no REDIS signature)")
    try:
        version = int(bytes(data[5:9]))
    except ValueError:
        raise RdbError("bad RDB version") from None
    if not 1 <= version <= RDB_VERSION:
        raise RdbError(f"can't handle RDB format version {version}")
    r = Reader(data, 9)
    try:
        yield from _read_records(r, version, on_aux, on_function, position)
    except RdbError:
        raise
    except (IndexError, ValueError, OverflowError, struct.error, MemoryError) as exc:
        raise RdbError(f"bad data at byte {r.pos}: {exc}") from None


def _read_records(r: Reader, version: int, on_aux, on_function, position) -> Iterator[Entry]:
    db = 0
    deadline = None
    while True:
        if position is not None:
            position[:] = [r.pos]
        kind = r.byte()
        if kind == OPCODE_EOF:
            if version >= 5:
                stored = int.from_bytes(r.take(8), "little")
                if stored and crc64(r.data[: r.pos - 8]) != stored:
                    raise RdbError("wrong RDB checksum")
            if position is not None:
                position[:] = [r.pos]
            return
        if kind == OPCODE_SELECTDB:
            db = r.length()
        elif kind == OPCODE_RESIZEDB:
            r.length(), r.length()
        elif kind == OPCODE_EXPIRETIME_MS:
            deadline = int.from_bytes(r.take(8), "little", signed=True)
        elif kind == OPCODE_EXPIRETIME:
            deadline = int.from_bytes(r.take(4), "little", signed=True) * 1000
        elif kind == OPCODE_IDLE:
            r.length()
        elif kind == OPCODE_FREQ:
            r.byte()
        elif kind == OPCODE_AUX:
            name, value = r.string(), r.string()
            if on_aux is not None:
                on_aux(name, value)
        elif kind == OPCODE_FUNCTION2:
            code = r.string()
            if on_function is not None:
                on_function(code)
        elif kind in (OPCODE_FUNCTION, OPCODE_MODULE_AUX):
            raise RdbError("pre-release function data or module data: not supported")
        else:
            key = r.string()
            try:
                value = read_value(kind, r)
            except EmptyKeyError:
                deadline = None
                continue
            yield Entry(db, key, value, deadline)
            deadline = None
