"""ObjectsPeriodicUpdates: a steady trickle of updates to five objects, as clusterloader2's measurement of that name.

clusterloader2 (whatever the action) creates in the `default` namespace a Pod `pod-updated-periodically`
(container `container-name`, image k8s.gcr.io/pause:3.1), a Service `service-updated-periodically` (port 80 ->
9376), a Secret `secret-updated-periodically` (Opaque), a ConfigMap `configmap-updated-periodically` (key: value)
and Endpoints `endpoints-updated-periodically` (no subsets), then every 20 s sets each one's labels to
{time_label: <unix seconds>} and patches it (the Pod is read first). An object it cannot create is left alone
(logged); a failed patch is logged and retried at the next tick. It measures nothing and writes no summary; the
updates run until the test ends (clusterloader2 never stops them; kubemark stops them with the run).

On hollow nodes the objects are real API objects (the pod is bound and "runs" on a hollow kubelet), so the load
it adds to the API server, the watches and the controllers is the one it adds on a real cluster. One instance per
Identifier for the test: the updates start at its first call (any action) and are not started twice.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult

__all__ = ["ObjectsPeriodicUpdates", "periodic_objects"]

log = logging.getLogger(__name__)

NAMESPACE = "default"
PERIOD = 20.0  # seconds between updates, as clusterloader2
sleep: Callable[[float], Any] = asyncio.sleep  # module-level so tests can drive the ticks
now: Callable[[], float] = time.time


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def periodic_objects() -> list[tuple[str, str, dict[str, Any]]]:
    """(resource, name, object) of the five objects, as clusterloader2 builds them. The Secret's data are the
    bytes of the strings "dXNlcg==" and "cXdlcnR5", which Go's JSON encodes in base64 once more."""
    return [
        (
            "pods",
            "pod-updated-periodically",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "spec": {"containers": [{"name": "container-name", "image": "k8s.gcr.io/pause:3.1"}]},
            },
        ),
        (
            "services",
            "service-updated-periodically",
            {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80, "targetPort": 9376}]}},
        ),
        (
            "secrets",
            "secret-updated-periodically",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "data": {"username": _b64("dXNlcg=="), "password": _b64("cXdlcnR5")},
            },
        ),
        (
            "configmaps",
            "configmap-updated-periodically",
            {"apiVersion": "v1", "kind": "ConfigMap", "data": {"key": "value"}},
        ),
        # clusterloader2's empty Subsets are omitted from its JSON (omitempty)
        ("endpoints", "endpoints-updated-periodically", {"apiVersion": "v1", "kind": "Endpoints"}),
    ]


class ObjectsPeriodicUpdates(MeasurementBase):
    method: ClassVar[str] = "ObjectsPeriodicUpdates"
    stateful: ClassVar[bool] = True

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._tasks: list[asyncio.Task[None]] = []

    async def _create_and_keep_updating(self, resource: str, name: str, obj: dict[str, Any]) -> None:
        client = self.ctx.client
        path = resource_path("", "v1", resource, NAMESPACE)
        obj = {**obj, "metadata": {"name": name}}
        try:
            await client.create(path, obj)
        except Exception as exc:
            log.warning("creating %s object problem: %s", name, exc)
            return
        log.info("created object %s successfully", name)
        while True:
            await sleep(PERIOD)
            try:
                current = await client.get(f"{path}/{name}") if resource == "pods" else obj
                current = {**current, "metadata": {**(current.get("metadata") or {})}}
                current["metadata"]["labels"] = {"time_label": str(int(now()))}
                await client.patch(f"{path}/{name}", current, "merge")
            except Exception as exc:
                log.warning("patching %s object problem: %s", name, exc)
                continue
            log.info("patched object %s successfully", name)

    def _launch(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._create_and_keep_updating(*spec), name=f"periodic update of {spec[1]}")
            for spec in periodic_objects()
        ]

    async def start(self, params: Mapping[str, Any]) -> None:
        self._launch()

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        self._launch()
        return MeasurementResult()

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
