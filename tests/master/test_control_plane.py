"""The whole embedded control plane in-process: a Deployment becomes scheduled pods on Ready nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubemark.client import RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

NODES = resource_path("", "v1", "nodes")
PODS = resource_path("", "v1", "pods", "default")
DEPLOYMENTS = resource_path("apps", "v1", "deployments", "default")


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[RestClient]:
    async with (
        ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0)) as plane,
        RestClient(load_kubeconfig(plane.kubeconfig_path), qps=0) as client,
    ):
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
