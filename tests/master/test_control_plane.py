"""The whole embedded control plane in-process: a Deployment becomes scheduled pods on Ready nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubemark.client import RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

NODES = resource_path("", "v1", "nodes")
PODS = resource_path("", "v1", "pods", "default")
DEPLOYMENTS = resource_path("apps", "v1", "deployments", "default")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0)) as cp:
        yield cp


@pytest.fixture
async def admin(plane: ControlPlane) -> AsyncIterator[RestClient]:
    async with RestClient(load_kubeconfig(plane.kubeconfig_path), qps=0) as client:
        yield client


async def ready_node(client: RestClient, name: str) -> None:
    await client.create(NODES, {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    status = {
        "status": {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        }
    }
    await client.patch(f"{NODES}/{name}/status", status, patch_type="merge")


async def test_deployment_pods_are_created_and_scheduled_across_nodes(admin: RestClient) -> None:
    for i in range(3):
        await ready_node(admin, f"n{i}")
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    deployment = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 9, "selector": {"matchLabels": {"app": "web"}}, "template": template},
    }
    await admin.create(DEPLOYMENTS, deployment)

    async def scheduled() -> list[dict]:
        while True:
            pods = (await admin.list(PODS, label_selector="app=web"))["items"]
            if len(pods) == 9 and all(p["spec"].get("nodeName") for p in pods):
                return pods
            await asyncio.sleep(0.05)  # polling the API for an outcome, bounded by wait_for below

    pods = await asyncio.wait_for(scheduled(), timeout=30)
    per_node: dict[str, int] = {}
    for pod in pods:
        per_node[pod["spec"]["nodeName"]] = per_node.get(pod["spec"]["nodeName"], 0) + 1
        owner = pod["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "ReplicaSet" and owner["controller"] is True
    assert set(per_node) == {"n0", "n1", "n2"}
    assert max(per_node.values()) - min(per_node.values()) <= 1, per_node


async def test_scheduler_and_controller_manager_serve_their_metrics(plane: ControlPlane, admin: RestClient) -> None:
    await ready_node(admin, "n0")
    template = {"metadata": {"labels": {"app": "m"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": "m"}}, "template": template}
    await admin.create(DEPLOYMENTS, {"metadata": {"name": "m"}, "spec": spec})

    async def scrape(url: str, family: str) -> dict[str, float]:
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(url) as response:
                    text = await response.text()
                samples = {
                    f"{s.name}{sorted(s.labels.items())}": s.value
                    for fam in text_string_to_metric_families(text)
                    for s in fam.samples
                    if s.name.startswith(family)
                }
                if any(v > 0 for v in samples.values()):
                    return samples
                await asyncio.sleep(0.05)  # polling the endpoint for the outcome, bounded by wait_for

    controllers = await asyncio.wait_for(
        scrape(plane.component_metrics["controller-manager"], "workqueue_adds_total"), 30
    )
    assert any("deployment" in key for key in controllers)
    scheduler = await asyncio.wait_for(
        scrape(plane.component_metrics["scheduler"], "scheduler_schedule_attempts_total"), 30
    )
    assert any("scheduled" in key for key in scheduler)


async def test_components_call_as_themselves_and_priority_and_fairness_classifies_them(
    plane: ControlPlane, admin: RestClient
) -> None:
    # kube-scheduler / kube-controller-manager identities, not system:masters: APF puts them on workload-high
    # as upstream does, rather than exempting them with the admin.
    assert (plane.data_dir / "scheduler.kubeconfig").exists()
    await ready_node(admin, "n0")
    template = {"metadata": {"labels": {"app": "id"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "id"}}, "template": template}
    await admin.create(DEPLOYMENTS, {"metadata": {"name": "id"}, "spec": spec})

    async def dispatched() -> dict[str, float]:
        while True:
            text = await admin.request("GET", "/metrics", rate_limited=False)
            text = text.decode() if isinstance(text, bytes) else str(text)
            counts = {
                s.labels["flow_schema"]: s.value
                for fam in text_string_to_metric_families(text)
                if fam.name == "apiserver_flowcontrol_dispatched_requests"
                for s in fam.samples
                if s.name.endswith("_total") and s.labels["priority_level"] == "workload-high"
            }
            if {"kube-scheduler", "kube-controller-manager"} <= counts.keys():
                return counts
            await asyncio.sleep(0.05)  # polling the metrics for the outcome, bounded by wait_for

    counts = await asyncio.wait_for(dispatched(), 30)
    assert counts["kube-scheduler"] > 0 and counts["kube-controller-manager"] > 0
