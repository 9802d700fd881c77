"""WaitForControlledPodsRunning: a barrier until every controller of `kind`/`apiVersion` (default apps/v1
Deployment) matching `labelSelector` has its desired pods running (or, after scale-down or deletion, gone);
`timeout`/`operationTimeout` bounds each wait."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubemark.client import object_path
from kubemark.measure.barrier import ControlledPodsBarrier, desired_pods
from kubemark.measure.measurement import BarrierMeasurement
from kubemark.measure.watch import ObjectWatch


class WaitForControlledPodsRunning(BarrierMeasurement):
    _kind = "Deployment"

    async def start(self, params: Mapping[str, Any]) -> None:
        self._kind = str(params.get("kind", "Deployment"))
        await super().start(params)

    def path(self, params: Mapping[str, Any]) -> str:
        return object_path(
            {"apiVersion": params.get("apiVersion", "apps/v1"), "kind": params.get("kind", "Deployment")}, ""
        )

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
