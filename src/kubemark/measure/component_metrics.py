"""Reading a control-plane component's Prometheus /metrics, as clusterloader2's measurements do.

clusterloader2 reads kube-apiserver's /metrics through the API, kube-scheduler's (and kube-controller-manager's)
through the API server's pod proxy to the static pod `kube-system/<component>-<master>` when the master is a
registered node, and etcd's over SSH to the master. Here: kube-apiserver through the API; any component the run
knows a reader for (`MeasureContext.component_metrics`: the embedded master's component endpoints, the hollow
nodes' kube-proxy histogram) from that reader; kube-scheduler and kube-controller-manager otherwise through the
pod proxy, clusterloader2's public-API route, which works against a real cluster whose master is registered.
When none answers, the caller reports the measurement as not measured here; nothing is made up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp

from kubemark.client import APIError, RestClient, resource_path
from kubemark.measure.api_responsiveness import scrape_text

__all__ = [
    "APISERVER",
    "CONTROLLER_MANAGER",
    "ETCD",
    "KUBE_PROXY",
    "SCHEDULER",
    "MetricsReader",
    "exposition_reader",
    "http_metrics_reader",
    "read_component_metrics",
]

log = logging.getLogger(__name__)

MetricsReader = Callable[[], Awaitable[str]]
"""Returns a component's current Prometheus text exposition."""

APISERVER = "kube-apiserver"
SCHEDULER = "kube-scheduler"
CONTROLLER_MANAGER = "kube-controller-manager"
ETCD = "etcd"
KUBE_PROXY = "kube-proxy"

# The secure ports clusterloader2 proxies to (kube-scheduler's 10259, kube-controller-manager's 10257).
_POD_PROXY_PORTS = {SCHEDULER: 10259, CONTROLLER_MANAGER: 10257}


def http_metrics_reader(url: str, *, timeout: float = 30.0) -> MetricsReader:
    """A reader that GETs `url` (a plain-HTTP /metrics, e.g. the embedded master's component endpoints)."""

    async def read() -> str:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url) as response,
        ):
            response.raise_for_status()
            return await response.text()

    return read


def exposition_reader(exposition: Callable[[], bytes | str]) -> MetricsReader:
    """A reader of an in-process registry's exposition (e.g. the hollow NodePool's `metrics.exposition`, whose
    `kubeproxy_network_programming_duration_seconds` NetworkProgrammingLatency reads)."""

    async def read() -> str:
        text = exposition()
        return text.decode() if isinstance(text, bytes) else text

    return read


async def _via_pod_proxy(client: RestClient, component: str) -> str | None:
    port = _POD_PROXY_PORTS.get(component)
    if port is None:
        return None
    pods, _ = await client.list_all(
        resource_path("", "v1", "pods", "kube-system"), label_selector=f"component={component}"
    )
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name", ""))
        if not name:
            continue
        path = resource_path("", "v1", "pods", "kube-system", f"https:{name}:{port}", "proxy") + "/metrics"
        try:
            return await scrape_text(client, path)
        except APIError as exc:
            log.debug("%s metrics through the pod proxy of %s: %s", component, name, exc)
    return None


async def read_component_metrics(
    client: RestClient, readers: Mapping[str, MetricsReader], component: str
) -> str | None:
    """`component`'s /metrics text, or None when this run cannot reach it (see the module docstring)."""
    try:
        if component in readers:
            return await readers[component]()
        if component == APISERVER:
            return await scrape_text(client)
        return await _via_pod_proxy(client, component)
    except Exception as exc:
        log.warning("cannot read %s metrics: %s", component, exc)
        return None
