"""PersistentVolume binder and hollow provisioner against the embedded API server: default StorageClass and its
admission, dynamic provisioning and binding, static binding of the smallest match, user pre-binding, Retain and
Delete reclaim, Lost claims, and clusterloader2's StatefulSet with volumeClaimTemplates on hollow nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubemark.client import APIError, RestClient, load_kubeconfig, resource_path
from kubemark.hollow.config import node_config_from_dict
from kubemark.hollow.kubelet import HollowKubelet
from kubemark.kube import volumes
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig
from kubemark.master.controllers.manager import ALL_CONTROLLERS
from kubemark.master.controllers.persistentvolume import HollowProvisioner, PersistentVolumeController

PVCS = resource_path("", "v1", "persistentvolumeclaims", "default")
PVS = resource_path("", "v1", "persistentvolumes")
CLASSES = resource_path("storage.k8s.io", "v1", "storageclasses")


def claim(name: str, size: str = "100Mi", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": {"group": "load"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec},
    }


def volume(name: str, size: str, *, cls: str = "manual", policy: str = "Retain", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": size},
            "storageClassName": cls,
            "persistentVolumeReclaimPolicy": policy,
            "hostPath": {"path": f"/data/{name}"},
            **spec,
        },
    }


def _pvc(name: str) -> str:
    return resource_path("", "v1", "persistentvolumeclaims", "default", name)


def _pv(name: str) -> str:
    return resource_path("", "v1", "persistentvolumes", None, name)


async def _bound_claim(cluster, name: str) -> dict[str, Any] | None:
    got = await cluster.get("", "v1", "persistentvolumeclaims", "default", name)
    return got if got and (got.get("status") or {}).get("phase") == "Bound" else None


async def _volume_phase(cluster, name: str, phase: str) -> dict[str, Any] | None:
    got = await cluster.get("", "v1", "persistentvolumes", None, name)
    return got if got and (got.get("status") or {}).get("phase") == phase else None


@pytest.fixture
async def binder(cluster) -> Any:
    """The binder and the hollow provisioner, as the controller manager runs them by default."""
    assert {"persistentvolume-binder", "hollow-provisioner"} <= set(ALL_CONTROLLERS)
    await cluster.run(
        PersistentVolumeController(cluster.client, cluster.informers, resync_period=0.2),
        HollowProvisioner(cluster.client, cluster.informers),
    )
    return cluster


async def test_the_master_installs_a_default_class_and_claims_without_a_class_get_it(cluster) -> None:
    (sc,) = (await cluster.client.list(CLASSES))["items"]
    assert sc["metadata"]["name"] == "standard"
    assert sc["metadata"]["annotations"][volumes.ANN_IS_DEFAULT_CLASS] == "true"
    assert (sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"]) == (
        volumes.HOLLOW_PROVISIONER,
        "Delete",
        "Immediate",
    )
    defaulted = await cluster.client.create(PVCS, claim("no-class"))
    assert defaulted["spec"]["storageClassName"] == "standard"
    assert defaulted["status"]["phase"] == "Pending"
    explicit = await cluster.client.create(PVCS, claim("empty-class", storageClassName=""))
    assert explicit["spec"]["storageClassName"] == ""  # "" asks for no class: not defaulted
    beta = claim("beta")
    beta["metadata"]["annotations"] = {volumes.ANN_BETA_STORAGE_CLASS: "gold"}
    assert "storageClassName" not in (await cluster.client.create(PVCS, beta))["spec"]


async def test_storage_class_defaults_validation_and_immutable_fields(cluster) -> None:
    created = await cluster.client.create(
        CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "fast"},
            "provisioner": "example.com/fast",
            "parameters": {"type": "ssd"},
        },
    )
    assert (created["reclaimPolicy"], created["volumeBindingMode"]) == ("Delete", "Immediate")
    with pytest.raises(APIError) as err:
        await cluster.client.create(CLASSES, {"metadata": {"name": "bad"}, "reclaimPolicy": "Recycle"})
    assert err.value.status == 422
    text = str(err.value)
    assert "provisioner: Required value" in text and "reclaimPolicy: Unsupported value" in text
    created["parameters"] = {"type": "hdd"}
    with pytest.raises(APIError) as err:
        await cluster.client.replace(resource_path("storage.k8s.io", "v1", "storageclasses", None, "fast"), created)
    assert err.value.status == 422 and "parameters: Invalid value" in str(err.value)


async def test_a_claim_of_the_default_class_is_provisioned_and_bound(binder) -> None:
    cluster = binder
    created = await cluster.client.create(PVCS, claim("data", "100Mi"))
    bound = await cluster.wait_until(lambda: _bound_claim(cluster, "data"), what="claim Bound")
    pv_name = f"pvc-{created['metadata']['uid']}"
    annotations = bound["metadata"]["annotations"]
    assert annotations[volumes.ANN_BIND_COMPLETED] == "yes"
    assert annotations[volumes.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert annotations[volumes.ANN_STORAGE_PROVISIONER] == volumes.HOLLOW_PROVISIONER
    assert annotations[volumes.ANN_BETA_STORAGE_PROVISIONER] == volumes.HOLLOW_PROVISIONER
    assert bound["spec"]["volumeName"] == pv_name
    assert bound["status"]["capacity"] == {"storage": "100Mi"}
    assert bound["status"]["accessModes"] == ["ReadWriteOnce"]
    pv = await cluster.wait_until(lambda: _volume_phase(cluster, pv_name, "Bound"), what="volume Bound")
    assert pv["metadata"]["annotations"] == {volumes.ANN_DYNAMICALLY_PROVISIONED: volumes.HOLLOW_PROVISIONER}
    spec = pv["spec"]
    assert spec["capacity"] == {"storage": "100Mi"} and spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["storageClassName"] == "standard" and spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["csi"]["driver"] == volumes.HOLLOW_PROVISIONER and spec["volumeMode"] == "Filesystem"
    ref = spec["claimRef"]
    assert (ref["kind"], ref["namespace"], ref["name"], ref["uid"]) == (
        "PersistentVolumeClaim",
        "default",
        "data",
        created["metadata"]["uid"],
    )
    # Delete reclaim: the claim goes, the volume is Released and its provisioner deletes it.
    await cluster.client.delete(_pvc("data"))

    async def volume_gone() -> bool:
        return await cluster.get("", "v1", "persistentvolumes", None, pv_name) is None

    await cluster.wait_until(volume_gone, what="provisioned volume deleted")


async def test_static_binding_takes_the_smallest_match_and_retain_keeps_the_released_volume(binder) -> None:
    cluster = binder
    await cluster.client.create(PVS, volume("big", "5Gi"))
    await cluster.client.create(PVS, volume("small", "2Gi"))
    await cluster.client.create(PVS, volume("too-small", "512Mi"))
    await cluster.client.create(PVS, volume("other-class", "1Gi", cls="gold"))
    for name in ("big", "small", "too-small", "other-class"):
        await cluster.wait_until(lambda name=name: _volume_phase(cluster, name, "Available"), what=f"{name} Available")
    await cluster.client.create(PVCS, claim("manual", "1Gi", storageClassName="manual"))
    bound = await cluster.wait_until(lambda: _bound_claim(cluster, "manual"), what="claim Bound")
    assert bound["spec"]["volumeName"] == "small"
    assert bound["status"]["capacity"] == {"storage": "2Gi"}  # the volume's size, not the request
    assert volumes.ANN_STORAGE_PROVISIONER not in bound["metadata"]["annotations"]
    small = await cluster.wait_until(lambda: _volume_phase(cluster, "small", "Bound"), what="small Bound")
    assert small["metadata"]["annotations"][volumes.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert small["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    for name in ("big", "too-small", "other-class"):
        assert (await cluster.client.get(_pv(name)))["status"]["phase"] == "Available"
    assert sorted(p["metadata"]["name"] for p in (await cluster.client.list(PVS))["items"]) == [
        "big",
        "other-class",
        "small",
        "too-small",
    ]  # nothing provisioned: the class `manual` has no StorageClass

    await cluster.client.delete(_pvc("manual"))
    released = await cluster.wait_until(lambda: _volume_phase(cluster, "small", "Released"), what="small Released")
    assert released["spec"]["claimRef"]["name"] == "manual"  # Retain: kept, still naming its old claim
    # A new claim of the same name does not get the released volume.
    await cluster.client.create(PVCS, claim("manual", "1Gi", storageClassName="manual"))
    again = await cluster.wait_until(lambda: _bound_claim(cluster, "manual"), what="new claim Bound")
    assert again["spec"]["volumeName"] == "big"
    assert (await cluster.client.get(_pv("small")))["status"]["phase"] == "Released"


async def test_delete_policy_without_an_external_deleter_fails_the_released_volume(binder) -> None:
    """A static hostPath volume with reclaim policy Delete: no in-tree deleter plugin runs here, so once its claim
    goes the volume is Failed (upstream: VolumeFailedDelete), not silently kept Released or deleted."""
    cluster = binder
    await cluster.client.create(PVS, volume("scratch", "1Gi", policy="Delete"))
    await cluster.client.create(PVCS, claim("scratch-claim", "1Gi", storageClassName="manual"))
    await cluster.wait_until(lambda: _bound_claim(cluster, "scratch-claim"), what="claim Bound")
    await cluster.client.delete(_pvc("scratch-claim"))
    failed = await cluster.wait_until(lambda: _volume_phase(cluster, "scratch", "Failed"), what="volume Failed")
    assert "no deletable volume plugin matched" in failed["status"]["message"]


async def test_a_claim_naming_its_volume_binds_to_it_and_is_lost_with_it(binder) -> None:
    cluster = binder
    await cluster.client.create(PVS, volume("mine", "1Gi"))
    await cluster.client.create(PVCS, claim("wants-mine", "1Gi", storageClassName="manual", volumeName="mine"))
    bound = await cluster.wait_until(lambda: _bound_claim(cluster, "wants-mine"), what="claim Bound")
    annotations = bound["metadata"]["annotations"]
    assert annotations[volumes.ANN_BIND_COMPLETED] == "yes"
    assert volumes.ANN_BOUND_BY_CONTROLLER not in annotations  # the user chose the volume
    pv = await cluster.wait_until(lambda: _volume_phase(cluster, "mine", "Bound"), what="volume Bound")
    assert pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]

    await cluster.client.delete(_pv("mine"))

    async def lost() -> dict[str, Any] | None:
        got = await cluster.client.get(_pvc("wants-mine"))
        return got if got["status"]["phase"] == "Lost" else None

    gone = await cluster.wait_until(lost, what="claim Lost")
    assert "capacity" not in gone["status"] and "accessModes" not in gone["status"]


async def test_a_volume_pre_bound_to_a_claim_waits_available_and_binds_when_it_comes(binder) -> None:
    cluster = binder
    ref = {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "later"}
    await cluster.client.create(PVS, volume("reserved", "3Gi", claimRef=ref))
    await cluster.wait_until(lambda: _volume_phase(cluster, "reserved", "Available"), what="reserved Available")
    await cluster.client.create(PVCS, claim("later", "1Gi", storageClassName="manual"))
    bound = await cluster.wait_until(lambda: _bound_claim(cluster, "later"), what="claim Bound")
    assert bound["spec"]["volumeName"] == "reserved"
    pv = await cluster.wait_until(lambda: _volume_phase(cluster, "reserved", "Bound"), what="reserved Bound")
    assert pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    assert volumes.ANN_BOUND_BY_CONTROLLER not in (pv["metadata"].get("annotations") or {})


async def test_a_claim_created_before_any_default_class_gets_the_later_one(binder) -> None:
    cluster = binder
    await cluster.client.delete(resource_path("storage.k8s.io", "v1", "storageclasses", None, "standard"))

    async def no_class() -> bool:
        return not (await cluster.client.list(CLASSES))["items"]

    await cluster.wait_until(no_class, what="no StorageClass")
    early = await cluster.client.create(PVCS, claim("early"))
    assert "storageClassName" not in early["spec"]
    late_default = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "late", "annotations": {volumes.ANN_IS_DEFAULT_CLASS: "true"}},
        "provisioner": volumes.HOLLOW_PROVISIONER,
    }
    await cluster.client.create(CLASSES, late_default)
    bound = await cluster.wait_until(lambda: _bound_claim(cluster, "early"), what="claim Bound via the late default")
    assert bound["spec"]["storageClassName"] == "late"


async def test_wait_for_first_consumer_claims_are_not_provisioned_without_a_selected_node(cluster) -> None:
    """WaitForFirstConsumer is not provisioned here (the embedded scheduler sets no selected-node): the claim
    stays Pending. One binder worker syncs claims in its queue's order (the informer lists them by name), so the
    Immediate claim queued after it being bound means the WaitForFirstConsumer one was synced before."""
    await cluster.client.create(
        CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "late-binding"},
            "provisioner": volumes.HOLLOW_PROVISIONER,
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    await cluster.client.create(PVCS, claim("a-wffc", storageClassName="late-binding"))
    await cluster.client.create(PVCS, claim("b-immediate"))
    await cluster.run(
        PersistentVolumeController(cluster.client, cluster.informers, workers=1, resync_period=0),
        HollowProvisioner(cluster.client, cluster.informers),
    )
    await cluster.wait_until(lambda: _bound_claim(cluster, "b-immediate"), what="immediate claim Bound")
    wffc = await cluster.client.get(_pvc("a-wffc"))
    assert wffc["status"]["phase"] == "Pending"
    assert volumes.ANN_STORAGE_PROVISIONER not in (wffc["metadata"].get("annotations") or {})
    assert len((await cluster.client.list(PVS))["items"]) == 1


# --- clusterloader2's StatefulSet with volumeClaimTemplates on hollow nodes ----------------------------------

FAST = {
    "heartbeat": {
        "leaseRenewInterval": 0.2,
        "statusUpdateFrequency": 0.2,
        "statusReportFrequency": 60,
        "npdPeriod": 60,
        "jitter": 0.0,
    },
    "proxy": {"minSyncPeriod": 0.05, "syncPeriod": 60},
}


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[RestClient]:
    """The whole embedded control plane (all default controllers, the scheduler) and two hollow kubelets."""
    async with ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0)) as control_plane:
        creds = load_kubeconfig(control_plane.kubeconfig_path)
        config = node_config_from_dict(FAST)
        clients = [RestClient(creds, qps=1000, burst=1000, max_retries=2) for _ in range(2)]
        kubelets = [HollowKubelet(f"hollow-{i}", c, config, index=i) for i, c in enumerate(clients)]
        try:
            await asyncio.gather(*(k.start() for k in kubelets))
            await asyncio.gather(*(asyncio.wait_for(k.ready.wait(), 10) for k in kubelets))
            async with RestClient(creds, qps=0) as admin:
                yield admin
        finally:
            for kubelet in kubelets:
                await kubelet.stop()
            for c in clients:
                await c.close()


async def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(0.05)


async def test_statefulset_claims_are_bound_and_its_pods_run_on_hollow_nodes(plane: RestClient) -> None:
    admin = plane
    name = "small-statefulset-0"
    sts = {  # clusterloader2's testing/load/statefulset.yaml with CL2_ENABLE_PVS (its default)
        "metadata": {"name": name, "labels": {"group": "load"}},
        "spec": {
            "podManagementPolicy": "Parallel",
            "serviceName": name,
            "replicas": 3,
            "selector": {"matchLabels": {"group": "load", "name": name}},
            "template": {
                "metadata": {"labels": {"group": "load", "name": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": name,
                            "image": "registry.k8s.io/pause:3.9",
                            "resources": {"requests": {"cpu": "10m", "memory": "10M"}},
                            "volumeMounts": [{"name": "pv", "mountPath": "/var/pv"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "pv"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}},
                }
            ],
        },
    }
    await admin.create(resource_path("apps", "v1", "statefulsets", "default"), sts)
    claims = [f"pv-{name}-{i}" for i in range(3)]

    async def all_bound() -> list[dict[str, Any]] | None:
        items = (await admin.list(PVCS, label_selector=f"name={name}"))["items"]
        ok = sorted(c["metadata"]["name"] for c in items) == claims and all(
            c["status"].get("phase") == "Bound" for c in items
        )
        return items if ok else None

    bound = await _until(all_bound)
    assert all(c["spec"]["storageClassName"] == "standard" for c in bound)

    async def running() -> list[dict[str, Any]] | None:
        pods = (await admin.list(resource_path("", "v1", "pods", "default"), label_selector=f"name={name}"))["items"]
        ok = len(pods) == 3 and all(p["status"].get("phase") == "Running" for p in pods)
        return pods if ok else None

    pods = await _until(running)
    assert {p["spec"]["nodeName"] for p in pods} <= {"hollow-0", "hollow-1"}
    for pod in pods:
        (vol,) = [v for v in pod["spec"]["volumes"] if v["name"] == "pv"]
        assert vol["persistentVolumeClaim"]["claimName"] == f"pv-{pod['metadata']['name']}"
    pvs = (await admin.list(PVS))["items"]
    assert sorted(p["spec"]["claimRef"]["name"] for p in pvs) == claims
    assert all(p["status"]["phase"] == "Bound" for p in pvs)

    # The load test deletes the StatefulSet, then its claims by label: the Delete policy removes the volumes.
    await admin.delete(resource_path("apps", "v1", "statefulsets", "default", name))
    for claim_name in claims:
        await admin.delete(_pvc(claim_name))

    async def volumes_gone() -> bool:
        return not (await admin.list(PVS))["items"]

    await _until(volumes_gone)


def test_storage_classes_print_as_kubectl_get_shows_them() -> None:
    from kubemark.kube.resources import find
    from kubemark.master.apiserver.kinds.storage import default_storage_class_object
    from kubemark.master.apiserver.tables import columns, table_row

    rt = find("storage.k8s.io", "v1", "storageclasses")
    assert rt is not None and not rt.namespaced and rt.short_names == ("sc",)
    assert [c["name"] for c in columns(rt)] == [
        "Name",
        "Provisioner",
        "ReclaimPolicy",
        "VolumeBindingMode",
        "AllowVolumeExpansion",
        "Age",
    ]
    row = table_row(rt, default_storage_class_object(), "None", now=0.0)
    assert row["cells"][:5] == ["standard", volumes.HOLLOW_PROVISIONER, "Delete", "Immediate", False]
