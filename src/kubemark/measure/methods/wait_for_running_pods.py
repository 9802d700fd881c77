"""WaitForRunningPods: wait until `desiredPodCount` pods matching `namespace`/`labelSelector`/`fieldSelector`
are Running (clusterloader2's measurement; `timeout` defaults to 60s). It runs when its step runs; a timeout
fails the step with the running count and the first pods that are not running."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.kube.durations import parse_duration
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.consistent_view import wait_for_selected
from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.object_selector import ObjectSelector
from kubemark.measure.results import MeasurementResult

__all__ = ["WaitForRunningPods"]

DEFAULT_TIMEOUT = 60.0
LISTED = 10


def _running(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not (pod.get("metadata") or {}).get(
        "deletionTimestamp"
    )


class WaitForRunningPods(MeasurementBase):
    method: ClassVar[str] = "WaitForRunningPods"

    async def start(self, params: Mapping[str, Any]) -> None:
        return None

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        desired = int(params["desiredPodCount"])
        selector = ObjectSelector.from_params(params)
        timeout = parse_duration(params.get("timeout", DEFAULT_TIMEOUT))
        pods = self.ctx.pods
        path = resource_path("", "v1", "pods", selector.namespace or None)
        reached, current = await wait_for_selected(
            self.ctx.client, path, pods, selector.matches, lambda pods: sum(map(_running, pods)) == desired, timeout
        )
        if not reached:
            stuck = [
                f"{(p.get('metadata') or {}).get('namespace')}/{(p.get('metadata') or {}).get('name')} "
                f"({(p.get('status') or {}).get('phase', 'Pending')})"
                for p in current
                if not _running(p)
            ]
            raise BarrierTimeout(
                f"{self.identifier}: {sum(1 for p in current if _running(p))} of {desired} pods running after "
                f"{timeout:g}s ({len(current)} matching){': ' + ', '.join(stuck[:LISTED]) if stuck else ''}"
            )
        return MeasurementResult()
