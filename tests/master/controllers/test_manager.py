"""ControllerManager wiring, workqueue metrics and the run_controllers entry point."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kubemark.client import resource_path
from kubemark.master.controllers.manager import ALL_CONTROLLERS, ControllerManager, run_controllers


def _deployment(name: str, replicas: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }


async def test_manager_runs_all_controllers_with_metrics(cluster) -> None:
    registry = CollectorRegistry()
    manager = ControllerManager(cluster.client, registry=registry)
    assert set(manager.controllers) == set(ALL_CONTROLLERS)
    async with manager:
        assert await manager.wait_synced(10)
        await cluster.client.create(resource_path("apps", "v1", "deployments", "default"), _deployment("m", 3))

        async def three() -> bool:
            return len(await cluster.pods(selector="app=m")) == 3

        await cluster.wait_until(three, what="3 pods via the manager")
        adds = registry.get_sample_value("workqueue_adds_total", {"name": "deployment"})
        assert adds is not None and adds >= 1
        assert registry.get_sample_value("workqueue_depth", {"name": "replicaset"}) is not None


def test_unknown_controller_rejected(cluster) -> None:
    with pytest.raises(ValueError, match="unknown controllers"):
        ControllerManager(cluster.client, enabled={"nope"})


async def test_run_controllers_from_kubeconfig(cluster, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: k\n"
        f"clusters: [{{name: k, cluster: {{server: '{cluster.server.url}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: k, context: {cluster: k, user: u}}]\n"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_controllers(str(kubeconfig), enabled={"serviceaccount"}, stop=stop))
    try:
        await cluster.client.create(
            resource_path("", "v1", "namespaces"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}},
        )
        await cluster.wait_until(lambda: cluster.get("", "v1", "serviceaccounts", "fresh", "default"), what="SA")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
