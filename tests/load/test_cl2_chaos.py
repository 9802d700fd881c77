"""chaosMonkey: clusterloader2's NodeKiller schedule on a virtual clock with a recording target, and the NodePool
seam that stops a hollow node's kubelet (its Lease stops being renewed) and starts it again."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kubemark.client import ClusterCredentials, RestClient, resource_path
from kubemark.hollow.config import node_config_from_dict
from kubemark.hollow.pool import NodePool
from kubemark.load.chaos import ChaosMonkey
from kubemark.load.config import ChaosMonkeyConfig
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.node_killer import REBOOT, STOP_SERVICES, NodeFailureConfig, NodeKiller, jitter


class VirtualTime:
    """A clock whose sleeps complete in deadline order as soon as the event loop is otherwise idle."""

    def __init__(self) -> None:
        self.now = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.now + delay, next(self._seq), fut))
        await fut

    async def advance_to(self, when: float) -> None:
        """Run every sleeper due up to `when`, in order."""
        while True:
            for _ in range(30):
                await asyncio.sleep(0)
            self._waiters = [w for w in self._waiters if not w[2].cancelled()]
            heapq.heapify(self._waiters)
            if not self._waiters or self._waiters[0][0] > when:
                self.now = max(self.now, when)
                return
            deadline, _, fut = heapq.heappop(self._waiters)
            self.now = deadline
            fut.set_result(None)


class RecordingNodes:
    def __init__(self, names: list[str], clock: Callable[[], float]) -> None:
        self.up = set(names)
        self.all = list(names)
        self.log: list[tuple[float, str, str]] = []
        self._clock = clock

    def node_names(self) -> list[str]:
        return sorted(self.up)

    async def stop_node(self, name: str) -> None:
        self.up.discard(name)
        self.log.append((self._clock(), "stop", name))

    async def start_node(self, name: str) -> None:
        self.up.add(name)
        self.log.append((self._clock(), "start", name))


def test_jitter_is_apimachinerys() -> None:
    rng = random.Random(1)
    first = random.Random(1).random()
    assert jitter(60, 2.0, rng) == pytest.approx(60 + first * 2.0 * 60)
    assert jitter(60, 0.0, random.Random(1)) == pytest.approx(60 + first * 60)  # factor <= 0 means 1


async def test_node_killer_schedule_downtime_and_no_second_failure() -> None:
    clock = VirtualTime()
    nodes = RecordingNodes([f"n-{i}" for i in range(4)], clock.time)
    config = NodeFailureConfig(failure_rate=0.5, interval=60, jitter_factor=0.0, simulated_downtime=30)
    rng = random.Random(5)
    killer = NodeKiller(config, nodes, excluded=["n-0"], rng=rng, clock=clock.time, sleep=clock.sleep)
    first_wait = jitter(60, 0.0, random.Random(5))  # the initial wait is jittered even with factor 0
    stop = asyncio.Event()
    task = asyncio.ensure_future(killer.run(stop))

    await clock.advance_to(first_wait - 0.001)
    assert nodes.log == []
    await clock.advance_to(first_wait)
    # ceil(0.5 * 3 candidates) = 2 nodes, never the excluded one.
    stopped = [n for _, what, n in nodes.log if what == "stop"]
    assert len(stopped) == 2 and "n-0" not in stopped
    assert all(at == pytest.approx(first_wait) for at, _, _ in nodes.log)

    await clock.advance_to(first_wait + 30)  # simulatedDowntime later they are back
    assert sorted(n for _, what, n in nodes.log if what == "start") == sorted(stopped)
    assert nodes.up == set(nodes.all)

    # The next round comes `interval` after the nodes are back (sliding, unjittered with factor 0) and fails
    # ceil(0.5 * 1) = 1 node: the only one neither excluded nor failed before.
    await clock.advance_to(first_wait + 30 + 60)
    third = [n for at, what, n in nodes.log if what == "stop" and at > first_wait]
    assert third == sorted(set(nodes.all) - {"n-0", *stopped})
    # Ending the test cuts the downtime short: the node comes straight back.
    stop.set()
    await clock.advance_to(clock.now)
    await asyncio.wait_for(task, 1)
    assert nodes.up == set(nodes.all)
    assert [e.action for e in killer.events].count(STOP_SERVICES) == 3
    assert [e.action for e in killer.events].count(REBOOT) == 3
    assert "NodeKiller: Recorded following events" in killer.summary()


async def test_chaos_monkey_without_node_failure_or_without_nodes_does_nothing() -> None:
    async with ChaosMonkey(ChaosMonkeyConfig(), None).running():
        pass
    config = ChaosMonkeyConfig(node_failure=NodeFailureConfig(failure_rate=1, interval=1))
    monkey = ChaosMonkey(config, None)  # an existing cluster's own nodes are not ours to stop
    assert monkey.node_killer is None
    async with monkey.running():
        pass


FAST: dict[str, Any] = {
    "heartbeat": {
        "leaseRenewInterval": 0.2,
        "statusUpdateFrequency": 0.2,
        "statusReportFrequency": 60,
        "npdPeriod": 60,
        "jitter": 0.0,
    },
    "proxy": {"minSyncPeriod": 0.05, "syncPeriod": 60},
}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll a server-side condition until it holds (state on the server, not a sleep standing in for it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        last = await check()
        if last:
            return last
        assert asyncio.get_running_loop().time() < deadline, f"condition not met within {timeout}s: {last!r}"
        await asyncio.sleep(0.05)


async def test_pool_stops_and_restarts_a_hollow_node() -> None:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    admin = RestClient(ClusterCredentials(server=server.url), qps=0, burst=1)
    pool = NodePool(2, node_config_from_dict(FAST), ClusterCredentials(server=server.url), prefix="chaos")
    try:
        await pool.start()
        assert await pool.wait_ready(10)
        lease_path = resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", name="chaos-0")

        async def renew_time() -> str:
            return str((await admin.get(lease_path))["spec"]["renewTime"])

        async def leases() -> bool:
            items, _ = await admin.list_all(resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease"))
            return {i["metadata"]["name"] for i in items} >= {"chaos-0", "chaos-1"}

        await eventually(leases)
        await pool.stop_node("chaos-0")
        assert pool.node_names() == ["chaos-1"] and pool.stopped == {"chaos-0": 0}
        stopped_at = await renew_time()
        other = resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", name="chaos-1")
        other_before = str((await admin.get(other))["spec"]["renewTime"])
        # The other node renews its Lease; the stopped one does not.
        await eventually(lambda: _changed(admin, other, other_before))
        assert await renew_time() == stopped_at

        await pool.start_node("chaos-0")
        assert sorted(pool.node_names()) == ["chaos-0", "chaos-1"] and pool.stopped == {}
        await eventually(lambda: _changed(admin, lease_path, stopped_at))
        assert await pool.wait_ready(10)
    finally:
        await pool.stop()
        await admin.close()
        await server.stop()


async def _changed(admin: RestClient, path: str, before: str) -> bool:
    return str((await admin.get(path))["spec"]["renewTime"]) != before
