"""SystemPodMetrics: restarts of kube-system's containers during the test, as clusterloader2 (with
`systemPodMetricsEnabled`; TestMetrics passes its own Params).

`start` lists kube-system's pods; `gather` lists them again and writes the "SystemPodMetrics" summary
({"pods": [{"name", "containers": [{"name", "restartCount", "lastRestartReason"}]}]}, restart counts minus those
at start). With `enableRestartCountCheck`, a container restarted more than `restartCountThresholdOverrides`
allows (a YAML map container -> count, "default" for the rest, else 0) fails the `system_pod_restarts` verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import yaml

from kubemark.client import resource_path
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult, SummaryFile, Verdict

__all__ = ["SystemPodMetrics"]

KUBE_SYSTEM_PODS = resource_path("", "v1", "pods", "kube-system")


def _enabled(params: Mapping[str, Any], key: str) -> bool:
    value = params.get(key, False)
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _snapshot(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for pod in pods:
        containers = []
        for c in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (c.get("lastState") or {}).get("terminated")
            containers.append(
                {
                    "name": str(c.get("name", "")),
                    "restartCount": int(c.get("restartCount") or 0),
                    "lastRestartReason": str(terminated.get("reason", "")) if terminated else "",
                }
            )
        out.append({"name": str((pod.get("metadata") or {}).get("name", "")), "containers": containers})
    return out


class SystemPodMetrics(MeasurementBase):
    method: ClassVar[str] = "SystemPodMetrics"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._initial: dict[tuple[str, str], int] | None = None

    async def _list(self) -> list[dict[str, Any]]:
        items, _ = await self.ctx.client.list_all(KUBE_SYSTEM_PODS)
        return _snapshot(items)

    async def start(self, params: Mapping[str, Any]) -> None:
        if _enabled(params, "systemPodMetricsEnabled"):
            self._initial = {
                (p["name"], c["name"]): c["restartCount"] for p in await self._list() for c in p["containers"]
            }

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        if not _enabled(params, "systemPodMetricsEnabled") or self._initial is None:
            return MeasurementResult()
        pods = await self._list()
        for p in pods:
            for c in p["containers"]:
                c["restartCount"] -= self._initial.get((p["name"], c["name"]), 0)
        result = MeasurementResult(summaries=[SummaryFile(self.method, {"pods": pods})])
        if _enabled(params, "enableRestartCountCheck"):
            overrides = yaml.safe_load(str(params.get("restartCountThresholdOverrides") or "")) or {}
            violations, worst = [], 0
            for p in pods:
                for c in p["containers"]:
                    allowed = int(overrides.get(c["name"], overrides.get("default", 0)))
                    worst = max(worst, c["restartCount"])
                    if c["restartCount"] > allowed:
                        violations.append(
                            f"RestartCount({p['name']}, {c['name']})={c['restartCount']}, want <= {allowed}"
                        )
            result.verdicts.append(
                Verdict(
                    "system_pod_restarts",
                    float(worst),
                    float(overrides.get("default", 0)),
                    "restarts",
                    not violations,
                    "; ".join(violations) or f"{len(pods)} kube-system pods, no restarts over the limit",
                )
            )
        return result
