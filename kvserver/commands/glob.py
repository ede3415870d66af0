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

A pattern is compiled once (cached) into a Python regular expression that
cannot backtrack badly: every element but ``*`` matches exactly one byte, so
the text between two stars can be placed at its leftmost fit and never moved
again (an atomic group). Matching is then linear in the key for each piece
of the pattern, whatever the number of stars, where Redis's own recursion
needs a guard against patterns like ``*a*a*a*a*b``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

Matcher = Callable[[bytes], bool]

# Patterns up to this long stay compiled in the cache; a longer one (rare,
# and possibly huge) is compiled for its one command and dropped.
MAX_CACHED_PATTERN = 1024
PATTERN_CACHE_SIZE = 256  # distinct patterns remembered

_STAR = object()
_ANY = b"."  # with DOTALL: any one byte
_NEVER = b"(?!)"  # an empty class: matches no byte


def compile_pattern(pattern: bytes) -> Matcher:
    """A function telling whether a key matches ``pattern``."""
    if len(pattern) <= MAX_CACHED_PATTERN:
        return _cached(pattern)
    return _compile(pattern)


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
        if element is _STAR:
            runs.append([])
        else:
            runs[-1].append(element)
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


def _elements(pattern: bytes):
    """The pattern's elements, read as stringmatchlen walks it: ``_STAR``,
    or a regular expression matching exactly one byte."""
    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            yield _STAR
        elif c == 0x3F:  # '?'
            yield _ANY
        elif c == 0x5B:  # '['
            members, i = _class(pattern, i + 1)
            yield members
        else:
            if c == 0x5C and i + 1 < n:  # '\\' escapes the next byte
                i += 1
            yield re.escape(pattern[i : i + 1])
        i += 1


def _class(pattern: bytes, i: int) -> tuple[bytes, int]:
    """The ``[...]`` class starting at ``i`` (just after the ``[``): a
    one-byte regular expression, and the index of its last byte.

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
    if not members:
        return _NEVER, i
    if members == _ALL_BYTES:
        return _ANY, i
    listed = b"".join(re.escape(bytes((b,))) for b in range(256) if members >> b & 1)
    return b"[" + listed + b"]", i


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
