"""VolumeBinding in the embedded scheduler: its pure decisions (PreFilter messages, per-node Filter, the bound
check), then against the in-process API server with the PV binder and the hollow provisioner: a pod waits for
its missing or unbound Immediate claim, a WaitForFirstConsumer claim is provisioned for the node the pod gets,
and a static local volume takes the pod to the node its affinity names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.kube import volumes
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.controllers.base import SharedInformers
from kubemark.master.controllers.persistentvolume import HollowProvisioner, PersistentVolumeController
from kubemark.master.scheduler import Scheduler
from kubemark.master.scheduler.cache import NodeInfo
from kubemark.master.scheduler.volume_binding import (
    REASON_BIND_CONFLICT,
    REASON_NODE_CONFLICT,
    REASON_PV_NOT_EXIST,
    REASON_UNBOUND_IMMEDIATE,
    NodeVolumes,
    PodClaims,
    VolumeUnresolvable,
    claims_bound,
    node_volumes,
    pod_claims,
)

from .cluster import PodWatch, create_node, make_client, node_obj, pod_obj, pods_path

Obj = dict[str, Any]
CLAIMS = resource_path("", "v1", "persistentvolumeclaims", "default")
PVS = resource_path("", "v1", "persistentvolumes")
CLASSES = resource_path("storage.k8s.io", "v1", "storageclasses")


def claim(name: str, cls: str, **extra: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default", **extra.pop("metadata", {})},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": cls,
            **extra,
        },
    }


def storage_class(name: str, provisioner: str, mode: str, **extra: Any) -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": mode,
        **extra,
    }


def local_volume(name: str, node: str, cls: str = "local") -> Obj:
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "2Gi"},
            "storageClassName": cls,
            "persistentVolumeReclaimPolicy": "Retain",
            "local": {"path": f"/mnt/{name}"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}},
        },
        "status": {"phase": "Available"},
    }


def pod_with(name: str, *claims: str) -> Obj:
    pod = pod_obj(name)
    pod["metadata"]["namespace"] = "default"
    pod["spec"]["volumes"] = [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]
    return pod


def node_info(name: str) -> NodeInfo:
    info = NodeInfo(name)
    info.set_node(node_obj(name))
    return info


# -- pure decisions ---------------------------------------------------------------------------------------------

CLASS_TABLE = {
    "fast": storage_class("fast", volumes.HOLLOW_PROVISIONER, "Immediate"),
    "late": storage_class("late", volumes.HOLLOW_PROVISIONER, "WaitForFirstConsumer"),
    "local": storage_class("local", "kubernetes.io/no-provisioner", "WaitForFirstConsumer"),
    "zoned": storage_class(
        "zoned",
        volumes.HOLLOW_PROVISIONER,
        "WaitForFirstConsumer",
        allowedTopologies=[{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["node-a"]}]}],
    ),
}


def bound(c: Obj, volume: str) -> Obj:
    c = {**c, "spec": {**c["spec"], "volumeName": volume}}
    c["metadata"] = {**c["metadata"], "annotations": {volumes.ANN_BIND_COMPLETED: "yes"}}
    return c


def test_prefilter_messages_are_upstreams() -> None:
    claims: dict[str, Obj] = {}

    def decide(pod: Obj) -> PodClaims | None:
        return pod_claims(pod, claims.get, CLASS_TABLE.get)

    assert decide(pod_obj("no-volumes")) is None
    with pytest.raises(VolumeUnresolvable, match=r'^persistentvolumeclaim "data" not found$'):
        decide(pod_with("p", "data"))
    claims["default/data"] = claim("data", "fast")
    with pytest.raises(VolumeUnresolvable, match=f"^{REASON_UNBOUND_IMMEDIATE}$"):
        decide(pod_with("p", "data"))
    claims["default/data"] = claim("data", "fast", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"})
    with pytest.raises(VolumeUnresolvable, match=r'^persistentvolumeclaim "data" is being deleted$'):
        decide(pod_with("p", "data"))
    ephemeral = pod_obj("e")
    ephemeral["metadata"]["namespace"] = "default"
    ephemeral["spec"]["volumes"] = [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]
    with pytest.raises(
        VolumeUnresolvable, match='ephemeral volume controller to create the persistentvolumeclaim "e-scratch"'
    ):
        decide(ephemeral)
    claims["default/data"] = bound(claim("data", "fast"), "pv-1")
    claims["default/later"] = claim("later", "late")
    got = decide(pod_with("p", "data", "later"))
    assert got is not None and [c["metadata"]["name"] for c in got.bound] == ["data"]
    assert [c["metadata"]["name"] for c in got.delayed] == ["later"]


def test_filter_static_before_provisioning_and_node_reasons() -> None:
    a, b = node_info("node-a"), node_info("node-b")
    pvs = {"local-b": local_volume("local-b", "node-b")}

    def filt(claims: PodClaims, node: NodeInfo) -> NodeVolumes | list[str]:
        return node_volumes(claims, node, pvs.get, lambda: list(pvs.values()), CLASS_TABLE.get)

    local = PodClaims(delayed=[claim("c", "local")])
    assert filt(local, a) == [REASON_BIND_CONFLICT]  # no volume there, and the class cannot provision
    on_b = filt(local, b)
    assert isinstance(on_b, NodeVolumes) and [v["metadata"]["name"] for _, v in on_b.static] == ["local-b"]
    # Two claims cannot share the one volume.
    assert filt(PodClaims(delayed=[claim("c1", "local"), claim("c2", "local")]), b) == [REASON_BIND_CONFLICT]
    late = filt(PodClaims(delayed=[claim("d", "late")]), a)
    assert (
        isinstance(late, NodeVolumes) and not late.static and [c["metadata"]["name"] for c in late.provision] == ["d"]
    )
    assert filt(PodClaims(delayed=[claim("z", "zoned")]), b) == [REASON_NODE_CONFLICT]  # allowedTopologies
    assert filt(PodClaims(bound=[bound(claim("x", "local"), "local-b")]), a) == [REASON_NODE_CONFLICT]
    assert filt(PodClaims(bound=[bound(claim("x", "local"), "gone")]), a) == [REASON_PV_NOT_EXIST]


def test_claims_bound_waits_for_the_binder_and_fails_when_the_selected_node_is_reset() -> None:
    pending = claim("d", "late", metadata={"annotations": {volumes.ANN_SELECTED_NODE: "node-a"}})
    plan = NodeVolumes(provision=[pending])
    claims = {"default/d": pending}
    pvs: dict[str, Obj] = {}
    assert not claims_bound(plan, claims.get, pvs.get)
    done = bound(pending, "pvc-1")
    done["metadata"]["annotations"][volumes.ANN_SELECTED_NODE] = "node-a"
    claims["default/d"] = done
    assert not claims_bound(plan, claims.get, pvs.get)  # the volume is not in the cache yet
    pvs["pvc-1"] = local_volume("pvc-1", "node-a")
    assert claims_bound(plan, claims.get, pvs.get)
    claims["default/d"] = claim("d", "late")
    with pytest.raises(RuntimeError, match="selectedNode annotation reset"):
        claims_bound(plan, claims.get, pvs.get)


# -- against the API server -------------------------------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[RestClient]:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    client = make_client(server.url)
    try:
        for name in ("node-a", "node-b"):
            await create_node(client, node_obj(name))
        for cls in CLASS_TABLE.values():
            await client.create(CLASSES, cls)
        yield client
    finally:
        await client.close()
        await server.stop()


class Binder:
    """The PV controller and the hollow provisioner, started on demand."""

    def __init__(self, client: RestClient) -> None:
        self.informers = SharedInformers(client)
        self.controllers = [
            PersistentVolumeController(client, self.informers, resync_period=0.2),
            HollowProvisioner(client, self.informers),
        ]

    async def __aenter__(self) -> Binder:
        self.informers.start()
        for c in self.controllers:
            c.start()
        for c in self.controllers:
            assert await c.wait_synced(10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.controllers:
            await c.stop()
        await self.informers.stop()


def _scheduled_message(pod: Obj | None) -> str | None:
    for c in ((pod or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return str(c.get("message"))
    return None


async def _claim(client: RestClient, name: str) -> Obj:
    return await client.get(resource_path("", "v1", "persistentvolumeclaims", "default", name))


@pytest.fixture
async def scheduler(api: RestClient) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(api, initial_backoff=0.05, max_backoff=0.2, post_events=False)
    await scheduler.start()
    try:
        assert await scheduler.wait_synced(10)
        yield scheduler
    finally:
        await scheduler.stop()


@pytest.mark.timeout(60)
async def test_pod_waits_for_its_claim_to_exist_and_be_bound(api: RestClient, scheduler: Scheduler) -> None:
    async with PodWatch(api) as watch:
        await api.create(pods_path(), pod_with("app", "data"))
        await watch.wait(
            lambda: (
                _scheduled_message(watch.get("app"))
                == '0/2 nodes are available: persistentvolumeclaim "data" not found.'
            ),
            what="PodScheduled=False naming the missing claim",
        )
        await api.create(CLAIMS, claim("data", "fast"))
        await watch.wait(
            lambda: _scheduled_message(watch.get("app")) == f"0/2 nodes are available: {REASON_UNBOUND_IMMEDIATE}.",
            what="PodScheduled=False: unbound immediate claim",
        )
        assert not watch.get("app")["spec"].get("nodeName")
        async with Binder(api):
            pod = await watch.wait(lambda: (p := watch.get("app")) and p["spec"].get("nodeName") and p, what="bound")
            assert (await _claim(api, "data"))["status"]["phase"] == "Bound"
    assert pod["spec"]["nodeName"] in ("node-a", "node-b")


@pytest.mark.timeout(60)
async def test_wait_for_first_consumer_is_provisioned_on_the_pods_node(
    api: RestClient, scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    async with Binder(api), PodWatch(api) as watch:
        await api.create(CLAIMS, claim("late-data", "late"))
        await api.create(pods_path(), pod_with("consumer", "late-data"))
        pod = await watch.wait(lambda: (p := watch.get("consumer")) and p["spec"].get("nodeName") and p, what="bound")
        got = await _claim(api, "late-data")
    # Bound on the first try: the claim cache lagging behind our own annotation is not a "reset" (assume cache).
    assert not [r for r in caplog.records if "PreBind" in r.getMessage()]
    assert got["metadata"]["annotations"][volumes.ANN_SELECTED_NODE] == pod["spec"]["nodeName"]
    assert got["status"]["phase"] == "Bound" and volumes.claim_fully_bound(got)
    volume = await api.get(resource_path("", "v1", "persistentvolumes", None, got["spec"]["volumeName"]))
    assert volume["spec"]["claimRef"]["name"] == "late-data"


@pytest.mark.timeout(60)
async def test_static_local_volume_takes_the_pod_to_its_node(api: RestClient, scheduler: Scheduler) -> None:
    await api.create(PVS, local_volume("local-b", "node-b"))
    async with Binder(api), PodWatch(api) as watch:
        await api.create(CLAIMS, claim("local-1", "local"))
        await api.create(CLAIMS, claim("local-2", "local"))
        await api.create(pods_path(), pod_with("first", "local-1"))
        pod = await watch.wait(lambda: (p := watch.get("first")) and p["spec"].get("nodeName") and p, what="bound")
        assert pod["spec"]["nodeName"] == "node-b"
        got = await _claim(api, "local-1")
        assert got["spec"]["volumeName"] == "local-b" and volumes.claim_fully_bound(got)
        # The only local volume is taken: the next consumer fits nowhere, with upstream's reason.
        await api.create(pods_path(), pod_with("second", "local-2"))
        await watch.wait(
            lambda: _scheduled_message(watch.get("second")) == f"0/2 nodes are available: 2 {REASON_BIND_CONFLICT}.",
            what="PodScheduled=False: no volume to bind",
        )
        # A new local volume on node-a lets it schedule there.
        await api.create(PVS, local_volume("local-a", "node-a"))
        pod = await watch.wait(lambda: (p := watch.get("second")) and p["spec"].get("nodeName") and p, what="bound")
    assert pod["spec"]["nodeName"] == "node-a"
