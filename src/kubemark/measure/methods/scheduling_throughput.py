"""SchedulingThroughput: pods bound per second over `samplingInterval` windows (default 1 s), judged against
`threshold` pods/s (default the test's `schedulerThroughput` SLO, off unless set)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubemark.kube.durations import parse_duration
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult
from kubemark.measure.scheduling_throughput import ThroughputSampler
from kubemark.measure.slo import SLOThresholds, check_scheduler_throughput


class SchedulingThroughput(MeasurementBase):
    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._sampler: ThroughputSampler | None = None

    async def start(self, params: Mapping[str, Any]) -> None:
        self._sampler = ThroughputSampler(interval=parse_duration(params.get("samplingInterval", 1.0)))
        self.ctx.pods.subscribe(self._sampler)
        self._sampler.start(self.ctx.pods.list())

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        sampler, self._sampler = self._sampler, None
        if sampler is None:
            return MeasurementResult()
        self.ctx.pods.unsubscribe(sampler)
        series = await sampler.stop()
        thresholds = self.ctx.thresholds
        if "threshold" in params:
            thresholds = SLOThresholds.from_config({"schedulerThroughput": params["threshold"]}, thresholds)
        verdict = check_scheduler_throughput([v for _, v in series], thresholds)
        return MeasurementResult(verdicts=[verdict] if verdict is not None else [], throughput=series)

    async def stop(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            self.ctx.pods.unsubscribe(sampler)
            await sampler.stop()
