"""Resource quantities (k8s.io/apimachinery/pkg/api/resource), parsed exactly as Fractions.

Upstream keeps arbitrary precision too; `to_milli`/`to_int` round up like MilliValue()/Value().
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

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


# --- Canonical form: what kube-apiserver stores and returns ------------------------------------------------------
#
# apimachinery's Quantity remembers the kind of suffix it was parsed with (its Format) and prints itself in
# canonical form: the value rounded up (away from zero) to a nano-unit, then
#   - BinarySI (Ki..Ei): the largest power of 1024 that divides the value exactly ("3.75Gi" -> "3840Mi");
#     values in (-1024, 1024) and non-integers print as DecimalSI instead ("0.5Ki" -> "512", "1.1Ki" -> "1126400m");
#     magnitudes above 2^63-1 are capped there;
#   - DecimalSI (n u m "" k M G T P E): the mantissa without trailing zeros and the exponent lowered to a multiple
#     of 3 ("1000m" -> "1", "1.5" -> "1500m"); an exponent above E (10^18) gets no suffix at all -- upstream's
#     suffix table has none, so "1000E" prints as "1" (a bug in apimachinery, reproduced because the server does);
#   - DecimalExponent ("e"/"E" + integer): the same mantissa and exponent, printed "<m>e<exp>" ("" for e0).
# ParseQuantity also keeps the caller's string verbatim when a cheap check finds it already canonical, and that
# check is looser than canonical: "1e3", "+7m", "05" and "1.500" come back exactly so. All of it is reproduced.

_DECIMAL_SUFFIX_BY_EXPONENT: dict[int, str] = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIX_BY_POWER: dict[int, str] = {shift // 10: suffix for suffix, shift in _BINARY_SUFFIXES.items()}
_MAX_INT64 = (1 << 63) - 1
# apimachinery's parseQuantityString: sign, leading zeros, digits, optional "." digits, then a suffix made of
# these letters, an optional sign and digits. "." and "+" alone are accepted (as 0) as they are upstream.
_SCAN_RE = re.compile(r"([+-]?)0*([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)")

_BINARY_SI = "BinarySI"
_DECIMAL_SI = "DecimalSI"
_DECIMAL_EXPONENT = "DecimalExponent"


def _suffix(text: str, suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix: apimachinery's quantitySuffixer.interpret."""
    exponent = _DECIMAL_SUFFIXES.get(suffix)
    if exponent is not None:
        return 10, exponent, _DECIMAL_SI
    shift = _BINARY_SUFFIXES.get(suffix)
    if shift is not None:
        return 2, shift, _BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        try:
            parsed = int(suffix[1:], 10)  # strconv.ParseInt: digits with an optional sign, nothing else
        except ValueError:
            parsed = None
        if parsed is not None and suffix[1:].lstrip("+-").isdigit() and -(1 << 63) <= parsed <= _MAX_INT64:
            return 10, ((parsed + (1 << 31)) % (1 << 32)) - (1 << 31), _DECIMAL_EXPONENT  # int32(parsed)
    raise QuantityError(f"unable to parse quantity's suffix: {text!r}")


def _decimal_string(mantissa: int, exponent: int, form: str) -> str:
    """int64Amount/infDecAmount.AsCanonicalBytes plus the suffix, for value mantissa * 10**exponent."""
    if mantissa == 0:
        return "0"
    digits = str(abs(mantissa))
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    lower = exponent % 3  # down to the multiple of 3 at or below (Python's % is never negative here)
    number = stripped + "0" * lower
    exponent -= lower
    sign = "-" if mantissa < 0 else ""
    if form == _DECIMAL_EXPONENT:
        return f"{sign}{number}e{exponent}" if exponent else f"{sign}{number}"
    return f"{sign}{number}{_DECIMAL_SUFFIX_BY_EXPONENT.get(exponent, '')}"


def _nanos(value: Fraction) -> int:
    """The value in nano-units, rounded away from zero (inf.RoundUp at scale 9, as ParseQuantity rounds)."""
    scaled = value * 1_000_000_000
    if scaled.denominator == 1:
        return scaled.numerator
    magnitude = -((-abs(scaled.numerator)) // scaled.denominator)
    return magnitude if value > 0 else -magnitude


def _format_value(value: Fraction, form: str) -> str:
    """Quantity.CanonicalizeBytes for an exact value already rounded to nano-units."""
    if value == 0:
        return "0"
    if form == _BINARY_SI and (value >= 1024 or value <= -1024) and value.denominator == 1:
        n = value.numerator
        power = 0
        while n % 1024 == 0:
            n //= 1024
            power += 1
        return f"{n}{_BINARY_SUFFIX_BY_POWER.get(power, '')}"
    return _decimal_string(_nanos(value), -9, _DECIMAL_EXPONENT if form == _DECIMAL_EXPONENT else _DECIMAL_SI)


def _canonical(text: str) -> str:
    if text == "0":
        return text
    if not text:
        raise QuantityError("quantities must not be empty")
    m = _SCAN_RE.fullmatch(text)
    if m is None:
        raise _format_error(text)
    sign, num, denom, suffix = m.group(1), m.group(2) or "0", m.group(3) or "", m.group(4)
    _base, exponent, form = _suffix(text, suffix)
    negative = sign == "-"
    if form == _BINARY_SI:
        # ParseQuantity's int64 fast path keeps the string when the number is odd enough not to be reducible.
        if not denom and 15 - len(num) - exponent * 3 // 10 - 1 >= 0 and int(num) & 7:
            return text
        try:
            value = Fraction(int(num + denom), 10 ** len(denom)) * (1 << exponent)
        except ValueError:  # more digits than Python converts (4,300)
            raise _format_error(text) from None
        if value.denominator != 1 or value.numerator > _MAX_INT64:
            value = Fraction(_nanos(value), 1_000_000_000)
            value = min(value, Fraction(_MAX_INT64))  # BinarySI is capped at the int64 maximum
        return _format_value(-value if negative else value, form)
    scale = exponent - len(denom)
    shifted = num + denom
    # ParseQuantity's int64 fast path (at most 18 digits, nano-exact) keeps the string when its exponent is a
    # multiple of 3 and the digits have no "000" tail and no leading 0.
    fast = len(shifted) <= 18 and scale >= -9
    if fast and scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
        return text
    try:
        mantissa = int(shifted)
    except ValueError:
        raise _format_error(text) from None
    if mantissa == 0:
        return "0"
    if scale < -9:
        cut = -9 - scale
        if cut > len(shifted):
            mantissa = 1
        else:
            mantissa = -(-mantissa // 10**cut)  # round up (the mantissa is positive here)
        scale = -9
    return _decimal_string(-mantissa if negative else mantissa, scale, form)


# Hot on the master (every Node's capacity and allocatable, every container's requests and limits) and in the
# hollow kubelet: a cluster uses a handful of distinct strings, so a small cache answers nearly every call.
_canonical_cached = functools.lru_cache(maxsize=1024)(_canonical)


def canonical_quantity(quantity: str | int | float) -> str:
    """What kube-apiserver returns for `quantity`: ParseQuantity(quantity).String(), exactly.

    "3.75Gi" -> "3840Mi", "0.5" -> "500m", "1000m" -> "1", "2048Ki" -> "2Mi"; "100M" and "1e3" are kept (see
    above). A JSON number is read as the text it would print as (`1.5` -> "1500m"). Raises QuantityError for
    what upstream refuses to parse.
    """
    if type(quantity) is str:
        return _canonical_cached(quantity)
    if isinstance(quantity, bool) or not isinstance(quantity, int | float):
        raise QuantityError(f"not a quantity: {quantity!r}")
    if isinstance(quantity, float) and not math.isfinite(quantity):
        raise QuantityError(f"not a finite quantity: {quantity!r}")
    return _canonical_cached(str(quantity) if isinstance(quantity, int) else repr(quantity))


def canonicalize_quantities(resources: Any) -> bool:
    """Rewrite a ResourceList (name -> quantity) in place to canonical strings; True if anything changed.

    Values that are already canonical strings are left untouched (same objects); a value that is not a quantity
    is left as it is (validation reports it). Not a dict: nothing to do.
    """
    if not isinstance(resources, dict):
        return False
    changed = False
    for name, value in resources.items():
        try:
            text = canonical_quantity(value)
        except QuantityError:
            continue
        if text is not value and text != value:
            resources[name] = text
            changed = True
    return changed


def format_quantity(value: Fraction | int | str, binary: bool = False) -> str:
    """The canonical string of an exact value, as a Quantity of format BinarySI (`binary`) or DecimalSI prints.

    Values are rounded up (away from zero) to a nano-unit, as upstream stores them; BinarySI falls back to decimal
    notation for non-integers and anything in (-1024, 1024), as upstream does ("1000" as BinarySI is "1k").
    """
    if not isinstance(value, Fraction | int):
        value = parse_quantity(value)
    value = Fraction(value)
    value = Fraction(_nanos(value), 1_000_000_000)
    if binary:
        value = max(min(value, Fraction(_MAX_INT64)), Fraction(-_MAX_INT64))
    return _format_value(value, _BINARY_SI if binary else _DECIMAL_SI)


def quantity_is_binary(text: str) -> bool:
    """Whether a quantity string has a binary suffix (Ki..Ei): what Format a Quantity parsed from it keeps."""
    m = _QUANTITY_RE.fullmatch(text)
    return m is not None and m.group(4) in _BINARY_SUFFIXES
