"""NodeStartupTracker: a node registered NotReady, then Ready, measured from the watch."""

from __future__ import annotations

from kubemark.client import RestClient, resource_path
from kubemark.kube.meta import now_rfc3339
from kubemark.measure.node_startup import NodeStartupTracker
from kubemark.measure.watch import ObjectWatch

NODES = resource_path("", "v1", "nodes")


def _node(name: str, ready: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": now_rfc3339()}]},
    }


async def test_node_created_then_ready(admin: RestClient) -> None:
    await admin.create(NODES, _node("old", "True"))
    tracker = NodeStartupTracker()
    watch = ObjectWatch(admin, NODES)
    watch.subscribe(tracker)
    await watch.start(10)
    try:
        await admin.create(NODES, _node("n1", "False"))
        assert await watch.wait_until(lambda: "n1" in tracker.not_ready(), 5)
        current = await admin.get(f"{NODES}/n1")
        current["status"]["conditions"][0]["status"] = "True"
        await admin.replace(f"{NODES}/n1/status", current)
        assert await watch.wait_until(lambda: "n1" in tracker.samples(), 5)
    finally:
        await watch.stop()
    samples = tracker.samples()
    assert set(samples) == {"n1", "old"} or set(samples) == {"n1"}
    assert 0 <= samples["n1"] < 2.0
    assert tracker.not_ready() == []
    assert tracker.ready_count == 2
