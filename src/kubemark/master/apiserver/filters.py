"""The request filter chain as aiohttp middlewares, in kube-apiserver's order.

request info + metrics → authentication (401) → priority and fairness, or max-in-flight (429) →
authorization (403) → handler.

Upstream runs authentication before admission so system:masters can be let through a full server;
we keep that order. Every request is counted in apiserver_request_total with its code; as upstream,
only requests that reach the handler are timed (fast 401/403/429 rejections would flatter the latency
SLIs). A `StatusError` raised by a handler becomes a JSON metav1.Status response with its code and
headers; handlers that stream (watch) must report their own errors once the response has started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from kubemark import codec
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.auth import ANONYMOUS as ANONYMOUS_USER
from kubemark.master.apiserver.auth import Authenticator, Authorizer, is_public_path
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.flowcontrol import PriorityAndFairness, Rejected
from kubemark.master.apiserver.inflight import InflightLimiter
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.metrics_merge import merge_texts
from kubemark.master.apiserver.request_info import REQUEST_INFO, REQUEST_USER, RequestInfo, UserInfo, parse_request_info

log = logging.getLogger(__name__)


# The identity of every request when authentication is switched off (upstream's insecure port user).
UNSECURED_USER = UserInfo("system:unsecured", ("system:masters", "system:authenticated"))
APPLY_PATCH_CONTENT_TYPE = "application/apply-patch+yaml"

# Marks a response produced by a filter (401/403/429): counted, but not timed.
_REJECTED: web.RequestKey[bool] = web.RequestKey("kubemark_rejected", bool)
# Seconds the request waited in a priority-and-fairness queue (left out of the SLI histogram).
_QUEUED: web.RequestKey[float] = web.RequestKey("kubemark_queued", float)


def status_response(err: StatusError) -> web.Response:
    """A metav1.Status JSON response for an API error."""
    return web.Response(
        body=codec.dumps(err.to_status()),
        status=err.code,
        content_type="application/json",
        headers=err.headers or None,
    )


def forbidden_error(user: UserInfo, info: RequestInfo, reason: str) -> StatusError:
    """403 worded like k8s.io/apiserver's responsewriters.Forbidden (subresource included, as upstream)."""
    if not info.is_resource_request:
        message = f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"'
        details: dict[str, Any] = {}
    else:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        qualified = f"{info.resource}.{info.group}" if info.group else info.resource
        what = f'{qualified} "{info.name}"' if info.name else qualified
        scope = f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
        message = (
            f'{what} is forbidden: User "{user.name}" cannot {info.verb} resource "{resource}" '
            f'in API group "{info.group}"{scope}'
        )
        details = {"kind": info.resource}
        if info.name:
            details["name"] = info.name
        if info.group:
            details["group"] = info.group
    if reason:
        message = f"{message}: {reason}"
    return StatusError(403, "Forbidden", message, details or None)


def _reject(request: web.Request, err: StatusError) -> web.Response:
    request[_REJECTED] = True
    return status_response(err)


def _info_and_metrics(metrics: APIServerMetrics | None) -> Middleware:
    @web.middleware
    async def request_info(request: web.Request, handler: Handler) -> web.StreamResponse:
        info = parse_request_info(request.method, request.path, request.query)  # type: ignore[arg-type]
        request[REQUEST_INFO] = info
        if metrics is None:
            try:
                return await handler(request)
            except StatusError as err:
                return status_response(err)
            except web.HTTPException as exc:
                return _status_of_http_error(exc)

        start = time.perf_counter()
        long_running = info.is_long_running
        if long_running:
            metrics.longrunning_started(info)
        code: int | None = 500
        try:
            try:
                response = await handler(request)
            except StatusError as err:
                response = status_response(err)
            except web.HTTPException as exc:
                code = exc.status
                if exc.status < 400:
                    raise
                response = _status_of_http_error(exc)
            except asyncio.CancelledError:
                code = None  # the client went away or the server is stopping: no outcome to record
                raise
            except ConnectionError:
                if not _client_gone(request):
                    raise
                # Writing to a client that hung up: nobody to answer, no outcome to record, no traceback to log.
                code = None
                return web.Response(status=499)
            code = response.status
            return response
        finally:
            if long_running:
                metrics.longrunning_finished(info)
            if code is not None:
                _record(metrics, request, info, code, start)

    return request_info


def _status_of_http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's own error answers (no route matched, e.g. a path with a newline) as a metav1.Status, like the
    rest of the API's errors, instead of aiohttp's text/plain page."""
    if exc.status == 404:
        err = StatusError(404, "NotFound", "the server could not find the requested resource", {})
    else:
        reason = HTTPStatus(exc.status).phrase.replace(" ", "") if exc.status in _HTTP_STATUSES else "Unknown"
        err = StatusError(exc.status, reason, exc.text or exc.reason)
    return status_response(err)


_HTTP_STATUSES = frozenset(s.value for s in HTTPStatus)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _record(metrics: APIServerMetrics, request: web.Request, info: RequestInfo, code: int, start: float) -> None:
    dry_run = "dryRun" in request.query
    apply = request.method == "PATCH" and request.content_type == APPLY_PATCH_CONTENT_TYPE
    if request.get(_REJECTED):
        metrics.count(info, code, dry_run, apply=apply)
    else:
        metrics.observe(info, code, time.perf_counter() - start, dry_run, apply=apply, queued=request.get(_QUEUED, 0.0))


def _authentication(authenticator: Authenticator | None) -> Middleware:
    @web.middleware
    async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
        if authenticator is None:
            request[REQUEST_USER] = UNSECURED_USER
            return await handler(request)
        user = authenticator.authenticate(request)
        if user is None:
            # A bad credential is always 401; only a credential-less caller may read the public paths.
            if authenticator.has_credentials(request) or not is_public_path(request[REQUEST_INFO]):
                return _reject(request, errors.unauthorized())
            user = ANONYMOUS_USER
        request[REQUEST_USER] = user
        return await handler(request)

    return authentication


def _max_in_flight(limiter: InflightLimiter, metrics: APIServerMetrics | None) -> Middleware:
    @web.middleware
    async def max_in_flight(request: web.Request, handler: Handler) -> web.StreamResponse:
        info: RequestInfo = request[REQUEST_INFO]
        if not limiter.try_acquire(info, request.get(REQUEST_USER)):
            if metrics is not None:
                metrics.dropped(info)
            return _reject(request, errors.too_many_requests(1))
        try:
            return await handler(request)
        finally:
            limiter.release(info)

    return max_in_flight


def _priority_and_fairness(apf: PriorityAndFairness, metrics: APIServerMetrics | None) -> Middleware:
    @web.middleware
    async def priority_and_fairness(request: web.Request, handler: Handler) -> web.StreamResponse:
        info: RequestInfo = request[REQUEST_INFO]
        try:
            ticket = await apf.admit(request[REQUEST_USER], info)
        except Rejected:
            if metrics is not None:
                metrics.dropped(info)
            return _reject(request, errors.too_many_requests(1))
        if ticket.waited:
            request[_QUEUED] = ticket.waited
            if _client_gone(request):
                # It gave up while queued (its timeout): serving it would spend a seat on an answer nobody reads.
                apf.finish(ticket)
                if metrics is not None:
                    metrics.flowcontrol_rejected(ticket.schema, ticket.priority_level, "cancelled")
                return _reject(request, errors.too_many_requests(1))
        try:
            return await handler(request)
        finally:
            apf.finish(ticket)

    return priority_and_fairness


def _authorization(authorizer: Authorizer) -> Middleware:
    @web.middleware
    async def authorization(request: web.Request, handler: Handler) -> web.StreamResponse:
        user: UserInfo = request[REQUEST_USER]
        info: RequestInfo = request[REQUEST_INFO]
        reason = authorizer.authorize(user, info)
        if reason is not None:
            return _reject(request, forbidden_error(user, info, reason))
        return await handler(request)

    return authorization


def build_filters(
    *,
    authenticator: Authenticator | None,
    authorizer: Authorizer | None,
    metrics: APIServerMetrics | None,
    limiter: InflightLimiter | PriorityAndFairness | None,
) -> list[Middleware]:
    """The middlewares for `web.Application(middlewares=...)`, outermost first.

    Sets request[REQUEST_INFO] (RequestInfo) and request[REQUEST_USER] (UserInfo) for the handlers. Any component may
    be None to switch that filter off (no authenticator: every caller is an unsecured system:masters user).
    """
    chain: list[Middleware] = [_info_and_metrics(metrics), _authentication(authenticator)]
    if isinstance(limiter, PriorityAndFairness):
        chain.append(_priority_and_fairness(limiter, metrics))
    elif limiter is not None:
        chain.append(_max_in_flight(limiter, metrics))
    if authorizer is not None:
        chain.append(_authorization(authorizer))
    return chain


def metrics_route(metrics: APIServerMetrics, peers: Sequence[str] = ()) -> web.RouteDef:
    """GET /metrics in the Prometheus text format (authorized like any other path: admins only). With `peers`
    (the private /metrics of the other processes of this API server), the answer covers all of them."""

    async def serve_metrics(request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        if peers:
            texts = [body.decode()]
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                for url in peers:
                    try:
                        async with session.get(url) as resp:
                            resp.raise_for_status()
                            texts.append(await resp.text())
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        # A partial sum would under-count silently; say which process is missing instead.
                        raise errors.service_unavailable(f"metrics of API server process {url}: {exc}") from exc
            body = merge_texts(texts)
        return web.Response(body=body, headers={"Content-Type": content_type})

    return web.get("/metrics", serve_metrics)
