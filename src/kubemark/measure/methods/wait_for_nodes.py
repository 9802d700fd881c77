"""WaitForNodes: wait until the number of Ready, schedulable nodes matching the selector is within
[`minDesiredNodeCount`, `maxDesiredNodeCount`] (clusterloader2's measurement; `labelSelector`/`fieldSelector`
select nodes, `timeout` defaults to 30m). It runs when its step runs (no start/gather split); a timeout fails
the step with the count it reached."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.kube.durations import parse_duration
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.node_startup import node_ready
from kubemark.measure.object_selector import ObjectSelector
from kubemark.measure.results import MeasurementResult

__all__ = ["WaitForNodes"]

DEFAULT_TIMEOUT = 30 * 60.0
NODES = resource_path("", "v1", "nodes")


def _schedulable(node: Mapping[str, Any]) -> bool:
    return node_ready(dict(node)) and not (node.get("spec") or {}).get("unschedulable")


class WaitForNodes(MeasurementBase):
    method: ClassVar[str] = "WaitForNodes"

    async def start(self, params: Mapping[str, Any]) -> None:
        return None  # it waits when gathered: a step with no action starts and gathers at once

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        low, high = int(params["minDesiredNodeCount"]), int(params["maxDesiredNodeCount"])
        selector = ObjectSelector.from_params(params)
        timeout = parse_duration(params.get("timeout", DEFAULT_TIMEOUT))
        nodes = await self.ctx.watch(NODES)

        def ready() -> int:
            return sum(1 for n in nodes.list() if selector.matches(n) and _schedulable(n))

        if not await nodes.wait_until(lambda: low <= ready() <= high, timeout):
            raise BarrierTimeout(
                f"{self.identifier}: {ready()} ready nodes after {timeout:g}s, expected between {low} and {high}"
            )
        return MeasurementResult()
