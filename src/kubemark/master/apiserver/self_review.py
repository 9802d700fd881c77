"""SelfSubjectReview (authentication.k8s.io/v1): "who am I", as `kubectl auth whoami` asks it.

POST /apis/authentication.k8s.io/v1/selfsubjectreviews answers with the caller's user info as authentication
saw it (username, uid, groups, extra). Every authenticated user may ask (system:basic-user); the request body
carries nothing the answer depends on, so it is only checked to be a JSON object when it is JSON (kubectl
sends protobuf).
"""

from __future__ import annotations

from aiohttp import web

from kubemark import codec
from kubemark.kube import meta
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.handlers import DEFAULT_USER, MAX_REQUEST_BODY_BYTES, json_response, status_response
from kubemark.master.apiserver.request_info import REQUEST_USER, UserInfo

PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


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


def self_review_routes() -> list[web.RouteDef]:
    return [web.post(PATH, self_subject_review)]
