"""NodeHealthTracker: whether too many nodes were unhealthy at any moment between `start` and `gather`.

As clusterloader2's measurement: nodes (`labelSelector`/`fieldSelector`) are followed by a watch; a node is
healthy when Ready, schedulable and without NoSchedule/NoExecute taints. Whenever more than
max(`threshold` (default 4), `ratio` (default 0.01) x nodes) are unhealthy, the threshold counts as reached.
`gather` writes the "NodeHealthTracker" summary {runningNodes, nodeCount, thresholdReached} and the
`node_health` verdict, failed with the first violation's message when the threshold was reached.
`action: stop` stops tracking without a summary (clusterloader2's stop); a gather after it has nothing to
report (clusterloader2 fails it: "has not been started"), so it logs that and returns nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.client import resource_path
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.node_startup import node_ready
from kubemark.measure.object_selector import ObjectSelector
from kubemark.measure.results import MeasurementResult, SummaryFile, Verdict
from kubemark.measure.watch import ObjectWatch

__all__ = ["NodeHealthTracker", "node_healthy"]

log = logging.getLogger(__name__)

NODES = resource_path("", "v1", "nodes")
BLOCKING_TAINTS = ("NoSchedule", "NoExecute")


def node_healthy(node: Mapping[str, Any]) -> bool:
    """Ready, schedulable and untainted (clusterloader2's IsNodeSchedulableAndUntainted)."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable") or not node_ready(dict(node)):
        return False
    return not any(t.get("effect") in BLOCKING_TAINTS for t in spec.get("taints") or [])


class _Health:
    """A nodes-watch subscriber: per node, healthy or not; the first moment the threshold was exceeded."""

    def __init__(self, selector: ObjectSelector, threshold: int, ratio: float) -> None:
        self.selector = selector
        self.threshold = threshold
        self.ratio = ratio
        self.nodes: dict[str, bool] = {}
        self.violation = ""

    def on_event(self, kind: str, old: Any, new: dict[str, Any], received: float) -> None:
        name = str((new.get("metadata") or {}).get("name", ""))
        if kind == "DELETED" or not self.selector.matches(new):
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node_healthy(new)
        self.check()

    def check(self) -> None:
        total = len(self.nodes)
        unhealthy = [name for name, healthy in self.nodes.items() if not healthy]
        limit = max(float(self.threshold), total * self.ratio)
        if total and len(unhealthy) > limit and not self.violation:
            self.violation = (
                f"number of unhealthy nodes ({len(unhealthy)}) is above threshold ({limit:g}), total nodes: {total}, "
                f"example unhealthy node: {sorted(unhealthy)[0]}"
            )


class NodeHealthTracker(MeasurementBase):
    method: ClassVar[str] = "NodeHealthTracker"
    actions: ClassVar[frozenset[str] | None] = frozenset({"start", "gather", "stop"})

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._nodes: ObjectWatch | None = None
        self._health: _Health | None = None

    async def start(self, params: Mapping[str, Any]) -> None:
        self._health = _Health(
            ObjectSelector.from_params(params), int(params.get("threshold", 4)), float(params.get("ratio", 0.01))
        )
        self._nodes = await self.ctx.watch(NODES)
        for node in self._nodes.list():
            self._health.on_event("ADDED", None, node, 0.0)
        self._nodes.subscribe(self._health)

    async def act(self, action: str, params: Mapping[str, Any]) -> MeasurementResult | None:
        if action != "stop":
            return await super().act(action, params)
        await self.stop()
        self._health = None
        return None

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        health = self._health
        if health is None:
            log.warning(
                "%s: gathered while not running (never started, or stopped): nothing to report", self.identifier
            )
            return MeasurementResult()
        await self.stop()
        running = sum(1 for healthy in health.nodes.values() if healthy)
        summary = {"runningNodes": running, "nodeCount": len(health.nodes), "thresholdReached": bool(health.violation)}
        limit = max(float(health.threshold), len(health.nodes) * health.ratio)
        verdict = Verdict(
            "node_health",
            float(len(health.nodes) - running),
            limit,
            "nodes",
            not health.violation,
            health.violation or f"{running} of {len(health.nodes)} nodes healthy at gather; threshold never reached",
        )
        return MeasurementResult(verdicts=[verdict], summaries=[SummaryFile(self.method, summary)])

    async def stop(self) -> None:
        if self._nodes is not None and self._health is not None:
            self._nodes.unsubscribe(self._health)
