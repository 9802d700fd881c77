"""WaitForAvailablePVs: wait until `desiredPVCount` PersistentVolumes matching `labelSelector`/`fieldSelector`
(and, with `provisioner`, provisioned by it: their `pv.kubernetes.io/provisioned-by`) are provisioned, i.e.
Available or Bound, and every other matching volume is Pending (clusterloader2's measurement and its WaitForPVs
condition; `timeout` defaults to 60s).

Volumes are cluster-scoped: a `namespace` param selects nothing, as clusterloader2's PV list ignores it. The
volumes are followed with the run's shared watch (after one consistent LIST) instead of 5-second re-lists; a
timeout fails the step with the counts it reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.kube.durations import parse_duration
from kubemark.kube.volumes import ANN_DYNAMICALLY_PROVISIONED
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.consistent_view import wait_for_selected
from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.object_selector import ObjectSelector, phase_counts
from kubemark.measure.results import MeasurementResult

__all__ = ["WaitForAvailablePVs"]

DEFAULT_TIMEOUT = 60.0
VOLUMES = resource_path("", "v1", "persistentvolumes")


class WaitForAvailablePVs(MeasurementBase):
    method: ClassVar[str] = "WaitForAvailablePVs"

    async def start(self, params: Mapping[str, Any]) -> None:
        return None  # it waits when gathered, as clusterloader2's Execute

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        desired = int(params["desiredPVCount"])
        selector = ObjectSelector.from_params({**params, "namespace": ""})
        provisioner = str(params.get("provisioner") or "")
        timeout = parse_duration(params.get("timeout", DEFAULT_TIMEOUT))
        pvs = await self.ctx.watch(VOLUMES)

        def selected(volume: dict[str, Any]) -> bool:
            if not selector.matches(volume):
                return False
            annotations = (volume.get("metadata") or {}).get("annotations") or {}
            return not provisioner or annotations.get(ANN_DYNAMICALLY_PROVISIONED) == provisioner

        def done(current: list[dict[str, Any]]) -> bool:
            phases = phase_counts(current)
            provisioned = phases["Bound"] + phases["Available"]
            return len(current) == provisioned + phases["Pending"] and provisioned == desired

        reached, current = await wait_for_selected(self.ctx.client, VOLUMES, pvs, selected, done, timeout)
        if not reached:
            phases = phase_counts(current)
            where = f"labels '{params.get('labelSelector') or ''}' and fields '{params.get('fieldSelector') or ''}'"
            if provisioner:
                where += f" && provisioner={provisioner}"
            raise BarrierTimeout(
                f"{self.identifier}: timeout while waiting for {desired} PVs with {where} after {timeout:g}s - only "
                f"{phases['Bound'] + phases['Available']} found provisioned ({len(current)} created, "
                f"{phases['Bound']} bound, {phases['Available']} available, {phases['Pending']} pending, "
                f"{phases['Released']} released, {phases['Failed']} failed)"
            )
        return MeasurementResult()
