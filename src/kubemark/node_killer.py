"""Simulated node failures on hollow nodes (clusterloader2's NodeKiller): one engine for the test config's
`chaosMonkey.nodeFailure` (kubemark.load.chaos) and the ChaosMonkey measurement (kubemark.measure), so it lives
beside both rather than in either (measurements never import the player).

A failure stops a hollow node's kubelet, proxy and NPD (no heartbeats, the Node object stays) for
`simulatedDowntime`, then a fresh node of the same name starts, as a rebooted machine's kubelet would.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from kubemark.kube.durations import parse_duration
from kubemark.kube.json_keys import fold_keys

__all__ = [
    "REBOOT",
    "STOP_SERVICES",
    "NodeFailureConfig",
    "NodeFailureEvent",
    "NodeFailureTarget",
    "NodeKiller",
    "jitter",
]

log = logging.getLogger(__name__)

STOP_SERVICES, REBOOT = "stopServices", "rebootNode"

Duration = Annotated[float, BeforeValidator(parse_duration)]


class NodeFailureConfig(BaseModel):
    """Simulated node failures (clusterloader2's NodeKiller): every `interval` (jittered), `failureRate` of the
    nodes not failed yet stop for `simulatedDowntime`, then come back."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    failure_rate: float = Field(ge=0, le=1)
    interval: Duration = Field(gt=0)
    jitter_factor: float = 0.0
    simulated_downtime: Duration = 0.0

    @model_validator(mode="before")
    @classmethod
    def _match_keys_ignoring_case(cls, data: Any) -> Any:
        return fold_keys(cls, data)


class NodeFailureTarget(Protocol):
    """The nodes a chaos monkey may fail: the hollow node pool of the run."""

    def node_names(self) -> list[str]: ...

    async def stop_node(self, name: str) -> None: ...

    async def start_node(self, name: str) -> None: ...


@dataclass(frozen=True)
class NodeFailureEvent:
    at: float  # wall-clock seconds
    action: str  # stopServices | rebootNode
    node: str


def jitter(duration: float, max_factor: float, rng: random.Random) -> float:
    """apimachinery's wait.Jitter: duration + rand * max_factor * duration; max_factor <= 0 means 1."""
    if max_factor <= 0.0:
        max_factor = 1.0
    return duration + rng.random() * max_factor * duration


class NodeKiller:
    """Fails nodes of `target` on clusterloader2's NodeKiller schedule until `stop` is set."""

    def __init__(
        self,
        config: NodeFailureConfig,
        target: NodeFailureTarget,
        *,
        excluded: Iterable[str] = (),
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.target = target
        # Nodes failed once are never failed again (clusterloader2's killedNodes starts as the excluded set).
        self.killed: set[str] = set(excluded)
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self.events: list[NodeFailureEvent] = []

    async def _sleep_interruptible(self, seconds: float, stop: asyncio.Event) -> None:
        if stop.is_set() or seconds <= 0:
            return
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    def pick(self) -> list[str]:
        nodes = [n for n in sorted(self.target.node_names()) if n not in self.killed]
        self._rng.shuffle(nodes)
        count = math.ceil(self.config.failure_rate * len(nodes))
        log.info("NodeKiller: %d nodes available, wants to fail %d", len(nodes), count)
        return nodes[:count]

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.config.interval
        await self._sleep_interruptible(jitter(interval, self.config.jitter_factor, self._rng), stop)
        while not stop.is_set():
            try:
                await self.kill(self.pick(), stop)
            except Exception:
                log.exception("NodeKiller: failing nodes failed")
            period = (
                jitter(interval, self.config.jitter_factor, self._rng) if self.config.jitter_factor > 0 else interval
            )
            await self._sleep_interruptible(period, stop)

    async def kill(self, nodes: list[str], stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._fail(name, stop) for name in nodes))

    async def _fail(self, name: str, stop: asyncio.Event) -> None:
        self.killed.add(name)
        log.info("NodeKiller: stopping the hollow kubelet of %s to simulate a failure", name)
        self.events.append(NodeFailureEvent(self._clock(), STOP_SERVICES, name))
        try:
            await self.target.stop_node(name)
        except Exception as exc:
            log.error("NodeKiller: error while stopping node %s: %s", name, exc)
            return
        await self._sleep_interruptible(self.config.simulated_downtime, stop)
        log.info("NodeKiller: restarting %s to repair the node", name)
        self.events.append(NodeFailureEvent(self._clock(), REBOOT, name))
        try:
            await self.target.start_node(name)
        except Exception as exc:
            log.error("NodeKiller: error while restarting node %s: %s", name, exc)

    def summary(self) -> str:
        lines = ["NodeKiller: Recorded following events"]
        lines += [f"NodeKiller: At {e.at:.3f} {e.action} happened for node {e.node}" for e in self.events]
        return "\n".join(lines)
