"""LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest
common subsequence of two strings, with Redis 7.0's replies, errors and
match order (tests/test_commands_bitmaps.py checks them side by side).

Redis fills an (n+1) x (m+1) table of uint32 LCS lengths and walks it back
from the corner; the walk's tie-breaking decides which matches the IDX
reply lists, so the same table must be walked the same way here. The
table's memory is Redis's bound too: a request whose table would pass
proto-max-bulk-len bytes is refused with Redis's error, before anything is
allocated, so no client can make the server allocate without limit.

Filling that table cell by cell in Python would take minutes at the bound,
so it is computed a row at a time with the bit-parallel LCS recurrence
(Hyyrö, "Bit-parallel LCS-length computation revisited", 2004): row r is
an integer V_r whose zero bits mark where LCS(r, c) grows, i.e.
LCS(r, c) = c - popcount(V_r's low c bits). Rows run over the shorter
string and are kept as bytes, one bit per cell (1/32 of Redis's table).
The walk back reads cells through ``_Cells``, which counts each row's
prefix once and then moves bit by bit, since the walk only moves one
cell at a time.
"""

from __future__ import annotations

from kvserver import errors
from kvserver.commands.parsing import parse_int
from kvserver.commands.registry import command
from kvserver.commands.strings import PROTO_MAX_BULK_LEN
from kvserver.errors import CommandError
from kvserver.session import Session

# Redis's check against uint32 truncation of the lengths (unreachable with
# 512 MB strings, kept for the same reply).
UINT32_MAX = 2**32 - 1
CELL_BYTES = 4  # Redis's table holds a uint32 per cell: its memory bound counts those


class _Cells:
    """LCS(i, j) of ``a`` and ``b`` (prefixes of length i and j)."""

    def __init__(self, a: bytes, b: bytes) -> None:
        self.transposed = len(a) > len(b)
        rows, bits = (b, a) if self.transposed else (a, b)
        self.width = (len(bits) + 7) // 8
        full = (1 << len(bits)) - 1
        # The match mask of each byte: bit k set where bits[k] is that byte.
        reverse = bits[::-1]
        masks = {}
        for byte in set(rows):
            table = bytearray(b"0" * 256)
            table[byte] = ord("1")
            masks[byte] = int(reverse.translate(table), 2) if bits else 0
        table = bytearray((len(rows) + 1) * self.width)
        table[: self.width] = full.to_bytes(self.width, "little")
        v = full
        for r, byte in enumerate(rows, 1):
            u = v & masks[byte]
            v = ((v + u) | (v - u)) & full
            table[r * self.width : (r + 1) * self.width] = v.to_bytes(self.width, "little")
        self.table = table
        self.cached: dict[int, list[int]] = {}  # row -> [c, ones among its first c bits]

    def __call__(self, i: int, j: int) -> int:
        r, c = (j, i) if self.transposed else (i, j)
        return c - self._ones(r, c)

    def _ones(self, r: int, c: int) -> int:
        base = r * self.width
        entry = self.cached.get(r)
        if entry is None:
            whole, part = divmod(c, 8)
            ones = int.from_bytes(self.table[base : base + whole], "little").bit_count()
            if part:
                ones += (self.table[base + whole] & ((1 << part) - 1)).bit_count()
            if len(self.cached) > 4:  # the walk needs two rows at a time
                del self.cached[max(self.cached)]
            self.cached[r] = [c, ones]
            return ones
        at, ones = entry
        table = self.table
        while at > c:
            at -= 1
            ones -= (table[base + (at >> 3)] >> (at & 7)) & 1
        while at < c:
            ones += (table[base + (at >> 3)] >> (at & 7)) & 1
            at += 1
        entry[0], entry[1] = at, ones
        return ones


@command("lcs", -3, keys=(1, 2, 1))
def lcs(session: Session, args: list[bytes]) -> object:
    """LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]

    The longest common subsequence of the two strings (a missing key is
    empty); with LEN its length; with IDX the matching ranges, last first,
    as Redis lists them, and the length.
    """
    db, now = session.db, session.now
    a, b = db.lookup(args[0], now), db.lookup(args[1], now)
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise CommandError(errors.LCS_NOT_STRINGS)
    a, b = a or b"", b or b""
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 2
    while j < len(args):
        option = args[j].upper()
        if option == b"IDX":
            getidx = True
        elif option == b"LEN":
            getlen = True
        elif option == b"WITHMATCHLEN":
            withmatchlen = True
        elif option == b"MINMATCHLEN" and j + 1 < len(args):
            minmatchlen = max(parse_int(args[j + 1]), 0)
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    if getidx and getlen:
        raise CommandError(errors.LCS_LEN_AND_IDX)
    if len(a) >= UINT32_MAX - 1 or len(b) >= UINT32_MAX - 1:
        raise CommandError(errors.LCS_TOO_LONG)
    if (len(a) + 1) * (len(b) + 1) * CELL_BYTES > PROTO_MAX_BULK_LEN:
        raise CommandError(errors.LCS_TOO_MUCH_MEMORY)
    cells = _Cells(a, b)
    alen, blen = len(a), len(b)
    length = cells(alen, blen)
    if getlen:
        return length
    # Redis's walk back from the corner, step for step.
    result = bytearray(length)
    matches = []
    idx = length
    unset = alen  # "no range yet", as Redis marks it
    astart, aend, bstart, bend = unset, 0, 0, 0
    i, j = alen, blen
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if astart == unset:
                astart = aend = i - 1
                bstart = bend = j - 1
            elif astart == i and bstart == j:
                astart -= 1
                bstart -= 1
            else:
                emit = True
            if astart == 0 or bstart == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if cells(i - 1, j) > cells(i, j - 1):
                i -= 1
            else:
                j -= 1
            if astart != unset:
                emit = True
        if emit:
            matchlen = aend - astart + 1
            if getidx and (minmatchlen == 0 or matchlen >= minmatchlen):
                match = [[astart, aend], [bstart, bend]]
                if withmatchlen:
                    match.append(matchlen)
                matches.append(match)
            astart = unset
    if getidx:
        return {b"matches": matches, b"len": length}
    return bytes(result)
