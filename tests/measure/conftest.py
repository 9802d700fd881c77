"""Fixtures for cluster-facing measurement tests: an in-process API server (memory storage) and an admin client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.measure.watch import ObjectWatch


@pytest.fixture
async def pod_watch(admin: RestClient) -> AsyncIterator[ObjectWatch]:
    watch = ObjectWatch(admin, resource_path("", "v1", "pods"))
    await watch.start(10)
    try:
        yield watch
    finally:
        await watch.stop()


def pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}], **spec},
    }


async def bind(admin: RestClient, name: str, node: str, namespace: str = "default") -> None:
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"kind": "Node", "name": node},
    }
    await admin.create(resource_path("", "v1", "pods", namespace, name, "binding"), binding)


async def set_status(admin: RestClient, name: str, status: dict[str, Any], namespace: str = "default") -> None:
    path = resource_path("", "v1", "pods", namespace, name)
    current = await admin.get(path)
    current["status"] = status
    await admin.replace(path + "/status", current)


def running_status(started_at: str) -> dict[str, Any]:
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "c",
                "ready": True,
                "restartCount": 0,
                "image": "pause",
                "imageID": "",
                "state": {"running": {"startedAt": started_at}},
            }
        ],
    }
