"""Tests for kubemark.kube.quantity: exact parsing, rounding and canonical formatting.

The canonical-form table was checked against apimachinery v0.37.2's own ParseQuantity(s).String() (its
quantity.go built and run on these exact inputs); the rows are that program's output.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubemark.kube.quantity import (
    QuantityError,
    canonical_quantity,
    canonicalize_quantities,
    format_quantity,
    parse_quantity,
    quantity_is_binary,
    to_int,
    to_milli,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", Fraction(0)),
        ("1", Fraction(1)),
        ("100m", Fraction(1, 10)),
        ("1.5", Fraction(3, 2)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("250n", Fraction(250, 10**9)),
        ("3u", Fraction(3, 10**6)),
        ("2k", Fraction(2000)),
        ("1M", Fraction(10**6)),
        ("4G", Fraction(4 * 10**9)),
        ("1T", Fraction(10**12)),
        ("1P", Fraction(10**15)),
        ("1E", Fraction(10**18)),
        ("1Ki", Fraction(1024)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1Ti", Fraction(2**40)),
        ("1Pi", Fraction(2**50)),
        ("1Ei", Fraction(2**60)),
        ("1e3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        ("12e+2", Fraction(1200)),
        ("-5", Fraction(-5)),
        ("+7m", Fraction(7, 1000)),
        (3, Fraction(3)),
        (0.25, Fraction(1, 4)),
        (0.1, Fraction(1, 10)),
    ],
)
def test_parse(text: str | int | float, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "1K", "abc", ".", "1.2.3", "1Kii", "1e", "+", "1 Gi", "Gi", "1m1"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_rounding_up() -> None:
    assert to_milli(parse_quantity("100m")) == 100
    assert to_milli(parse_quantity("1.5")) == 1500
    assert to_milli(parse_quantity("1n")) == 1
    assert to_int(parse_quantity("100m")) == 1
    assert to_int(parse_quantity("2")) == 2
    assert to_int("1Ki") == 1024
    assert to_milli("2") == 2000


@pytest.mark.parametrize(
    ("value", "binary", "text"),
    [
        (Fraction(1, 10), False, "100m"),
        (Fraction(3, 2), False, "1500m"),
        (Fraction(2000), False, "2k"),
        (Fraction(1001), False, "1001"),
        (Fraction(0), False, "0"),
        (Fraction(1024), True, "1Ki"),
        (Fraction(3 * 2**29), True, "1536Mi"),
        (Fraction(1000), True, "1k"),  # BinarySI in (-1024, 1024) prints as DecimalSI
        (Fraction(2000), True, "2000"),  # an integer >= 1024 stays binary, without a suffix if not 1024-divisible
        (Fraction(1, 2), True, "500m"),
        (Fraction(-3000), False, "-3k"),
    ],
)
def test_format(value: Fraction, binary: bool, text: str) -> None:
    assert format_quantity(value, binary) == text


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["n", "u", "m", "", "k", "M", "G", "Ki", "Mi", "Gi"]),
    st.booleans(),
)
def test_format_parse_round_trip(number: int, suffix: str, binary: bool) -> None:
    value = parse_quantity(f"{number}{suffix}")
    assert parse_quantity(format_quantity(value, binary)) == value


# (input, what kube-apiserver stores and returns), from apimachinery's own String().
CANONICAL = [
    # the node capacity that made hollow kubelets PATCH every 10 s, and the brief's examples
    ("3.75Gi", "3840Mi"),
    ("0.5", "500m"),
    ("1000m", "1"),
    ("2048Ki", "2Mi"),
    ("100M", "100M"),
    ("110", "110"),
    ("100Gi", "100Gi"),
    ("3740Mi", "3740Mi"),
    ("0", "0"),
    ("1", "1"),
    # BinarySI: the largest power of 1024 that divides exactly; decimal below 1024 or for fractions
    ("1.5Gi", "1536Mi"),
    ("1024Mi", "1Gi"),
    ("1536Mi", "1536Mi"),
    ("307200Ki", "300Mi"),
    ("1024Gi", "1Ti"),
    ("1Ti", "1Ti"),
    ("1025Ki", "1025Ki"),
    ("1032Ki", "1032Ki"),
    ("9Ki", "9Ki"),
    ("1024Pi", "1Ei"),
    ("1Pi", "1Pi"),
    ("3Pi", "3Pi"),
    ("4Ei", "4Ei"),
    ("0.5Ki", "512"),
    ("1.1Ki", "1126400m"),
    ("0.1Ki", "102400m"),
    ("-1.5Gi", "-1536Mi"),
    # BinarySI is capped at the int64 maximum (odd: no suffix)
    ("8Ei", "9223372036854775807"),
    ("9Ei", "9223372036854775807"),
    ("9223372036854775807Ki", "9223372036854775807"),
    # DecimalSI: no trailing zeros, exponent down to a multiple of 3, milli for fractions
    ("1.5", "1500m"),
    ("5000m", "5"),
    ("500m", "500m"),
    ("1000M", "1G"),
    ("0.001T", "1G"),
    ("1000000k", "1G"),
    ("1000000000", "1G"),
    ("1000u", "1m"),
    ("1.08", "1080m"),
    ("1080000000n", "1080m"),
    ("1.5k", "1500"),
    (".5", "500m"),
    ("-0.5", "-500m"),
    ("00", "0"),
    ("0.0", "0"),
    ("1023", "1023"),
    ("1024", "1024"),
    ("-1024", "-1024"),
    ("100000000000000000000", "100E"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),
    # rounded up (away from zero) to a nano-unit
    ("1.0000000001", "1000000001n"),
    ("0.0000000001", "1n"),
    ("-0.0000000001", "-1n"),
    # DecimalExponent keeps its form
    ("1.2e3", "1200"),
    ("12e+2", "1200"),
    ("0.001e0", "1e-3"),
    (".001e12", "1e9"),
    ("1000e-12", "1e-9"),
    ("1000e97", "10e99"),
    ("1e-10", "1e-9"),
    # ParseQuantity keeps the caller's string when a cheap check finds it canonical enough
    ("1e3", "1e3"),
    ("1E-3", "1E-3"),
    ("1e21", "1e21"),
    ("80e-3", "80e-3"),
    ("+7m", "+7m"),
    ("+1Ki", "+1Ki"),
    ("05", "05"),
    ("01Ki", "01Ki"),
    ("1.500", "1.500"),
    ("5.", "5."),
    ("1.G", "1.G"),
    ("2E", "2E"),
    # upstream's suffix table stops at E: a larger DecimalSI exponent prints no suffix (sic)
    ("1000E", "1"),
    # what upstream's scanner accepts as zero
    (".", "0"),
    ("+", "0"),
    ("-", "0"),
    ("e3", "0"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_canonical_quantity_is_apimachinerys_string(text: str, canonical: str) -> None:
    assert canonical_quantity(text) == canonical
    assert canonical_quantity(canonical) == canonical  # a fixed point: the server returns it unchanged


@pytest.mark.parametrize("text", ["", "1e", "1K", "1Kii", "abc", "1 Gi", "1.2.3", "1e+", "1m1", "1e3.5"])
def test_canonical_quantity_rejects_what_upstream_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        canonical_quantity(text)


def test_canonical_quantity_of_json_numbers() -> None:
    assert canonical_quantity(110) == "110"
    assert canonical_quantity(1000) == "1k"
    assert canonical_quantity(1.5) == "1500m"
    assert canonical_quantity(0.25) == "250m"
    for bad in (True, None, float("inf"), [1]):
        with pytest.raises(QuantityError):
            canonical_quantity(bad)  # type: ignore[arg-type]


def test_canonicalize_quantities_rewrites_in_place() -> None:
    resources = {"cpu": "1000m", "memory": "3.75Gi", "pods": 110, "bad": "1Kii", "ephemeral-storage": "100Gi"}
    storage = resources["ephemeral-storage"]
    assert canonicalize_quantities(resources) is True
    assert resources == {"cpu": "1", "memory": "3840Mi", "pods": "110", "bad": "1Kii", "ephemeral-storage": "100Gi"}
    assert resources["ephemeral-storage"] is storage
    assert canonicalize_quantities(resources) is False
    assert canonicalize_quantities(None) is False
    assert canonicalize_quantities(["1"]) is False


def test_quantity_is_binary() -> None:
    assert quantity_is_binary("3.75Gi") and quantity_is_binary("1Ki")
    assert not quantity_is_binary("100M") and not quantity_is_binary("1") and not quantity_is_binary("1e3")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["", "-"]),
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=6),
    st.sampled_from(["n", "u", "m", "", "k", "M", "G", "T", "P", "Ki", "Mi", "Gi", "Ti", "e3", "e-3", "e0", "E6"]),
)
def test_canonical_form_keeps_the_value(sign: str, number: int, shift: int, suffix: str) -> None:
    digits = str(number)
    text = f"{sign}{digits[:-shift] or '0'}.{digits[-shift:]}{suffix}" if shift else f"{sign}{digits}{suffix}"
    canonical = canonical_quantity(text)
    value = parse_quantity(text)
    nanos = value * 10**9
    if nanos.denominator == 1 and abs(value) < 2**63:
        assert parse_quantity(canonical) == value, (text, canonical)
    assert canonical_quantity(canonical) == canonical, (text, canonical)
    assert quantity_is_binary(canonical) <= quantity_is_binary(text)  # binary stays binary or goes decimal
