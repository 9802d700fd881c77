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
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from kubemark.load.config import ChaosMonkeyConfig
from kubemark.node_killer import NodeFailureTarget, NodeKiller

__all__ = ["ChaosMonkey"]

log = logging.getLogger(__name__)


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
