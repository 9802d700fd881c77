"""APIServer lifecycle on memory storage: default namespaces, periodic compaction, filters and metrics plug-in."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from kubemark import codec
from kubemark.master.apiserver.filters import build_filters
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.server import DEFAULT_NAMESPACES, APIServer, APIServerConfig

CMS = "/api/v1/namespaces/default/configmaps"


async def test_start_creates_default_namespaces_and_stop_releases_port() -> None:
    async with APIServer(APIServerConfig(compaction_interval=0)) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession(base_url=server.url) as s, s.get("/api/v1/namespaces") as resp:
            body = await resp.json()
        assert sorted(n["metadata"]["name"] for n in body["items"]) == sorted(DEFAULT_NAMESPACES)
        assert all(n["status"]["phase"] == "Active" for n in body["items"])
        port = server.port
    # The listening socket is closed after stop(): connecting fails.
    async with aiohttp.ClientSession() as s:
        try:
            async with s.get(f"http://127.0.0.1:{port}/api"):
                raise AssertionError("server still answering after stop()")
        except aiohttp.ClientConnectionError:
            pass


async def test_periodic_compaction_expires_old_revisions() -> None:
    cfg = APIServerConfig(compaction_interval=0.05)
    async with APIServer(cfg) as server, aiohttp.ClientSession(base_url=server.url) as s:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
        async with s.post(CMS, data=codec.dumps(body), headers={"Content-Type": "application/json"}) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        # Keep writing so the compactor has newer revisions to compact up to; wait for the old RV to expire.
        deadline = time.monotonic() + 10
        code = 200
        i = 0
        while code != 410 and time.monotonic() < deadline:
            i += 1
            patch = codec.dumps({"data": {"i": str(i)}})
            async with s.patch(
                f"{CMS}/c", data=patch, headers={"Content-Type": "application/merge-patch+json"}
            ) as resp:
                assert resp.status == 200
            async with s.get(CMS, params={"resourceVersion": rv, "resourceVersionMatch": "Exact"}) as resp:
                code = resp.status
            await asyncio.sleep(0.02)  # pacing of the writer loop, not synchronisation
        assert code == 410


async def test_security_filters_and_metrics_plug_in() -> None:
    metrics = APIServerMetrics(process_metrics=False)
    filters = build_filters(authenticator=None, authorizer=None, metrics=metrics, limiter=None)
    cfg = APIServerConfig(compaction_interval=0, middlewares=filters, metrics=metrics)
    async with APIServer(cfg) as server, aiohttp.ClientSession(base_url=server.url) as s:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {}}
        async with s.post(CMS, data=codec.dumps(body), headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 201
        async with s.get(f"{CMS}/missing") as resp:
            assert resp.status == 404
            assert (await resp.json())["reason"] == "NotFound"
        cache = server.caches[server.store("", "configmaps").rt]
        await cache.wait_until_fresh(await server.storage.current_revision())
        server.record_object_counts()
        text = metrics.render()[0].decode()
    assert 'resource="configmaps"' in text and 'verb="POST"' in text
    assert "etcd_request_duration_seconds" in text and 'operation="create"' in text
    assert 'apiserver_storage_objects{resource="configmaps"} 1.0' in text
