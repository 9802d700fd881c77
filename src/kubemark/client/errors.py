"""APIError: a non-2xx answer of the API server, decoded from its metav1.Status body."""

from __future__ import annotations

from typing import Any

# Reason kube-apiserver uses for each code when the body is not a Status.
_DEFAULT_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class APIError(Exception):
    """`status` is the HTTP code, `reason` metav1.StatusReason, `body` the decoded Status (or synthesized)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body if body is not None else status_body(status, reason, message)
        self.retry_after = retry_after

    @property
    def details(self) -> dict[str, Any]:
        return self.body.get("details") or {}


class NotFound(APIError):
    pass


class Conflict(APIError):
    """409 Conflict: a resourceVersion or UID precondition failed."""


class AlreadyExists(APIError):
    """409 AlreadyExists: create of a name that exists."""


class Gone(APIError):
    """410: the resourceVersion is too old (reason Expired or Gone); relist."""


Expired = Gone


class Invalid(APIError):
    pass


class TooManyRequests(APIError):
    pass


class Unauthorized(APIError):
    pass


class Forbidden(APIError):
    pass


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def error_from_status(
    code: int, body: Any, *, retry_after: float | None = None, fallback_message: str = ""
) -> APIError:
    """Build the most specific APIError for `code` and a decoded body that may or may not be a Status."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = str(body.get("reason") or _DEFAULT_REASONS.get(code, "Unknown"))
        message = str(body.get("message") or fallback_message)
        status_code = int(body.get("code") or code)
        if retry_after is None:
            ra = (body.get("details") or {}).get("retryAfterSeconds")
            retry_after = float(ra) if ra else None
        return _class_for(status_code, reason)(status_code, reason, message, body, retry_after)
    reason = _DEFAULT_REASONS.get(code, "Unknown")
    message = fallback_message or f"the server responded with status {code}"
    return _class_for(code, reason)(code, reason, message, None, retry_after)


def _class_for(code: int, reason: str) -> type[APIError]:
    if code == 404:
        return NotFound
    if code == 409:
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if code == 410:
        return Gone
    if code == 422:
        return Invalid
    if code == 429:
        return TooManyRequests
    if code == 401:
        return Unauthorized
    if code == 403:
        return Forbidden
    return APIError


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.status == 404


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.status == 409 and exc.reason == "Conflict"


def is_already_exists(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.reason == "AlreadyExists"


def is_gone(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.status == 410


def is_invalid(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.status == 422


def is_too_many_requests(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and exc.status == 429
