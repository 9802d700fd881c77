"""`kubemark master start --apiserver-workers 2`: two API server processes on one port and one etcd behave as
one API server — reads see every acknowledged write whichever process took it, watches resume across them,
service IPs stay unique, /metrics adds both up, and both processes stop with the master."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from kubemark.client import RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.client.watch import watch_stream
from kubemark.master.apiserver.metrics_merge import merge_texts

from .test_master_cli import Master, kubectl, master_children, wait_gone

CONFIGMAPS = resource_path("", "v1", "configmaps", "default")
SERVICES = resource_path("", "v1", "services", "default")
POSTS = re.compile(r'^apiserver_request_total\{[^}]*resource="configmaps"[^}]*verb="POST"[^}]*\} (\S+)$', re.M)


def worker_processes(master_pid: int) -> dict[int, list[str]]:
    """pid -> argv of the master's `apiserver-worker` children."""
    return {pid: argv for pid, argv in master_children(master_pid).items() if "apiserver-worker" in argv}


def posts(text: str) -> float:
    return sum(float(v) for v in POSTS.findall(text))


@pytest.mark.etcd
def test_two_api_server_processes_act_as_one(tmp_path: Path) -> None:
    m = Master(tmp_path / "master", "--apiserver-workers", "2", "--no-scheduler", "--no-controllers")
    try:
        workers = worker_processes(m.proc.pid)
        assert len(workers) == 1, "".join(m.output)
        (worker_argv,) = workers.values()
        peers = [a.split("=", 1)[1] for a in worker_argv if a.startswith("--peer-metrics=")]
        assert len(peers) == 2

        async def scenario() -> dict[str, object]:
            creds = load_kubeconfig(m.kubeconfig)
            results: dict[str, object] = {}
            # A client per request: each its own connection, which the kernel hands to either process.
            for i in range(30):
                async with RestClient(creds) as writer:
                    created = await writer.create(CONFIGMAPS, {"metadata": {"name": f"cm{i}"}, "data": {"i": str(i)}})
                async with RestClient(creds) as reader:
                    got = await reader.get(f"{CONFIGMAPS}/cm{i}")
                    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
                    listed = await reader.list(CONFIGMAPS)
                    assert f"cm{i}" in {o["metadata"]["name"] for o in listed["items"]}
            # A watch from a version another connection just returned sees the next change.
            async with RestClient(creds) as a, RestClient(creds) as b:
                updated = await a.patch(f"{CONFIGMAPS}/cm0", {"data": {"i": "x"}})
                async with RestClient(creds) as c:
                    await c.patch(f"{CONFIGMAPS}/cm1", {"data": {"i": "y"}})
                stream = watch_stream(
                    b, CONFIGMAPS, resource_version=updated["metadata"]["resourceVersion"], timeout_seconds=30
                )
                async for event in stream:
                    if event["type"] != "BOOKMARK":
                        results["watched"] = [(event["type"], event["object"]["metadata"]["name"])]
                        break

            # Concurrent service creates through both processes: every cluster IP distinct.
            async def one(i: int) -> str:
                async with RestClient(creds) as client:
                    svc = {"metadata": {"name": f"s{i}"}, "spec": {"ports": [{"port": 80}]}}
                    return str((await client.create(SERVICES, svc))["spec"]["clusterIP"])

            results["ips"] = await asyncio.gather(*(one(i) for i in range(24)))
            async with RestClient(creds) as client:
                text = await client.request("GET", "/metrics", rate_limited=False)
                results["merged"] = text.decode() if isinstance(text, bytes) else str(text)
            async with aiohttp.ClientSession() as session:
                own = []
                for url in peers:
                    async with session.get(url) as resp:
                        own.append(await resp.text())
                results["own"] = own
            return results

        results = asyncio.run(scenario())
        assert results["watched"] == [("MODIFIED", "cm1")]
        ips = results["ips"]
        assert isinstance(ips, list) and len(set(ips)) == 24
        own = results["own"]
        assert isinstance(own, list)
        # Both processes took some of the 30 creates, and the public /metrics counts all of them.
        assert all(posts(text) > 0 for text in own), [posts(t) for t in own]
        assert posts(str(results["merged"])) == sum(posts(t) for t in own) == 30
        done = kubectl(m.kubeconfig, tmp_path / "cache", "get", "configmaps", "-o", "name")
        assert done.returncode == 0 and done.stdout.count("configmap/cm") == 30, done.stderr
    finally:
        code = m.stop(signal.SIGTERM)
    assert code == 0, "".join(m.output)
    assert wait_gone(list(workers)), "an API server worker outlived the master"


def test_merged_metrics_add_counters_and_keep_shared_gauges() -> None:
    a = (
        "# HELP apiserver_request_total Requests.\n# TYPE apiserver_request_total counter\n"
        'apiserver_request_total{verb="GET"} 3.0\napiserver_request_total{verb="PUT"} 1.0\n'
        "# HELP apiserver_storage_objects Objects.\n# TYPE apiserver_storage_objects gauge\n"
        'apiserver_storage_objects{resource="pods"} 10.0\n'
        "# HELP process_start_time_seconds Start.\n# TYPE process_start_time_seconds gauge\n"
        "process_start_time_seconds 100.0\n"
        "# HELP d Latency.\n# TYPE d histogram\n"
        'd_bucket{le="1.0"} 2.0\nd_bucket{le="+Inf"} 3.0\nd_sum 4.5\nd_count 3.0\n'
    )
    b = (
        "# HELP apiserver_request_total Requests.\n# TYPE apiserver_request_total counter\n"
        'apiserver_request_total{verb="GET"} 2.0\n'
        "# HELP apiserver_storage_objects Objects.\n# TYPE apiserver_storage_objects gauge\n"
        'apiserver_storage_objects{resource="pods"} 12.0\n'
        "# HELP process_start_time_seconds Start.\n# TYPE process_start_time_seconds gauge\n"
        "process_start_time_seconds 90.0\n"
        "# HELP d Latency.\n# TYPE d histogram\n"
        'd_bucket{le="1.0"} 1.0\nd_bucket{le="+Inf"} 1.0\nd_sum 0.5\nd_count 1.0\n'
    )
    merged = merge_texts([a, b]).decode()
    assert 'apiserver_request_total{verb="GET"} 5.0' in merged
    assert 'apiserver_request_total{verb="PUT"} 1.0' in merged
    assert 'apiserver_storage_objects{resource="pods"} 12.0' in merged
    assert "process_start_time_seconds 90.0" in merged
    assert 'd_bucket{le="1.0"} 3.0' in merged and "d_count 4.0" in merged and "d_sum 5.0" in merged


def test_more_than_one_worker_needs_etcd(tmp_path: Path) -> None:
    import subprocess
    import sys

    args = ["master", "start", "--data-dir", str(tmp_path), "--storage", "memory", "--apiserver-workers", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "kubemark", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--apiserver-workers" in done.stderr and "etcd" in done.stderr
