"""API errors as metav1.Status, with the reasons and codes kube-apiserver uses.

Everything that fails a request raises `StatusError`; the HTTP layer turns it into a JSON Status body
(or a watch ERROR event) with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Cause:
    """One entry of details.causes: which field is wrong and why (reason e.g. FieldValueRequired)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class StatusError(Exception):
    """A failed API call, rendered as metav1.Status."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(name: str, group: str, kind: str, causes: list[Cause] | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind} if name else {"group": group, "kind": kind}
    if not group:
        details.pop("group")
    if causes:
        details["causes"] = [c.to_dict() for c in causes]
    return details


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> StatusError:
    return StatusError(
        404, "NotFound", f'{_qualified(group, resource)} "{name}" not found', _details(name, group, resource)
    )


def already_exists(group: str, resource: str, name: str) -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(group, resource)} "{name}" already exists',
        _details(name, group, resource),
    )


def conflict(group: str, resource: str, name: str, why: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {why}',
        _details(name, group, resource),
    )


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> StatusError:
    """422 Invalid; the message lists every cause the way kube-apiserver does."""
    joined = ", ".join(f"{c.field}: {c.message}" for c in causes)
    return StatusError(422, "Invalid", f'{kind} "{name}" is invalid: {joined}', _details(name, group, kind, causes))


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: application/json, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type!r})",
    )


def too_large(limit_bytes: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit_bytes}")


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden(user: str, verb: str, group: str, resource: str, namespace: str, name: str, why: str = "") -> StatusError:
    what = f'{_qualified(group, resource)} "{name}"' if name else _qualified(group, resource)
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}"{scope}'
    if why:
        message += f": {why}"
    return StatusError(403, "Forbidden", message, _details(name, group, resource))


def admission_forbidden(group: str, resource: str, name: str, why: str) -> StatusError:
    """403 from an admission check (admission.NewForbidden): `<resource> "<name>" is forbidden: <why>`, the way
    NodeRestriction words its denials (no user or verb: the request line was authorized)."""
    what = f'{_qualified(group, resource)} "{name}"' if name else _qualified(group, resource)
    return StatusError(403, "Forbidden", f"{what} is forbidden: {why}", _details(name, group, resource))


def too_many_requests(retry_after_seconds: int = 1) -> StatusError:
    return StatusError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after_seconds},
        {"Retry-After": str(retry_after_seconds)},
    )


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
