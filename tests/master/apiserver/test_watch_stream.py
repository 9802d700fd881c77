"""Watch streaming over HTTP: resume from a resourceVersion, 410, bookmarks, watch-list, timeouts, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from kubemark import codec
from kubemark.master.apiserver.server import APIServer, APIServerConfig

if TYPE_CHECKING:
    from conftest import Rest

CMS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def configmap(name: str, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": value}}


def pod(name: str, node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "pause"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


class Stream:
    """One open watch response, read event by event with a timeout."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        assert line, "watch stream ended"
        return codec.loads(line)

    async def take(self, n: int) -> list[tuple[str, str]]:
        out = []
        for _ in range(n):
            ev = await self.next()
            out.append((ev["type"], ev["object"]["metadata"].get("name", "")))
        return out

    async def ended(self, timeout: float = 10.0) -> bool:
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        return line == b""


async def open_watch(
    session: aiohttp.ClientSession, path: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> Stream:
    resp = await session.get(path, params={"watch": "true", **params}, headers=headers)
    return Stream(resp)


async def test_watch_from_resource_version_and_resume(api: Rest) -> None:
    _, first = await api.call("POST", CMS, configmap("a"))
    rv0 = first["metadata"]["resourceVersion"]
    await api.call("POST", CMS, configmap("b"))
    await api.call("PUT", f"{CMS}/a", configmap("a", "2"))
    await api.call("DELETE", f"{CMS}/b")
    stream = await open_watch(api.session, CMS, {"resourceVersion": rv0})
    assert stream.resp.status == 200
    assert stream.resp.headers["Content-Type"].startswith("application/json")
    assert stream.resp.headers.get("Transfer-Encoding") == "chunked"
    events = [await stream.next() for _ in range(3)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    assert events[1]["object"]["data"] == {"a": "2"}
    revs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revs == sorted(revs) and revs[0] > int(rv0)
    stream.resp.close()
    # Resume from the last seen revision: only newer events arrive.
    await api.call("POST", CMS, configmap("c"))
    resumed = await open_watch(api.session, CMS, {"resourceVersion": str(revs[-1])})
    assert await resumed.take(1) == [("ADDED", "c")]
    resumed.resp.close()


async def test_watch_without_rv_sends_current_state_then_changes(api: Rest) -> None:
    await api.call("POST", CMS, configmap("old"))
    stream = await open_watch(api.session, CMS, {})
    assert await stream.take(1) == [("ADDED", "old")]
    await api.call("POST", CMS, configmap("new"))
    assert await stream.take(1) == [("ADDED", "new")]
    stream.resp.close()


async def test_watch_list_initial_events_end_bookmark(api: Rest) -> None:
    await api.call("POST", CMS, configmap("x"))
    await api.call("POST", CMS, configmap("y"))
    params = {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true"}
    stream = await open_watch(api.session, CMS, params)
    assert await stream.take(2) == [("ADDED", "x"), ("ADDED", "y")]
    bookmark = await stream.next()
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["object"]["kind"] == "ConfigMap"
    await api.call("POST", CMS, configmap("z"))
    assert await stream.take(1) == [("ADDED", "z")]
    stream.resp.close()


async def test_watch_field_selector_on_node_name(api: Rest) -> None:
    stream = await open_watch(
        api.session, "/api/v1/pods", {"fieldSelector": "spec.nodeName=n1", "resourceVersion": "0"}
    )
    await api.call("POST", PODS, pod("elsewhere", node="n2"))
    await api.call("POST", PODS, pod("unbound"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "unbound"}, "target": {"name": "n1"}}
    code, _ = await api.call("POST", f"{PODS}/unbound/binding", binding)
    assert code == 201
    await api.call("POST", PODS, pod("direct", node="n1"))
    assert await stream.take(2) == [("ADDED", "unbound"), ("ADDED", "direct")]
    stream.resp.close()


async def test_named_watch(api: Rest) -> None:
    await api.call("POST", CMS, configmap("one"))
    await api.call("POST", CMS, configmap("one-more"))
    stream = await open_watch(api.session, CMS, {"fieldSelector": "metadata.name=one"})
    assert await stream.take(1) == [("ADDED", "one")]
    legacy = await api.session.get("/api/v1/watch/namespaces/default/configmaps/one")
    legacy_stream = Stream(legacy)
    assert await legacy_stream.take(1) == [("ADDED", "one")]
    await api.call("PUT", f"{CMS}/one-more", configmap("one-more", "2"))
    await api.call("PUT", f"{CMS}/one", configmap("one", "2"))
    assert await stream.take(1) == [("MODIFIED", "one")]
    assert await legacy_stream.take(1) == [("MODIFIED", "one")]
    stream.resp.close()
    legacy.close()


async def test_watch_timeout_ends_stream(api: Rest) -> None:
    started = time.monotonic()
    stream = await open_watch(api.session, CMS, {"timeoutSeconds": "1", "resourceVersion": "0"})
    assert await stream.ended(10)
    assert 0.9 <= time.monotonic() - started < 8


async def test_watch_table_events(api: Rest) -> None:
    await api.call("POST", PODS, pod("p"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    stream = await open_watch(api.session, PODS, {}, {"Accept": accept})
    event = await stream.next()
    assert event["type"] == "ADDED"
    assert event["object"]["kind"] == "Table" and event["object"]["rows"][0]["cells"][0] == "p"
    assert "columnDefinitions" in event["object"]
    stream.resp.close()


@pytest.fixture
async def small_api() -> AsyncIterator[tuple[APIServer, aiohttp.ClientSession]]:
    cfg = APIServerConfig(storage="memory", compaction_interval=0, watch_cache_window=3, watch_bookmark_interval=0.2)
    server = APIServer(cfg)
    await server.start()
    session = aiohttp.ClientSession(base_url=server.url)
    try:
        yield server, session
    finally:
        await session.close()
        await server.stop()


async def post(session: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with session.post(path, data=codec.dumps(body), headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 201
        return codec.loads(await resp.read())


async def test_watch_too_old_resource_version_is_410_event(small_api: tuple[APIServer, aiohttp.ClientSession]) -> None:
    server, session = small_api
    first = await post(session, CMS, configmap("c0"))
    for i in range(1, 8):
        await post(session, CMS, configmap(f"c{i}"))
    rv = first["metadata"]["resourceVersion"]
    # The cache must have seen the writes before its window can have moved past rv.
    await server.caches[server.store("", "configmaps").rt].wait_until_fresh(await server.storage.current_revision())
    stream = await open_watch(session, CMS, {"resourceVersion": rv})
    assert stream.resp.status == 200
    event = await stream.next()
    assert event["type"] == "ERROR"
    status = event["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {rv} (")
    assert await stream.ended()


async def test_bookmarks_only_when_allowed(small_api: tuple[APIServer, aiohttp.ClientSession]) -> None:
    _, session = small_api
    with_bm = await open_watch(session, CMS, {"resourceVersion": "0", "allowWatchBookmarks": "true"})
    without = await open_watch(session, CMS, {"resourceVersion": "0"})
    bookmark = await with_bm.next()
    assert bookmark["type"] == "BOOKMARK" and bookmark["object"]["kind"] == "ConfigMap"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) > 0
    # The other watch has been open at least as long, yet its first event is the real one.
    await post(session, CMS, configmap("after"))
    assert await without.take(1) == [("ADDED", "after")]
    with_bm.resp.close()
    without.resp.close()


async def test_shutdown_ends_watches_cleanly() -> None:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    session = aiohttp.ClientSession(base_url=server.url)
    try:
        stream = await open_watch(session, CMS, {"resourceVersion": "0"})
        started = time.monotonic()
        await server.stop()
        assert time.monotonic() - started < 4
        assert await stream.ended(5)
    finally:
        await session.close()
        await server.stop()
