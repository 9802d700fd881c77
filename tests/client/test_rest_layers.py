"""How RestClient.request's layers compose: each attempt authenticates, takes a rate-limit token and is
recorded; a 401 refresh is a free resend once per call; retries share one budget and one backoff per call."""

from __future__ import annotations

import ssl

import pytest

from kubemark.client.auth import Authenticator
from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.ratelimit import TokenBucket
from kubemark.client.rest import APIError, RequestRecord, RestClient, Unauthorized

from .conftest import FakeAPI, fail, reply, status_body


class LoggingAuth(Authenticator):
    """A static bearer token whose prepare/unauthorized calls land in `events`."""

    def __init__(self, events: list[str], *, refreshable: bool = True, error: BaseException | None = None) -> None:
        super().__init__(ClusterCredentials(server="http://unused", token="t"))
        self.events = events
        self.refreshable_ = refreshable
        self.error = error

    async def prepare(self) -> tuple[str | None, ssl.SSLContext | bool]:
        self.events.append("prepare")
        if self.error is not None:
            raise self.error
        return "Bearer t", False

    def unauthorized(self) -> bool:
        self.events.append("unauthorized")
        return self.refreshable_


class LoggingLimiter(TokenBucket):
    def __init__(self, events: list[str]) -> None:
        super().__init__(qps=0, burst=1)
        self.events = events

    async def acquire(self) -> None:
        self.events.append("acquire")


def logging_client(
    api: FakeAPI,
    events: list[str],
    *,
    max_retries: int = 5,
    refreshable: bool = True,
    error: BaseException | None = None,
) -> RestClient:
    async def sleep(delay: float) -> None:
        events.append(f"sleep {delay:g}" if delay >= 1 else "sleep backoff")

    def record(r: RequestRecord) -> None:
        events.append(f"record {r.status}")

    client = RestClient(
        ClusterCredentials(server=api.url),
        qps=0,
        max_retries=max_retries,
        sleep=sleep,
        on_request=record,
        authenticator=LoggingAuth(events, refreshable=refreshable, error=error),
    )
    client.limiter = LoggingLimiter(events)
    return client


async def test_every_attempt_authenticates_then_takes_a_token_then_is_recorded(api: FakeAPI) -> None:
    api.on("GET", "/x", fail(401, "Unauthorized"), fail(503, "ServiceUnavailable"), reply({"ok": True}))
    events: list[str] = []
    async with logging_client(api, events) as c:
        assert await c.get("/x") == {"ok": True}
    assert events == [
        "prepare",
        "acquire",
        "record 401",
        "unauthorized",  # the refresh resends at once: no sleep
        "prepare",
        "acquire",
        "record 503",
        "sleep backoff",
        "prepare",
        "acquire",
        "record 200",
    ]


async def test_unlimited_calls_skip_the_limiter_on_every_attempt(api: FakeAPI) -> None:
    api.on("GET", "/x", fail(503, "ServiceUnavailable"), reply({"ok": True}))
    events: list[str] = []
    async with logging_client(api, events) as c:
        assert await c.get("/x", rate_limited=False) == {"ok": True}
    assert events == ["prepare", "record 503", "sleep backoff", "prepare", "record 200"]


async def test_refresh_after_401_is_not_a_retry(api: FakeAPI) -> None:
    api.on("GET", "/x", fail(401, "Unauthorized"), reply({"ok": True}))
    events: list[str] = []
    async with logging_client(api, events, max_retries=0) as c:
        assert await c.get("/x", retry=False) == {"ok": True}
    assert api.count("GET") == 2 and events.count("unauthorized") == 1


async def test_refresh_happens_once_per_call_even_across_retries(api: FakeAPI) -> None:
    api.on("GET", "/x", fail(401, "Unauthorized"), fail(503, "ServiceUnavailable"), fail(401, "Unauthorized"))
    events: list[str] = []
    async with logging_client(api, events) as c:
        with pytest.raises(Unauthorized):
            await c.get("/x")
        assert api.count("GET") == 3 and events.count("unauthorized") == 1 and events.count("sleep backoff") == 1
        # A new call may refresh again.
        api.on("GET", "/y", fail(401, "Unauthorized"), reply({"ok": True}))
        assert await c.get("/y") == {"ok": True}
        assert events.count("unauthorized") == 2


async def test_unrefreshable_401_is_final(api: FakeAPI) -> None:
    api.on("GET", "/x", fail(401, "Unauthorized"), reply({"ok": True}))
    events: list[str] = []
    async with logging_client(api, events, refreshable=False) as c:
        with pytest.raises(Unauthorized):
            await c.get("/x")
    assert events == ["prepare", "acquire", "record 401", "unauthorized"]


async def test_a_refresh_does_not_reset_the_retry_budget(api: FakeAPI) -> None:
    api.on(
        "GET",
        "/x",
        fail(503, "ServiceUnavailable"),
        fail(401, "Unauthorized"),
        fail(503, "ServiceUnavailable"),
        reply({"ok": True}),
    )
    events: list[str] = []
    async with logging_client(api, events, max_retries=1) as c:
        with pytest.raises(APIError) as info:
            await c.get("/x")
    assert info.value.status == 503 and api.count("GET") == 3 and events.count("sleep backoff") == 1


async def test_retry_after_wins_and_leaves_the_backoff_unstarted(api: FakeAPI) -> None:
    api.on(
        "GET",
        "/x",
        fail(503, "ServiceUnavailable", {"Retry-After": "3"}),
        fail(503, "ServiceUnavailable"),
        reply({"ok": True}),
    )
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    async with RestClient(ClusterCredentials(server=api.url), qps=0, sleep=sleep) as c:
        assert await c.get("/x") == {"ok": True}
    assert delays[0] == 3.0 and 0.2 <= delays[1] <= 0.24  # the backoff's first step, not its second


async def test_retry_rules_go_by_the_http_status_not_the_status_body(api: FakeAPI) -> None:
    api.on("GET", "/x", reply(status_body(400, "BadRequest"), 503), reply({"ok": True}))
    api.on("GET", "/y", reply(status_body(503, "ServiceUnavailable"), 400), reply({"ok": True}))
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    async with RestClient(ClusterCredentials(server=api.url), qps=0, sleep=sleep) as c:
        assert await c.get("/x") == {"ok": True}
        assert api.count("GET", "/x") == 2
        with pytest.raises(APIError) as info:
            await c.get("/y")
    assert info.value.status == 503  # the error itself reports the Status body's code
    assert api.count("GET", "/y") == 1 and len(delays) == 1


async def test_failure_to_authenticate_is_neither_sent_retried_nor_recorded(api: FakeAPI) -> None:
    api.on("GET", "/x", reply({"ok": True}))
    events: list[str] = []
    # ssl.SSLError is an OSError, like the transport errors that are retried: it must still surface at once.
    async with logging_client(api, events, error=ssl.SSLError("bad client certificate")) as c:
        with pytest.raises(ssl.SSLError):
            await c.get("/x")
    assert events == ["prepare"] and api.count("GET") == 0
