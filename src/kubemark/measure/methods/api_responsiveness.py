"""APIResponsivenessPrometheus (alias APIResponsiveness): API-call latency SLIs over the measurement's window.

Server side when the API server's /metrics answers: the delta of its request-latency histograms between start and
gather (and, with priority and fairness, each level's dispatched/rejected requests and queue wait). Otherwise
client side: the calls the player made in the window, from the run's recorder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubemark.measure.api_responsiveness import (
    histogram_delta,
    parse_request_histograms,
    scrape_text,
    server_verdicts,
    summarize_histograms,
)
from kubemark.measure.flowcontrol import flowcontrol_delta, parse_flowcontrol
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import ApiCallKey, MeasurementResult
from kubemark.measure.slo import check_api_latency

log = logging.getLogger(__name__)


class APIResponsivenessPrometheus(MeasurementBase):
    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._before: str | None = None  # the /metrics text at start; None: client side only
        self._first_call = 0

    async def start(self, params: Mapping[str, Any]) -> None:
        try:
            self._before = await scrape_text(self.ctx.client)
        except Exception as exc:
            log.warning("cannot scrape the API server's /metrics (%s); using client-side latencies only", exc)
            self._before = None
        self._first_call = len(self.ctx.recorder)

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        ctx, result = self.ctx, MeasurementResult()
        if self._before is not None:
            try:
                after = await scrape_text(ctx.client)
                result.server_latency = summarize_histograms(
                    histogram_delta(parse_request_histograms(after), parse_request_histograms(self._before))
                )
                result.flowcontrol = flowcontrol_delta(parse_flowcontrol(after), parse_flowcontrol(self._before))
            except Exception as exc:
                log.warning("cannot scrape the API server's /metrics at gather (%s)", exc)
        if result.server_latency:
            result.verdicts = server_verdicts(result.server_latency, ctx.thresholds)
            return result
        calls: dict[ApiCallKey, list[float]] = {}
        for call in ctx.recorder.calls[self._first_call :]:
            if call.status is not None:
                calls.setdefault(call.key, []).append(call.seconds)
        result.verdicts = check_api_latency(calls, ctx.thresholds)
        return result


class APIResponsiveness(APIResponsivenessPrometheus):
    """clusterloader2's older name for the same measurement."""
