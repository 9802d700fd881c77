"""JobLifecycleLatency: per Job, creation -> start -> completion, as clusterloader2's measurement.

From `start`, a watch on batch/v1 Jobs (`namespace`/`labelSelector`/`fieldSelector`) records each Job's
creationTimestamp, status.startTime and status.completionTime the first time it sees them. `gather` waits (up
to `timeout`, default 10m, as WaitForFinishedJobs) until every Job it saw created has completed, then writes the
"JobLifecycleLatency_<Identifier>" PerfData: create_to_start and start_to_complete, Perc50/90/99 in ms over the
Jobs that made each transition. The times are the API server's (whole seconds, as clusterloader2 reads them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.kube.durations import parse_duration
from kubemark.kube.meta import parse_time
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.object_selector import ObjectSelector
from kubemark.measure.percentiles import percentile
from kubemark.measure.results import MeasurementResult, SummaryFile
from kubemark.measure.watch import ObjectWatch

__all__ = ["JobLifecycleLatency", "JobTransitions"]

log = logging.getLogger(__name__)

JOBS = resource_path("batch", "v1", "jobs")
DEFAULT_TIMEOUT = 10 * 60.0
CREATED, STARTED, COMPLETED = "JobCreated", "JobStarted", "JobCompleted"
TRANSITIONS = {"create_to_start": (CREATED, STARTED), "start_to_complete": (STARTED, COMPLETED)}


class JobTransitions:
    """A jobs-watch subscriber keeping, per Job, the first time each phase was seen (epoch seconds)."""

    def __init__(self, selector: ObjectSelector) -> None:
        self.selector = selector
        self.times: dict[str, dict[str, float]] = {}

    def on_event(self, kind: str, old: Any, new: dict[str, Any], received: float) -> None:
        if kind == "DELETED" or not self.selector.matches(new):
            return
        meta, status = new.get("metadata") or {}, new.get("status") or {}
        entry = self.times.setdefault(f"{meta.get('namespace', '')}/{meta.get('name', '')}", {})
        for phase, stamp in (
            (CREATED, meta.get("creationTimestamp")),
            (STARTED, status.get("startTime")),
            (COMPLETED, status.get("completionTime")),
        ):
            if stamp and phase not in entry:
                entry[phase] = parse_time(str(stamp))

    def count(self, phase: str) -> int:
        return sum(1 for entry in self.times.values() if phase in entry)

    def perfdata(self) -> dict[str, Any]:
        """measurementutil.LatencyMapToPerfData of the transitions, in ms."""
        items = []
        for name, (start, end) in TRANSITIONS.items():
            samples = sorted(e[end] - e[start] for e in self.times.values() if start in e and end in e)
            data = {f"Perc{p}": percentile(samples, p, presorted=True) * 1000.0 for p in (50, 90, 99)}
            items.append({"data": data, "unit": "ms", "labels": {"Metric": name}})
        return {"version": "1.0", "dataItems": items}


class JobLifecycleLatency(MeasurementBase):
    method: ClassVar[str] = "JobLifecycleLatency"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._jobs: ObjectWatch | None = None
        self._transitions: JobTransitions | None = None

    async def start(self, params: Mapping[str, Any]) -> None:
        self._transitions = JobTransitions(ObjectSelector.from_params(params))
        self._jobs = await self.ctx.watch(JOBS)
        for job in self._jobs.list():
            self._transitions.on_event("ADDED", None, job, 0.0)
        self._jobs.subscribe(self._transitions)

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        jobs, transitions = self._jobs, self._transitions
        if jobs is None or transitions is None:
            return MeasurementResult()
        timeout = parse_duration(params.get("timeout", DEFAULT_TIMEOUT))
        if not await jobs.wait_until(lambda: transitions.count(CREATED) == transitions.count(COMPLETED), timeout):
            log.warning(
                "%s: %d of %d jobs completed within %gs; gathering what completed",
                self.identifier,
                transitions.count(COMPLETED),
                transitions.count(CREATED),
                timeout,
            )
        await self.stop()
        return MeasurementResult(summaries=[SummaryFile(f"{self.method}_{self.identifier}", transitions.perfdata())])

    async def stop(self) -> None:
        if self._jobs is not None and self._transitions is not None:
            self._jobs.unsubscribe(self._transitions)
