"""RestClient: JSON REST calls to a Kubernetes API server over one aiohttp session.

Each call is rate limited (unless told not to), authenticated, timed, reported to `on_request`, and retried
per `retry.py`. Non-2xx answers raise `APIError` (see errors.py) built from the returned metav1.Status.
"""

from __future__ import annotations

import asyncio
import builtins
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from kubemark import codec
from kubemark.client.auth import Authenticator
from kubemark.client.errors import (
    AlreadyExists,
    APIError,
    Conflict,
    Expired,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
    error_from_status,
    is_already_exists,
    is_conflict,
    is_gone,
    is_invalid,
    is_not_found,
    is_too_many_requests,
)
from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.paths import describe_path, resource_path
from kubemark.client.ratelimit import TokenBucket
from kubemark.client.retry import Backoff, is_retryable
from kubemark.kube.request_scope import request_scope

__all__ = [
    "PATCH_CONTENT_TYPES",
    "APIError",
    "AlreadyExists",
    "Conflict",
    "Expired",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "RequestRecord",
    "RestClient",
    "TooManyRequests",
    "Unauthorized",
    "is_already_exists",
    "is_conflict",
    "is_gone",
    "is_invalid",
    "is_not_found",
    "is_too_many_requests",
    "resource_path",
]

log = logging.getLogger(__name__)

PATCH_CONTENT_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    # JSON is YAML, so an apply body may be sent as JSON under the YAML media type.
    "apply": "application/apply-patch+yaml",
}

_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP attempt, for client-side API latency. `status` is None when no response arrived."""

    verb: str  # GET, LIST, WATCH, POST, PUT, PATCH, DELETE, ...
    path: str
    resource: str
    subresource: str
    namespace_scope: str  # resource | namespace | cluster
    status: int | None
    seconds: float
    started_at: float  # unix time


def _encode_query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Encode layer, query: drop None values, spell booleans as Kubernetes does, stringify the rest."""
    if not params:
        return {}
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def _encode_body(body: Any) -> bytes | None:
    """Encode layer, body: bytes as they are, str as UTF-8, anything else as JSON; None means no body."""
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return codec.dumps(body)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _decode(payload: bytes, content_type: str) -> Any:
    if not payload:
        return None
    if "json" in content_type or payload[:1] in (b"{", b"["):
        try:
            return codec.loads(payload)
        except codec.JSONDecodeError:
            pass
    return payload.decode("utf-8", errors="replace")


def _verb(method: str, path_name: str, params: Mapping[str, str]) -> str:
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return "WATCH"
        if not path_name:
            return "LIST"
    return method


def _call_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """A call's timeout: `seconds` to connect (TCP + TLS) and `seconds` of silence while waiting for or reading
    the response; waiting for a free pooled connection does not count. A total deadline would fire on calls
    that merely queued behind the client's own earlier calls and, over HTTP/1.1, abort them mid-flight: each
    abort closes a connection and the retry opens a new one — a TLS handshake storm on an already busy server
    (client-go sets no timeout at all; the API server bounds every call itself)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


class RestClient:
    """One client = one credential, one rate limiter, one aiohttp session (optionally on a shared connector)."""

    def __init__(
        self,
        creds: ClusterCredentials,
        *,
        session: aiohttp.ClientSession | None = None,
        stream_session: aiohttp.ClientSession | None = None,
        connector: aiohttp.BaseConnector | None = None,
        qps: float = 5,
        burst: int = 10,
        user_agent: str = "kubemark",
        timeout: float = 30.0,
        max_retries: int = 5,
        on_request: Callable[[RequestRecord], None] | None = None,
        authenticator: Authenticator | None = None,
        backoff: Callable[[], Backoff] = Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        connection_limit: int = 100,
    ) -> None:
        self.creds = creds
        self._base = URL(creds.server)
        self._own_session = session is None
        self._session = session
        # Watches on a session of their own (not owned: its creator closes it), e.g. so a connection-limited
        # session for calls is never filled by long-lived streams.
        self._stream_session = stream_session
        self._connector = connector
        self._connection_limit = connection_limit
        self.limiter = TokenBucket(qps, burst)
        self._user_agent = user_agent
        self._timeout = _call_timeout(timeout)
        self._connect_timeout = timeout
        self.max_retries = max_retries
        self.on_request = on_request
        self._auth = authenticator or Authenticator(creds)
        self._backoff = backoff
        self._sleep = sleep

    # -- plumbing -------------------------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._connector is not None:
                self._session = aiohttp.ClientSession(connector=self._connector, connector_owner=False)
            else:
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=self._connection_limit, force_close=False)
                )
        return self._session

    def sibling(self, *, qps: float, burst: int, user_agent: str | None = None) -> RestClient:
        """A client on this one's session and credentials with its own rate limiter — what
        kube-controller-manager's client builder gives each controller. Closing it leaves the session open."""
        client = RestClient(
            self.creds,
            session=self._get_session(),
            stream_session=self._stream_session,
            qps=qps,
            burst=burst,
            user_agent=user_agent or self._user_agent,
            timeout=self._connect_timeout,
            max_retries=self.max_retries,
            on_request=self.on_request,
            authenticator=self._auth,
            backoff=self._backoff,
            sleep=self._sleep,
        )
        return client

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _url(self, path: str) -> URL:
        return self._base.with_path(self._base.path.rstrip("/") + path, encoded=True)

    def _record(self, method: str, path: str, q: Mapping[str, str], status: int | None, t0: float, wall: float) -> None:
        """Record layer: report one attempt (verb, path, status or None, latency since `t0`) to `on_request`;
        a failing hook is logged, never raised into the call."""
        if self.on_request is None:
            return
        info = describe_path(path)
        verb = _verb(method, info.name, q)
        selector = q.get("fieldSelector", "") if verb in ("LIST", "WATCH") else ""
        record = RequestRecord(
            verb=verb,
            path=path,
            resource=info.resource,
            subresource=info.subresource,
            namespace_scope=request_scope(
                namespace=info.namespace, name=info.name, create=method == "POST", field_selector=selector
            ),
            status=status,
            seconds=time.perf_counter() - t0,
            started_at=wall,
        )
        try:
            self.on_request(record)
        except Exception:  # a broken metrics hook must not break API calls
            log.exception("on_request hook failed")

    def _headers(self, content_type: str | None, authorization: str | None) -> dict[str, str]:
        """The headers of one attempt, carrying the credentials `Authenticator.prepare` gave it."""
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if authorization:
            headers["Authorization"] = authorization
        return headers

    def _server_hostname(self, ssl_arg: Any) -> str | None:
        """The TLS server name to verify instead of the URL's host (None: the URL's), for TLS connections."""
        if ssl_arg is False:
            return None
        return self.creds.tls_server_name or None

    # -- the one request path -------------------------------------------------------------------------------
    #
    # Layers, outermost first (like httpx's _send_handling_auth -> _send_handling_redirects -> _send_single_request):
    #   request                   encode: method, query (_encode_query), body and its Content-Type (_encode_body)
    #   _send_handling_retries    retry: retry.py's rules, Retry-After or backoff with jitter, max_retries per call;
    #                             each attempt first gets credentials (Authenticator.prepare) and, unless the call
    #                             opted out, a token of the client's rate limiter (TokenBucket.acquire)
    #   _refresh_after_401        auth refresh: a 401 drops cached credentials for one free resend per call
    #   _send_single_request      one HTTP exchange, timed and reported by _record (record)
    # Per-call state (attempt count, backoff, refreshed) is _send_handling_retries' locals: the layering costs a
    # call two coroutine frames and one (status, result) pair, no state object. Credentials and the rate limiter
    # are awaited outside the retry's `except`, so their failures are never retried or recorded.

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        rate_limited: bool = True,
        retry: bool | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - an HTTP timeout per call, not a cancel scope
    ) -> Any:
        """Send one call (with retries) and return the decoded JSON body (None if empty)."""
        method = method.upper()
        q = _encode_query(params)
        data = _encode_body(body)
        return await self._send_handling_retries(
            method,
            path,
            self._url(path),
            q,
            data,
            content_type if data is not None else None,
            self._timeout if timeout is None else _call_timeout(timeout),
            rate_limited,
            retry is not False and self.max_retries > 0,
        )

    async def _send_handling_retries(
        self,
        method: str,
        path: str,
        url: URL,
        q: Mapping[str, str],
        data: bytes | None,
        content_type: str | None,
        client_timeout: aiohttp.ClientTimeout,
        rate_limited: bool,
        may_retry: bool,
    ) -> Any:
        """Retry layer: run attempts until one succeeds or a failure may not be repeated.

        A failure is repeated when retry.py allows it (429; 5xx or a dropped connection for idempotent calls; a
        connection never made for any call), at most `max_retries` times per call, after the answer's
        Retry-After or else the next step of the call's one backoff (created on first use). A 401 answered by
        `_refresh_after_401` is resent at once and costs no retry, once per call.
        """
        session = self._get_session()
        backoff: Backoff | None = None
        attempt = 0
        refreshed = False
        while True:
            authorization, ssl_arg = await self._auth.prepare()
            if rate_limited:
                await self.limiter.acquire()
            try:
                status, result = await self._send_single_request(
                    session, method, path, url, q, data, content_type, client_timeout, authorization, ssl_arg
                )
            except _TRANSPORT_ERRORS as exc:
                sent = not isinstance(exc, aiohttp.ClientConnectorError)
                if not (may_retry and attempt < self.max_retries and is_retryable(None, method, request_sent=sent)):
                    raise
                backoff = backoff or self._backoff()
                delay = backoff.next_delay()
                attempt += 1
                log.debug("%s %s failed (%r); retry %d in %.3fs", method, path, exc, attempt, delay)
            else:
                if 200 <= status < 300:
                    return result
                if not refreshed and self._refresh_after_401(status):
                    refreshed = True
                    log.debug("%s %s: 401, refreshing credentials", method, path)
                    continue
                err: APIError = result
                if not (may_retry and attempt < self.max_retries and is_retryable(status, method)):
                    raise err
                if err.retry_after is not None:
                    delay = err.retry_after
                else:
                    backoff = backoff or self._backoff()
                    delay = backoff.next_delay()
                attempt += 1
                log.debug("%s %s: %d %s; retry %d in %.3fs", method, path, status, err.reason, attempt, delay)
            await self._sleep(delay)

    def _refresh_after_401(self, status: int) -> bool:
        """Auth-refresh layer: on a 401, drop the cached credentials (exec plugin, token file) so that the next
        attempt's `Authenticator.prepare` fetches new ones; True if that resend could carry different ones."""
        return status == 401 and self._auth.unauthorized()

    async def _send_single_request(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        url: URL,
        q: Mapping[str, str],
        data: bytes | None,
        content_type: str | None,
        client_timeout: aiohttp.ClientTimeout,
        authorization: str | None,
        ssl_arg: Any,
    ) -> tuple[int, Any]:
        """Send layer: one HTTP exchange, recorded (`_record`) whatever its outcome.

        Returns (status, decoded body) for a 2xx, else (status, the APIError to raise); transport errors
        propagate. `client_timeout` covers connecting and waiting for the answer, not waiting for a pooled connection.
        """
        headers = self._headers(content_type, authorization)
        wall, t0 = time.time(), time.perf_counter()
        try:
            async with session.request(
                method,
                url,
                params=q or None,
                data=data,
                headers=headers,
                timeout=client_timeout,
                allow_redirects=False,
                ssl=ssl_arg,
                server_hostname=self._server_hostname(ssl_arg),
            ) as resp:
                status = resp.status
                payload = await resp.read()
                ctype = resp.headers.get("Content-Type", "")
                retry_after_header = resp.headers.get("Retry-After")
        except _TRANSPORT_ERRORS:
            self._record(method, path, q, None, t0, wall)
            raise
        self._record(method, path, q, status, t0, wall)
        decoded = _decode(payload, ctype)
        if 200 <= status < 300:
            return status, decoded
        return status, error_from_status(
            status,
            decoded,
            retry_after=_retry_after(retry_after_header),
            fallback_message=decoded[:200] if isinstance(decoded, str) else "",
        )

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        rate_limited: bool = True,
        read_timeout: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a streaming GET (a watch); yields the response once headers show success, else raises."""
        q = _encode_query(params)
        session = self._stream_session or self._get_session()
        authorization, ssl_arg = await self._auth.prepare()
        headers = self._headers(None, authorization)
        if rate_limited:
            await self.limiter.acquire()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout, sock_read=read_timeout)
        wall, t0 = time.time(), time.perf_counter()
        try:
            resp = await session.request(
                "GET",
                self._url(path),
                params=q or None,
                headers=headers,
                timeout=timeout,
                ssl=ssl_arg,
                server_hostname=self._server_hostname(ssl_arg),
            )
        except _TRANSPORT_ERRORS:
            self._record("GET", path, q, None, t0, wall)
            raise
        self._record("GET", path, q, resp.status, t0, wall)
        try:
            if resp.status >= 300:
                payload = await resp.read()
                decoded = _decode(payload, resp.headers.get("Content-Type", ""))
                if resp.status == 401:
                    self._auth.unauthorized()
                raise error_from_status(resp.status, decoded, retry_after=_retry_after(resp.headers.get("Retry-After")))
            yield resp
        finally:
            # A stream stopped half-way cannot go back to the pool; one that ended cleanly can.
            if resp.content.at_eof():
                resp.release()
            else:
                resp.close()

    # -- conveniences ---------------------------------------------------------------------------------------

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return await self.request("GET", path, params=params, **kw)

    async def list(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        params = {
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "limit": limit,
            "continue": continue_ or None,
            "resourceVersion": resource_version,
            "resourceVersionMatch": resource_version_match,
        }
        return await self.request("GET", path, params=params, **kw)

    async def list_all(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        resource_version: str | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Every item over paginated LISTs, and the list's resourceVersion.

        If a continue token expires mid-way (410), fall back to one unpaginated LIST, like client-go's pager.
        """
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        while True:
            try:
                page = await self.list(
                    path,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    limit=page_size or None,
                    continue_=token,
                    resource_version=None if token else resource_version,
                )
            except Gone:
                if token is None:
                    raise
                log.debug("LIST %s: continue token expired, listing without pagination", path)
                page = await self.list(path, label_selector=label_selector, field_selector=field_selector)
                items = []
                token = None
                items.extend(page.get("items") or [])
                break
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                break
        return items, str((page.get("metadata") or {}).get("resourceVersion") or "")

    async def create(self, path: str, obj: Any, *, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return await self.request("POST", path, params=params, body=obj, **kw)

    async def replace(self, path: str, obj: Any, *, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return await self.request("PUT", path, params=params, body=obj, **kw)

    async def patch(
        self,
        path: str,
        patch: Any,
        patch_type: str = "strategic",
        *,
        field_manager: str | None = None,
        force: bool | None = None,
        params: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Any:
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch_type {patch_type!r}; use one of {sorted(PATCH_CONTENT_TYPES)}") from None
        merged = dict(params or {})
        if field_manager is not None:
            merged["fieldManager"] = field_manager
        if force is not None:
            merged["force"] = force
        return await self.request("PATCH", path, params=merged, body=patch, content_type=content_type, **kw)

    async def delete(
        self,
        path: str,
        *,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        propagation_policy: str | None = None,
        params: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Any:
        options: dict[str, Any] = {}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options} if options else None
        return await self.request("DELETE", path, params=params, body=body, **kw)
