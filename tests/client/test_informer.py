"""Informer cache and handler semantics, including deletes synthesized on relist."""

from __future__ import annotations

from typing import Any

from kubemark.client.informer import Informer, namespaced_key
from kubemark.client.rest import RestClient

from .conftest import FakeAPI, SleepRecorder, WatchPlan, reply

PODS = "/api/v1/pods"
GONE = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}


def pod(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


def listing(rv: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "items": list(items)}


def test_namespaced_key() -> None:
    assert namespaced_key(pod("a", "1")) == "ns/a"
    assert namespaced_key({"metadata": {"name": "node-1"}}) == "node-1"


async def test_informer_events_and_relist_delete_synthesis(
    api: FakeAPI, client: RestClient, sleeps: SleepRecorder
) -> None:
    api.on(
        "GET",
        PODS,
        reply(listing("10", pod("a", "1"), pod("b", "1"), pod("c", "1"))),
        reply(listing("30", pod("a", "11"), pod("c", "25"), pod("d", "26"))),
    )
    api.on_watch(
        PODS,
        WatchPlan(
            [
                {"type": "MODIFIED", "object": pod("a", "11")},
                {"type": "ADDED", "object": pod("e", "12")},
                {"type": "DELETED", "object": pod("e", "13")},
                {"type": "MODIFIED", "object": pod("a", "11")},  # same RV: no update
                {"type": "ERROR", "object": GONE},
            ]
        ),
        WatchPlan([], then="hold"),
    )
    log: list[tuple[str, ...]] = []
    inf = Informer(client, PODS, sleep=sleeps, watch_timeout=300)

    async def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        log.append(
            ("update", new["metadata"]["name"], old["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"])
        )

    inf.add_handler(
        on_add=lambda o: log.append(("add", o["metadata"]["name"])),
        on_update=on_update,
        on_delete=lambda o: log.append(("delete", o["metadata"]["name"], o["metadata"]["resourceVersion"])),
    )
    assert not inf.synced
    inf.start()
    try:
        assert await inf.wait_synced(5)
        await api.wait_for(lambda: api.count("WATCH") == 2)
    finally:
        await inf.stop()
    assert log == [
        ("add", "a"),
        ("add", "b"),
        ("add", "c"),
        ("update", "a", "1", "11"),
        ("add", "e"),
        ("delete", "e", "13"),
        # relist: b vanished while we were not watching (last known state reported), c changed, d is new;
        # a is unchanged (same resourceVersion) so it gets no update.
        ("delete", "b", "1"),
        ("update", "c", "1", "25"),
        ("add", "d"),
    ]
    assert sorted(inf.keys()) == ["ns/a", "ns/c", "ns/d"]
    assert inf.get("ns/c")["metadata"]["resourceVersion"] == "25"
    assert inf.get("ns/b") is None and len(inf.list()) == 3


async def test_wait_synced_times_out(api: FakeAPI, client: RestClient, sleeps: SleepRecorder) -> None:
    api.on_watch(PODS, WatchPlan([], then="hold"))
    never = WatchPlan([], then="hold")  # the LIST itself hangs until the test ends

    api.on("GET", PODS, never)
    api.holds.append(never)
    inf = Informer(client, PODS, sleep=sleeps)
    inf.start()
    try:
        assert await inf.wait_synced(0.2) is False
    finally:
        await inf.stop()
