"""Field errors worded like upstream's validation `field.Error` (reason + the body after the field path).

Each constructor returns an `errors.Cause`; `errors.invalid` joins them into the 422 message
(`spec.containers[0].image: Required value`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kubemark import codec
from kubemark.kube import meta
from kubemark.master.apiserver.errors import Cause

_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")

CONFIG_KEY_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def show(value: Any) -> str:
    """A value as Go's %v/%q would print it in an error: strings quoted, numbers bare, objects as JSON."""
    if isinstance(value, str):
        return codec.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return codec.dumps(value).decode()


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, f"Required value: {detail}" if detail else "Required value", "FieldValueRequired")


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {show(value)}: {detail}", "FieldValueInvalid")


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, f"Forbidden: {detail}", "FieldValueForbidden")


def duplicate(path: str, value: Any) -> Cause:
    return Cause(path, f"Duplicate value: {show(value)}", "FieldValueDuplicate")


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    listed = ", ".join(show(s) for s in supported)
    return Cause(path, f"Unsupported value: {show(value)}: supported values: {listed}", "FieldValueNotSupported")


def too_long(path: str, value: Any, limit: int) -> Cause:
    return Cause(path, f"Too long: may not be more than {limit} bytes", "FieldValueTooLong")


def immutable(path: str, value: Any) -> Cause:
    return invalid(path, value, "field is immutable")


def dns1123_label(path: str, value: Any) -> list[Cause]:
    """Upstream IsDNS1123Label as field errors (empty list when valid)."""
    if not isinstance(value, str) or not value:
        return [required(path)]
    return [invalid(path, value, message) for message in meta.validate_dns1123_label(value)]


def dns1123_subdomain(path: str, value: Any) -> list[Cause]:
    """Upstream IsDNS1123Subdomain as field errors (empty list when valid)."""
    if not isinstance(value, str) or not value:
        return [required(path)]
    return [invalid(path, value, message) for message in meta.validate_dns1123_subdomain(value)]


def config_key(path: str, key: str) -> list[Cause]:
    """Upstream IsConfigMapKey: the key rules shared by ConfigMap and Secret data."""
    causes = []
    if len(key) > 253:
        causes.append(invalid(path, key, "must be no more than 253 characters"))
    if not _CONFIG_KEY_RE.match(key):
        causes.append(invalid(path, key, CONFIG_KEY_MESSAGE))
    elif key in (".", ".."):
        causes.append(invalid(path, key, f"must not be '{key}'"))
    elif key.startswith(".."):
        causes.append(invalid(path, key, "must not start with '..'"))
    return causes


def non_negative(path: str, value: Any) -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid(path, value, "must be an integer")]
    if value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def positive(path: str, value: Any) -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [invalid(path, value, "must be an integer")]
    if value <= 0:
        return [invalid(path, value, "must be greater than 0")]
    return []
