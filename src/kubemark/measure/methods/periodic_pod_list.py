"""PeriodicPodList: a LIST of every pod (resourceVersion=0, from the watch cache) every 2 minutes between
`start` and `gather`, as clusterloader2's measurement: background read load on the API server, whose latency is
logged; it writes no summary, as upstream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.aio import cancel_and_wait
from kubemark.client import resource_path
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult

__all__ = ["PeriodicPodList"]

log = logging.getLogger(__name__)

INTERVAL = 120.0
PODS = resource_path("", "v1", "pods")


class PeriodicPodList(MeasurementBase):
    method: ClassVar[str] = "PeriodicPodList"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self.lists = 0
        self._task: asyncio.Task[None] | None = None

    async def list_once(self) -> None:
        started = time.monotonic()
        try:
            await self.ctx.client.list(PODS, resource_version="0")
            self.lists += 1
            log.info("%s: listing pods took %.3fs", self.identifier, time.monotonic() - started)
        except Exception as exc:
            log.warning("%s: failed to list pods: %s", self.identifier, exc)

    async def _loop(self) -> None:
        while True:
            await self.list_once()  # wait.Until runs it at once, then every interval
            await asyncio.sleep(INTERVAL)

    async def start(self, params: Mapping[str, Any]) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"{self.identifier} pod lists")

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        await self.stop()
        return MeasurementResult()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
