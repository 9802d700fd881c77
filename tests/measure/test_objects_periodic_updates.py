"""ObjectsPeriodicUpdates against the in-process API server: clusterloader2's five objects, created once, then
relabelled at each tick; the ticks are driven by the test (the 20 s sleep is replaced by a gate)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.methods import objects_periodic_updates
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

NAMES = {
    "pods": "pod-updated-periodically",
    "services": "service-updated-periodically",
    "secrets": "secret-updated-periodically",
    "configmaps": "configmap-updated-periodically",
    "endpoints": "endpoints-updated-periodically",
}
CREATED = list(NAMES)


class Ticks:
    """The measurement's sleep: each updater's n-th sleep returns once the test has let n ticks pass."""

    def __init__(self) -> None:
        self.calls: dict[asyncio.Task[Any] | None, int] = {}
        self.rounds = 0
        self.cond = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        assert seconds == 20.0
        task = asyncio.current_task()
        n = self.calls[task] = self.calls.get(task, 0) + 1
        async with self.cond:
            self.cond.notify_all()
            await self.cond.wait_for(lambda: self.rounds >= n)

    async def wait_sleeping(self, total: int) -> None:
        async with self.cond:
            await asyncio.wait_for(self.cond.wait_for(lambda: sum(self.calls.values()) >= total), 10)

    async def tick(self) -> None:
        async with self.cond:
            self.rounds += 1
            self.cond.notify_all()


def step(identifier: str, method: str, **params: Any) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


async def _get(admin: RestClient, resource: str) -> dict[str, Any]:
    result: dict[str, Any] = await admin.get(resource_path("", "v1", resource, "default", NAMES[resource]))
    return result


async def test_creates_the_five_objects_once_and_relabels_them_each_tick(
    admin: RestClient, pod_watch: ObjectWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = Ticks()
    monkeypatch.setattr(objects_periodic_updates, "sleep", ticks)
    monkeypatch.setattr(objects_periodic_updates, "now", lambda: 1_700_000_000.5)
    assert len(objects_periodic_updates.periodic_objects()) == 5
    ctx = MeasureContext(client=admin, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
    mset = MeasurementSet(ctx)
    await mset.execute(step("Updates", "ObjectsPeriodicUpdates", action="start"))
    await ticks.wait_sleeping(5)  # every object created, each updater waiting for its first tick
    for resource in CREATED:
        assert "labels" not in (await _get(admin, resource))["metadata"]
    secret = await _get(admin, "secrets")
    assert secret["data"] == {"username": "ZFhObGNnPT0=", "password": "Y1hkbGNuUjU="}  # Go's []byte, base64
    pod = await _get(admin, "pods")
    assert pod["spec"]["containers"][0]["image"] == "k8s.gcr.io/pause:3.1"

    await ticks.tick()
    await ticks.wait_sleeping(10)  # each patched once, waiting for the second tick
    for resource in CREATED:
        assert (await _get(admin, resource))["metadata"]["labels"] == {"time_label": "1700000000"}

    # Later calls of the same Identifier do not start a second set of updaters.
    await mset.execute(step("Updates", "ObjectsPeriodicUpdates", action="start"))
    await mset.execute(step("Updates", "ObjectsPeriodicUpdates", action="gather"))
    assert len(ticks.calls) == 5 and mset.result.summaries == [] and mset.result.verdicts == []
    tasks = list(mset.running["Updates"]._tasks)  # type: ignore[attr-defined]
    await mset.finish()
    assert all(task.done() for task in tasks)


async def test_the_endpoints_object_is_accepted_by_the_embedded_master(admin: RestClient) -> None:
    [(resource, name, obj)] = [o for o in objects_periodic_updates.periodic_objects() if o[0] == "endpoints"]
    await admin.create(resource_path("", "v1", resource, "default"), {**obj, "metadata": {"name": name}})
