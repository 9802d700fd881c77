"""NetworkProgrammingLatency: kube-proxy's network programming latency over the measurement's window.

clusterloader2 takes the 99th percentile over time of Prometheus' 5-minute quantiles of
`kubeproxy_network_programming_duration_seconds` (and skips it on kubemark); here the hollow kube-proxies record
that histogram (EndpointSlice trigger time -> the proxy's sync that "programs" it), and the quantiles are those
of its growth between `start` and `gather`, the closest reading without Prometheus. The "NetworkProgrammingLatency"
PerfData has one item, Perc50/90/99 in ms. When the run cannot read the kube-proxies' metrics, it is reported as
not measured here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.measure.component_metrics import KUBE_PROXY
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.prometheus_samples import histogram, latency_metric, latency_perfdata, parse_samples
from kubemark.measure.results import MeasurementResult, MeasurementWarning, SummaryFile

__all__ = ["NetworkProgrammingLatency"]

METRIC = "kubeproxy_network_programming_duration_seconds"
UNREACHABLE = "the hollow kube-proxies' kubeproxy_network_programming_duration_seconds is not readable by this run"


class NetworkProgrammingLatency(MeasurementBase):
    method: ClassVar[str] = "NetworkProgrammingLatency"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._before: str | None = None

    async def start(self, params: Mapping[str, Any]) -> None:
        self._before = await self.metrics_text(KUBE_PROXY)

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        after = await self.metrics_text(KUBE_PROXY)
        if after is None or self._before is None:
            return MeasurementResult(warnings=[MeasurementWarning(self.identifier, self.method, UNREACHABLE)])
        delta = histogram(parse_samples(after), METRIC).minus(histogram(parse_samples(self._before), METRIC))
        perfdata = {"version": "v1", "dataItems": [latency_perfdata(self.method, latency_metric(delta))]}
        return MeasurementResult(summaries=[SummaryFile(self.method, perfdata)])
