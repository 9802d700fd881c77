"""KCMWorkQueueDepthMetrics: the smallest depth each kube-controller-manager work queue had during the test.

As clusterloader2's measurement: from `start`, kube-controller-manager's /metrics is read every second and each
`workqueue_depth{name}` keeps its minimum (a queue whose minimum stays high never caught up with its work);
`gather` stops sampling and writes the summary "KCMWorkQueueDepthMetrics" (PerfData v1, one item per queue:
data {Min}, labels {Resource: <queue name>}, no unit). clusterloader2 fails the gather when there is no
`horizontalpodautoscaler` queue, and with `hpaAllowedBacklog` >= 0 reports a violation when that queue's minimum
is above it (here the verdict `kcm_workqueue_depth horizontalpodautoscaler`).

clusterloader2 reads the controller manager over SSH to the master; here it is `MeasureContext.component_metrics`
["kube-controller-manager"] (or the pod proxy of a kube-system kube-controller-manager pod); without either the
measurement is reported as not measured here. The first sample is taken at start (clusterloader2's one second
later). kubemark's embedded controller manager exposes `workqueue_depth` for its controllers but runs no HPA
controller, so against it the gather fails as clusterloader2's does on a cluster without that queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.aio import cancel_and_wait
from kubemark.measure.component_metrics import CONTROLLER_MANAGER
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.prometheus_samples import parse_samples
from kubemark.measure.results import MeasurementResult, MeasurementWarning, SummaryFile, Verdict

__all__ = ["KCMWorkQueueDepthMetrics", "workqueue_depths"]

log = logging.getLogger(__name__)

HPA_QUEUE = "horizontalpodautoscaler"
UNREACHABLE = (
    "kube-controller-manager's /metrics is not reachable from this run (clusterloader2 reads it over SSH to the master)"
)


def workqueue_depths(text: str) -> dict[str, float]:
    """`workqueue_depth` by queue `name` from a /metrics text (samples without a name are skipped)."""
    return {
        s.labels["name"]: s.value for s in parse_samples(text) if s.name == "workqueue_depth" and "name" in s.labels
    }


class KCMWorkQueueDepthMetrics(MeasurementBase):
    method: ClassVar[str] = "KCMWorkQueueDepthMetrics"
    sampling_interval: ClassVar[float] = 1.0  # seconds between samples, as clusterloader2

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self.minimum: dict[str, float] = {}  # queue -> the smallest depth sampled
        self._reachable = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def check_params(cls, action: str | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        if "hpaAllowedBacklog" in params:
            try:
                float(params["hpaAllowedBacklog"])
            except (TypeError, ValueError):
                return [("hpaAllowedBacklog", f"expected a number, got {params['hpaAllowedBacklog']!r}")]
        return []

    async def sample(self) -> bool:
        """One reading of every queue's depth into the minimums; False when the controller manager is unreachable."""
        text = await self.metrics_text(CONTROLLER_MANAGER)
        if text is None:
            return False
        for name, depth in workqueue_depths(text).items():
            self.minimum[name] = min(depth, self.minimum.get(name, depth))
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.sampling_interval)
            try:
                await self.sample()
            except Exception as exc:  # clusterloader2 logs a failed collection and keeps sampling
                log.error("%s: failed to collect KCM workqueue depth: %s", self.identifier, exc)

    async def start(self, params: Mapping[str, Any]) -> None:
        if self._task is not None:
            raise RuntimeError(f"{self.method}: measurement already running")
        self._reachable = await self.sample()
        if not self._reachable:
            log.warning("%s: %s", self.identifier, UNREACHABLE)
            return
        self._task = asyncio.create_task(self._poll(), name="kcm workqueue depth sampler")

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        await self.stop()
        if not self._reachable:
            return MeasurementResult(warnings=[MeasurementWarning(self.identifier, self.method, UNREACHABLE)])
        if HPA_QUEUE not in self.minimum:
            raise RuntimeError(
                f"{self.identifier}: can't find work queue depth metric for {HPA_QUEUE} "
                f"(queues: {', '.join(sorted(self.minimum)) or 'none'})"
            )
        items = [{"data": {"Min": v}, "unit": "", "labels": {"Resource": k}} for k, v in sorted(self.minimum.items())]
        result = MeasurementResult(summaries=[SummaryFile(self.method, {"version": "v1", "dataItems": items})])
        allowed = float(params.get("hpaAllowedBacklog", -1))
        if allowed >= 0:
            backlog = self.minimum[HPA_QUEUE]
            passed = backlog <= allowed
            detail = (
                f"HPA work queue backlog {backlog:g} exceeds the allowed threshold {allowed:g}"
                if not passed
                else f"HPA work queue backlog {backlog:g} within the allowed {allowed:g}"
            )
            result.verdicts.append(
                Verdict(f"kcm_workqueue_depth {HPA_QUEUE}", backlog, allowed, "items", passed, detail)
            )
        return result

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
