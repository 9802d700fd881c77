"""RestClient against a controllable API server double: errors, retries, Retry-After, hooks, bodies."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from kubemark import codec
from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.ratelimit import TokenBucket
from kubemark.client.rest import (
    AlreadyExists,
    APIError,
    Conflict,
    NotFound,
    RequestRecord,
    RestClient,
    TooManyRequests,
    is_not_found,
)

from .conftest import FakeAPI, SleepRecorder, drop, fail, reply

PODS = "/api/v1/namespaces/ns/pods"


async def test_get_decodes_json_and_sends_auth_and_agent(api: FakeAPI, client: RestClient) -> None:
    api.on("GET", PODS + "/p1", reply({"kind": "Pod", "metadata": {"name": "p1"}}))
    pod = await client.get(PODS + "/p1")
    assert pod["metadata"]["name"] == "p1"
    seen = api.requests("GET")[0]
    assert seen.headers["Authorization"] == "Bearer secret"
    assert seen.headers["User-Agent"] == "kubemark"


async def test_status_errors_become_typed_api_errors(api: FakeAPI, client: RestClient) -> None:
    api.on("GET", PODS + "/gone", fail(404, "NotFound", message='pods "gone" not found'))
    api.on("POST", PODS, fail(409, "AlreadyExists"))
    api.on("PUT", PODS + "/p", fail(409, "Conflict"))
    with pytest.raises(NotFound) as info:
        await client.get(PODS + "/gone")
    err = info.value
    assert (err.status, err.reason, err.message) == (404, "NotFound", 'pods "gone" not found')
    assert err.body["kind"] == "Status" and is_not_found(err)
    with pytest.raises(AlreadyExists):
        await client.create(PODS, {"metadata": {"name": "p"}})
    with pytest.raises(Conflict):
        await client.replace(PODS + "/p", {"metadata": {"name": "p"}})


async def test_non_status_body_synthesizes_an_error(api: FakeAPI, client: RestClient) -> None:
    async def text(request: web.Request) -> web.StreamResponse:
        return web.Response(text="upstream exploded", status=418)

    api.on("GET", "/weird", text)
    with pytest.raises(APIError) as info:
        await client.get("/weird")
    assert info.value.status == 418
    assert info.value.body["code"] == 418 and "upstream exploded" in info.value.message


async def test_429_retry_after_is_honoured_even_for_post(
    api: FakeAPI, client: RestClient, sleeps: SleepRecorder
) -> None:
    api.on("POST", PODS, fail(429, "TooManyRequests", {"Retry-After": "3"}), reply({"ok": 1}, 201))
    assert await client.create(PODS, {"a": 1}) == {"ok": 1}
    assert sleeps.delays == [3.0]
    assert api.count("POST") == 2


async def test_5xx_retried_for_get_with_backoff_not_for_post(
    api: FakeAPI, client: RestClient, sleeps: SleepRecorder
) -> None:
    api.on("GET", PODS, fail(503, "ServiceUnavailable"), fail(500, "InternalError"), reply({"items": []}))
    assert await client.list(PODS) == {"items": []}
    assert len(sleeps.delays) == 2
    assert 0.2 <= sleeps.delays[0] <= 0.24 and 0.4 <= sleeps.delays[1] <= 0.48
    api.on("POST", PODS, fail(503, "ServiceUnavailable"), reply({}))
    with pytest.raises(APIError) as info:
        await client.create(PODS, {})
    assert info.value.status == 503 and api.count("POST") == 1


async def test_retries_stop_after_max_retries(api: FakeAPI, sleeps: SleepRecorder) -> None:
    api.on("GET", "/x", fail(503, "ServiceUnavailable"))
    async with RestClient(ClusterCredentials(server=api.url), qps=0, max_retries=2, sleep=sleeps) as c:
        with pytest.raises(APIError):
            await c.get("/x")
        assert api.count("GET") == 3 and len(sleeps.delays) == 2
        with pytest.raises(APIError):
            await c.get("/x", retry=False)
        assert api.count("GET") == 4


async def test_dropped_connection_retried_for_get_not_post(
    api: FakeAPI, client: RestClient, sleeps: SleepRecorder
) -> None:
    # aiohttp itself repeats an idempotent request once on a dropped connection; drop more often than that.
    api.on("GET", "/flaky", drop(), drop(), drop(), drop(), reply({"fine": True}))
    assert await client.get("/flaky") == {"fine": True}
    assert api.count("GET") == 5 and 1 <= len(sleeps.delays) <= 3
    api.on("POST", "/flaky", drop(), reply({}))
    with pytest.raises(aiohttp.ClientError):
        await client.create("/flaky", {})
    assert api.count("POST") == 1  # the server may have acted on it: never repeat


async def test_post_retried_when_never_sent(sleeps: SleepRecorder) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connection refused
        records: list[RequestRecord] = []
        async with RestClient(
            ClusterCredentials(server=f"http://127.0.0.1:{port}"),
            qps=0,
            max_retries=2,
            sleep=sleeps,
            on_request=records.append,
        ) as c:
            with pytest.raises(aiohttp.ClientConnectorError):
                await c.create("/api/v1/namespaces", {})
    assert len(records) == 3 and all(r.status is None for r in records)
    assert len(sleeps.delays) == 2


async def test_on_request_records(api: FakeAPI, client: RestClient) -> None:
    api.on("GET", PODS, reply({"items": []}))
    api.on("PATCH", "/api/v1/nodes/n1/status", reply({}))
    records: list[RequestRecord] = []
    client.on_request = records.append
    await client.list(PODS, label_selector="a=b", limit=10)
    await client.patch("/api/v1/nodes/n1/status", {"status": {}})
    first, second = records
    assert (first.verb, first.resource, first.namespace_scope, first.status) == ("LIST", "pods", "namespace", 200)
    assert (second.verb, second.resource, second.subresource, second.namespace_scope) == (
        "PATCH",
        "nodes",
        "status",
        "resource",
    )
    assert first.seconds >= 0 and first.started_at > 0
    assert api.requests("GET")[0].query == {"labelSelector": "a=b", "limit": "10"}


async def test_patch_and_delete_bodies(api: FakeAPI, client: RestClient) -> None:
    api.on("PATCH", PODS + "/p", reply({}))
    api.on("DELETE", PODS + "/p", reply({"kind": "Status", "status": "Success"}))
    await client.patch(PODS + "/p", {"metadata": {"labels": {"a": "b"}}}, patch_type="merge")
    await client.patch(PODS + "/p", [{"op": "add", "path": "/x", "value": 1}], patch_type="json")
    await client.patch(PODS + "/p", {"a": 1}, patch_type="apply", field_manager="kubemark", force=True)
    kinds = [s.headers["Content-Type"] for s in api.requests("PATCH")]
    assert kinds == [
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
    ]
    assert api.requests("PATCH")[2].query == {"fieldManager": "kubemark", "force": "true"}
    with pytest.raises(ValueError):
        await client.patch(PODS + "/p", {}, patch_type="bogus")
    await client.delete(PODS + "/p", grace_period_seconds=0, preconditions={"uid": "u-1"})
    body = codec.loads(api.requests("DELETE")[0].body)
    assert body == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-1"},
    }


async def test_rate_limited_calls_wait_and_heartbeats_do_not(api: FakeAPI, client: RestClient) -> None:
    api.on("PUT", "/lease", reply({}))
    waits: list[float] = []

    async def sleep(d: float) -> None:
        waits.append(d)

    now = [0.0]
    client.limiter = TokenBucket(qps=2, burst=1, clock=lambda: now[0], sleep=sleep)
    await client.replace("/lease", {})
    await client.replace("/lease", {})
    assert waits == [0.5]
    for _ in range(5):
        await client.replace("/lease", {}, rate_limited=False)
    assert waits == [0.5] and api.count("PUT") == 7


async def test_request_timeout(api: FakeAPI, client: RestClient) -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await never.wait()
        return web.Response()

    api.on("GET", "/slow", hang)
    with pytest.raises(TimeoutError):
        await client.get("/slow", timeout=0.2, retry=False)


async def test_waiting_for_a_pooled_connection_is_not_part_of_the_timeout(api: FakeAPI) -> None:
    """With every connection busy, a call waits for one however long that takes; its timeout starts once it is
    sent (a total deadline would abort calls queued behind the client's own, closing connections mid-flight)."""
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"held": True})

    api.on("GET", "/held", held)
    api.on("GET", "/quick", reply({"quick": True}))
    async with RestClient(ClusterCredentials(server=api.url, token="t"), qps=0, connection_limit=1) as one:
        first = asyncio.create_task(one.get("/held", timeout=30))
        await api.wait_for(lambda: api.count("GET", "/held") == 1)
        second = asyncio.create_task(one.get("/quick", timeout=0.2, retry=False))
        # Three of its timeouts pass while it waits for the only connection: it must still be waiting, not failed.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(second), 0.6)
        assert api.count("GET", "/quick") == 0
        release.set()
        assert await first == {"held": True}
        assert await second == {"quick": True}


async def test_too_many_requests_surfaces_when_retries_disabled(api: FakeAPI, client: RestClient) -> None:
    api.on("GET", "/busy", fail(429, "TooManyRequests", {"Retry-After": "7"}))
    with pytest.raises(TooManyRequests) as info:
        await client.get("/busy", retry=False)
    assert info.value.retry_after == 7.0


async def test_list_all_paginates_and_falls_back_when_continue_expires(api: FakeAPI, client: RestClient) -> None:
    api.on(
        "GET",
        PODS,
        reply({"items": [{"n": 1}], "metadata": {"continue": "t1", "resourceVersion": "5"}}),
        reply({"items": [{"n": 2}], "metadata": {"resourceVersion": "5"}}),
        reply({"items": [{"n": 1}], "metadata": {"continue": "t2", "resourceVersion": "6"}}),
        fail(410, "Expired"),
        reply({"items": [{"n": 1}, {"n": 2}, {"n": 3}], "metadata": {"resourceVersion": "9"}}),
    )
    items, rv = await client.list_all(PODS, page_size=1, resource_version="0")
    assert (items, rv) == ([{"n": 1}, {"n": 2}], "5")
    q = [s.query for s in api.requests("GET")]
    assert q[0] == {"limit": "1", "resourceVersion": "0"} and q[1] == {"limit": "1", "continue": "t1"}
    items, rv = await client.list_all(PODS, page_size=1)
    assert (len(items), rv) == (3, "9")
    assert "limit" not in api.requests("GET")[-1].query


async def test_shared_connector_survives_client_close(api: FakeAPI) -> None:
    api.on("GET", "/healthz", reply("ok"))

    async def plain(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    api.on("GET", "/livez", plain)
    connector = aiohttp.TCPConnector(limit=0)
    try:
        a = RestClient(ClusterCredentials(server=api.url), connector=connector, qps=0)
        b = RestClient(ClusterCredentials(server=api.url), connector=connector, qps=0)
        assert await a.get("/livez") == "ok"  # text bodies come back as str
        await a.close()
        assert not connector.closed
        assert await b.get("/healthz") == "ok"
        await b.close()
    finally:
        await connector.close()


async def test_sibling_shares_the_session_but_not_the_rate_limit(api: FakeAPI, client: RestClient) -> None:
    api.on("GET", PODS + "/p", reply({"kind": "Pod"}))
    sibling = client.sibling(qps=1, burst=1, user_agent="kube-controller-manager/replicaset")
    assert sibling.limiter is not client.limiter
    assert sibling.limiter.try_accept() and not sibling.limiter.try_accept()  # burst 1: its own budget
    assert client.limiter.try_accept()
    assert (await sibling.get(PODS + "/p", rate_limited=False))["kind"] == "Pod"
    assert api.requests("GET")[-1].headers["User-Agent"] == "kube-controller-manager/replicaset"
    await sibling.close()
    # The parent's session survives the sibling.
    assert (await client.get(PODS + "/p"))["kind"] == "Pod"
