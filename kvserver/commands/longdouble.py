"""INCRBYFLOAT's arithmetic: the x86-64 ``long double`` Redis computes in,
done exactly with fractions so every machine gives Redis's bytes.

Redis parses both operands with ``strtold``, adds them as 80-bit x87
extended doubles (64-bit significand), and prints the sum with ``%.17Lf``
before trimming trailing zeros. Python's float has a 53-bit significand, so
``10.5 + 0.1`` would print ``10.59999999999999964`` where Redis prints
``10.6``. Here every value is an exact ``Fraction``, rounded to the nearest
extended double (ties to even, with subnormals) after parsing and after the
addition, as the hardware does; the decimal output is then exact too, as
glibc's printf is.

Rules this module keeps, from Redis's ``string2ld`` and ``ld2string``:

* Accepted input is what ``strtold`` consumes whole in the C locale:
  decimal or hexadecimal (``0x1p3``) numbers and ``inf``/``infinity``. No
  leading or trailing space, no NUL, no NaN, fewer than 5120 bytes.
* A number too large for a long double (``1e5000``), or a non-zero number
  that rounds to zero (``1e-5000``), is rejected, as ``strtold``'s ERANGE is.
* Output has 17 decimals, trailing zeros and a bare point removed, and
  ``-0`` written ``0``.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Redis's MAX_LONG_DOUBLE_CHARS: string2ld refuses an input this long or longer.
MAX_LONG_DOUBLE_CHARS = 5 * 1024

_SIGNIFICAND_BITS = 64  # x87 extended precision, explicit integer bit
_MIN_QUANTUM_EXP = -16445  # the smallest subnormal is 2**-16445
_MAX_FINITE = ((1 << _SIGNIFICAND_BITS) - 1) << (16384 - _SIGNIFICAND_BITS)  # LDBL_MAX
_FRACTION_DIGITS = 17  # ld2string's LD_STR_HUMAN: "%.17Lf"

# Decimal exponents past which a non-zero input surely overflows (LDBL_MAX is
# about 1.19e4932) or surely rounds to zero (the smallest subnormal is about
# 3.6e-4951): decided without building numbers of millions of digits.
_DECIMAL_ORDER_MAX = 4933
_DECIMAL_ORDER_MIN = -4951
# Exponent digits beyond this many are over or underflow whatever the digits.
_EXPONENT_DIGITS_MAX = 7

INFINITY = float("inf")

_DECIMAL = re.compile(rb"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\Z")
_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?\Z")
_INFINITY = re.compile(rb"([+-]?)(?:inf|infinity)\Z", re.IGNORECASE)


def parse(raw: bytes) -> Fraction | float | None:
    """The long double ``raw`` spells, exactly: a ``Fraction``, or +-inf
    for an explicit infinity; None where Redis answers "not a valid float"."""
    if not raw or len(raw) >= MAX_LONG_DOUBLE_CHARS:
        return None
    match = _DECIMAL.match(raw)
    if match:
        sign, whole, fraction, exponent = match.groups()
        fraction = fraction or b""
        if not whole and not fraction:
            return None
        value = _decimal(whole + fraction, _exponent(exponent) - len(fraction))
    elif match := _HEX.match(raw):
        sign, whole, fraction, exponent = match.groups()
        fraction = fraction or b""
        if not whole and not fraction:
            return None
        value = _binary(int(whole + fraction, 16), _exponent(exponent) - 4 * len(fraction))
    elif match := _INFINITY.match(raw):
        return -INFINITY if match.group(1) == b"-" else INFINITY
    else:
        return None
    if value is None:
        return None
    return -value if sign == b"-" else value


def add(a: Fraction | float, b: Fraction | float) -> Fraction | None:
    """``a + b`` rounded to a long double; None if it is NaN or infinite."""
    if isinstance(a, float) or isinstance(b, float):
        return None  # an infinity in, an infinity or NaN out
    return _round(a + b)


def format_human(value: Fraction) -> bytes:
    """``value`` as Redis's ld2string(LD_STR_HUMAN) writes it: ``%.17Lf``
    (exact, ties to even, as glibc), trailing zeros and point trimmed."""
    scaled = round(abs(value) * 10**_FRACTION_DIGITS)  # round() on a Fraction: ties to even
    digits = _int_to_text(scaled).rjust(_FRACTION_DIGITS + 1, "0")
    text = (digits[:-_FRACTION_DIGITS] + "." + digits[-_FRACTION_DIGITS:]).rstrip("0").removesuffix(".")
    if value < 0 and text != "0":
        text = "-" + text  # a negative that prints as zero is written "0"
    return text.encode()


# -- exact conversions --------------------------------------------------------------


def _exponent(raw: bytes | None) -> int:
    """An exponent's value, clamped far past any that could matter."""
    if raw is None:
        return 0
    negative = raw[:1] == b"-"
    digits = raw.lstrip(b"+-").lstrip(b"0") or b"0"
    limit = 10**_EXPONENT_DIGITS_MAX
    value = limit if len(digits) > _EXPONENT_DIGITS_MAX else int(digits)
    return -value if negative else value


def _decimal(digits: bytes, exponent: int) -> Fraction | None:
    """``int(digits) * 10**exponent`` as a long double (None: out of range)."""
    digits = digits.lstrip(b"0")
    if not digits:
        return Fraction(0)  # an exact zero: no ERANGE, whatever the exponent
    order = len(digits) + exponent  # 10**(order-1) <= value < 10**order
    if order - 1 >= _DECIMAL_ORDER_MAX or order <= _DECIMAL_ORDER_MIN:
        return None
    mantissa = _text_to_int(digits)
    exact = Fraction(mantissa * 10**exponent) if exponent >= 0 else Fraction(mantissa, 10**-exponent)
    return _nonzero(_round(exact))


def _binary(mantissa: int, exponent: int) -> Fraction | None:
    """``mantissa * 2**exponent`` as a long double (None: out of range)."""
    if not mantissa:
        return Fraction(0)
    order = mantissa.bit_length() + exponent  # 2**(order-1) <= value < 2**order
    if order - 1 > 16384 or order < _MIN_QUANTUM_EXP - 1:
        return None
    exact = Fraction(mantissa << exponent) if exponent >= 0 else Fraction(mantissa, 1 << -exponent)
    return _nonzero(_round(exact))


def _nonzero(value: Fraction | None) -> Fraction | None:
    # strtold sets ERANGE when a non-zero input underflows to zero, and
    # string2ld then refuses it.
    return None if value is None or value == 0 else value


def _round(exact: Fraction) -> Fraction | None:
    """The long double nearest ``exact`` (ties to even); None past LDBL_MAX."""
    if exact == 0:
        return Fraction(0)
    num, den = abs(exact.numerator), exact.denominator
    # The binary order of magnitude: 2**k <= |exact| < 2**(k+1).
    k = num.bit_length() - den.bit_length()
    if (num << max(-k, 0)) < (den << max(k, 0)):
        k -= 1
    # The spacing of long doubles there: 64 significant bits, or the fixed
    # spacing of the subnormals below 2**-16382.
    quantum = max(k - (_SIGNIFICAND_BITS - 1), _MIN_QUANTUM_EXP)
    if quantum >= 0:
        steps = round(Fraction(num, den << quantum))
        rounded = Fraction(steps << quantum)
    else:
        steps = round(Fraction(num << -quantum, den))
        rounded = Fraction(steps, 1 << -quantum)
    if rounded > _MAX_FINITE:
        return None
    return rounded if exact > 0 else -rounded


# Python refuses int <-> decimal text conversions past 4300 digits (a guard
# against slow conversions); long doubles reach 4933 integer digits, and an
# input 5119, so longer ones go in chunks.
_CHUNK_DIGITS = 4000


def _text_to_int(digits: bytes) -> int:
    value = 0
    for start in range(0, len(digits), _CHUNK_DIGITS):
        chunk = digits[start : start + _CHUNK_DIGITS]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _int_to_text(value: int) -> str:
    if value < 10**_CHUNK_DIGITS:
        return str(value)
    high, low = divmod(value, 10**_CHUNK_DIGITS)
    return _int_to_text(high) + str(low).rjust(_CHUNK_DIGITS, "0")
