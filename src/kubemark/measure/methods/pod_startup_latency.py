"""PodStartupLatency: create → running-seen-by-watch of the pods matching `labelSelector`, judged against the SLO.

Params: `labelSelector`, `threshold` (a duration; default the test's pod-startup SLO), `fillLevel` (the `fill`
test: the samples are also kept under that fill percentage). The verdict is named `pod_startup_latency` for the
identifier `PodStartupLatency` (clusterloader2's) and `pod_startup_latency <Identifier>` for any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kubemark.kube.durations import parse_duration
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.pod_startup import PodStartupTracker
from kubemark.measure.results import MeasurementResult, Verdict
from kubemark.measure.slo import check_pod_startup, refused


class PodStartupLatency(MeasurementBase):
    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._tracker: PodStartupTracker | None = None

    async def start(self, params: Mapping[str, Any]) -> None:
        self._tracker = PodStartupTracker(
            label_selector=str(params.get("labelSelector") or ""), namespace_prefix=self.ctx.namespace_prefix
        )
        self.ctx.pods.subscribe(self._tracker)

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        tracker = self._tracker
        if tracker is None:
            return MeasurementResult()
        await self.stop()
        ctx, identifier = self.ctx, self.identifier
        stateless = [t for t in tracker.timelines(stateful=False) if t.created is not None and t.watched is not None]
        samples = [t.watched - t.created for t in stateless]  # type: ignore[operator]
        threshold = parse_duration(params["threshold"]) if "threshold" in params else ctx.thresholds.pod_startup_p99
        name = "pod_startup_latency" if identifier == "PodStartupLatency" else f"pod_startup_latency {identifier}"
        if not ctx.latency_trusted:
            verdict = refused(name, threshold, "s", ctx.skew_reason)
        elif samples:
            checked = check_pod_startup(samples, replace(ctx.thresholds, pod_startup_p99=threshold))
            verdict = replace(checked, name=name, detail=f"{identifier}, stateless pods: {checked.detail}")
        else:
            verdict = Verdict(name, 0.0, threshold, "s", False, f"{identifier}: no pod reached Running")
        fill = {float(params["fillLevel"]): samples} if "fillLevel" in params else {}
        return MeasurementResult(verdicts=[verdict], pods={identifier: tracker.timelines()}, fill_levels=fill)

    async def stop(self) -> None:
        if self._tracker is not None:
            self.ctx.pods.unsubscribe(self._tracker)
