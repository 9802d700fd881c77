"""PriorityAndFairness: classification, seats per level, fair queuing, rejection reasons, metrics."""

from __future__ import annotations

import asyncio

import pytest

from kubemark.master.apiserver.flowcontrol import (
    DEFAULT_PRIORITY_LEVELS,
    FlowSchema,
    PriorityAndFairness,
    PriorityLevel,
    Rejected,
    Ticket,
    deal_hand,
    nominal_limits,
)
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.request_info import RequestInfo, UserInfo, parse_request_info

NODE = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
ADMIN = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))
KCM = UserInfo("system:kube-controller-manager", ("system:authenticated",))
SA = UserInfo("system:serviceaccount:ns:app", ("system:serviceaccounts", "system:authenticated"))
ANON = UserInfo("system:anonymous", ("system:unauthenticated",))

LEASE_PUT = parse_request_info("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1")
NODE_STATUS = parse_request_info("PATCH", "/api/v1/nodes/n1/status")
POD_STATUS = parse_request_info("PATCH", "/api/v1/namespaces/ns/pods/p/status")
POST_EVENT = parse_request_info("POST", "/api/v1/namespaces/ns/events")
GET_POD = parse_request_info("GET", "/api/v1/namespaces/ns/pods/p")
WATCH = parse_request_info("GET", "/api/v1/pods", {"watch": "true"})
HEALTHZ = parse_request_info("GET", "/healthz")
KCM_LEASE = parse_request_info("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kcm")


def _classified(apf: PriorityAndFairness, user: UserInfo, info: RequestInfo) -> tuple[str, str]:
    schema, level = apf.classify(user, info)
    return schema.name, level.config.name


def test_default_schemas_classify_as_upstream() -> None:
    apf = PriorityAndFairness()
    assert _classified(apf, NODE, LEASE_PUT) == ("system-node-high", "node-high")
    assert _classified(apf, NODE, NODE_STATUS) == ("system-node-high", "node-high")
    assert _classified(apf, NODE, POD_STATUS) == ("system-nodes", "system")
    assert _classified(apf, NODE, POST_EVENT) == ("system-nodes", "system")
    assert _classified(apf, ADMIN, POD_STATUS) == ("exempt", "exempt")
    assert _classified(apf, ANON, HEALTHZ) == ("probes", "exempt")
    assert _classified(apf, KCM, KCM_LEASE) == ("system-leader-election", "leader-election")
    assert _classified(apf, KCM, POD_STATUS) == ("kube-controller-manager", "workload-high")
    assert _classified(apf, SA, GET_POD) == ("service-accounts", "workload-low")
    assert _classified(apf, BOB, GET_POD) == ("global-default", "global-default")
    assert _classified(apf, UserInfo("groupless"), GET_POD) == ("catch-all", "catch-all")


def test_nominal_limits_split_the_server_limit_by_shares() -> None:
    limits = nominal_limits(DEFAULT_PRIORITY_LEVELS, 600)
    # ceil(600 * shares / 245): upstream's figures for the default 400 + 200 in-flight.
    assert limits == {
        "system": 74,
        "node-high": 98,
        "leader-election": 25,
        "workload-high": 98,
        "workload-low": 245,
        "global-default": 49,
        "catch-all": 13,
    }
    assert "exempt" not in limits


def test_deal_hand_is_distinct_in_range_and_stable() -> None:
    for flow in ("a", "b", "system-nodes/system:node:n1", "x" * 100):
        hand = deal_hand(flow, 64, 6)
        assert len(set(hand)) == 6 and all(0 <= i < 64 for i in hand)
        assert deal_hand(flow, 64, 6) == hand
    assert sorted(deal_hand("a", 4, 8)) == [0, 1, 2, 3]  # a hand as large as the deck is the deck
    hands = {tuple(deal_hand(f"flow-{i}", 64, 6)) for i in range(200)}
    assert len(hands) > 190  # flows spread over the queues


def _small(server_limit: int = 1, **kwargs: object) -> PriorityAndFairness:
    return PriorityAndFairness(server_limit, **kwargs)  # type: ignore[arg-type]


async def _waiting(apf: PriorityAndFairness, level: str, n: int) -> None:
    while apf.waiting(level) < n:
        await asyncio.sleep(0)


async def test_a_full_level_queues_and_a_freed_seat_dispatches() -> None:
    apf = _small()
    assert apf.limit("system") == 1
    first = await apf.admit(NODE, POD_STATUS)
    assert first.waited == 0 and apf.executing("system") == 1
    second = asyncio.create_task(apf.admit(NODE, POD_STATUS))
    await _waiting(apf, "system", 1)
    # Another level is not held up by the full one: lease renewals have their own seats.
    lease = await apf.admit(NODE, LEASE_PUT)
    assert lease.priority_level == "node-high"
    apf.finish(first)
    ticket = await second
    assert ticket.waited > 0 and apf.executing("system") == 1 and apf.waiting("system") == 0
    apf.finish(ticket)
    apf.finish(lease)
    assert apf.executing("system") == 0 and apf.executing("node-high") == 0


async def test_exempt_and_long_running_requests_never_wait() -> None:
    apf = _small()
    held = [await apf.admit(ADMIN, POD_STATUS) for _ in range(50)]
    watches = [await apf.admit(NODE, WATCH) for _ in range(50)]
    assert apf.executing("exempt") == 0  # exempt levels have no seats to take
    for ticket in held + watches:
        apf.finish(ticket)
    assert apf.waiting("system") == 0


async def test_queues_are_served_in_turn_so_one_flow_cannot_starve_another() -> None:
    level = PriorityLevel("only", shares=1, queues=64, hand_size=1, queue_length_limit=100)
    schema = FlowSchema("per-user", 1, "only")
    apf = PriorityAndFairness(1, schemas=[schema], levels=[level])
    busy, quiet = UserInfo("busy"), UserInfo("quiet")
    assert deal_hand("per-user/busy", 64, 1) != deal_hand("per-user/quiet", 64, 1)

    order: list[str] = []

    async def call(user: UserInfo, tag: str) -> None:
        ticket = await apf.admit(user, POD_STATUS)
        order.append(tag)
        apf.finish(ticket)

    holder = await apf.admit(busy, POD_STATUS)
    tasks = [asyncio.create_task(call(busy, f"busy{i}")) for i in range(10)]
    await _waiting(apf, "only", 10)
    tasks.append(asyncio.create_task(call(quiet, "quiet")))
    await _waiting(apf, "only", 11)
    apf.finish(holder)
    await asyncio.gather(*tasks)
    # FIFO would serve the quiet flow last; round robin across queues serves it second.
    assert order.index("quiet") <= 1
    assert [t for t in order if t.startswith("busy")] == [f"busy{i}" for i in range(10)]


async def test_rejections_queue_full_time_out_and_no_queues() -> None:
    metrics = APIServerMetrics(process_metrics=False)
    level = PriorityLevel("tiny", shares=1, queues=1, hand_size=1, queue_length_limit=2)
    levels = [level, PriorityLevel("reject", shares=1)]
    schemas = [FlowSchema("to-reject", 1, "reject", users=frozenset({"r"})), FlowSchema("rest", 2, "tiny")]
    apf = PriorityAndFairness(2, schemas=schemas, levels=levels, wait_limit=0.2, metrics=metrics)
    holder = await apf.admit(BOB, POD_STATUS)
    waiters = [asyncio.create_task(apf.admit(BOB, POD_STATUS)) for _ in range(2)]
    await _waiting(apf, "tiny", 2)
    with pytest.raises(Rejected) as full:
        await apf.admit(BOB, POD_STATUS)
    assert full.value.reason == "queue-full"
    for task in waiters:
        with pytest.raises(Rejected) as late:
            await task  # nobody frees the seat within wait_limit
        assert late.value.reason == "time-out"
    assert apf.waiting("tiny") == 0

    r = UserInfo("r")
    kept = await apf.admit(r, POD_STATUS)
    with pytest.raises(Rejected) as no_queue:
        await apf.admit(r, POD_STATUS)
    assert no_queue.value.reason == "concurrency-limit"
    apf.finish(kept)
    apf.finish(holder)

    def rejected(reason: str, level: str) -> float | None:
        labels = {"flow_schema": "rest" if level == "tiny" else "to-reject", "priority_level": level, "reason": reason}
        return metrics.registry.get_sample_value("apiserver_flowcontrol_rejected_requests_total", labels)

    assert rejected("queue-full", "tiny") == 1
    assert rejected("time-out", "tiny") == 2
    assert rejected("concurrency-limit", "reject") == 1
    not_executed = {"flow_schema": "rest", "priority_level": "tiny", "execute": "false"}
    assert (
        metrics.registry.get_sample_value("apiserver_flowcontrol_request_wait_duration_seconds_count", not_executed)
        == 2
    )


async def test_a_cancelled_waiter_leaves_its_queue_and_takes_no_seat() -> None:
    apf = _small()
    holder = await apf.admit(NODE, POD_STATUS)
    gone = asyncio.create_task(apf.admit(NODE, POD_STATUS))
    await _waiting(apf, "system", 1)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert apf.waiting("system") == 0
    apf.finish(holder)
    assert apf.executing("system") == 0
    again = await apf.admit(NODE, POD_STATUS)
    assert again.waited == 0
    apf.finish(again)


async def test_metrics_count_dispatches_executing_and_queue_wait() -> None:
    metrics = APIServerMetrics(process_metrics=False)
    apf = _small(metrics=metrics)
    labels = {"flow_schema": "system-nodes", "priority_level": "system"}

    def value(name: str, extra: dict[str, str] | None = None) -> float | None:
        return metrics.registry.get_sample_value(name, {**labels, **(extra or {})})

    first = await apf.admit(NODE, POD_STATUS)
    queued = asyncio.create_task(apf.admit(NODE, POD_STATUS))
    await _waiting(apf, "system", 1)
    assert value("apiserver_flowcontrol_current_inqueue_requests") == 1
    assert value("apiserver_flowcontrol_current_executing_requests") == 1
    apf.finish(first)
    second: Ticket = await queued
    assert value("apiserver_flowcontrol_current_inqueue_requests") == 0
    apf.finish(second)
    assert value("apiserver_flowcontrol_current_executing_requests") == 0
    assert value("apiserver_flowcontrol_dispatched_requests_total") == 2
    executed = {"execute": "true"}
    assert value("apiserver_flowcontrol_request_wait_duration_seconds_count", executed) == 2
    assert value("apiserver_flowcontrol_request_wait_duration_seconds_sum", executed) == pytest.approx(second.waited)
    seats = metrics.registry.get_sample_value("apiserver_flowcontrol_nominal_limit_seats", {"priority_level": "system"})
    assert seats == 1


def test_sli_histogram_leaves_out_queue_wait() -> None:
    metrics = APIServerMetrics(process_metrics=False)
    metrics.observe(POD_STATUS, 200, 2.5, queued=2.3)
    labels = {"verb": "PATCH", "group": "", "version": "v1", "resource": "pods", "subresource": "status"}
    labels |= {"scope": "resource", "component": "apiserver"}
    sli = metrics.registry.get_sample_value("apiserver_request_sli_duration_seconds_sum", labels)
    total = metrics.registry.get_sample_value("apiserver_request_duration_seconds_sum", {**labels, "dry_run": ""})
    assert total == pytest.approx(2.5) and sli == pytest.approx(0.2)


def test_unknown_priority_level_is_refused() -> None:
    with pytest.raises(ValueError, match="nowhere"):
        PriorityAndFairness(schemas=[FlowSchema("s", 1, "nowhere")], levels=[PriorityLevel("x", shares=1)])
