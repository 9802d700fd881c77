"""chaosMonkey: simulated node failures on hollow nodes, with clusterloader2's NodeKiller timing.

clusterloader2 (pkg/chaos) waits `wait.Jitter(interval, jitterFactor)` (interval + rand*factor*interval, a factor
<= 0 meaning 1), then repeats until the test's steps end: pick `ceil(failureRate * candidates)` random nodes among
those never failed before (and not excluded), fail them all at once, wait `simulatedDowntime` (cut short when the
steps end), bring them back, then wait the interval again - jittered only when jitterFactor > 0 (`wait.JitterUntil`,
sliding: the wait starts after the failed nodes are back). A real node "fails" by `systemctl stop docker kubelet`
and is repaired by a reboot; a hollow node fails by stopping its kubelet, proxy and node-problem-detector (no
heartbeats, no Lease renewals: the node controller marks it NotReady and evicts) and is repaired by starting a fresh
hollow node of the same name. The hollow nodes are reached through `NodeFailureTarget` (the run's NodePool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from kubemark.load.config import ChaosMonkeyConfig, NodeFailureConfig

__all__ = ["ChaosMonkey", "NodeFailureEvent", "NodeFailureTarget", "NodeKiller", "jitter"]

log = logging.getLogger(__name__)

STOP_SERVICES, REBOOT = "stopServices", "rebootNode"


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


class ChaosMonkey:
    """Runs the configured failures while the test's steps run (`async with monkey.running(): ...`)."""

    def __init__(
        self,
        config: ChaosMonkeyConfig,
        target: NodeFailureTarget | None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.node_killer: NodeKiller | None = None
        if config.node_failure is not None and target is None:
            # An existing cluster's own nodes are not ours to stop (clusterloader2 would ssh into them).
            log.warning("chaosMonkey.nodeFailure ignored: this run started no hollow nodes to fail")
        elif config.node_failure is not None and target is not None:
            self.node_killer = NodeKiller(
                config.node_failure, target, excluded=config.excluded_nodes, rng=rng, clock=clock, sleep=sleep
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Fail nodes in the background for the duration of the block; on exit, bring failed nodes back
        (their downtime cut short, as clusterloader2's stop channel does) before returning."""
        if self.node_killer is None:
            yield
            return
        stop = asyncio.Event()
        task = asyncio.create_task(self.node_killer.run(stop), name="chaos monkey")
        try:
            yield
        finally:
            stop.set()
            await task
            log.info("%s", self.summary())

    def summary(self) -> str:
        if self.node_killer is None:
            return ""
        return "Summary of Chaos Monkey execution\n" + self.node_killer.summary()
