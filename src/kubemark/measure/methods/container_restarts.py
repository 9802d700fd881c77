"""ContainerRestarts: containers restarted during the measurement, against the allowed restarts.

clusterloader2 counts `changes(container_start_time_seconds[window])` from cAdvisor through Prometheus; here the
same count is the growth of each container's `restartCount` in pod status (what the kubelet reports, hollow or
not) between `start` and `gather`, read from the run's pods watch. The "ContainerRestarts" summary lists
{container, pod, namespace, restartCount} for every container that restarted. With `enableViolations`, a
container over its allowance (`defaultAllowedRestarts`, default 0; `customAllowedRestarts`: a YAML list of
{container, pod (with * wildcards), namespace, allowedRestarts}) fails the `container_restarts` verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import yaml

from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult, SummaryFile, Verdict

__all__ = ["ContainerRestarts", "restart_counts"]

Key = tuple[str, str, str]  # namespace, pod, container


def restart_counts(pods: Iterable[Mapping[str, Any]]) -> dict[Key, int]:
    """restartCount per (namespace, pod, container), init containers included."""
    out: dict[Key, int] = {}
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        for c in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            key = (str(meta.get("namespace", "")), str(meta.get("name", "")), str(c.get("name", "")))
            out[key] = int(c.get("restartCount") or 0)
    return out


def _allowed(key: Key, default: int, overrides: list[dict[str, Any]]) -> int:
    allowed = default
    for o in overrides:
        pattern = "^" + re.escape(str(o.get("pod", ""))).replace(r"\*", ".*") + "$"
        if re.match(pattern, key[1]) and int(o.get("allowedRestarts", 0)) > allowed:
            allowed = int(o["allowedRestarts"])
    return allowed


class ContainerRestarts(MeasurementBase):
    method: ClassVar[str] = "ContainerRestarts"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._before: dict[Key, int] = {}

    async def start(self, params: Mapping[str, Any]) -> None:
        self._before = restart_counts(self.ctx.pods.list())

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        restarted = []
        for key, count in sorted(restart_counts(self.ctx.pods.list()).items()):
            grown = count - self._before.get(key, 0)
            if grown > 0:
                restarted.append((key, grown))
        summary = [{"container": c, "pod": pod, "namespace": ns, "restartCount": n} for (ns, pod, c), n in restarted]
        result = MeasurementResult(summaries=[SummaryFile(self.method, summary)])
        if params.get("enableViolations"):
            default = int(params.get("defaultAllowedRestarts", 0))
            overrides = yaml.safe_load(str(params.get("customAllowedRestarts") or "")) or []
            bad = [(key, n, _allowed(key, default, overrides)) for key, n in restarted]
            bad = [b for b in bad if b[1] > b[2]]
            worst = max((n for _, n, _ in bad), default=max((n for _, n in restarted), default=0))
            detail = "; ".join(f"restartCount({ns}/{pod} {c}) = {n}, expected <= {a}" for (ns, pod, c), n, a in bad)
            result.verdicts.append(
                Verdict(
                    "container_restarts",
                    float(worst),
                    float(default),
                    "restarts",
                    not bad,
                    detail or f"{len(restarted)} containers restarted, none over its allowance",
                )
            )
        return result
