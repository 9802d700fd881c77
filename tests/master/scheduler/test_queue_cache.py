"""SchedulingQueue and SchedulerCache behaviour with a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

from kubemark.master.scheduler.cache import SchedulerCache
from kubemark.master.scheduler.pod_info import PodInfo, pod_info_from
from kubemark.master.scheduler.queue import SchedulingQueue

from .cluster import node_obj, pod_obj


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _info(name: str, priority: int = 0, **kw: Any) -> PodInfo:
    pod = pod_obj(name, **kw)
    pod["metadata"]["namespace"] = "default"
    pod["spec"]["priority"] = priority
    return pod_info_from(pod)


async def test_active_queue_orders_by_priority_then_age() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock)
    q.add(_info("old"))
    clock.now += 1
    q.add(_info("young"))
    q.add(_info("vip", priority=100))
    order = [(await q.pop()).key for _ in range(3)]
    assert order == ["default/vip", "default/old", "default/young"]
    assert q.scheduling_cycle == 3


async def test_backoff_doubles_from_one_second_to_ten() -> None:
    q = SchedulingQueue(FakeClock())
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_unschedulable_pod_moves_on_cluster_event_respecting_backoff() -> None:
    clock = FakeClock()
    counts: list[dict[str, int]] = []
    q = SchedulingQueue(clock, on_change=counts.append)
    q.add(_info("p"))
    qp = await q.pop()
    cycle = q.scheduling_cycle
    q.add_unschedulable(qp, cycle, ["Insufficient cpu"])
    assert q.where("default/p") == "unschedulable"
    assert counts[-1] == {"active": 0, "backoff": 0, "unschedulable": 1, "gated": 0}
    q.move_all_to_active_or_backoff()  # still inside its 1 s backoff
    assert q.where("default/p") == "backoff"
    assert q.flush_backoff_completed() == 0
    clock.now += 1.01
    assert q.flush_backoff_completed() == 1
    assert q.where("default/p") == "active"
    assert (await asyncio.wait_for(q.pop(), 1)).attempts == 2


async def test_move_request_during_attempt_sends_failure_to_backoff() -> None:
    q = SchedulingQueue(FakeClock())
    q.add(_info("p"))
    qp = await q.pop()
    cycle = q.scheduling_cycle
    q.move_all_to_active_or_backoff()  # e.g. a node was added while we were deciding
    q.add_unschedulable(qp, cycle)
    assert q.where("default/p") == "backoff"


async def test_leftover_unschedulable_pods_retried_after_five_minutes() -> None:
    clock = FakeClock()
    q = SchedulingQueue(clock)
    q.add(_info("p"))
    q.add_unschedulable(await q.pop(), q.scheduling_cycle)
    assert q.flush_unschedulable_leftover() == 0
    clock.now += 301
    assert q.flush_unschedulable_leftover() == 1
    assert q.where("default/p") == "active"


async def test_gated_status_only_updates_and_deletes() -> None:
    q = SchedulingQueue(FakeClock())
    gated = _info("g", schedulingGates=[{"name": "wait"}])
    q.add(gated)
    assert q.counts()["gated"] == 1
    q.update(_info("g"))  # gate removed
    assert q.where("default/g") == "active"
    q.add(_info("u"))
    first = await q.pop()
    assert first.key == "default/g"
    q.add_unschedulable(first, q.scheduling_cycle)
    q.update(_info("g"), relevant=False)  # our own status patch
    assert q.where("default/g") == "unschedulable"
    q.update(_info("g", labels={"changed": "yes"}), relevant=True)
    assert q.where("default/g") in ("backoff", "active")
    q.delete("default/g")
    q.delete("default/u")
    assert q.counts() == {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
    # A pod deleted while being scheduled is not re-queued by the failure path.
    q.add(_info("x"))
    x = await q.pop()
    q.delete("default/x")
    q.add_unschedulable(x, q.scheduling_cycle)
    assert "default/x" not in q


async def test_pop_waits_until_a_pod_arrives_and_close_releases() -> None:
    q = SchedulingQueue(FakeClock())
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add(_info("late"))
    assert (await asyncio.wait_for(waiter, 1)).key == "default/late"
    closing = asyncio.create_task(q.pop())
    q.close()
    assert await asyncio.wait_for(closing, 1) is None


def test_cache_assume_confirm_forget_and_node_removal() -> None:
    cache = SchedulerCache()
    cache.add_node(node_obj("n1"))
    p = _info("p", cpu="300m")
    cache.assume(p, "n1")
    assert cache.nodes["n1"].requested.milli_cpu == 300 and "default/p" in cache.assumed
    confirmed = pod_obj("p", cpu="300m")
    confirmed["metadata"]["namespace"] = "default"
    confirmed["spec"]["nodeName"] = "n1"
    cache.add_pod(pod_info_from(confirmed))
    assert cache.nodes["n1"].requested.milli_cpu == 300 and not cache.assumed
    cache.forget("default/p")  # confirmed pods are not forgotten
    assert cache.nodes["n1"].requested.milli_cpu == 300
    q = _info("q", cpu="200m")
    cache.assume(q, "n1")
    cache.forget("default/q")
    assert cache.nodes["n1"].requested.milli_cpu == 300
    # A pod on a node the informer has not reported yet is counted once the node arrives.
    other = pod_obj("o", cpu="100m")
    other["metadata"]["namespace"] = "default"
    other["spec"]["nodeName"] = "n2"
    cache.add_pod(pod_info_from(other))
    assert cache.node_names() == ["n1"]
    cache.add_node(node_obj("n2"))
    assert cache.node_names() == ["n1", "n2"] and cache.nodes["n2"].requested.milli_cpu == 100
    assert cache.update_node(node_obj("n2"), node_obj("n2")) is False  # nothing relevant changed
    assert cache.update_node(node_obj("n2"), node_obj("n2", cpu="2")) is True
    cache.remove_node(node_obj("n2"))
    assert cache.node_names() == ["n1"]
    cache.remove_pod("default/o")
    assert "n2" not in cache.nodes
