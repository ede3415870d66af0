"""Redis 7.0's HyperLogLog representation and arithmetic, on bytes: no
keys, no sessions (commands/hyperloglog.py is the command side).

A HyperLogLog is a plain string value, so that GET/SET, DUMP-like copies
and the log carry it unchanged; these functions read and build exactly the
bytes redis-server 7.0's src/hyperloglog.c does, so a value moves between
the two servers and counts the same:

* a 16-byte header: ``HYLL``, the encoding (0 dense, 1 sparse), three
  unused bytes, the cached cardinality (64 bits little endian; its top bit
  set means "stale, recount");
* dense: 16384 registers of 6 bits, packed from each byte's low bits up
  (12288 bytes);
* sparse: run lengths, ZERO ``00xxxxxx`` (1-64 zero registers), XZERO
  ``01xxxxxx yyyyyyyy`` (1-16384), VAL ``1vvvvvxx`` (1-4 registers of
  value 1-32). A register past 32, or a sparse form past
  hll-sparse-max-bytes, turns the value dense for good.

The element hash is MurmurHash64A (seed 0xadc83b19): its low 14 bits pick
the register, the run of zeros above them (plus one) is the register's
candidate value. The count is Otmar Ertl's estimator from the register
histogram, as hllCount computes it, float for float.

Corrupt input never raises anything but ``Corrupt``: where Redis answers
INVALIDOBJ, so do the callers. Python's ints do not overflow, so run
lengths that would wrap C's int in Redis's loops simply add up to an
invalid total here (and are reported, where C would write out of bounds).
"""

from __future__ import annotations

import math
from collections import Counter

P = 14  # register index bits
Q = 64 - P  # bits left for the run of zeros
REGISTERS = 1 << P  # 16384
P_MASK = REGISTERS - 1
BITS = 6  # bits per dense register
REGISTER_MAX = (1 << BITS) - 1
HDR_SIZE = 16
DENSE_SIZE = HDR_SIZE + (REGISTERS * BITS + 7) // 8  # 12304
DENSE = 0
SPARSE = 1
MAX_ENCODING = 1
MAGIC = b"HYLL"

SPARSE_VAL_MAX_VALUE = 32
SPARSE_VAL_MAX_LEN = 4
SPARSE_ZERO_MAX_LEN = 64
SPARSE_XZERO_MAX_LEN = 16384
# Redis's default hll-sparse-max-bytes: past it a sparse value turns dense.
DEFAULT_SPARSE_MAX_BYTES = 3000
# After a change, Redis tries to merge VAL opcodes among this many from
# the one before the change (hllSparseSet's step 4).
MERGE_SCAN_OPCODES = 5

ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)
_MURMUR_M = 0xC6A4A7935BD1E995
_MURMUR_R = 47
_MURMUR_SEED = 0xADC83B19
_U64 = (1 << 64) - 1


class Corrupt(Exception):
    """The value is a HyperLogLog by its header but its registers do not
    add up (Redis's INVALIDOBJ)."""


# -- the header ------------------------------------------------------------------


def is_hll(value: bytes) -> bool:
    """Redis's isHLLObjectOrReply: a header with the magic, a known
    encoding, and a dense value of exactly the dense size."""
    if len(value) < HDR_SIZE or value[:4] != MAGIC or value[4] > MAX_ENCODING:
        return False
    return value[4] != DENSE or len(value) == DENSE_SIZE


def cached_count(value: bytes) -> int | None:
    """The cached cardinality, None if it is marked stale."""
    if value[15] & 0x80:
        return None
    return int.from_bytes(value[8:16], "little")


def set_cached_count(hll: bytearray, count: int) -> None:
    hll[8:16] = count.to_bytes(8, "little")


def invalidate_cache(hll: bytearray) -> None:
    hll[15] |= 0x80


def new_sparse() -> bytearray:
    """An empty HyperLogLog as createHLLObject makes it: sparse, one XZERO
    of all 16384 registers, cached count 0 (valid)."""
    hll = bytearray(MAGIC + bytes([SPARSE]) + bytes(11))
    left = REGISTERS
    while left:
        run = min(left, SPARSE_XZERO_MAX_LEN)
        hll += _xzero(run)
        left -= run
    return hll


# -- hashing -----------------------------------------------------------------------


def murmurhash64a(data: bytes, seed: int = _MURMUR_SEED) -> int:
    """MurmurHash2, 64-bit version, as Redis's endian-neutral MurmurHash64A
    (its ``len`` is a C int: elements are far below 2 GB)."""
    m = _MURMUR_M
    length = len(data)
    h = (seed ^ (length * m)) & _U64
    tail = length - (length & 7)
    for i in range(0, tail, 8):
        k = int.from_bytes(data[i : i + 8], "little")
        k = (k * m) & _U64
        k ^= k >> _MURMUR_R
        k = (k * m) & _U64
        h ^= k
        h = (h * m) & _U64
    if length & 7:
        h ^= int.from_bytes(data[tail:], "little")
        h = (h * m) & _U64
    h ^= h >> _MURMUR_R
    h = (h * m) & _U64
    h ^= h >> _MURMUR_R
    return h


def pattern(element: bytes) -> tuple[int, int]:
    """hllPatLen: the element's register and the length of its 000..1
    pattern (1 to Q + 1)."""
    h = murmurhash64a(element)
    index = h & P_MASK
    h = (h >> P) | (1 << Q)  # the loop ends by Q + 1
    count = ((h & -h).bit_length())  # position of the lowest 1 bit, from 1
    return index, count


# -- dense ---------------------------------------------------------------------------


def _dense_get(hll, index: int) -> int:
    byte = HDR_SIZE + index * BITS // 8
    fb = index * BITS & 7
    b1 = hll[byte + 1] if byte + 1 < len(hll) else 0  # sds's terminating zero
    return ((hll[byte] >> fb) | (b1 << (8 - fb))) & REGISTER_MAX


def _dense_set(hll: bytearray, index: int, value: int) -> None:
    byte = HDR_SIZE + index * BITS // 8
    fb = index * BITS & 7
    hll[byte] = (hll[byte] & ~(REGISTER_MAX << fb) & 0xFF) | ((value << fb) & 0xFF)
    if byte + 1 < len(hll):  # in Redis the last register spills into the terminator
        hll[byte + 1] = (hll[byte + 1] & ~(REGISTER_MAX >> (8 - fb)) & 0xFF) | (value >> (8 - fb))


def _dense_update(hll: bytearray, index: int, count: int) -> int:
    """hllDenseSet: 1 if the register grew to ``count``, else 0."""
    if count > _dense_get(hll, index):
        _dense_set(hll, index, count)
        return 1
    return 0


# Per-byte pieces of the four registers every three dense bytes hold
# (r0 = b0 & 63; r1 = b0 >> 6 | (b1 & 15) << 2; r2 = b1 >> 4 | (b2 & 3) << 4;
# r3 = b2 >> 2): each piece a bytes.translate table, the OR of two pieces
# done on whole ints (their bits never overlap).
_LOW6 = bytes(b & 63 for b in range(256))
_HIGH2 = bytes(b >> 6 for b in range(256))
_LOW4_UP2 = bytes((b & 15) << 2 for b in range(256))
_HIGH4 = bytes(b >> 4 for b in range(256))
_LOW2_UP4 = bytes((b & 3) << 4 for b in range(256))
_HIGH6 = bytes(b >> 2 for b in range(256))
# And back (registers to bytes): the bits each register gives each byte.
_UP6 = bytes((b << 6) & 0xFF for b in range(256))
_UP4 = bytes((b << 4) & 0xFF for b in range(256))
_UP2 = bytes((b << 2) & 0xFF for b in range(256))


def _or_bytes(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def _dense_registers(hll) -> bytearray:
    """The 16384 registers of a dense value, one byte each."""
    body = bytes(hll[HDR_SIZE:DENSE_SIZE])
    b0, b1, b2 = body[0::3], body[1::3], body[2::3]
    raw = bytearray(REGISTERS)
    raw[0::4] = b0.translate(_LOW6)
    raw[1::4] = _or_bytes(b0.translate(_HIGH2), b1.translate(_LOW4_UP2))
    raw[2::4] = _or_bytes(b1.translate(_HIGH4), b2.translate(_LOW2_UP4))
    raw[3::4] = b2.translate(_HIGH6)
    return raw


# -- sparse --------------------------------------------------------------------------


def _xzero(run: int) -> bytes:
    run -= 1
    return bytes(((run >> 8) | 0x40, run & 0xFF))


def _zero_or_xzero(run: int) -> bytes:
    return _xzero(run) if run > SPARSE_ZERO_MAX_LEN else bytes((run - 1,))


def _val(value: int, run: int) -> int:
    return ((value - 1) << 2 | (run - 1)) | 0x80


def _opcode(hll, p: int, end: int) -> tuple[int, int, int]:
    """The opcode at ``p``: (its size in bytes, run length, value; 0 for
    the zero runs). Past ``end`` reads as zero, like sds's terminator."""
    op = hll[p]
    if op & 0x80:
        return 1, (op & 3) + 1, ((op >> 2) & 0x1F) + 1
    if op & 0x40:
        low = hll[p + 1] if p + 1 < end else 0
        return 2, (((op & 0x3F) << 8) | low) + 1, 0
    return 1, (op & 0x3F) + 1, 0


def _sparse_runs(hll):
    """(run, value) for each opcode of a sparse value, in order."""
    p, end = HDR_SIZE, len(hll)
    while p < end:
        size, run, value = _opcode(hll, p, end)
        yield run, value
        p += size


def _sparse_registers(hll) -> bytearray:
    """The registers of a sparse value, one byte each (hllMerge's and
    hllSparseToDense's walk); Corrupt unless the runs cover exactly 16384."""
    raw = bytearray(REGISTERS)
    i = 0
    for run, value in _sparse_runs(hll):
        if value:
            if i + run > REGISTERS:
                raise Corrupt
            raw[i : i + run] = bytes((value,)) * run
        i += run
        if i > REGISTERS:  # Redis would go on adding; the total is wrong anyway
            raise Corrupt
    if i != REGISTERS:
        raise Corrupt
    return raw


def _pack_dense(header, raw) -> bytearray:
    """A dense value with ``header``'s cached count and these registers
    (each at most 63)."""
    r0, r1, r2, r3 = bytes(raw[0::4]), bytes(raw[1::4]), bytes(raw[2::4]), bytes(raw[3::4])
    body = bytearray(DENSE_SIZE - HDR_SIZE)
    body[0::3] = _or_bytes(r0, r1.translate(_UP6))
    body[1::3] = _or_bytes(r1.translate(_HIGH6), r2.translate(_UP4))
    body[2::3] = _or_bytes(r2.translate(_HIGH4), r3.translate(_UP2))
    hll = bytearray(header[:HDR_SIZE])
    hll[4] = DENSE
    return hll + body


def to_dense(hll: bytearray) -> bytearray:
    """hllSparseToDense: the dense form, keeping the header's cached count;
    a dense value as it is. Corrupt if the runs do not add up."""
    if hll[4] == DENSE:
        return hll
    return _pack_dense(hll, _sparse_registers(hll))


def _sparse_update(hll: bytearray, index: int, count: int, max_bytes: int) -> tuple[bytearray, int]:
    """hllSparseSet, step for step: set register ``index`` to ``count`` if
    that is larger. Returns the value (a new dense one if it had to be
    promoted) and 1 if the register grew, else 0. Corrupt if no opcode
    covers ``index``."""
    if count > SPARSE_VAL_MAX_VALUE:
        return _promote(hll, index, count)
    # Step 1: the opcode covering the register, and the one before it.
    end = len(hll)
    p = HDR_SIZE
    first = 0
    prev = None
    size = run = value = 0
    while p < end:
        size, run, value = _opcode(hll, p, end)
        if index <= first + run - 1:
            break
        prev = p
        p += size
        first += run
    if p >= end:
        raise Corrupt
    is_val = hll[p] & 0x80
    # Step 2: the easy cases, changed in place.
    if is_val and value >= count:
        return hll, 0
    if (is_val or size == 1) and run == 1:  # a VAL or a ZERO of one register
        hll[p] = _val(count, 1)
    else:
        # The general case: split the opcode around the register.
        last = first + run - 1
        seq = bytearray()
        if not is_val:
            if index != first:
                seq += _zero_or_xzero(index - first)
            seq.append(_val(count, 1))
            if index != last:
                seq += _zero_or_xzero(last - index)
        else:
            if index != first:
                seq.append(_val(value, index - first))
            seq.append(_val(count, 1))
            if index != last:
                seq.append(_val(value, last - index))
        # Step 3: put the sequence in place of the opcode.
        delta = len(seq) - size
        if delta > 0 and end + delta > max_bytes:
            return _promote(hll, index, count)
        new_end = end + delta
        hll[p : p + size] = seq
        del hll[new_end:]  # only a truncated last XZERO leaves a byte over
        end = len(hll)
    # Step 4: merge adjacent VALs of the same value around the change.
    p = prev if prev is not None else HDR_SIZE
    scan = MERGE_SCAN_OPCODES
    while p < end and scan:
        scan -= 1
        op = hll[p]
        if not op & 0x80:
            p += 2 if op & 0x40 else 1
            continue
        if p + 1 < end and hll[p + 1] & 0x80:
            v1 = ((op >> 2) & 0x1F) + 1
            nxt = hll[p + 1]
            if v1 == ((nxt >> 2) & 0x1F) + 1:
                length = (op & 3) + 1 + (nxt & 3) + 1
                if length <= SPARSE_VAL_MAX_LEN:
                    hll[p + 1] = _val(v1, length)
                    del hll[p]
                    end -= 1
                    continue  # try the merged one with its right neighbour
        p += 1
    invalidate_cache(hll)
    return hll, 1


def _promote(hll: bytearray, index: int, count: int) -> tuple[bytearray, int]:
    dense = to_dense(hll)
    _dense_update(dense, index, count)
    return dense, 1


# -- what the commands do --------------------------------------------------------------


def add(hll: bytearray, elements, max_bytes: int) -> tuple[bytearray, int]:
    """PFADD's loop (hllAdd per element): returns the value, which may be
    a new one (promoted to dense), and how many elements changed a
    register. The cache is invalidated by the caller, as pfaddCommand
    does. Corrupt on a sparse value whose runs miss a register."""
    updated = 0
    for element in elements:
        index, count = pattern(element)
        if hll[4] == DENSE:
            updated += _dense_update(hll, index, count)
        else:
            hll, grew = _sparse_update(hll, index, count, max_bytes)
            updated += grew
    return hll, updated


def registers(hll) -> bytearray:
    """The 16384 registers of a valid value, one byte each (for merging)."""
    return _dense_registers(hll) if hll[4] == DENSE else _sparse_registers(hll)


def merge_registers(into: bytearray, other) -> None:
    """hllMerge: ``into[i] = max(into[i], other[i])``."""
    into[:] = bytes(map(max, into, other))


def histogram(hll) -> list[int]:
    """The register histogram (hllDenseRegHisto / hllSparseRegHisto);
    Corrupt where hllSparseRegHisto sets ``invalid``."""
    histo = [0] * 64
    if hll[4] == DENSE:
        for value, n in Counter(_dense_registers(hll)).items():
            histo[value] += n
        return histo
    total = 0
    for run, value in _sparse_runs(hll):
        histo[value] += run
        total += run
    if total != REGISTERS:
        raise Corrupt
    return histo


def raw_histogram(raw) -> list[int]:
    """The histogram of one-byte registers (hllRawRegHisto)."""
    histo = [0] * 64
    for value, n in Counter(raw).items():
        histo[value] += n
    return histo


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def estimate(histo: list[int]) -> int:
    """hllCount's estimate from a register histogram ("New cardinality
    estimation algorithms for HyperLogLog sketches", Otmar Ertl,
    arXiv:1702.01284), in the same double arithmetic."""
    m = float(REGISTERS)
    z = m * _tau((m - histo[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histo[j]
        z *= 0.5
    z += m * _sigma(histo[0] / m)
    e = ALPHA_INF * m * m / z
    whole = math.floor(e)  # llroundl: halves away from zero (e >= 0)
    return int(whole) + (1 if e - whole >= 0.5 else 0)


def count(hll) -> int:
    """The cardinality of one value, ignoring its cache."""
    return estimate(histogram(hll))


def store_registers(dest: bytearray | None, raw, use_dense: bool, max_bytes: int) -> bytearray:
    """PFMERGE's write: ``dest`` (None: a new sparse value) with each
    register raised to ``raw``'s, turned dense first if ``use_dense`` (a
    source was dense), the cache invalidated. ``dest`` must be valid (it
    was merged into ``raw`` already)."""
    hll = dest if dest is not None else new_sparse()
    if use_dense:
        hll = to_dense(hll)
    for index, value in enumerate(raw):
        if not value:
            continue
        if hll[4] == DENSE:
            _dense_update(hll, index, value)
        else:
            hll, _ = _sparse_update(hll, index, value, max_bytes)
    invalidate_cache(hll)
    return hll
