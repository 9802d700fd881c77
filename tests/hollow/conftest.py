"""Fixtures for hollow-node tests: an in-process API server (memory storage), an admin client, fast configs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.hollow.config import NodeConfig, node_config_from_dict

FAST: dict[str, Any] = {
    "heartbeat": {
        "leaseRenewInterval": 0.2,
        "statusUpdateFrequency": 0.2,
        "statusReportFrequency": 60,
        "npdPeriod": 60,
        "jitter": 0.0,
    },
    "proxy": {"minSyncPeriod": 0.05, "syncPeriod": 60},
}


def fast_config(**overrides: Any) -> NodeConfig:
    data = {**FAST, **overrides}
    return node_config_from_dict(data)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll an API-side condition until it returns something truthy (state on the server, not a sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


def pod_manifest(name: str, *, cpu: str = "10m", annotations: dict[str, str] | None = None, **spec: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "containers": [
                {"name": "app", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": {"cpu": cpu}}}
            ],
            **spec,
        },
    }


async def create_bound_pod(admin: RestClient, name: str, node: str, namespace: str = "default", **kw: Any) -> dict:
    pod = await admin.create(resource_path("", "v1", "pods", namespace), pod_manifest(name, **kw))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name},
        "target": {"kind": "Node", "name": node},
    }
    await admin.create(resource_path("", "v1", "pods", namespace, name, "binding"), binding)
    return pod
