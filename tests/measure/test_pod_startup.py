"""PodStartupTracker against the in-process API server: a pod driven through create -> bind -> Running."""

from __future__ import annotations

from kubemark.client import RestClient, resource_path
from kubemark.kube.meta import now_rfc3339
from kubemark.measure.percentiles import pod_startup_series
from kubemark.measure.pod_startup import PodStartupTracker
from kubemark.measure.watch import ObjectWatch

from .conftest import bind, pod, running_status, set_status

PODS = resource_path("", "v1", "pods", "default")


async def test_transitions_of_a_pod_driven_through_its_phases(admin: RestClient, pod_watch: ObjectWatch) -> None:
    tracker = PodStartupTracker(label_selector="group=latency")
    pod_watch.subscribe(tracker)
    await admin.create(PODS, pod("p1", {"group": "latency"}))
    await admin.create(PODS, pod("other", {"group": "saturation"}))
    assert await pod_watch.wait_until(lambda: len(tracker) == 1, 5)
    await bind(admin, "p1", "node-a")
    assert await pod_watch.wait_until(lambda: tracker.counts()["scheduled"] == 1, 5)
    await set_status(admin, "p1", running_status(now_rfc3339()))
    assert await pod_watch.wait_until(lambda: tracker.counts()["running"] == 1, 5)

    [t] = tracker.timelines()
    assert t.name == "default/p1"
    assert t.created is not None and t.scheduled is not None and t.running is not None and t.watched is not None
    assert t.created <= t.scheduled <= t.running <= t.watched
    series = pod_startup_series([t])
    assert all(len(s.samples) == 1 and s.samples[0] >= 0 for s in series.values())
    # The whole journey took well under the 1 s truncation of the stamps: the watch times are what we used.
    assert series["pod_startup"].samples[0] < 1.0
    assert tracker.timelines(stateful=True) == []


async def test_preexisting_pods_are_not_measured_and_stateful_pods_are_split(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    await admin.create(PODS, pod("old"))
    assert await pod_watch.wait_until(lambda: len(pod_watch.list()) == 1, 5)
    tracker = PodStartupTracker(started=10_000_000_000.0)  # "now" far in the future: every pod is old
    pod_watch.subscribe(tracker)
    await set_status(admin, "old", running_status(now_rfc3339()))
    fresh = PodStartupTracker()
    pod_watch.subscribe(fresh)
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    await admin.create(PODS, pod("db", volumes=volumes))
    assert await pod_watch.wait_until(lambda: len(fresh) == 1, 5)
    assert len(tracker) == 0
    assert [t.name for t in fresh.timelines(stateful=True)] == ["default/db"]
    assert fresh.timelines(stateful=False) == []
