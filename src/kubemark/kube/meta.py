"""Small object-metadata rules: time formats, UIDs, generated names, resourceVersion order and DNS/label
validation.

Validation functions return upstream-worded messages (k8s.io/apimachinery/pkg/util/validation);
an empty list means the value is valid.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# utilrand.String alphabet: no vowels (avoids words) and no confusable characters.
NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

_TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|z|[+-]\d{2}:\d{2})")


def now_rfc3339(clock: Callable[[], float] = time.time) -> str:
    """metav1.Time as serialised: RFC 3339 in UTC, whole seconds."""
    return format_rfc3339(clock())


def format_rfc3339(epoch: float) -> str:
    """Format epoch seconds as metav1.Time (truncated to the second, like Go's time formatting)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch // 1)))


def parse_rfc3339(value: str) -> float:
    """Unix seconds from an RFC 3339 timestamp (metav1.Time or MicroTime); ValueError if malformed."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def now_micro(clock: Callable[[], float] = time.time) -> str:
    """metav1.MicroTime as serialised: RFC 3339 in UTC with exactly six fractional digits."""
    return format_micro(clock())


def format_micro(epoch: float) -> str:
    """Format epoch seconds as metav1.MicroTime."""
    micros = round(epoch * 1_000_000)
    seconds, frac = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:06d}Z"


def parse_time(text: str) -> float:
    """Epoch seconds from an RFC 3339 timestamp (metav1.Time or MicroTime, any offset)."""
    m = _TIME_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"invalid RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac_text, zone = m.group(7), m.group(8)
    try:
        base = datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise ValueError(f"invalid RFC 3339 time: {text!r}: {exc}") from None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        base -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    frac = float("0" + frac_text) if frac_text else 0.0
    return base + frac


def resource_version(obj: dict[str, Any] | None) -> int:
    """An object's resourceVersion as a number (an etcd revision); 0 when it has none or it is not a number."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def newer(older: dict[str, Any] | None, candidate: dict[str, Any] | None) -> dict[str, Any] | None:
    """Of two copies of one object, the later by resourceVersion (`candidate` on a tie); None only if both are.
    Informer events may trail the answer to our own write: keep whichever copy is newer."""
    if older is None:
        return candidate
    if candidate is None:
        return older
    return candidate if resource_version(candidate) >= resource_version(older) else older


def new_uid() -> str:
    """A fresh object UID (uuid4, as the apiserver assigns)."""
    return str(uuid.uuid4())


def generate_name_suffix(n: int = 5, rng: random.Random | None = None) -> str:
    """Random suffix for metadata.generateName, from the upstream alphabet."""
    chooser = rng if rng is not None else random
    return "".join(chooser.choices(NAME_SUFFIX_ALPHABET, k=n))


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, byte for byte (including its doubled spaces)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += "'" + example + "', "
    return msg + "regex used for validation is '" + fmt + "')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def validate_dns1123_label(value: str) -> list[str]:
    """validation.IsDNS1123Label."""
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def validate_dns1123_subdomain(value: str) -> list[str]:
    """validation.IsDNS1123Subdomain."""
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def validate_qualified_name(key: str) -> list[str]:
    """validation.IsQualifiedName: an optional DNS-subdomain prefix, '/', and a 63-char name."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in validate_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + _max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def validate_label_value(value: str) -> list[str]:
    """validation.IsValidLabelValue."""
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs
