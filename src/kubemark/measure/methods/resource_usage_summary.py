"""ResourceUsageSummary: CPU and RSS of the cluster's local processes (the embedded master's components),
sampled from /proc while it runs; nothing is sampled against a remote cluster (no local PIDs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.resource_usage import ProcessSampler
from kubemark.measure.results import MeasurementResult


class ResourceUsageSummary(MeasurementBase):
    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._sampler: ProcessSampler | None = None

    async def start(self, params: Mapping[str, Any]) -> None:
        self._sampler = ProcessSampler(self.ctx.pids)
        if self.ctx.pids:
            self._sampler.start()

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        sampler, self._sampler = self._sampler, None
        return MeasurementResult(usage=await sampler.stop()) if sampler is not None else MeasurementResult()

    async def stop(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            await sampler.stop()
