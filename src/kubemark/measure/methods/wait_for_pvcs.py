"""WaitForBoundPVCs: wait until `desiredPVCCount` PersistentVolumeClaims matching `namespace`/`labelSelector`/
`fieldSelector` are Bound and every other matching claim is Pending (clusterloader2's measurement and its
WaitForPVCs condition; `timeout` defaults to 60s).

clusterloader2's load test gathers it with `desiredPVCCount: 0` after deleting its StatefulSets' claims, so a
claim still present (Bound or Lost) keeps it waiting. As clusterloader2, no namespace means all namespaces. The
claims are followed with the run's shared watch (after one consistent LIST) instead of 5-second re-lists; a
timeout fails the step with the counts it reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.kube.durations import parse_duration
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.consistent_view import wait_for_selected
from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.object_selector import ObjectSelector, phase_counts
from kubemark.measure.results import MeasurementResult

__all__ = ["WaitForBoundPVCs"]

DEFAULT_TIMEOUT = 60.0
CLAIMS = resource_path("", "v1", "persistentvolumeclaims")


class WaitForBoundPVCs(MeasurementBase):
    method: ClassVar[str] = "WaitForBoundPVCs"

    async def start(self, params: Mapping[str, Any]) -> None:
        return None  # it waits when gathered, as clusterloader2's Execute

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        desired = int(params["desiredPVCCount"])
        selector = ObjectSelector.from_params(params)
        timeout = parse_duration(params.get("timeout", DEFAULT_TIMEOUT))

        def done(current: list[dict[str, Any]]) -> bool:
            phases = phase_counts(current)
            return len(current) == phases["Bound"] + phases["Pending"] and phases["Bound"] == desired

        claims = await self.ctx.watch(CLAIMS)
        reached, current = await wait_for_selected(self.ctx.client, CLAIMS, claims, selector.matches, done, timeout)
        if not reached:
            phases = phase_counts(current)
            raise BarrierTimeout(
                f"{self.identifier}: timeout while waiting for {desired} PVCs to be bound in namespace "
                f"'{selector.namespace}' with labels '{params.get('labelSelector') or ''}' and fields "
                f"'{params.get('fieldSelector') or ''}' after {timeout:g}s - only {phases['Bound']} found bound "
                f"({len(current)} created, {phases['Pending']} pending, {phases['Lost']} lost)"
            )
        return MeasurementResult()
