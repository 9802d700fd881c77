"""WaitForGenericK8sObjects: wait until at least `minDesiredObjectCount` objects of
`objectGroup`/`objectVersion`/`objectResource` have one of `successfulConditions` ("Type=Status", from
status.conditions), failing once more than `maxFailedObjectCount` (default 0) have one of `failedConditions`.

As clusterloader2: objects are those in `namespaceRange` (`<prefix>-<min>` .. `<prefix>-<max>`, the prefix
defaulting to the test's namespaces; `allNamespaces: true` for all), or cluster-scoped ones without it, matching
`labelSelector`; `timeout` defaults to 30m. Objects are followed with a watch instead of clusterloader2's
`refreshInterval` re-lists (after one consistent LIST, see `consistent_view`), which only changes how soon the
wait notices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.kube.durations import parse_duration
from kubemark.kube.labels import parse_label_selector
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.consistent_view import ConsistentView
from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.results import MeasurementResult

__all__ = ["WaitForGenericK8sObjects", "namespaces_of"]

DEFAULT_TIMEOUT = 30 * 60.0


def _conditions(obj: Mapping[str, Any]) -> set[str]:
    return {f"{c.get('type')}={c.get('status')}" for c in (obj.get("status") or {}).get("conditions") or []}


def namespaces_of(params: Mapping[str, Any], default_prefix: str) -> set[str] | None:
    """The namespaces `namespaceRange` names; None for all namespaces; {""} for cluster-scoped objects."""
    ranges = params.get("namespaceRange")
    if not ranges:
        return {""}
    if ranges.get("allNamespaces"):
        return None
    prefix = str(ranges.get("prefix") or default_prefix.rstrip("-"))
    return {f"{prefix}-{i}" for i in range(int(ranges["min"]), int(ranges["max"]) + 1)}


class WaitForGenericK8sObjects(MeasurementBase):
    method: ClassVar[str] = "WaitForGenericK8sObjects"

    async def start(self, params: Mapping[str, Any]) -> None:
        return None

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        path = resource_path(str(params["objectGroup"]), str(params["objectVersion"]), str(params["objectResource"]))
        namespaces = namespaces_of(params, self.ctx.namespace_prefix)
        selector = parse_label_selector(str(params.get("labelSelector") or ""))
        successful = {str(c) for c in params.get("successfulConditions") or []}
        failed = {str(c) for c in params.get("failedConditions") or []}
        want = int(params["minDesiredObjectCount"])
        max_failed = int(params.get("maxFailedObjectCount", 0))
        timeout = parse_duration(params.get("timeout", DEFAULT_TIMEOUT))
        objects = await self.ctx.watch(path)

        def counts(view: ConsistentView) -> tuple[int, int]:
            ok = bad = 0
            for obj in view.objects():
                meta = obj.get("metadata") or {}
                if namespaces is not None and str(meta.get("namespace") or "") not in namespaces:
                    continue
                if not selector.matches(meta.get("labels") or {}):
                    continue
                conditions = _conditions(obj)
                if conditions & failed:
                    bad += 1
                elif conditions & successful:
                    ok += 1
            return ok, bad

        async with ConsistentView(self.ctx.client, path, objects) as view:

            def done() -> bool:
                ok, bad = counts(view)
                return ok >= want or bad > max_failed

            reached = await objects.wait_until(done, timeout)
            ok, bad = counts(view)
        if bad > max_failed:
            raise BarrierTimeout(
                f"{self.identifier}: {bad} {params['objectResource']} have a failed condition "
                f"({', '.join(sorted(failed))}), more than {max_failed} allowed"
            )
        if not reached:
            raise BarrierTimeout(
                f"{self.identifier}: {ok} of {want} {params['objectResource']} reached "
                f"{', '.join(sorted(successful))} after {timeout:g}s"
            )
        return MeasurementResult()
