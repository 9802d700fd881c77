"""SchedulingMetrics: kube-scheduler's latency histograms over the measurement's window, as clusterloader2.

`start` (clusterloader2 also accepts `reset`, which TestMetrics sends) scrapes kube-scheduler's /metrics; `gather`
scrapes again and writes the "SchedulingMetrics" summary from the difference: e2eSchedulingLatency,
schedulingLatency (the algorithm alone), preemptionEvaluationLatency and frameworkExtensionPointDuration per
extension point, each Perc50/90/99 in nanoseconds. Servers that have replaced
`scheduler_e2e_scheduling_duration_seconds` by `scheduler_scheduling_attempt_duration_seconds` (v1.23+) are read
from the latter. When kube-scheduler's /metrics cannot be reached (see `component_metrics`) the measurement is
reported as not measured here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.measure.api_responsiveness import Histogram
from kubemark.measure.component_metrics import SCHEDULER
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.prometheus_samples import Sample, histogram, latency_metric, parse_samples
from kubemark.measure.results import MeasurementResult, MeasurementWarning, SummaryFile

__all__ = ["SchedulingMetrics", "scheduling_metrics_summary"]

E2E = "scheduler_e2e_scheduling_duration_seconds"
ATTEMPT = "scheduler_scheduling_attempt_duration_seconds"
ALGORITHM = "scheduler_scheduling_algorithm_duration_seconds"
EXTENSION_POINT = "scheduler_framework_extension_point_duration_seconds"
PREEMPTION = "scheduler_scheduling_algorithm_preemption_evaluation_seconds"
EXTENSION_POINTS = (
    "PreFilter",
    "Filter",
    "PostFilter",
    "PreScore",
    "Score",
    "PreBind",
    "Bind",
    "PostBind",
    "Reserve",
    "Unreserve",
    "Permit",
)
UNREACHABLE = "kube-scheduler's /metrics is not reachable from this run"


def _histograms(samples: list[Sample]) -> dict[str, Histogram]:
    names = {s.name for s in samples}
    e2e = E2E if f"{E2E}_bucket" in names else ATTEMPT
    out = {
        "e2eSchedulingLatency": histogram(samples, e2e),
        "schedulingLatency": histogram(samples, ALGORITHM),
        "preemptionEvaluationLatency": histogram(samples, PREEMPTION),
    }
    for point in EXTENSION_POINTS:
        out[point] = histogram(samples, EXTENSION_POINT, {"extension_point": point})
    return out


def scheduling_metrics_summary(after: str, before: str | None) -> dict[str, Any]:
    """clusterloader2's schedulingMetrics JSON from two scrapes of kube-scheduler (`before` None: since start)."""
    end = _histograms(parse_samples(after))
    start = _histograms(parse_samples(before)) if before is not None else {}
    latency = {key: latency_metric(hist.minus(start.get(key))) for key, hist in end.items()}
    return {
        "frameworkExtensionPointDuration": {point: latency[point] for point in EXTENSION_POINTS},
        "preemptionEvaluationLatency": latency["preemptionEvaluationLatency"],
        "e2eSchedulingLatency": latency["e2eSchedulingLatency"],
        "schedulingLatency": latency["schedulingLatency"],
    }


class SchedulingMetrics(MeasurementBase):
    method: ClassVar[str] = "SchedulingMetrics"
    actions: ClassVar[frozenset[str] | None] = frozenset({"reset", "start", "gather"})  # clusterloader2's

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._before: str | None = None

    async def start(self, params: Mapping[str, Any]) -> None:
        self._before = await self.metrics_text(SCHEDULER)

    async def act(self, action: str, params: Mapping[str, Any]) -> MeasurementResult | None:
        """`reset`: the window begins, as `start` (clusterloader2 takes its initial scrape for both)."""
        if action != "reset":
            return await super().act(action, params)
        await self.start(params)
        return None

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        after = await self.metrics_text(SCHEDULER)
        if after is None or self._before is None:
            return MeasurementResult(warnings=[MeasurementWarning(self.identifier, self.method, UNREACHABLE)])
        summary = scheduling_metrics_summary(after, self._before)
        return MeasurementResult(summaries=[SummaryFile(self.method, summary)])
