"""The one JSON codec of kubemark: orjson, bytes in and bytes out."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Serialise to compact JSON bytes (non-str dict keys are allowed, as Go's encoder would stringify them)."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def dumps_pretty(obj: Any) -> bytes:
    """Serialise for humans (reports, kubeconfigs written as JSON)."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises JSONDecodeError (a ValueError) on malformed input."""
    return orjson.loads(data)
