"""Bit commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
BITFIELD and BITFIELD_RO. Redis 7.0's replies, errors and argument order,
checked side by side with redis-server (tests/test_commands_bitmaps.py).

Rules this module keeps:

* Bits are numbered from the most significant bit of the first byte, as
  Redis does. A missing key reads as an endless run of zero bits.
* Offsets: 0 .. 2^32-1 (Redis's limit, the bits of a proto-max-bulk-len
  string); a write past the end pads with zero bytes up to the byte it
  touches, as Redis's sdsgrowzero, and that padding counts in used_bytes
  (the writers are flagged "denyoom" so maxmemory refuses them).
* Values are immutable bytes, so a write builds the new value (one copy,
  under the write lock). The log, though, gets the request, never the
  value (strings.py's rule for APPEND and SETRANGE, and Redis's AOF):
  SETBIT, BITFIELD and BITOP are logged as issued, and only when they
  changed something. They keep the key's TTL without naming it (BITOP,
  as Redis's setKey, clears the destination's), which is safe because
  replay runs them on the key the earlier records rebuilt. A write that
  creates its key logs ``SET key ""`` first, as strings.py's SETRANGE
  does, so that the record starts from nothing whatever replay holds
  under that name. (A key found expired is logged as a DEL by the
  keyspace, store.py, so BITOP's sources replay as the live server saw
  them.)
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.access import read
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.commands.strings import PROTO_MAX_BULK_LEN
from kvserver.errors import CommandError
from kvserver.notify import GENERIC, STRING, notify
from kvserver.session import Session

# BITFIELD's widths, as Redis: signed up to 64 bits, unsigned up to 63 (a
# u64 read could not be answered as Redis's signed 64-bit integer reply).
MAX_SIGNED_BITS = 64
MAX_UNSIGNED_BITS = 63

_WRAP, _SAT, _FAIL = b"WRAP", b"SAT", b"FAIL"

# NOT over a whole value at C speed: bytes.translate with every byte inverted.
_INVERT = bytes(255 - b for b in range(256))


# -- arguments ---------------------------------------------------------------------


def _int64(raw: bytes) -> int | None:
    """Redis's string2ll: a strict signed 64-bit integer, None otherwise."""
    try:
        return parse_int(raw)
    except CommandError:
        return None


def _bit_offset(raw: bytes, bits: int = 0) -> int:
    """Redis's getBitOffsetFromArgument: 0 .. 2^32-1; with ``bits`` (BITFIELD),
    ``#N`` means N * bits. The multiplication wraps in 64 bits as in C."""
    positional = bits > 0 and raw[:1] == b"#"
    offset = _int64(raw[1:] if positional else raw)
    if offset is None:
        raise CommandError(errors.BIT_OFFSET)
    if positional:
        offset = (offset * bits + 2**63) % 2**64 - 2**63
    if offset < 0 or offset >> 3 >= PROTO_MAX_BULK_LEN:
        raise CommandError(errors.BIT_OFFSET)
    return offset


def _range(value: bytes, start: int, end: int | None, unit: bytes | None) -> tuple[int, int] | None:
    """BITCOUNT's and BITPOS's start/end, Redis's conversion: the inclusive
    range of bits it covers, or None if it is empty. ``end`` None: to the end."""
    isbit = unit == b"BIT"
    total = len(value) * 8 if isbit else len(value)
    if end is None:
        end = total - 1
    if start < 0:
        start += total
    if end < 0:
        end += total
    start, end = max(start, 0), max(end, 0)
    end = min(end, total - 1)
    if start > end:
        return None
    return (start, end) if isbit else (start * 8, end * 8 + 7)


def _unit(raw: bytes) -> bytes:
    unit = raw.upper()
    if unit not in (b"BIT", b"BYTE"):
        raise CommandError(errors.SYNTAX)
    return unit


def _bits_in(value: bytes, first: int, last: int) -> tuple[int, int]:
    """The bits ``first`` .. ``last`` of ``value`` as one integer (first bit
    most significant), and how many there are."""
    chunk = value[first >> 3 : (last >> 3) + 1]
    width = len(chunk) * 8
    below = 7 - (last & 7)  # bits after ``last`` in its byte
    number = int.from_bytes(chunk, "big") >> below
    count = width - (first & 7) - below
    return number & ((1 << count) - 1), count


# -- SETBIT and GETBIT -----------------------------------------------------------------


@command("setbit", 4, write=True, keys=(1, 1, 1), flags=("denyoom",))
def setbit(session: Session, args: list[bytes]) -> object:
    """SETBIT key offset value

    Set or clear the bit at ``offset``; the bit it held. Logged as issued
    when it changed the value (or created the key: ``SET key ""`` first).
    """
    key = args[0]
    offset = _bit_offset(args[1])
    on = _int64(args[2])
    if on is None or on & ~1:
        raise CommandError(errors.BIT_VALUE)
    value = read(session, key, bytes)
    created = value is None
    old = b"" if created else value
    byte = offset >> 3
    mask = 1 << (7 - (offset & 7))
    current = old[byte] if byte < len(old) else 0
    was = 1 if current & mask else 0
    if not created and byte < len(old) and was == on:
        return was  # nothing changed, nothing logged
    patched = bytes(((current | mask) if on else (current & ~mask),))
    if byte < len(old):
        whole = memoryview(old)  # one copy of the value: slices of a view copy nothing
        new = b"".join((whole[:byte], patched, whole[byte + 1 :]))
    else:
        new = b"".join((old, bytes(byte - len(old)), patched))
    _write(session, key, new, created)
    session.log(b"SETBIT", *args)
    notify(session, STRING, b"setbit", key)
    return was


def _write(session: Session, key: bytes, value: bytes, created: bool) -> None:
    """Store a bit write's result, keeping the TTL; a new key is logged as
    ``SET key ""`` before the command's own record (module docstring)."""
    db = session.db
    if created:
        db.set(key, value, None)
        session.log(b"SET", key, b"")
    else:
        db.set(key, value, db.expires.get(key))


@command("getbit", 3, keys=(1, 1, 1), flags=("fast",))
def getbit(session: Session, args: list[bytes]) -> object:
    """GETBIT key offset

    The bit at ``offset``: 0 past the end or for a missing key.
    """
    offset = _bit_offset(args[1])
    value = read(session, args[0], bytes)
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# -- BITCOUNT and BITPOS -----------------------------------------------------------------


@command("bitcount", -2, keys=(1, 1, 1))
def bitcount(session: Session, args: list[bytes]) -> object:
    """BITCOUNT key [start end [BYTE | BIT]]

    How many bits are set, in the whole value or in a range of bytes (or
    bits); negative indexes count from the end.
    """
    value = read(session, args[0], bytes)
    if value is None:
        return 0  # Redis 7.0 answers before looking at the other arguments
    if len(args) == 1:
        return int.from_bytes(value, "big").bit_count()
    if len(args) not in (3, 4):
        raise CommandError(errors.SYNTAX)
    start, end = parse_int(args[1]), parse_int(args[2])
    unit = _unit(args[3]) if len(args) == 4 else b"BYTE"
    if start < 0 and end < 0 and start > end:
        return 0
    bits = _range(value, start, end, unit)
    if bits is None:
        return 0
    return _bits_in(value, *bits)[0].bit_count()


@command("bitpos", -3, keys=(1, 1, 1))
def bitpos(session: Session, args: list[bytes]) -> object:
    """BITPOS key bit [start [end [BYTE | BIT]]]

    The position of the first bit set to ``bit`` in the value or the
    range; -1 if none. Looking for a 0 with no end given, the bit just
    past the value counts (a string is zero-padded on the right).
    """
    bit = parse_int(args[1])
    if bit not in (0, 1):
        raise CommandError(errors.BIT_ARGUMENT)
    value = read(session, args[0], bytes)
    if value is None:
        return -1 if bit else 0
    end_given = len(args) >= 4
    if len(args) == 2:
        bits = _range(value, 0, None, b"BYTE")
    elif len(args) <= 5:
        start = parse_int(args[2])
        unit = _unit(args[4]) if len(args) == 5 else b"BYTE"  # Redis's order: before the end
        end = parse_int(args[3]) if end_given else None
        bits = _range(value, start, end, unit)
    else:
        raise CommandError(errors.SYNTAX)
    if bits is None:
        return -1
    first, last = bits
    number, count = _bits_in(value, first, last)
    if not bit:
        number ^= (1 << count) - 1
    if number:
        return first + count - number.bit_length()
    if bit or end_given:
        return -1
    return ((last >> 3) + 1) * 8


# -- BITOP ---------------------------------------------------------------------------------


@command("bitop", -4, write=True, keys=(2, -1, 1), flags=("denyoom",))
def bitop(session: Session, args: list[bytes]) -> object:
    """BITOP <AND | OR | XOR | NOT> destkey key [key ...]

    Combine the keys' values byte by byte (a missing key, or the end of a
    shorter value, as zero bytes) into ``destkey``, without a TTL; the
    result's length, the longest value's. An empty result deletes
    ``destkey``. Logged as issued (see the module docstring).
    """
    op = args[0].upper()
    if op not in (b"AND", b"OR", b"XOR", b"NOT"):
        raise CommandError(errors.SYNTAX)
    if op == b"NOT" and len(args) != 3:
        raise CommandError(errors.BITOP_NOT_ONE_KEY)
    destination, sources = args[1], args[2:]
    values = [read(session, key, bytes) for key in sources]
    length = max(len(value) for value in values if value is not None) if any(values) else 0
    db = session.db
    if not length:
        if db.lookup(destination, session.now) is None:
            return 0  # nothing changed, nothing logged
        db.delete(destination)
        session.log(b"BITOP", *args)
        notify(session, GENERIC, b"del", destination)
        return 0
    else:
        if op == b"NOT":
            result = values[0].translate(_INVERT)
        else:
            numbers = [int.from_bytes(value.ljust(length, b"\0"), "big") for value in values if value is not None]
            if len(numbers) < len(values) and op == b"AND":
                numbers = [0]  # a missing key is all zeros
            combined = numbers[0]
            for number in numbers[1:]:
                if op == b"AND":
                    combined &= number
                elif op == b"OR":
                    combined |= number
                else:
                    combined ^= number
            result = combined.to_bytes(length, "big")
        db.lookup(destination, session.now)  # one past its deadline expires first, as in Redis
        db.set(destination, result, None)
    session.log(b"BITOP", *args)
    notify(session, STRING, b"set", destination)
    return length


# -- BITFIELD ------------------------------------------------------------------------------


def _field_type(raw: bytes) -> tuple[bool, int]:
    """Redis's getBitfieldTypeFromArgument: ``i1``..``i64`` or ``u1``..``u63``
    (lower case only), as (signed, bits). C reads the digits up to a NUL."""
    sign = raw[:1]
    digits = raw[1:].split(b"\0", 1)[0]
    bits = _int64(digits) if sign in (b"i", b"u") else None
    if bits is None or bits < 1 or bits > (MAX_SIGNED_BITS if sign == b"i" else MAX_UNSIGNED_BITS):
        raise CommandError(errors.BITFIELD_TYPE)
    return sign == b"i", bits


def _parse_fields(args: list[bytes]) -> list[tuple]:
    """BITFIELD's operations, in Redis's order of checks: each
    (op, signed, bits, offset, amount, overflow)."""
    ops = []
    overflow = _WRAP
    j = 1
    while j < len(args):
        word = args[j].upper()
        left = len(args) - j - 1
        if word == b"OVERFLOW" and left >= 1:
            overflow = args[j + 1].upper()
            if overflow not in (_WRAP, _SAT, _FAIL):
                raise CommandError(errors.BITFIELD_OVERFLOW_TYPE)
            j += 2
            continue
        if not ((word == b"GET" and left >= 2) or (word in (b"SET", b"INCRBY") and left >= 3)):
            raise CommandError(errors.SYNTAX)
        signed, bits = _field_type(args[j + 1])
        offset = _bit_offset(args[j + 2], bits)
        amount = 0
        if word != b"GET":
            amount = parse_int(args[j + 3])
        ops.append((word, signed, bits, offset, amount, overflow))
        j += 3 if word == b"GET" else 4
    return ops


def _get_field(buffer, offset: int, bits: int, signed: bool) -> int:
    """The field at ``offset``; bytes past the end of ``buffer`` read as zeros."""
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = bytes(buffer[first : last + 1]).ljust(last - first + 1, b"\0")
    shift = len(chunk) * 8 - (offset & 7) - bits
    number = (int.from_bytes(chunk, "big") >> shift) & ((1 << bits) - 1)
    if signed and number >> (bits - 1):
        number -= 1 << bits
    return number


def _set_field(buffer: bytearray, offset: int, bits: int, number: int) -> None:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = int.from_bytes(buffer[first : last + 1], "big")
    shift = (last - first + 1) * 8 - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    chunk = (chunk & ~mask) | ((number << shift) & mask)
    buffer[first : last + 1] = chunk.to_bytes(last - first + 1, "big")


def _overflowed(target: int, low: int, high: int, bits: int, signed: bool, overflow: bytes) -> int | None:
    """``target`` (the exact sum, or the value SET gives) stored in the
    field: wrapped, saturated, or None for FAIL. Redis's
    check{Signed,Unsigned}BitfieldOverflow: a SET of an unsigned field
    takes its amount as a C uint64, so a negative one is past the top."""
    if low <= target <= high:
        return target
    if overflow == _FAIL:
        return None
    if overflow == _SAT:
        return high if target > high else low
    wrapped = target % (1 << bits)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return wrapped


def _bitfield(session: Session, args: list[bytes], readonly_command: bool) -> list:
    key = args[0]
    ops = _parse_fields(args)
    writes = [op for op in ops if op[0] != b"GET"]
    if not writes:
        value = read(session, key, bytes) or b""
        return [_get_field(value, offset, bits, signed) for _, signed, bits, offset, _, _ in ops]
    if readonly_command:
        raise CommandError(errors.BITFIELD_RO_GET_ONLY)
    value = read(session, key, bytes)
    created = value is None
    old = b"" if created else value
    needed = (max(offset + bits - 1 for _, _, bits, offset, _, _ in writes) >> 3) + 1
    buffer = bytearray(old)
    if len(buffer) < needed:
        buffer.extend(bytes(needed - len(buffer)))
    replies: list = []
    for word, signed, bits, offset, amount, overflow in ops:
        current = _get_field(buffer, offset, bits, signed)
        if word == b"GET":
            replies.append(current)
            continue
        if signed:
            low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            low, high = 0, (1 << bits) - 1
        if word == b"INCRBY":
            target = current + amount
        else:
            target = amount if signed or amount >= 0 else amount % 2**64
        stored = _overflowed(target, low, high, bits, signed, overflow)
        if stored is None:
            replies.append(None)
            continue
        _set_field(buffer, offset, bits, stored)
        replies.append(stored if word == b"INCRBY" else current)
    if created or len(buffer) != len(old) or buffer != old:
        _write(session, key, bytes(buffer), created)
        session.log(b"BITFIELD", *args)
        notify(session, STRING, b"setbit", key)
    return replies


@command("bitfield", -2, write=True, keys=(1, 1, 1), flags=("denyoom",))
def bitfield(session: Session, args: list[bytes]) -> object:
    """BITFIELD key [GET encoding offset | [OVERFLOW <WRAP | SAT | FAIL>] <SET encoding offset value | INCRBY encoding offset increment> [GET encoding offset | [OVERFLOW <WRAP | SAT | FAIL>] <SET encoding offset value | INCRBY encoding offset increment> ...]]

    Read and write integer fields of any width at any bit offset (``#N``:
    the Nth field of that width); one reply per GET/SET/INCRBY, nil for a
    write that OVERFLOW FAIL stopped. Logged as issued when it changed the
    value (a new key: ``SET key ""`` first).
    """
    return _bitfield(session, args, readonly_command=False)


@command("bitfield_ro", -2, keys=(1, 1, 1), flags=("fast",))
def bitfield_ro(session: Session, args: list[bytes]) -> object:
    """BITFIELD_RO key [GET encoding offset [GET encoding offset ...]]

    BITFIELD with GET only.
    """
    return _bitfield(session, args, readonly_command=True)

