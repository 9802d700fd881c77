"""MetricsForE2E: one snapshot of the control plane's metrics at gather, as clusterloader2's metrics grabber.

The "MetricsForE2E" summary is the grabber's Collection: ApiServerMetrics, ControllerManagerMetrics,
SchedulerMetrics (and KubeletMetrics, ClusterAutoscalerMetrics, empty here: clusterloader2 does not grab
kubelets on kubemark either), each {metric name: [model.Sample JSON]}. A component whose /metrics this run
cannot reach is left empty and named in a not-measured-here warning; the API server's is always read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.measure.component_metrics import APISERVER, CONTROLLER_MANAGER, SCHEDULER
from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.prometheus_samples import parse_samples, sample_json
from kubemark.measure.results import MeasurementResult, MeasurementWarning, SummaryFile

__all__ = ["MetricsForE2E", "metrics_collection"]

SECTIONS = {
    APISERVER: "ApiServerMetrics",
    CONTROLLER_MANAGER: "ControllerManagerMetrics",
    SCHEDULER: "SchedulerMetrics",
}


def metrics_collection(text: str, timestamp: float) -> dict[str, list[dict[str, Any]]]:
    """{metric name: [samples]} of one exposition (histogram buckets, counts and sums each their own name)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sample in parse_samples(text):
        out.setdefault(sample.name, []).append(sample_json(sample, timestamp))
    return out


class MetricsForE2E(MeasurementBase):
    method: ClassVar[str] = "MetricsForE2E"

    async def start(self, params: Mapping[str, Any]) -> None:
        return None  # clusterloader2's MetricsForE2E only gathers

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        summary: dict[str, Any] = {
            "ApiServerMetrics": {},
            "ControllerManagerMetrics": {},
            "KubeletMetrics": {},
            "SchedulerMetrics": {},
            "ClusterAutoscalerMetrics": {},
        }
        missing = []
        for component, section in SECTIONS.items():
            text = await self.metrics_text(component)
            if text is None:
                missing.append(component)
                continue
            summary[section] = metrics_collection(text, time.time())
        result = MeasurementResult(summaries=[SummaryFile(self.method, summary)])
        if missing:
            reason = f"the /metrics of {', '.join(missing)} is not reachable from this run; left empty"
            result.warnings.append(MeasurementWarning(self.identifier, self.method, reason))
        return result
