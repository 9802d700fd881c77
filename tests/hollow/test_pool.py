"""NodePool (kubelet + proxy + NPD per node), its metrics and endpoint, and worker processes."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.hollow.endpoint import KubeletEndpoint
from kubemark.hollow.pool import NodePool, NodesOptions, run_nodes, split_ranges
from kubemark.kube.meta import format_micro
from kubemark.master.apiserver.server import APIServer

from .conftest import create_bound_pod, eventually, fast_config


def _samples(text: str, name: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_pool_runs_nodes_with_proxy_npd_metrics_and_endpoint(apiserver: APIServer, admin: RestClient) -> None:
    config = fast_config(npd={"flips": []})
    pool = NodePool(3, config, ClusterCredentials(server=apiserver.url), prefix="pool", ramp=100.0)
    endpoint = KubeletEndpoint(pool.kubelet, pool_metrics=pool.metrics.exposition)
    port = await endpoint.start("127.0.0.1", 0)
    try:
        await pool.start()
        assert await pool.wait_ready(5)

        # NPD conditions land on every node beside kubelet's.
        async def npd_conditions() -> Any:
            nodes = (await admin.list(resource_path("", "v1", "nodes")))["items"]
            ok = all(
                {"KernelDeadlock", "ReadonlyFilesystem", "FrequentKubeletRestart", "Ready"}
                <= {c["type"] for c in n["status"]["conditions"]}
                for n in nodes
            )
            return nodes if ok and len(nodes) == 3 else None

        await eventually(npd_conditions)

        # kube-proxy: a Service and an EndpointSlice with a trigger time give a programming latency sample.
        svc = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
        }
        await admin.create(resource_path("", "v1", "services", "default"), svc)
        trigger = format_micro(time.time() - 1.0)
        eps = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-abc",
                "labels": {"kubernetes.io/service-name": "web"},
                "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": trigger},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.128.0.2"], "conditions": {"ready": True}}],
            "ports": [{"port": 80, "protocol": "TCP"}],
        }
        await admin.create(resource_path("discovery.k8s.io", "v1", "endpointslices", "default"), eps)
        proxies = [n.proxy for n in pool.nodes.values()]

        async def programmed() -> bool:
            return all(p.rules == 2 for p in proxies)

        await eventually(programmed)

        async def cidrs_seen() -> bool:  # kube-proxy's ServiceCIDR watch holds the master's default one
            return all(
                p.service_cidrs is not None
                and (p.service_cidrs.get("kubernetes") or {}).get("spec", {}).get("cidrs") == ["10.96.0.0/12"]
                for p in proxies
            )

        await eventually(cidrs_seen)
        latency = _samples(pool.metrics.exposition().decode(), "kubeproxy_network_programming_duration_seconds_count")
        assert latency[()] >= 3
        total = _samples(pool.metrics.exposition().decode(), "kubeproxy_network_programming_duration_seconds_sum")
        assert total[()] >= 3 * 1.0

        async def proxy_events() -> Any:
            items = (await admin.list(resource_path("", "v1", "events", "default")))["items"]
            return {e["source"]["host"] for e in items if e["source"]["component"] == "kube-proxy"} == set(pool.nodes)

        assert await eventually(proxy_events)

        # A pod on one node, seen through the kubelet endpoint and the pool's metrics.
        await create_bound_pod(admin, "p", "pool-1")
        await eventually(lambda: _running(admin, "p"))
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            async with http.get(f"{base}/nodes/pool-1/healthz") as r:
                assert r.status == 200 and await r.text() == "ok"
            async with http.get(f"{base}/nodes/nope/healthz") as r:
                assert r.status == 404

            async def listed() -> Any:
                async with http.get(f"{base}/nodes/pool-1/pods") as r:
                    body = await r.json()
                    return body if [p["metadata"]["name"] for p in body["items"]] == ["p"] else None

            await eventually(listed)
            async with http.get(f"{base}/nodes/pool-1/stats/summary") as r:
                summary = await r.json()
                assert summary["node"]["nodeName"] == "pool-1"
                assert [p["podRef"]["name"] for p in summary["pods"]] == ["p"]
            async with http.get(f"{base}/nodes/pool-1/containerLogs/default/p/app?tailLines=3") as r:
                assert len((await r.text()).splitlines()) == 3

            async def renewed_thrice() -> bool:
                return all(n.kubelet.lease.renewals >= 3 for n in pool.nodes.values())

            await eventually(renewed_thrice)
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
        assert _samples(text, "kubemark_hollow_nodes_ready")[()] == 3
        assert _samples(text, "kubemark_hollow_pods")[(("phase", "Running"),)] == 1
        assert _samples(text, "kubemark_hollow_heartbeat_lateness_seconds_count")[()] >= 3
        assert _samples(text, "kubemark_hollow_api_requests_total")[(("verb", "PUT"),)] >= 3  # lease renewals
    finally:
        await endpoint.stop()
        await pool.stop(delete_nodes=True)
    assert (await admin.list(resource_path("", "v1", "nodes")))["items"] == []


async def _running(admin: RestClient, name: str) -> Any:
    pod = await admin.get(resource_path("", "v1", "pods", "default", name))
    return pod if pod["status"].get("phase") == "Running" else None


def test_split_ranges() -> None:
    assert split_ranges(10, 3) == [(0, 4), (4, 3), (7, 3)]
    assert split_ranges(2, 4, start=5) == [(5, 1), (6, 1)]
    assert split_ranges(0, 2) == []


async def test_run_nodes_spreads_nodes_over_worker_processes(
    apiserver: APIServer, admin: RestClient, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{apiserver.url}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    node_config = tmp_path / "nodes.yaml"
    node_config.write_text("heartbeat: {statusUpdateFrequency: 0.2, leaseRenewInterval: 0.2}\n")
    options = NodesOptions(
        count=4, kubeconfig=str(kubeconfig), workers=2, prefix="w", config_path=str(node_config), delete_on_exit=True
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(run_nodes(options, stop=stop))

    async def all_ready() -> Any:
        nodes = (await admin.list(resource_path("", "v1", "nodes")))["items"]
        ready = [
            n["metadata"]["name"]
            for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        ]
        return sorted(ready) if len(ready) == 4 else None

    try:
        assert await eventually(all_ready, timeout=30) == ["w-0", "w-1", "w-2", "w-3"]
    finally:
        stop.set()
        await asyncio.wait_for(runner, 40)
    assert (await admin.list(resource_path("", "v1", "nodes")))["items"] == []


async def test_max_starting_admits_nodes_one_at_a_time(apiserver: APIServer) -> None:
    pool = NodePool(3, fast_config(), ClusterCredentials(server=apiserver.url), prefix="gated", max_starting=1)
    try:
        await pool.start()  # ramp 0: without the gate all three would start at once
        assert await pool.wait_ready(10)
        assert await pool.wait_synced(10)
        kubelets = [pool.nodes[f"gated-{i}"].kubelet for i in range(3)]
        for earlier, later in itertools.pairwise(kubelets):
            assert earlier.ready_at is not None and later.started_at is not None
            assert later.started_at >= earlier.ready_at
    finally:
        await pool.stop()


async def test_stop_right_after_a_service_change_does_not_wait_a_sync_period(
    apiserver: APIServer, admin: RestClient
) -> None:
    # The proxies are told of the service as they are cancelled; a cancel lost there left stop() waiting for the
    # next sync period (60 s here) before the proxy loop came round.
    pool = NodePool(3, fast_config(), ClusterCredentials(server=apiserver.url), prefix="quick", ramp=100.0)
    await pool.start()
    stopped = False
    try:
        assert await pool.wait_ready(5) and await pool.wait_synced(5)
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}}
        await admin.create(resource_path("", "v1", "services", "default"), svc)
        await asyncio.wait_for(pool.stop(), 10)
        stopped = True
    finally:
        if not stopped:
            await pool.stop()
