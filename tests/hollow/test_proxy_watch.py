"""HollowProxy's watch filters are kube-proxy's: no headless or foreign-proxy Services, no headless slices."""

from __future__ import annotations

from typing import Any

from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.hollow.proxy import HollowProxy
from kubemark.master.apiserver.server import APIServer

from .conftest import eventually, fast_config


def _service(name: str, *, headless: bool = False, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"port": 80}], "selector": {"app": name}}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def _slice(name: str, service: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service, **labels}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.128.0.2"], "conditions": {"ready": True}}],
        "ports": [{"port": 80, "protocol": "TCP"}],
    }


async def test_proxy_watches_what_kube_proxy_watches(apiserver: APIServer, admin: RestClient) -> None:
    services = resource_path("", "v1", "services", "default")
    slices = resource_path("discovery.k8s.io", "v1", "endpointslices", "default")
    await admin.create(services, _service("web"))
    await admin.create(services, _service("db", headless=True))
    await admin.create(services, _service("mesh", labels={"service.kubernetes.io/service-proxy-name": "other"}))
    await admin.create(slices, _slice("web-1", "web"))
    await admin.create(slices, _slice("db-1", "db", **{"service.kubernetes.io/headless": ""}))
    client = RestClient(ClusterCredentials(server=apiserver.url), qps=0, burst=1)
    proxy = HollowProxy("n-0", client, fast_config())
    try:
        await proxy.start()
        assert await proxy.services.wait_synced(5) and await proxy.slices.wait_synced(5)
        assert sorted(s["metadata"]["name"] for s in proxy.services.list()) == ["web"]
        assert [s["metadata"]["name"] for s in proxy.slices.list()] == ["web-1"]
        # Later ones through the watch: a plain Service arrives, a headless one never does.
        await admin.create(services, _service("cache", headless=True))
        await admin.create(services, _service("api"))

        async def api_seen() -> bool:
            return proxy.services.get("default/api") is not None

        await eventually(api_seen)
        assert proxy.services.get("default/cache") is None
    finally:
        await proxy.stop()
        await client.close()
