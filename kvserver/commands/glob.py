"""Glob patterns as Redis matches them (util.c ``stringmatchlen``), for KEYS
and SCAN MATCH; ``glob_matcher`` is the case-blind form CONFIG GET and
COMMAND LIST use.

What a pattern means, exactly as Redis 7.0 reads it, byte by byte:

* ``*`` any run of bytes, ``?`` one byte, any other byte itself;
  ``\\x`` the byte ``x`` (a ``\\`` at the very end is itself).
* ``[...]`` one byte from a class: bytes, ``\\x`` escapes, ranges ``a-z``
  (reversed ``z-a`` is the same range; the ends compare as C's signed
  ``char``, see ``_range``), ``[^...]`` negated. ``]`` right after ``[`` or
  ``[^`` closes an empty class. A class with no ``]`` runs to the end of
  the pattern.
* The empty key matches only the empty pattern (Redis's loop never starts
  on an empty string; KEYS * and SCAN MATCH * skip matching altogether).
* Redis 7.0.15 gives up past 1000 nested stars (``nesting > 1000``, its
  guard against deep recursion): a pattern with more than ``MAX_NESTING``
  runs of stars followed by something matches no key at all.

Two matchers, both linear in the key for each piece of the pattern (at
most key x pattern steps in all, whatever the number of stars, where
Redis's own recursion needs skipLongerMatches against ``*a*a*a*a*b``):
every element but ``*`` matches exactly one byte, so the text between two
stars can be placed at its leftmost fit and never moved again.

* A pattern up to ``MAX_REGEX_PATTERN`` bytes is compiled once (cached)
  into a Python regular expression with an atomic group per piece.
* A longer one gets ``_Walker``, which reads the pattern lazily as keys
  need it: compiling a 1 MB pattern of ``[a-z]`` classes into a regex cost
  13.5 s of CPU per KEYS, while a key of 20 bytes needs at most its first
  21 elements.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

Matcher = Callable[[bytes], bool]

# Patterns up to this long are compiled to a regex and cached; a longer one
# (rare, and possibly huge) is walked lazily (_Walker) for its one command:
# a regex costs time and memory in proportion to the whole pattern.
MAX_REGEX_PATTERN = 1024
MAX_CACHED_PATTERN = MAX_REGEX_PATTERN  # the old name
PATTERN_CACHE_SIZE = 256  # distinct patterns remembered
# Redis 7.0.15's stringmatchlen_impl: "if (nesting > 1000) return 0", one
# level per run of stars it recurses into. A pattern of MAX_REGEX_PATTERN
# bytes has at most 512 such runs, so only _Walker needs to count them.
MAX_NESTING = 1000

_STAR = -1  # the element "*"; any other element is the set of bytes it matches, as bits
_BIT = tuple(1 << b for b in range(256))
_ANY = b"."  # with DOTALL: any one byte
_NEVER = b"(?!)"  # an empty class: matches no byte


def compile_pattern(pattern: bytes) -> Matcher:
    """A function telling whether a key matches ``pattern``."""
    if len(pattern) <= MAX_REGEX_PATTERN:
        return _cached(pattern)
    return _Walker(pattern)


def glob_matcher(pattern: bytes) -> Matcher:
    """Redis's stringmatchlen with nocase set, as CONFIG GET and COMMAND LIST
    use it: its tolower on both sides is lower-casing pattern and text."""
    match = compile_pattern(pattern.lower())
    return lambda text: match(text.lower())


def matches(pattern: bytes, key: bytes) -> bool:
    """Redis's ``stringmatchlen(pattern, key, nocase=0)``."""
    return compile_pattern(pattern)(key)


@functools.lru_cache(maxsize=PATTERN_CACHE_SIZE)
def _cached(pattern: bytes) -> Matcher:
    return _compile(pattern)


def _compile(pattern: bytes) -> Matcher:
    if not pattern:
        return _is_empty
    # Split into the runs of one-byte elements between stars.
    runs: list[list[bytes]] = [[]]
    for element in _elements(pattern):
        if element == _STAR:
            runs.append([])
        else:
            runs[-1].append(_regex(element))
    first, *middle_and_last = (b"".join(run) for run in runs)
    if not middle_and_last:
        regex = first + rb"\Z"
    else:
        *middle, last = middle_and_last
        # Each middle run at its leftmost fit, never revisited; the last one
        # must end the key, anywhere after that.
        regex = first + b"".join(b"(?>.*?" + run + b")" for run in middle if run) + b".*" + last + rb"\Z"
    match = re.compile(regex, re.DOTALL).match
    return lambda key: bool(key) and match(key) is not None


def _is_empty(key: bytes) -> bool:
    return not key


class _Walker:
    """The matcher of a long pattern: the same leftmost-fit rule as the
    regex, on elements parsed only as far as some key has needed them.

    ``steps`` counts the byte comparisons made (for tests: never more than
    (len(key) + 1) x len(pattern) per key). One command uses it, on one
    thread.
    """

    __slots__ = ("pattern", "elements", "parsed", "steps")

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.elements: list[int] = []  # parsed so far
        self.parsed = 0  # where parsing stopped in the pattern
        self.steps = 0

    def _element(self, i: int) -> int | None:
        """Element ``i`` (``_STAR`` or a byte set), None past the end."""
        elements = self.elements
        while len(elements) <= i:
            if self.parsed >= len(self.pattern):
                return None
            element, self.parsed = _next_element(self.pattern, self.parsed)
            elements.append(element)
        return elements[i]

    def _fit(self, key: bytes, first: int, at: int) -> tuple[int, int | None]:
        """Match the run of elements from ``first`` against ``key`` from
        ``at``: (its length, the element after it) if it fits there; (-1,
        None) if it does not; (-2, None) if the key ends first, so that it
        fits at no later place either."""
        get, n = self._element, len(key)
        k = 0
        while True:
            element = get(first + k)
            if element is None or element == _STAR:
                return k, element
            if at + k == n:
                return -2, None
            self.steps += 1
            if not element >> key[at + k] & 1:
                return -1, None
            k += 1

    def __call__(self, key: bytes) -> bool:
        if not key:
            return not self.pattern
        get, n = self._element, len(key)
        # The elements before the first star: anchored at the start.
        k, after = self._fit(key, 0, 0)
        if k < 0:
            return False
        if after is None:
            return k == n
        i, s = k, k
        nesting = 0
        while True:  # at a run of stars, the key matched up to s
            while get(i) == _STAR:
                i += 1
            if get(i) is None:
                return True  # trailing stars match the rest
            nesting += 1
            if nesting > MAX_NESTING:
                return False  # as Redis: no key matches past this depth
            at = s
            while True:  # the leftmost place the run fits
                k, after = self._fit(key, i, at)
                if k == -2:
                    return False
                if k >= 0:
                    break
                at += 1
            if after is None:
                # The last run must end the key: it has one place only.
                place = n - k
                return place >= at and (place == at or self._fit(key, i, place)[0] == k)
            i, s = i + k, at + k


def _elements(pattern: bytes):
    """The pattern's elements, read as stringmatchlen walks it."""
    i, n = 0, len(pattern)
    while i < n:
        element, i = _next_element(pattern, i)
        yield element


def _next_element(pattern: bytes, i: int) -> tuple[int, int]:
    """The element at ``i``: ``_STAR``, or the set of bytes it matches (bit
    b set: byte b); and the index after it."""
    c = pattern[i]
    if c == 0x2A:  # '*'
        return _STAR, i + 1
    if c == 0x3F:  # '?'
        return _ALL_BYTES, i + 1
    if c == 0x5B:  # '['
        members, last = _class(pattern, i + 1)
        return members, last + 1
    if c == 0x5C and i + 1 < len(pattern):  # '\\' escapes the next byte
        i += 1
    return _BIT[pattern[i]], i + 1


def _regex(members: int) -> bytes:
    """A regular expression matching one byte of the set ``members``."""
    if not members:
        return _NEVER
    if members == _ALL_BYTES:
        return _ANY
    if not members & (members - 1):  # one byte
        return re.escape(bytes((members.bit_length() - 1,)))
    listed = b"".join(re.escape(bytes((b,))) for b in range(256) if members >> b & 1)
    return b"[" + listed + b"]"


def _class(pattern: bytes, i: int) -> tuple[int, int]:
    """The ``[...]`` class starting at ``i`` (just after the ``[``): the set
    of bytes it matches, and the index of its last byte.

    A transcription of the C loop; ``n - i`` is its ``patternLen``, and it
    reads the terminating NUL (never ``^``, ``]``, ``\\`` or ``-``) where
    the pattern has ended.
    """
    n = len(pattern)
    negate = i < n and pattern[i] == 0x5E  # '^'
    if negate:
        i += 1
    members = 0  # bit b set: byte b is in the class
    while True:
        if n - i >= 2 and pattern[i] == 0x5C:  # '\\x': x itself
            i += 1
            members |= 1 << pattern[i]
        elif i < n and pattern[i] == 0x5D:  # ']'
            break
        elif i >= n:  # no ']': the class ends with the pattern
            i -= 1
            break
        elif n - i >= 3 and pattern[i + 1] == 0x2D:  # 'a-z'
            members |= _range(pattern[i], pattern[i + 2])
            i += 2
        else:
            members |= 1 << pattern[i]
        i += 1
    if negate:
        members ^= _ALL_BYTES
    return members, i


_ALL_BYTES = (1 << 256) - 1


def _range(first: int, last: int) -> int:
    """The bytes of the class range ``first-last``, as a bit set.

    stringmatchlen compares the ends as C ``char``: signed on x86-64, the
    build we match (arm64 Linux has an unsigned char, and Redis there
    differs). So ``[a-\\xff]`` is the range -1..97: bytes 0x00-0x61 and 0xff.
    """
    start, end = sorted((_signed(first), _signed(last)))
    if start >= 0 or end < 0:  # one run of bytes
        return _span(start & 0xFF, end & 0xFF)
    return _span(0, end) | _span(start & 0xFF, 0xFF)  # wraps through 0


def _span(low: int, high: int) -> int:
    return ((1 << (high + 1)) - 1) ^ ((1 << low) - 1)


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 0x80 else byte
