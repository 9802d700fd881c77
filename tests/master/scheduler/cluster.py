"""Fixtures for scheduler tests: an in-process API server, a client, Node/Pod builders, waiting helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubemark.client import ClusterCredentials, Informer, RestClient, resource_path
from kubemark.client.informer import namespaced_key_from

NODES = resource_path("", "v1", "nodes")


def node_obj(
    name: str,
    *,
    cpu: str = "1",
    memory: str = "4Gi",
    pods: str = "110",
    ready: bool = True,
    taints: list[dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"}],
        },
    }


def pod_obj(
    name: str,
    *,
    cpu: str | None = "100m",
    memory: str | None = None,
    labels: dict[str, str] | None = None,
    owner_uid: str | None = None,
    **spec_extra: Any,
) -> dict[str, Any]:
    requests = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    container: dict[str, Any] = {"name": "c", "image": "registry.k8s.io/pause:3.9"}
    if requests:
        container["resources"] = {"requests": requests}
    meta: dict[str, Any] = {"name": name, "labels": labels or {"app": "x"}}
    if owner_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner_uid, "controller": True}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container], **spec_extra}}


async def create_node(client: RestClient, node: dict[str, Any]) -> None:
    created = await client.create(NODES, node)
    if (created.get("status") or {}).get("conditions") != node["status"]["conditions"]:
        # A server that drops status on create: set it through the status subresource.
        created["status"] = node["status"]
        await client.replace(resource_path("", "v1", "nodes", node["metadata"]["name"], subresource="status"), created)


def pods_path(namespace: str = "default", name: str | None = None, sub: str | None = None) -> str:
    return resource_path("", "v1", "pods", namespace, name, sub)


def make_client(url: str) -> RestClient:
    return RestClient(ClusterCredentials(server=url), qps=0, burst=1)


class PodWatch:
    """An informer over all pods whose every event wakes `wait` to re-check a predicate on its cache."""

    def __init__(self, client: RestClient) -> None:
        self.informer = Informer(client, resource_path("", "v1", "pods"))
        self._changed = asyncio.Condition()
        self.informer.add_handler(self._notify, lambda _o, _n: self._notify(None), self._notify)

    async def _notify(self, _obj: Any) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def __aenter__(self) -> PodWatch:
        self.informer.start()
        assert await self.informer.wait_synced(10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.informer.stop()

    def pods(self) -> list[dict[str, Any]]:
        return self.informer.list()

    def get(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.informer.get(namespaced_key_from(namespace, name))

    async def wait(self, predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
        async def until() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

        try:
            return await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None
