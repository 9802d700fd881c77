"""watch_stream framing and errors; Reflector list/watch/relist/resume behaviour."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubemark import codec
from kubemark.client.rest import Gone, RestClient
from kubemark.client.watch import Reflector, watch_stream

from .conftest import FakeAPI, SleepRecorder, WatchPlan, fail, reply

PODS = "/api/v1/pods"


def pod(name: str, rv: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, **extra}}


def ev(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def listing(rv: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PodList", "metadata": {"resourceVersion": rv}, "items": list(items)}


async def collect(client: RestClient, **kw: Any) -> list[dict[str, Any]]:
    return [e async for e in watch_stream(client, PODS, **kw)]


async def test_stream_handles_split_and_huge_lines(api: FakeAPI, client: RestClient) -> None:
    big = pod("big", "7", annotations={"pad": "x" * 300_000})
    line = codec.dumps(ev("MODIFIED", big)) + b"\n"
    first = codec.dumps(ev("ADDED", pod("a", "5"))) + b"\n"
    # One event cut in three pieces, and two events sharing one chunk with the start of a third.
    pieces = [first[:10], first[10:20], first[20:] + line[:5], line[5:150_000], line[150_000:]]
    api.on_watch(PODS, WatchPlan(pieces))
    events = await collect(client, resource_version="4")
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]
    assert len(events[1]["object"]["metadata"]["annotations"]["pad"]) == 300_000
    q = api.requests("WATCH")[0].query
    assert q == {"watch": "true", "resourceVersion": "4", "allowWatchBookmarks": "true"}


async def test_error_event_410_raises_gone(api: FakeAPI, client: RestClient) -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
        "message": "too old resource version: 1 (50)",
    }
    api.on_watch(PODS, WatchPlan([ev("ADDED", pod("a", "60")), ev("ERROR", status)]))
    got: list[str] = []
    with pytest.raises(Gone) as info:
        async for e in watch_stream(client, PODS, resource_version="1"):
            got.append(e["type"])
    assert got == ["ADDED"]
    assert info.value.status == 410 and "too old" in info.value.message


async def test_watch_rejected_with_status(api: FakeAPI, client: RestClient) -> None:
    api.on("WATCH", PODS, fail(403, "Forbidden"))
    with pytest.raises(Exception) as info:
        await collect(client, resource_version="1")
    assert getattr(info.value, "status", None) == 403


class Recorder:
    def __init__(self) -> None:
        self.syncs: list[tuple[list[str], str]] = []
        self.events: list[tuple[str, str, str]] = []

    async def on_sync(self, items: list[dict[str, Any]], rv: str) -> None:
        self.syncs.append(([i["metadata"]["name"] for i in items], rv))

    def on_event(self, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((kind, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))


def reflector(client: RestClient, rec: Recorder, sleeps: SleepRecorder) -> Reflector:
    return Reflector(client, PODS, on_event=rec.on_event, on_sync=rec.on_sync, sleep=sleeps, watch_timeout=300)


async def test_reflector_relists_on_410(api: FakeAPI, client: RestClient, sleeps: SleepRecorder) -> None:
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api.on("GET", PODS, reply(listing("10", pod("a", "9"))), reply(listing("20", pod("b", "19"))))
    api.on_watch(PODS, WatchPlan([ev("ADDED", pod("c", "11")), ev("ERROR", gone)]), WatchPlan([], then="hold"))
    rec = Recorder()
    r = reflector(client, rec, sleeps)
    r.start()
    try:
        await api.wait_for(lambda: api.count("WATCH") == 2)
    finally:
        await r.stop()
    assert rec.syncs == [(["a"], "10"), (["b"], "20")]
    assert rec.events == [("ADDED", "c", "11")]
    lists = [s.query for s in api.requests("GET")]
    assert lists[0] == {"limit": "500", "resourceVersion": "0"}
    assert lists[1] == {"limit": "500"}  # consistent relist after 410
    watches = [s.query for s in api.requests("WATCH")]
    assert watches[0]["resourceVersion"] == "10" and watches[1]["resourceVersion"] == "20"
    assert watches[0]["timeoutSeconds"] == "300" and watches[0]["allowWatchBookmarks"] == "true"


async def test_reflector_resumes_from_last_rv_after_drop(
    api: FakeAPI, client: RestClient, sleeps: SleepRecorder
) -> None:
    api.on("GET", PODS, reply(listing("10")))
    api.on_watch(
        PODS,
        WatchPlan([ev("ADDED", pod("a", "11")), ev("MODIFIED", pod("a", "12"))], then="drop"),
        WatchPlan([ev("DELETED", pod("a", "13"))], then="end"),
        WatchPlan([], then="hold"),
    )
    rec = Recorder()
    r = reflector(client, rec, sleeps)
    r.start()
    try:
        await api.wait_for(lambda: api.count("WATCH") == 3)
    finally:
        await r.stop()
    assert api.count("GET") == 1  # no relist for a dropped connection or a clean end
    assert [s.query["resourceVersion"] for s in api.requests("WATCH")] == ["10", "12", "13"]
    assert rec.events == [("ADDED", "a", "11"), ("MODIFIED", "a", "12"), ("DELETED", "a", "13")]
    assert len(sleeps.delays) == 1  # backoff only after the drop
    assert r.last_resource_version == "13"


async def test_bookmarks_advance_rv_without_events(api: FakeAPI, client: RestClient, sleeps: SleepRecorder) -> None:
    api.on("GET", PODS, reply(listing("10")))
    bookmark = {"kind": "Pod", "metadata": {"resourceVersion": "50"}}
    api.on_watch(PODS, WatchPlan([ev("BOOKMARK", bookmark)]), WatchPlan([], then="hold"))
    rec = Recorder()
    r = reflector(client, rec, sleeps)
    r.start()
    try:
        await api.wait_for(lambda: api.count("WATCH") == 2)
    finally:
        await r.stop()
    assert rec.events == []
    assert api.requests("WATCH")[1].query["resourceVersion"] == "50"


async def test_reflector_backs_off_when_list_fails(api: FakeAPI, client: RestClient, sleeps: SleepRecorder) -> None:
    client.max_retries = 0
    api.on("GET", PODS, fail(500, "InternalError"), fail(500, "InternalError"), reply(listing("3")))
    api.on_watch(PODS, WatchPlan([], then="hold"))
    rec = Recorder()
    r = reflector(client, rec, sleeps)
    r.start()
    try:
        await api.wait_for(lambda: api.count("WATCH") == 1)
    finally:
        await r.stop()
    assert rec.syncs == [([], "3")]
    assert (len(sleeps.delays) == 2 and sleeps.delays[1] > sleeps.delays[0] * 1.0) or sleeps.delays[1] >= 1.6


async def test_stop_is_prompt_while_watching(api: FakeAPI, client: RestClient, sleeps: SleepRecorder) -> None:
    api.on("GET", PODS, reply(listing("1")))
    api.on_watch(PODS, WatchPlan([], then="hold"))
    rec = Recorder()
    r = reflector(client, rec, sleeps)
    task = r.start()
    await api.wait_for(lambda: api.count("WATCH") == 1)
    await asyncio.wait_for(r.stop(), 2)
    assert task.done()


async def test_failing_handler_does_not_kill_the_reflector(
    api: FakeAPI, client: RestClient, sleeps: SleepRecorder
) -> None:
    api.on("GET", PODS, reply(listing("1")))
    api.on_watch(PODS, WatchPlan([ev("ADDED", pod("a", "2")), ev("ADDED", pod("b", "3"))]), WatchPlan([], then="hold"))
    seen: list[str] = []

    def on_event(kind: str, obj: dict[str, Any]) -> None:
        seen.append(obj["metadata"]["name"])
        raise RuntimeError("consumer bug")

    r = Reflector(client, PODS, on_event=on_event, on_sync=lambda items, rv: None, sleep=sleeps)
    task = r.start()
    try:
        await api.wait_for(lambda: api.count("WATCH") == 2)
        assert not task.done()
    finally:
        await r.stop()
    assert seen == ["a", "b"] and r.last_resource_version == "3"
