"""Tests for kubemark.kube.quantity: exact parsing, rounding and canonical formatting."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubemark.kube.quantity import QuantityError, format_quantity, parse_quantity, to_int, to_milli


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
        (Fraction(1000), True, "1000"),
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
