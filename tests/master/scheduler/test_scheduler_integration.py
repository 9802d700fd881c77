"""The scheduler against the in-process API server (memory storage, plain HTTP), through the public API only."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubemark.client import RestClient, resource_path
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.scheduler import Scheduler, run_scheduler

from .cluster import PodWatch, create_node, make_client, node_obj, pod_obj, pods_path


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[APIServer, RestClient]]:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    client = make_client(server.url)
    try:
        yield server, client
    finally:
        await client.close()
        await server.stop()


def _condition(pod: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((pod or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return c
    return None


async def test_fifty_pods_bound_spread_within_capacity(cluster: tuple[APIServer, RestClient]) -> None:
    _, client = cluster
    for i in range(10):
        await create_node(client, node_obj(f"node-{i}"))
    scheduler = Scheduler(client, metrics_port=0)
    await scheduler.start()
    try:
        assert await scheduler.wait_synced(10)
        async with PodWatch(client) as watch:
            for i in range(50):
                await client.create(pods_path(), pod_obj(f"p-{i}", cpu="150m", owner_uid="rs-1"))
            await watch.wait(
                lambda: sum(1 for p in watch.pods() if p["spec"].get("nodeName")) == 50, what="50 pods bound"
            )
            per_node = Counter(p["spec"]["nodeName"] for p in watch.pods())
            for p in watch.pods():
                assert _condition(p, "PodScheduled")["status"] == "True"
        assert len(per_node) == 10
        assert max(per_node.values()) * 150 <= 1000  # cpu capacity 1 core per node
        assert max(per_node.values()) - min(per_node.values()) <= 1
        assert scheduler.scheduled == 50
        url = f"http://127.0.0.1:{scheduler.metrics_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            text = await resp.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        attempts = {
            s.labels["result"]: s.value
            for s in families["scheduler_schedule_attempts"].samples
            if s.name == "scheduler_schedule_attempts_total"
        }
        assert attempts["scheduled"] == 50
        e2e = families["scheduler_e2e_scheduling_duration_seconds"]
        counts = [s.value for s in e2e.samples if s.name.endswith("_count") and s.labels["result"] == "scheduled"]
        assert counts == [50]
        pending = {s.labels["queue"]: s.value for s in families["scheduler_pending_pods"].samples}
        assert pending == {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
        assert "scheduler_scheduling_attempt_duration_seconds" in families
        # Every binding produced a Scheduled event (events.k8s.io/v1, reported by default-scheduler).
        assert scheduler.events is not None and await scheduler.events.drain(10)
        events = (await client.list(resource_path("events.k8s.io", "v1", "events", "default")))["items"]
        scheduled = [e for e in events if e.get("reason") == "Scheduled"]
        assert len(scheduled) == 50
        sample = scheduled[0]
        assert sample["reportingController"] == "default-scheduler"
        assert sample["action"] == "Binding"
        assert sample["note"].startswith("Successfully assigned default/p-")
    finally:
        await scheduler.stop()


async def test_unschedulable_pod_reports_reason_then_binds_when_node_added(
    cluster: tuple[APIServer, RestClient],
) -> None:
    _, client = cluster
    for i in range(3):
        await create_node(client, node_obj(f"small-{i}", cpu="1"))
    for i in range(2):
        await create_node(
            client,
            node_obj(f"gone-{i}", cpu="8", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]),
        )
    scheduler = Scheduler(client, initial_backoff=0.05, max_backoff=0.2)
    await scheduler.start()
    try:
        assert await scheduler.wait_synced(10)
        async with PodWatch(client) as watch:
            await client.create(pods_path(), pod_obj("big", cpu="2"))

            def failed() -> dict[str, Any] | None:
                cond = _condition(watch.get("big"), "PodScheduled")
                return cond if cond and cond["status"] == "False" else None

            cond = await watch.wait(failed, what="PodScheduled=False")
            assert cond["reason"] == "Unschedulable"
            assert cond["message"] == (
                "0/5 nodes are available: 2 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, "
                "3 Insufficient cpu."
            )
            assert scheduler.queue.where("default/big") in ("unschedulable", "backoff", "active", "in-flight")
            await create_node(client, node_obj("large", cpu="4"))
            bound = await watch.wait(lambda: (watch.get("big") or {}).get("spec", {}).get("nodeName"), what="big bound")
            assert bound == "large"
        assert scheduler.events is not None and await scheduler.events.drain(10)
        events = (await client.list(resource_path("events.k8s.io", "v1", "events", "default")))["items"]
        reasons = {e["reason"] for e in events}
        assert {"FailedScheduling", "Scheduled"} <= reasons
        failed_event = next(e for e in events if e["reason"] == "FailedScheduling")
        assert failed_event["type"] == "Warning" and failed_event["action"] == "Scheduling"
    finally:
        await scheduler.stop()


async def test_taints_respected_and_tolerations_allow(cluster: tuple[APIServer, RestClient]) -> None:
    _, client = cluster
    gpu_taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    await create_node(client, node_obj("tainted", taints=gpu_taint))
    await create_node(client, node_obj("plain"))
    scheduler = Scheduler(client, post_events=False)
    await scheduler.start()
    try:
        assert await scheduler.wait_synced(10)
        async with PodWatch(client) as watch:
            for i in range(6):
                await client.create(pods_path(), pod_obj(f"plain-{i}"))
            tolerations = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
            await client.create(
                pods_path(),
                pod_obj("gpu", nodeSelector={"kubernetes.io/hostname": "tainted"}, tolerations=tolerations),
            )
            await watch.wait(lambda: all(p["spec"].get("nodeName") for p in watch.pods()) and len(watch.pods()) == 7)
            placement = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in watch.pods()}
        assert all(placement[f"plain-{i}"] == "plain" for i in range(6))
        assert placement["gpu"] == "tainted"
    finally:
        await scheduler.stop()


async def test_run_scheduler_from_kubeconfig(cluster: tuple[APIServer, RestClient], tmp_path: Any) -> None:
    server, client = cluster
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: k\n"
        f"clusters: [{{name: c, cluster: {{server: '{server.url}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: k, context: {cluster: c, user: u}}]\n"
    )
    await create_node(client, node_obj("only"))
    stop = asyncio.Event()
    runner = asyncio.create_task(run_scheduler(str(kubeconfig), metrics_port=None, stop=stop))
    try:
        async with PodWatch(client) as watch:
            await client.create(pods_path(), pod_obj("via-cli"))
            node = await watch.wait(lambda: (watch.get("via-cli") or {}).get("spec", {}).get("nodeName"))
        assert node == "only"
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
