"""Resource quantities (k8s.io/apimachinery/pkg/api/resource), parsed exactly as Fractions.

Upstream keeps arbitrary precision too; `to_milli`/`to_int` round up like MilliValue()/Value().
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal
from fractions import Fraction

_FORMAT = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)", re.DOTALL)

_DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_EXPONENT_RE = re.compile(r"[eE]([+-]?[0-9]+)")


class QuantityError(ValueError):
    """A quantity string is malformed."""


def _format_error(text: str) -> QuantityError:
    return QuantityError(f"quantities must match the regular expression '{_FORMAT}': {text!r}")


def parse_quantity(text: str | int | float) -> Fraction:
    """resource.ParseQuantity, exactly: "100m" -> 1/10, "1Ki" -> 1024, "1e3" -> 1000."""
    if isinstance(text, bool):
        raise QuantityError(f"not a quantity: {text!r}")
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise QuantityError(f"not a finite quantity: {text!r}")
        # repr() is the shortest string that round-trips, i.e. what a JSON number meant.
        return Fraction(Decimal(repr(text)))
    if not isinstance(text, str):
        raise QuantityError(f"not a quantity: {text!r}")
    return _parse_text(text)


# Hot in the hollow kubelet's admission and the scheduler (every pod's requests, a handful of distinct strings);
# Fractions are immutable, so sharing them is safe.
@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> Fraction:
    if not text:
        raise QuantityError("quantities must not be empty")
    m = _QUANTITY_RE.fullmatch(text)
    if m is None:
        raise _format_error(text)
    sign, whole, frac, suffix = m.group(1), m.group(2), m.group(3), m.group(4)
    frac = frac or ""
    if not whole and not frac:
        raise _format_error(text)
    mantissa = Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
    if suffix in _DECIMAL_SUFFIXES:
        value = mantissa * Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
    elif suffix in _BINARY_SUFFIXES:
        value = mantissa * (1 << _BINARY_SUFFIXES[suffix])
    else:
        exp = _EXPONENT_RE.fullmatch(suffix)
        if exp is None:
            raise QuantityError(f"unable to parse quantity's suffix: {text!r}")
        value = mantissa * Fraction(10) ** int(exp.group(1))
    return -value if sign == "-" else value


def to_milli(q: Fraction | int | str) -> int:
    """MilliValue(): thousandths, rounded up."""
    if not isinstance(q, Fraction | int):
        q = parse_quantity(q)
    return math.ceil(q * 1000)


def to_int(q: Fraction | int | str) -> int:
    """Value(): whole units, rounded up."""
    if not isinstance(q, Fraction | int):
        q = parse_quantity(q)
    return math.ceil(q)


def format_quantity(value: Fraction | int | str, binary: bool = False) -> str:
    """Canonical form: the largest suffix that keeps an integer mantissa.

    BinarySI uses Ki..Ei for whole numbers divisible by 1024, falling back to decimal notation
    (as upstream does) for anything else; values below a nano-unit are rounded up to 1n.
    """
    if not isinstance(value, Fraction | int):
        value = parse_quantity(value)
    value = Fraction(value)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value == 0:
        return "0"
    if binary and value.denominator == 1:
        n = value.numerator
        for suffix, shift in reversed(_BINARY_SUFFIXES.items()):
            if n % (1 << shift) == 0:
                return f"{sign}{n >> shift}{suffix}"
        if n < 1024:
            return f"{sign}{n}"
    # Decimal SI: count nano-units (rounded up), then lift to the largest exact exponent.
    nanos = math.ceil(value * 10**9)
    exponent = -9
    while exponent < 18 and nanos % 1000 == 0:
        nanos //= 1000
        exponent += 3
    suffix = {v: k for k, v in _DECIMAL_SUFFIXES.items()}[exponent]
    return f"{sign}{nanos}{suffix}"
