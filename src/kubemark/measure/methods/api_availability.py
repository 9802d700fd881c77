"""APIAvailability: the share of /readyz probes of the cluster's API endpoint that answered 200, as clusterloader2.

From `start`, the API server's /readyz is probed every `pollFrequency` (required; each probe times out after
`hostPollTimeoutSeconds`, default 5) until `gather`, which writes
the "APIAvailability" summary: clusterMetrics {availabilityPercentage, longestUnavailablePeriod (a Go duration:
the longest run of failed probes times pollFrequency)} and hostMetrics (null: clusterloader2 probes each master's
address from an exec-service pod, which a kubemark run does not have). Below `threshold` percent (default 0) the
`api_availability` verdict fails. Unlike clusterloader2's counter, a success ends a run of failures, so the
longest unavailable period is one period, not the sum of all failures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.aio import cancel_and_wait
from kubemark.kube.durations import parse_duration
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult, SummaryFile, Verdict

__all__ = ["APIAvailability", "go_duration"]

log = logging.getLogger(__name__)


def go_duration(seconds: float) -> str:
    """time.Duration.String() for whole and fractional seconds: "0s", "5s", "1m30s", "1h0m0s", "500ms"."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if hours or minutes:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text


class APIAvailability(MeasurementBase):
    method: ClassVar[str] = "APIAvailability"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self.successes = self.failures = 0
        self._run = self._longest = 0
        self._interval = 0.0
        self._timeout = 5.0  # hostPollTimeoutSeconds' default, per probe
        self._task: asyncio.Task[None] | None = None

    async def probe_once(self) -> bool:
        """One /readyz probe through the API client, counted; True when it answered 200."""
        try:
            await self.ctx.client.request("GET", "/readyz", rate_limited=False, retry=False, timeout=self._timeout)
            ok = True
        except Exception as exc:
            log.warning("%s: cluster not available: %s", self.identifier, exc)
            ok = False
        if ok:
            self.successes += 1
            self._run = 0
        else:
            self.failures += 1
            self._run += 1
            self._longest = max(self._longest, self._run)
        return ok

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.probe_once()

    async def start(self, params: Mapping[str, Any]) -> None:
        self._interval = parse_duration(params["pollFrequency"])
        self._timeout = float(params.get("hostPollTimeoutSeconds", 5))
        self._task = asyncio.create_task(self._poll(), name=f"{self.identifier} /readyz probes")

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        await self.stop()
        total = self.successes + self.failures
        percentage = 100.0 * self.successes / total if total else 100.0
        summary = {
            "clusterMetrics": {
                "availabilityPercentage": percentage,
                "longestUnavailablePeriod": go_duration(self._longest * self._interval),
            },
            "hostMetrics": None,
        }
        threshold = float(params.get("threshold", 0.0))
        verdict = Verdict(
            "api_availability",
            percentage,
            threshold,
            "%",
            percentage >= threshold,
            f"{self.successes} of {total} /readyz probes answered; expected >= {threshold:g}%",
        )
        return MeasurementResult(verdicts=[verdict], summaries=[SummaryFile(self.method, summary)])

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
