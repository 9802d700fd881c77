"""WaitForControlledPodsRunning: a barrier until every controller of `kind`/`apiVersion` (default Deployment, and
the kind's own API version) matching `labelSelector` has its desired pods running (or, after scale-down or deletion, gone);
`timeout`/`operationTimeout` bounds each wait."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubemark.client import object_path
from kubemark.kube.resources import RESOURCES
from kubemark.measure.barrier import ControlledPodsBarrier, desired_pods
from kubemark.measure.measurement import BarrierMeasurement
from kubemark.measure.watch import ObjectWatch


class WaitForControlledPodsRunning(BarrierMeasurement):
    _kind = "Deployment"

    async def start(self, params: Mapping[str, Any]) -> None:
        self._kind = str(params.get("kind", "Deployment"))
        await super().start(params)

    def path(self, params: Mapping[str, Any]) -> str:
        kind = str(params.get("kind", "Deployment"))
        return object_path({"apiVersion": params.get("apiVersion") or default_api_version(kind), "kind": kind}, "")

    def waiter(
        self, objects: ObjectWatch, selector: str, lister: Callable[[], Awaitable[list[dict[str, Any]]]]
    ) -> ControlledPodsBarrier:
        return ControlledPodsBarrier(
            objects,
            self.ctx.pods,
            label_selector=selector,
            namespace_prefix=self.ctx.namespace_prefix,
            lister=lister,
            desired=desired_pods(self._kind),
        )


def default_api_version(kind: str) -> str:
    """clusterloader2 requires apiVersion; without one, the version of the served kind of that name (v1 for a
    ReplicationController, apps/v1 for a Deployment, batch/v1 for a Job), else apps/v1."""
    for rt in RESOURCES:
        if rt.kind == kind and rt.group in ("", "apps", "batch"):
            return f"{rt.group}/{rt.version}" if rt.group else rt.version
    return "apps/v1"
