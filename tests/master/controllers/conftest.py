"""Fixtures: an in-process API server (memory storage) and a client + shared informers pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kubemark.client import ClusterCredentials, RestClient, resource_path
from kubemark.kube.meta import now_rfc3339
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.controllers.base import Controller, SharedInformers

Obj = dict[str, Any]


class Cluster:
    """The API server under test plus conveniences for driving it the way a kubelet or a user would."""

    def __init__(self, server: APIServer, client: RestClient) -> None:
        self.server = server
        self.client = client
        self.informers = SharedInformers(client)
        self.controllers: list[Controller] = []

    async def run(self, *controllers: Controller) -> None:
        self.controllers.extend(controllers)
        self.informers.start()
        for c in controllers:
            c.start()
        for c in controllers:
            assert await c.wait_synced(10), f"{c.name} did not sync"

    async def close(self) -> None:
        for c in self.controllers:
            await c.stop()
        await self.informers.stop()

    async def wait_until(
        self, check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition"
    ) -> Any:
        """Poll `check` (an API read) until it returns something truthy; fail after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while True:
            last = await check()
            if last:
                return last
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last={last!r}")
            await asyncio.sleep(0.02)

    async def pods(self, namespace: str = "default", selector: str | None = None) -> list[Obj]:
        page = await self.client.list(resource_path("", "v1", "pods", namespace), label_selector=selector)
        return page["items"]

    async def get(self, group: str, version: str, plural: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.client.get(resource_path(group, version, plural, namespace, name))
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise

    async def set_pod_status(
        self, pod: Obj, *, phase: str = "Running", ready: bool = True, ip: str | None = None
    ) -> Obj:
        """Report a pod's status as its kubelet would (Ready condition, phase, podIP)."""
        md = pod["metadata"]
        path = resource_path("", "v1", "pods", md["namespace"], md["name"], "status")
        for _ in range(5):
            current = await self.client.get(resource_path("", "v1", "pods", md["namespace"], md["name"]))
            status = current.setdefault("status", {})
            status["phase"] = phase
            if ip:
                status["podIP"] = ip
                status["podIPs"] = [{"ip": ip}]
            now = now_rfc3339()
            status["conditions"] = [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
            ]
            try:
                return await self.client.replace(path, current)
            except Exception as exc:
                if getattr(exc, "status", None) != 409:
                    raise
        raise AssertionError("could not update pod status")

    async def ready_all(self, namespace: str = "default", selector: str | None = None) -> int:
        """Mark every not-yet-ready, non-terminating pod Running and Ready; returns how many were changed."""
        changed = 0
        for pod in await self.pods(namespace, selector):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            conds = (pod.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                continue
            try:
                await self.set_pod_status(pod)
            except Exception as exc:
                if getattr(exc, "status", None) != 404:
                    raise
                continue
            changed += 1
        return changed


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    client = RestClient(ClusterCredentials(server=server.url), qps=-1, burst=1, user_agent="kube-controller-manager")
    c = Cluster(server, client)
    try:
        yield c
    finally:
        await c.close()
        await client.close()
        await server.stop()
