"""SelfSubjectReview (authentication.k8s.io/v1): "who am I", as `kubectl auth whoami` asks it; and
SelfSubjectAccessReview (authorization.k8s.io/v1): "may I", as `kubectl auth can-i` asks it.

POST /apis/authentication.k8s.io/v1/selfsubjectreviews answers with the caller's user info as authentication
saw it (username, uid, groups, extra). Every authenticated user may ask (system:basic-user); the request body
carries nothing the answer depends on, so it is only checked to be a JSON object when it is JSON (kubectl
sends protobuf).

POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews runs the API server's own authorizer on the
resource or non-resource attributes of the body (JSON or protobuf) for the caller and answers status.allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from kubemark import codec
from kubemark.kube import meta
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.handlers import DEFAULT_USER, MAX_REQUEST_BODY_BYTES, json_response, status_response
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.protobuf import PROTOBUF_CONTENT_TYPE, ProtobufDecodeError, decode_protobuf_body
from kubemark.master.apiserver.request_info import REQUEST_USER, RequestInfo, UserInfo

PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
# The API server's authorizer (Authorizer.authorize): None allows, a string is the denial's reason.
AccessCheck = Callable[[UserInfo, RequestInfo], str | None]


def review_of(user: UserInfo, now: str) -> dict[str, object]:
    info: dict[str, object] = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {key: list(values) for key, values in user.extra}
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": now},
        "status": {"userInfo": info},
    }


async def self_subject_review(request: web.Request) -> web.Response:
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        response = status_response(errors.too_large(MAX_REQUEST_BODY_BYTES))
        response.force_close()
        return response
    if data.strip() and request.content_type in ("application/json", ""):
        try:
            body = codec.loads(data)
        except codec.JSONDecodeError as exc:
            return status_response(
                errors.bad_request(
                    "the object provided is unrecognized (must be of type SelfSubjectReview): couldn't get "
                    f"version/kind; json parse error: malformed JSON: {exc}"
                )
            )
        if not isinstance(body, dict):
            err = StatusError(
                400, "BadRequest", "json: cannot unmarshal array into Go value of type v1.SelfSubjectReview"
            )
            return status_response(err)
    user: UserInfo = request.get(REQUEST_USER) or DEFAULT_USER
    return json_response(review_of(user, meta.now_rfc3339()), 201)


async def _read_body(request: web.Request, kind: str) -> Any:
    try:
        data = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.too_large(MAX_REQUEST_BODY_BYTES) from None
    if request.content_type == PROTOBUF_CONTENT_TYPE:
        try:
            return decode_protobuf_body(data)
        except ProtobufDecodeError as exc:
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {kind}): {exc}") from None
    try:
        return codec.loads(data) if data.strip() else {}
    except codec.JSONDecodeError as exc:
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; "
            f"json parse error: malformed JSON: {exc}"
        ) from None


def access_attributes(spec: Any) -> RequestInfo:
    """The request a SelfSubjectAccessReview asks about; 422 unless exactly one kind of attributes is given."""
    spec = spec if isinstance(spec, dict) else {}
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise errors.invalid(
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            "",
            [
                field.invalid(
                    "spec.resourceAttributes",
                    resource,
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            ],
        )
    if non_resource is not None:
        attrs = non_resource if isinstance(non_resource, dict) else {}
        return RequestInfo(False, str(attrs.get("path") or ""), str(attrs.get("verb") or ""))
    attrs = resource if isinstance(resource, dict) else {}
    return RequestInfo(
        True,
        "",
        str(attrs.get("verb") or ""),
        group=str(attrs.get("group") or ""),
        version=str(attrs.get("version") or ""),
        namespace=str(attrs.get("namespace") or ""),
        resource=str(attrs.get("resource") or ""),
        subresource=str(attrs.get("subresource") or ""),
        name=str(attrs.get("name") or ""),
    )


def access_review_handler(check: AccessCheck) -> Callable[[web.Request], Any]:
    async def self_subject_access_review(request: web.Request) -> web.Response:
        try:
            body = await _read_body(request, "SelfSubjectAccessReview")
            if not isinstance(body, dict):
                raise StatusError(
                    400, "BadRequest", "json: cannot unmarshal array into Go value of type v1.SelfSubjectAccessReview"
                )
            info = access_attributes(body.get("spec"))
        except StatusError as err:
            return status_response(err)
        user: UserInfo = request.get(REQUEST_USER) or DEFAULT_USER
        reason = check(user, info)
        status: dict[str, Any] = {"allowed": reason is None}
        if reason:
            status["reason"] = reason
        review = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": body.get("spec"),
            "status": status,
        }
        return json_response(review, 201)

    return self_subject_access_review


def self_review_routes(access_check: AccessCheck | None = None) -> list[web.RouteDef]:
    routes = [web.post(PATH, self_subject_review)]
    if access_check is not None:
        routes.append(web.post(ACCESS_REVIEW_PATH, access_review_handler(access_check)))
    return routes
