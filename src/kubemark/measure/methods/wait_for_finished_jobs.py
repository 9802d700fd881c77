"""WaitForFinishedJobs: a barrier until every Job matching `labelSelector` has completed or failed;
`timeout`/`operationTimeout` bounds each wait."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubemark.client import object_path
from kubemark.measure.finished_jobs import FinishedJobsBarrier
from kubemark.measure.measurement import BarrierMeasurement
from kubemark.measure.watch import ObjectWatch


class WaitForFinishedJobs(BarrierMeasurement):
    def path(self, params: Mapping[str, Any]) -> str:
        return object_path({"apiVersion": "batch/v1", "kind": "Job"}, "")

    def waiter(
        self, objects: ObjectWatch, selector: str, lister: Callable[[], Awaitable[list[dict[str, Any]]]]
    ) -> FinishedJobsBarrier:
        return FinishedJobsBarrier(
            objects, label_selector=selector, namespace_prefix=self.ctx.namespace_prefix, lister=lister
        )
