"""ChaosMonkey: the measurement form of clusterloader2's chaos monkey — node failures between two steps.

`action: start` with a node failure config in Params (`failureRate`, `interval`, `jitterFactor`,
`simulatedDowntime`, as the test config's chaosMonkey.nodeFailure) starts failing hollow nodes on
clusterloader2's NodeKiller schedule (kubemark.node_killer); `action: stop` stops it, brings the failed nodes back
(their downtime cut short) and logs the NodeKiller summary; it collects no metrics, as clusterloader2's. The
instance lives for the whole test: a node failed under one start is never failed again under a later one
(clusterloader2 keeps its killedNodes). The nodes are `MeasureContext.node_failures` (the run's hollow
NodePool); a run without hollow nodes fails none and says so as a not-measured-here warning at stop (an existing
cluster's own nodes are not ours to stop; clusterloader2 would SSH into them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import ValidationError

from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult, MeasurementWarning
from kubemark.node_killer import NodeFailureConfig, NodeKiller

__all__ = ["ChaosMonkeyMeasurement"]

log = logging.getLogger(__name__)

NO_NODES = "this run started no hollow nodes to fail (an existing cluster's nodes are not ours to stop)"


def _failure_config(params: Mapping[str, Any]) -> NodeFailureConfig:
    return NodeFailureConfig.model_validate({k: v for k, v in params.items() if k != "action"})


class ChaosMonkeyMeasurement(MeasurementBase):
    method: ClassVar[str] = "ChaosMonkey"
    actions: ClassVar[frozenset[str] | None] = frozenset({"start", "stop"})
    stateful: ClassVar[bool] = True

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self.killed: set[str] = set()  # nodes failed under any start of this instance
        self.killer: NodeKiller | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._no_nodes = False

    @classmethod
    def check_params(cls, action: str | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """start's Params must be a node failure config (clusterloader2 decodes them into one)."""
        if action != "start":
            return []
        try:
            _failure_config(params)
        except ValidationError as exc:
            return [(".".join(str(p) for p in err["loc"]) or "Params", err["msg"]) for err in exc.errors()]
        return []

    async def start(self, params: Mapping[str, Any]) -> None:
        config = _failure_config(params)
        await self._halt()
        target = self.ctx.node_failures
        if target is None:
            log.warning("%s: %s", self.identifier, NO_NODES)
            self._no_nodes = True
            return
        self.killer = NodeKiller(config, target, excluded=self.killed)
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.killer.run(self._stop), name="chaos monkey measurement")

    async def act(self, action: str, params: Mapping[str, Any]) -> MeasurementResult | None:
        if action != "stop":
            return await super().act(action, params)
        if self._task is None and not self._no_nodes:
            raise RuntimeError(f"{self.identifier}: ChaosMonkey stopped before it was started")
        await self._halt()
        if self._no_nodes:
            return MeasurementResult(warnings=[MeasurementWarning(self.identifier, self.method, NO_NODES)])
        return None

    async def _halt(self) -> None:
        """Stop failing nodes and wait until the failed ones are back; remember which were failed."""
        task, stop, self._task, self._stop = self._task, self._stop, None, None
        if task is None or stop is None:
            return
        stop.set()
        await task
        if self.killer is not None:
            self.killed |= self.killer.killed
            log.info("Summary of Chaos Monkey execution\n%s", self.killer.summary())

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        """Never a config's action (ChaosMonkey has none); the end of a run gathers nothing from it."""
        return MeasurementResult()

    async def stop(self) -> None:
        await self._halt()
