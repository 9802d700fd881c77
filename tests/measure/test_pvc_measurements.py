"""WaitForBoundPVCs and WaitForAvailablePVs against the in-process API server: clusterloader2's conditions (that
many Bound / provisioned, every other match Pending), their selectors, and a timeout that fails the step with the
counts reached; end to end with the embedded master's binder and hollow provisioner binding the claims."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.kube import volumes
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.master.controllers.base import SharedInformers
from kubemark.master.controllers.persistentvolume import HollowProvisioner, PersistentVolumeController
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

PVCS = resource_path("", "v1", "persistentvolumeclaims", "default")
PVS = resource_path("", "v1", "persistentvolumes")


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def claim(name: str, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}, **spec},
    }


def volume(name: str, labels: dict[str, str], provisioner: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": labels}
    if provisioner:
        md["annotations"] = {volumes.ANN_DYNAMICALLY_PROVISIONED: provisioner}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": md,
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"},
            "storageClassName": "manual",
            "hostPath": {"path": f"/data/{name}"},
        },
    }


async def set_phase(admin: RestClient, path: str, phase: str) -> None:
    current = await admin.get(path)
    current["status"] = {"phase": phase}
    await admin.replace(path + "/status", current)


@pytest.fixture
async def mset(admin: RestClient, pod_watch: ObjectWatch) -> Any:
    ctx = MeasureContext(client=admin, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
    measurements = MeasurementSet(ctx)
    try:
        yield measurements
    finally:
        await measurements.finish()
        await ctx.close()


async def test_wait_for_bound_pvcs_wants_that_many_bound_and_the_rest_pending(
    admin: RestClient, mset: MeasurementSet
) -> None:
    for name in ("a", "b", "c"):
        await admin.create(PVCS, claim(name, {"group": "load"}, storageClassName=""))
    await admin.create(PVCS, claim("other", {"group": "other"}, storageClassName=""))
    await set_phase(admin, f"{PVCS}/a", "Bound")
    await set_phase(admin, f"{PVCS}/other", "Bound")
    wait = step("W", "WaitForBoundPVCs", desiredPVCCount=2, labelSelector="group = load", timeout="200ms")
    with pytest.raises(BarrierTimeout, match=r"W: timeout while waiting for 2 PVCs .* only 1 found bound \(3 created"):
        await mset.execute(wait)
    await set_phase(admin, f"{PVCS}/b", "Bound")
    await mset.execute(step("W", "WaitForBoundPVCs", desiredPVCCount=2, labelSelector="group = load"))
    # A Lost claim is neither Bound nor Pending: the wait does not return while it is there.
    await set_phase(admin, f"{PVCS}/c", "Lost")
    with pytest.raises(BarrierTimeout, match=r"only 2 found bound \(3 created, 0 pending, 1 lost\)"):
        await mset.execute(wait)
    # namespace narrows the selection: nothing of group=load in kube-system.
    await mset.execute(step("W", "WaitForBoundPVCs", desiredPVCCount=0, namespace="kube-system", timeout="1s"))


async def test_wait_for_bound_pvcs_zero_waits_for_the_bound_claims_to_go(
    admin: RestClient, mset: MeasurementSet
) -> None:
    """The load test's WaitForPVCsToBeDeleted: desiredPVCCount 0 after the claims are deleted."""
    for name in ("x", "y"):
        await admin.create(PVCS, claim(name, {"group": "load"}, storageClassName=""))
        await set_phase(admin, f"{PVCS}/{name}", "Bound")
    wait = step(
        "WaitForPVCsToBeDeleted", "WaitForBoundPVCs", desiredPVCCount=0, labelSelector="group = load", timeout="10s"
    )
    waiting = asyncio.create_task(mset.execute(wait))
    await asyncio.sleep(0)  # let it start waiting on the claims watch
    await admin.delete(f"{PVCS}/x")
    assert not waiting.done()
    await admin.delete(f"{PVCS}/y")
    await asyncio.wait_for(waiting, 10)
    assert mset.result.verdicts == [] and mset.result.warnings == []


async def test_wait_for_available_pvs_counts_provisioned_volumes_of_the_provisioner(
    admin: RestClient, mset: MeasurementSet
) -> None:
    await admin.create(PVS, volume("p1", {"tier": "t"}, provisioner="example.com/p"))
    await admin.create(PVS, volume("p2", {"tier": "t"}, provisioner="example.com/p"))
    await admin.create(PVS, volume("q1", {"tier": "t"}, provisioner="example.com/q"))
    await set_phase(admin, f"{PVS}/p1", "Available")
    await set_phase(admin, f"{PVS}/q1", "Available")
    wait = step("V", "WaitForAvailablePVs", desiredPVCount=2, provisioner="example.com/p", timeout="200ms")
    with pytest.raises(
        BarrierTimeout, match=r"V: timeout while waiting for 2 PVs with .* && provisioner=example.com/p .* only 1 found"
    ):
        await mset.execute(wait)
    await set_phase(admin, f"{PVS}/p2", "Bound")
    await mset.execute(step("V", "WaitForAvailablePVs", desiredPVCount=2, provisioner="example.com/p"))
    # Without a provisioner every selected volume counts: three provisioned, not two.
    with pytest.raises(BarrierTimeout, match=r"only 3 found provisioned \(3 created"):
        await mset.execute(step("V", "WaitForAvailablePVs", desiredPVCount=2, labelSelector="tier=t", timeout="200ms"))
    # A Released volume is not provisioned and not Pending: it keeps the wait from returning.
    await set_phase(admin, f"{PVS}/p2", "Released")
    with pytest.raises(BarrierTimeout, match=r"1 released"):
        await mset.execute(
            step("V", "WaitForAvailablePVs", desiredPVCount=1, provisioner="example.com/p", timeout="200ms")
        )


async def test_both_waits_end_to_end_with_the_binder_and_the_hollow_provisioner(
    admin: RestClient, mset: MeasurementSet
) -> None:
    informers = SharedInformers(admin)
    controllers = [PersistentVolumeController(admin, informers), HollowProvisioner(admin, informers)]
    informers.start()
    for c in controllers:
        c.start()
    try:
        for c in controllers:
            assert await c.wait_synced(10)
        for i in range(3):
            await admin.create(PVCS, claim(f"pv-small-statefulset-0-{i}", {"group": "load"}))  # the default class
        await mset.execute(
            step("B", "WaitForBoundPVCs", desiredPVCCount=3, labelSelector="group = load", timeout="20s")
        )
        await mset.execute(
            step("P", "WaitForAvailablePVs", desiredPVCount=3, provisioner=volumes.HOLLOW_PROVISIONER, timeout="20s")
        )
        bound = (await admin.list(PVCS, label_selector="group=load"))["items"]
        assert all(c["status"]["phase"] == "Bound" for c in bound)
        for c in bound:
            await admin.delete(f"{PVCS}/{c['metadata']['name']}")
        await mset.execute(
            step("D", "WaitForBoundPVCs", desiredPVCCount=0, labelSelector="group = load", timeout="20s")
        )
        # Reclaim policy Delete: the hollow provisioner deletes the released volumes.
        await mset.execute(
            step("G", "WaitForAvailablePVs", desiredPVCount=0, provisioner=volumes.HOLLOW_PROVISIONER, timeout="20s")
        )
        assert (await admin.list(PVS))["items"] == []
    finally:
        for c in controllers:
            await c.stop()
        await informers.stop()
