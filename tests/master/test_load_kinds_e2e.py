"""clusterloader2's StatefulSet, DaemonSet and PriorityClass reach their desired state on hollow nodes: the whole
embedded control plane (API server, controllers, scheduler) in-process with three hollow kubelets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kubemark.client import RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.hollow.config import node_config_from_dict
from kubemark.hollow.kubelet import HollowKubelet
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

PODS = resource_path("", "v1", "pods", "default")
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
TEMPLATE_SPEC = {
    "terminationGracePeriodSeconds": 1,
    "containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": {"cpu": "10m", "memory": "10M"}}}
    ],
}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Poll an API-side condition until it holds (state on the server, not a sleep standing in for it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(0.05)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[RestClient]:
    async with ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0)) as plane:
        creds = load_kubeconfig(plane.kubeconfig_path)
        config = node_config_from_dict(FAST)
        clients = [RestClient(creds, qps=1000, burst=1000, max_retries=2) for _ in range(3)]
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


async def test_statefulset_and_daemonset_run_on_hollow_nodes(cluster: RestClient) -> None:
    admin = cluster
    await admin.create(
        resource_path("scheduling.k8s.io", "v1", "priorityclasses"),
        {"metadata": {"name": "daemonset-priorityclass-0"}, "value": 1000, "description": "clusterloader2's"},
    )
    ds = {
        "metadata": {"name": "daemonset-0", "labels": {"group": "load"}},
        "spec": {
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": 10}},
            "selector": {"matchLabels": {"name": "daemonset-0"}},
            "template": {
                "metadata": {"labels": {"group": "load", "name": "daemonset-0"}},
                "spec": {**TEMPLATE_SPEC, "priorityClassName": "daemonset-priorityclass-0"},
            },
        },
    }
    sts = {
        "metadata": {"name": "small-statefulset-0", "labels": {"group": "load"}},
        "spec": {
            "podManagementPolicy": "Parallel",
            "serviceName": "small-statefulset-0",
            "replicas": 4,
            "selector": {"matchLabels": {"group": "load", "name": "small-statefulset-0"}},
            "template": {
                "metadata": {"labels": {"group": "load", "name": "small-statefulset-0"}},
                "spec": TEMPLATE_SPEC,
            },
        },
    }
    await admin.create(resource_path("apps", "v1", "daemonsets", "default"), ds)
    await admin.create(resource_path("apps", "v1", "statefulsets", "default"), sts)
    ds_path = resource_path("apps", "v1", "daemonsets", "default", "daemonset-0")
    sts_path = resource_path("apps", "v1", "statefulsets", "default", "small-statefulset-0")

    async def ds_ready() -> dict[str, Any] | None:
        status = (await admin.get(ds_path)).get("status") or {}
        ok = (
            status.get("desiredNumberScheduled") == 3
            and status.get("numberReady") == 3
            and status.get("numberAvailable") == 3
        )
        return status if ok else None

    async def sts_ready() -> dict[str, Any] | None:
        status = (await admin.get(sts_path)).get("status") or {}
        return status if status.get("readyReplicas") == 4 and status.get("availableReplicas") == 4 else None

    await eventually(ds_ready)
    await eventually(sts_ready)
    daemon_pods = (await admin.list(PODS, label_selector="name=daemonset-0"))["items"]
    assert sorted(p["spec"]["nodeName"] for p in daemon_pods) == ["hollow-0", "hollow-1", "hollow-2"]
    assert all(p["status"]["phase"] == "Running" and p["spec"]["priority"] == 1000 for p in daemon_pods)
    stateful = (await admin.list(PODS, label_selector="name=small-statefulset-0"))["items"]
    assert sorted(p["metadata"]["name"] for p in stateful) == [f"small-statefulset-0-{i}" for i in range(4)]
    assert all(p["status"]["phase"] == "Running" for p in stateful)

    # Scale (what the load test's "scale and update" step does), then delete: the garbage collector removes pods.
    await admin.patch(sts_path, {"spec": {"replicas": 2}}, patch_type="merge")

    async def two_left() -> bool:
        pods = (await admin.list(PODS, label_selector="name=small-statefulset-0"))["items"]
        return sorted(p["metadata"]["name"] for p in pods) == ["small-statefulset-0-0", "small-statefulset-0-1"]

    await eventually(two_left)
    await admin.delete(sts_path)
    await admin.delete(ds_path)

    async def all_gone() -> bool:
        return not (await admin.list(PODS, label_selector="group=load"))["items"]

    await eventually(all_gone)
