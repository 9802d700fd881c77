"""IntOrString values ("5" or "5%"), as apimachinery's intstr reads them: one rule for the API server's
validation and the controllers that scale by them (maxUnavailable, maxSurge, minAvailable)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PERCENT_RE", "int_or_percent_value", "scaled_value"]

PERCENT_RE = re.compile(r"^[0-9]+%$")


def int_or_percent_value(value: Any) -> int | None:
    """The number in an IntOrString (5 or "5%"), or None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and PERCENT_RE.match(value):
        return int(value[:-1])
    return None


def scaled_value(value: Any, total: int, *, round_up: bool = True) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "N%" of `total` (rounded up by default); 0 when
    the value is neither (validation refuses those)."""
    number = int_or_percent_value(value)
    if number is None:
        return 0
    if isinstance(value, str):
        return -(-number * total // 100) if round_up else number * total // 100
    return number
