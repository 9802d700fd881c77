"""Sleep: pauses the step for `duration` when started; gathers nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kubemark.kube.durations import parse_duration
from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.results import MeasurementResult


class Sleep(MeasurementBase):
    async def start(self, params: Mapping[str, Any]) -> None:
        await asyncio.sleep(parse_duration(params.get("duration", 0)))

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        return MeasurementResult()
