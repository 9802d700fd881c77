"""EventRecorder: events.k8s.io/v1 shape, series aggregation and core/v1 fallback, against a recording client."""

from __future__ import annotations

from typing import Any

from kubemark.client import NotFound
from kubemark.master.scheduler.events import EventRecorder


class RecordingClient:
    def __init__(self, events_v1: bool) -> None:
        self.events_v1 = events_v1
        self.calls: list[tuple[str, str, Any]] = []

    async def get(self, path: str, **_: Any) -> Any:
        if not self.events_v1:
            raise NotFound(404, "NotFound", "not found")
        return {"resources": [{"name": "events"}]}

    async def create(self, path: str, body: Any, **_: Any) -> Any:
        self.calls.append(("POST", path, body))
        return body

    async def patch(self, path: str, body: Any, patch_type: str = "strategic", **_: Any) -> Any:
        self.calls.append(("PATCH", path, body))
        return body


POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "7"}}


async def test_repeated_event_becomes_a_series() -> None:
    client = RecordingClient(events_v1=True)
    rec = EventRecorder(client, instance="default-scheduler-host", wall_clock=lambda: 1_700_000_000.5)  # type: ignore[arg-type]
    await rec.start()
    try:
        for _ in range(3):
            rec.record(POD, "Warning", "FailedScheduling", "Scheduling", "0/1 nodes are available: 1 Insufficient cpu.")
            assert await rec.drain(5)
    finally:
        await rec.stop()
    assert [c[0] for c in client.calls] == ["POST", "PATCH"]
    _, path, body = client.calls[0]
    assert path == "/apis/events.k8s.io/v1/namespaces/ns/events"
    assert body["apiVersion"] == "events.k8s.io/v1" and body["kind"] == "Event"
    assert body["reportingController"] == "default-scheduler"
    assert body["reportingInstance"] == "default-scheduler-host"
    assert body["regarding"] == {
        "kind": "Pod",
        "namespace": "ns",
        "name": "p",
        "uid": "u1",
        "apiVersion": "v1",
        "resourceVersion": "7",
    }
    assert body["eventTime"] == "2023-11-14T22:13:20.500000Z"
    assert body["metadata"]["name"].startswith("p.")
    _, patch_path, patch = client.calls[1]
    assert patch_path == f"{path}/{body['metadata']['name']}"
    assert patch["series"]["count"] == 2


async def test_core_v1_fallback_when_events_api_missing() -> None:
    client = RecordingClient(events_v1=False)
    rec = EventRecorder(client)  # type: ignore[arg-type]
    await rec.start()
    try:
        rec.record(POD, "Normal", "Scheduled", "Binding", "Successfully assigned ns/p to n1")
        assert await rec.drain(5)
    finally:
        await rec.stop()
    ((_, path, body),) = client.calls
    assert path == "/api/v1/namespaces/ns/events"
    assert body["involvedObject"]["name"] == "p" and body["source"] == {"component": "default-scheduler"}
    assert body["message"] == "Successfully assigned ns/p to n1" and body["count"] == 1
