"""Tests for kvserver/commands/glob.py: Redis's glob patterns.

The reference is ``stringmatchlen`` below, Redis 7.0's util.c transcribed
line by line (pointer arithmetic and the C string's terminating NUL
included), checked in turn against a real redis-server's KEYS. The compiled
matcher must agree with it on every pattern and key, and stay fast on the
patterns that make a backtracking matcher crawl.
"""

from __future__ import annotations

import sys
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kvserver.commands import glob
from kvserver.commands.glob import compile_pattern, matches
from tests.support import bulk_strings


def stringmatchlen(pattern: bytes, string: bytes) -> bool:
    """Redis 7.0.15's stringmatchlen_impl (nocase 0), transcribed."""
    pat = pattern + b"\0"  # the C code reads the terminating NUL past the end
    st_ = string + b"\0"
    skip_longer = [False]

    def signed(c: int) -> int:  # C char on x86-64
        return c - 256 if c >= 128 else c

    def impl(p: int, plen: int, s: int, slen: int, nesting: int = 0) -> bool:
        if nesting > 1000:  # 7.0.15's guard against deep recursion
            return False
        while plen and slen:
            c = pat[p]
            if c == ord("*"):
                while plen and pat[p + 1] == ord("*"):
                    p += 1
                    plen -= 1
                if plen == 1:
                    return True
                while slen:
                    if impl(p + 1, plen - 1, s, slen, nesting + 1):
                        return True
                    if skip_longer[0]:
                        return False
                    s += 1
                    slen -= 1
                skip_longer[0] = True
                return False
            elif c == ord("?"):
                s += 1
                slen -= 1
            elif c == ord("["):
                p += 1
                plen -= 1
                negate = pat[p] == ord("^")
                if negate:
                    p += 1
                    plen -= 1
                match = False
                while True:
                    if pat[p] == ord("\\") and plen >= 2:
                        p += 1
                        plen -= 1
                        if pat[p] == st_[s]:
                            match = True
                    elif pat[p] == ord("]"):
                        break
                    elif plen == 0:
                        p -= 1
                        plen += 1
                        break
                    elif plen >= 3 and pat[p + 1] == ord("-"):
                        start, end = signed(pat[p]), signed(pat[p + 2])
                        if start > end:
                            start, end = end, start
                        p += 2
                        plen -= 2
                        if start <= signed(st_[s]) <= end:
                            match = True
                    elif pat[p] == st_[s]:
                        match = True
                    p += 1
                    plen -= 1
                if negate:
                    match = not match
                if not match:
                    return False
                s += 1
                slen -= 1
            else:
                if c == ord("\\") and plen >= 2:
                    p += 1
                    plen -= 1
                if pat[p] != st_[s]:
                    return False
                s += 1
                slen -= 1
            p += 1
            plen -= 1
            if slen == 0:
                while pat[p] == ord("*"):
                    p += 1
                    plen -= 1
                break
        return plen == 0 and slen == 0

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4000))  # one frame per star, up to 1001
    try:
        return impl(0, len(pattern), 0, len(string))
    finally:
        sys.setrecursionlimit(limit)


# (pattern, key, matches) as Redis 7.0 answers; each was also checked with
# KEYS against redis-server (see test_keys_side_by_side below).
CASES = [
    # plain bytes, ? and *
    (b"abc", b"abc", True),
    (b"abc", b"abd", False),
    (b"abc", b"abcd", False),
    (b"a?c", b"abc", True),
    (b"a?c", b"ac", False),
    (b"a*", b"a", True),
    (b"a*", b"abcdef", True),
    (b"*c", b"abc", True),
    (b"*c", b"abd", False),
    (b"a*c", b"ac", True),
    (b"a*b*c", b"axxbyyc", True),
    (b"a*b*c", b"axxcyyb", False),
    (b"**", b"x", True),
    (b"*", b"\x00\xff", True),
    # the empty key matches only the empty pattern
    (b"", b"", True),
    (b"*", b"", False),
    (b"**", b"", False),
    (b"?", b"", False),
    (b"", b"a", False),
    # escapes
    (b"a\\*", b"a*", True),
    (b"a\\*", b"ab", False),
    (b"\\?", b"?", True),
    (b"\\?", b"x", False),
    (b"\\[a]", b"[a]", True),
    (b"\\a", b"a", True),
    (b"a\\", b"a\\", True),  # a backslash at the very end is itself
    (b"\\\\", b"\\", True),
    # classes
    (b"[abc]", b"b", True),
    (b"[abc]", b"d", False),
    (b"[^abc]", b"d", True),
    (b"[^abc]", b"a", False),
    (b"[a-c]x", b"bx", True),
    (b"[c-a]x", b"bx", True),  # a reversed range is the same range
    (b"[a-c]", b"d", False),
    (b"[^a-c]", b"d", True),
    (b"[\\]]", b"]", True),
    (b"[\\^]", b"^", True),
    (b"[a\\-z]", b"-", True),
    (b"[a\\-z]", b"b", False),
    (b"[]a]", b"a", False),  # "[]" is an empty class, then "a]"
    (b"[]a]", b"]a]", False),
    (b"[^]a]", b"xa]", True),
    (b"[a-]", b"a", True),  # the range a..']' and no closing bracket
    (b"[a-]", b"^", True),
    (b"[a-]", b"-", False),
    (b"[abc", b"c", True),  # no ']': the class runs to the end
    (b"[abc", b"cx", False),
    (b"[", b"[", False),
    (b"[^", b"q", True),
    (b"[\\", b"\\", True),
    (b"[a-\xff]", b"\x00", True),  # ends compare as signed chars: -1..97
    (b"[a-\xff]", b"b", False),
    (b"[a-\xff]", b"\xff", True),
    (b"[a-\xff]", b"\xfe", False),
    (b"[\x80-\x90]", b"\x85", True),
    (b"[\x7f-\x80]", b"a", True),  # -128..127: every byte
    (b"*[0-9]", b"key:7", True),
    (b"user:*:name", b"user:42:name", True),
    (b"user:*:name", b"user:42:names", False),
]


@pytest.mark.parametrize(("pattern", "key", "expected"), CASES)
def test_cases(pattern, key, expected):
    assert stringmatchlen(pattern, key) is expected, "the reference disagrees"
    assert matches(pattern, key) is expected


# A small alphabet full of the bytes that mean something in a pattern.
_NASTY = st.sampled_from(list(b"ab-]^[\\*?\x00\x7f\x80\xffz"))
_patterns = st.lists(_NASTY, max_size=10).map(bytes)
_keys = st.lists(_NASTY, max_size=8).map(bytes)


@settings(max_examples=3000, deadline=None)
@given(pattern=_patterns, key=_keys)
@example(pattern=b"*a*", key=b"a")
@example(pattern=b"[^", key=b"")
@example(pattern=b"a*b", key=b"ab")
def test_matches_as_stringmatchlen(pattern, key):
    expected = stringmatchlen(pattern, key)
    assert matches(pattern, key) == expected
    # _Walker serves patterns over MAX_REGEX_PATTERN; checked on short ones
    # too, where the reference is quick.
    assert glob._Walker(pattern)(key) == expected


@settings(max_examples=500, deadline=None)
@given(pattern=st.binary(max_size=12), key=st.binary(max_size=12))
def test_matches_as_stringmatchlen_any_bytes(pattern, key):
    assert matches(pattern, key) == stringmatchlen(pattern, key)


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        (b"*a" * 40 + b"b", b"a" * 10_000),  # exponential for naive backtracking
        (b"a*" * 500 + b"b", b"a" * 5_000),
        (b"*" * 100_000 + b"x", b"y" * 100_000),
        (b"*?" * 2_000 + b"!", b"?" * 20_000),
        (b"[a-" * 100_000, b"a"),  # a huge unterminated class
    ],
)
def test_nasty_patterns_are_fast(pattern, key):
    started = time.perf_counter()
    assert matches(pattern, key) == (pattern == b"[a-" * 100_000)
    assert time.perf_counter() - started < 1.0


_many_stars = st.lists(st.sampled_from([b"*", b"a", b"b", b"?", b"[ab]"]), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(pattern=_many_stars, key=st.lists(st.sampled_from(b"ab"), max_size=30).map(bytes))
def test_the_walker_with_many_stars(pattern, key):
    walker = glob._Walker(pattern)
    assert walker(key) == stringmatchlen(pattern, key)
    assert walker.steps <= (len(key) + 1) * max(len(pattern), 1)


MEGABYTE_OF_CLASSES = (b"[a-z]" * 209_716)[: 1 << 20]  # 1 MiB: was 13.5 s of CPU per KEYS


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        (MEGABYTE_OF_CLASSES, b"abc"),
        (MEGABYTE_OF_CLASSES, b"k" * 1000),
        (b"*" + MEGABYTE_OF_CLASSES, b"hello"),
        (MEGABYTE_OF_CLASSES[:5000] + b"*", b"x" * 1000 + b"yz"),
        (b"*a" * 600 + b"*b", b"a" * 5000),  # Redis needs skipLongerMatches here
        (b"*a" * 600 + b"*b", b"a" * 700 + b"b"),
        (b"*a" * 600 + b"*b", b"ab" * 600),
        (b"*a" * 1001 + b"*", b"a" * 5000),  # past Redis's nesting limit
        (b"*a" * 1000 + b"*", b"a" * 5000),
        (b"[ab]" * 600, b"ab" * 300),
        (b"?" * 2000 + b"*?", b"q" * 2001),
    ],
)
def test_long_patterns_take_at_most_key_times_pattern_steps(pattern, key):
    matcher = compile_pattern(pattern)
    assert isinstance(matcher, glob._Walker)
    assert matcher(key) == stringmatchlen(pattern, key)
    # The bound the module promises, counted rather than timed; a key
    # shorter than the pattern costs about its own length.
    assert matcher.steps <= (len(key) + 1) * len(pattern)
    assert matcher.steps <= 3 * len(key) * (len(key) + 1) or len(key) > 100
    assert len(matcher.elements) <= 2 * len(key) + 2 or len(key) > 100


def test_a_long_pattern_reads_only_what_the_keys_need():
    matcher = compile_pattern(MEGABYTE_OF_CLASSES)
    for key in (b"abc", b"hello", b"x" * 20):
        assert not matcher(key)
    assert len(matcher.elements) <= 21 and matcher.parsed <= 21 * 5
    assert matcher.steps <= 3 + 5 + 20


def test_compiled_patterns_are_cached():
    assert compile_pattern(b"user:*") is compile_pattern(b"user:*")


def test_a_long_pattern_is_compiled_but_not_kept():
    long_pattern = b"k" * (glob.MAX_CACHED_PATTERN + 1) + b"*"
    before = glob._cached.cache_info().currsize
    assert matches(long_pattern, b"k" * (glob.MAX_CACHED_PATTERN + 1) + b"tail")
    assert glob._cached.cache_info().currsize == before


# -- against redis-server: KEYS over the same keys ----------------------------------------

KEYSET = [
    b"", b"a", b"b", b"c", b"ab", b"abc", b"a*", b"a?", b"?", b"*", b"\\", b"-", b"]", b"^",
    b"[a]", b"]a]", b"xa]", b"\x00", b"\xff", b"\xfe", b"\x80", b"key:7", b"key:x",
    b"user:42:name", b"user::name", b"\\a", b"a\\",
]  # fmt: skip


def test_long_patterns_side_by_side(side_by_side):
    keys = [b"abc", b"a" * 1200, b"a" * 1200 + b"b", b"ab" * 700, b"x" * 2000]
    for key in keys:
        side_by_side.both("SET", key, "1")
    for pattern in [
        MEGABYTE_OF_CLASSES,
        b"*" + MEGABYTE_OF_CLASSES[:3000],
        b"[a-z]" * 700 + b"*",
        b"*a" * 600 + b"*b",
        b"*a" * 1000 + b"*",
        b"*a" * 1001 + b"*",
        b"*a" * 1001,
        b"a*" * 1001,
        b"?" * 1200 + b"*",
    ]:
        ours, theirs = side_by_side.each("KEYS", pattern)
        assert sorted(bulk_strings(ours)) == sorted(bulk_strings(theirs)), pattern[:40]


def test_keys_side_by_side(side_by_side):
    for key in KEYSET:
        side_by_side.both("SET", key, "1")
    patterns = sorted({pattern for pattern, _, _ in CASES}) + [b"*", b"[^a-z]*", b"*\\", b"?*?"]
    for pattern in patterns:
        ours, theirs = side_by_side.each("KEYS", pattern)
        ours, theirs = sorted(bulk_strings(ours)), sorted(bulk_strings(theirs))
        assert ours == theirs, pattern
        expected = KEYSET if pattern == b"*" else [k for k in KEYSET if stringmatchlen(pattern, k)]
        assert ours == sorted(expected), pattern
