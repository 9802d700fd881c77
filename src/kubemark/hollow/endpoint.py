"""KubeletEndpoint: the hollow kubelets' HTTP API, one aiohttp server per process.

Every node is served under `/nodes/<node>/...` (and, optionally, on its own port at `/...`): /healthz,
/metrics, /metrics/resource, /stats/summary (synthetic usage), /pods (PodList of its pods) and
/containerLogs/<ns>/<pod>/<container> (synthetic lines). The pool's own metrics are at `/metrics`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kubemark import codec
from kubemark.kube.meta import format_rfc3339

if TYPE_CHECKING:
    from kubemark.hollow.kubelet import HollowKubelet

log = logging.getLogger(__name__)

_NODE = web.AppKey("node", str)
_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _json(obj: Any) -> web.Response:
    return web.Response(body=codec.dumps(obj), content_type="application/json")


def _running_pods(kubelet: HollowKubelet) -> list[Any]:
    return [w for w in kubelet.pods.values() if w.phase == "Running" and not w.gone]


def stats_summary(kubelet: HollowKubelet, now: float) -> dict[str, Any]:
    """A /stats/summary with small synthetic, stable usage figures per pod and container."""
    stamp = format_rfc3339(now)
    pods = []
    for work in _running_pods(kubelet):
        containers = [
            {
                "name": c.name,
                "startTime": format_rfc3339(c.started_at or now),
                "cpu": {"time": stamp, "usageNanoCores": 1_000_000, "usageCoreNanoSeconds": int(now * 1e6)},
                "memory": {"time": stamp, "usageBytes": 4 << 20, "workingSetBytes": 4 << 20, "rssBytes": 2 << 20},
            }
            for c in work.containers
        ]
        pods.append(
            {
                "podRef": {"name": work.name, "namespace": work.namespace, "uid": work.uid},
                "startTime": format_rfc3339(work.start_time or now),
                "containers": containers,
                "cpu": {"time": stamp, "usageNanoCores": 1_000_000 * len(containers)},
                "memory": {"time": stamp, "workingSetBytes": (4 << 20) * len(containers)},
            }
        )
    return {
        "node": {
            "nodeName": kubelet.name,
            "startTime": stamp,
            "cpu": {"time": stamp, "usageNanoCores": 50_000_000 + 1_000_000 * len(pods)},
            "memory": {"time": stamp, "workingSetBytes": (300 << 20) + (4 << 20) * len(pods)},
        },
        "pods": pods,
    }


def kubelet_metrics(kubelet: HollowKubelet) -> str:
    running = _running_pods(kubelet)
    containers = sum(len(w.containers) for w in running)
    return (
        "# HELP kubelet_running_pods Number of pods that have a running pod sandbox\n"
        "# TYPE kubelet_running_pods gauge\n"
        f"kubelet_running_pods {len(running)}\n"
        "# HELP kubelet_running_containers Number of containers currently running\n"
        "# TYPE kubelet_running_containers gauge\n"
        f'kubelet_running_containers{{container_state="running"}} {containers}\n'
        "# HELP kubelet_node_name The node's name. The count is always 1.\n"
        "# TYPE kubelet_node_name gauge\n"
        f'kubelet_node_name{{node="{kubelet.name}"}} 1\n'
    )


def resource_metrics(kubelet: HollowKubelet, now: float) -> str:
    ms = int(now * 1000)
    lines = [
        "# TYPE node_cpu_usage_seconds_total counter",
        f"node_cpu_usage_seconds_total {now % 100000:.3f} {ms}",
        "# TYPE node_memory_working_set_bytes gauge",
        f"node_memory_working_set_bytes {300 << 20} {ms}",
        "# TYPE container_memory_working_set_bytes gauge",
    ]
    for work in _running_pods(kubelet):
        for c in work.containers:
            labels = f'container="{c.name}",namespace="{work.namespace}",pod="{work.name}"'
            lines.append(f"container_memory_working_set_bytes{{{labels}}} {4 << 20} {ms}")
    return "\n".join(lines) + "\n"


class KubeletEndpoint:
    """Serves the kubelets that `lookup(name)` finds (e.g. a dict's `.get`, or a pool's live view)."""

    def __init__(
        self,
        lookup: Callable[[str], HollowKubelet | None],
        *,
        pool_metrics: Callable[[], bytes] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lookup = lookup
        self._pool_metrics = pool_metrics
        self._clock = clock
        self._runners: list[web.AppRunner] = []
        self.port = 0

    def _kubelet(self, request: web.Request) -> HollowKubelet:
        name = request.match_info.get("node") or request.app.get(_NODE) or ""
        kubelet = self._lookup(name)
        if kubelet is None:
            raise web.HTTPNotFound(text=f"node {name!r} is not served here\n")
        return kubelet

    async def _healthz(self, request: web.Request) -> web.Response:
        self._kubelet(request)
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=kubelet_metrics(self._kubelet(request)), content_type="text/plain")

    async def _resource(self, request: web.Request) -> web.Response:
        return web.Response(text=resource_metrics(self._kubelet(request), self._clock()), content_type="text/plain")

    async def _summary(self, request: web.Request) -> web.Response:
        return _json(stats_summary(self._kubelet(request), self._clock()))

    async def _pods(self, request: web.Request) -> web.Response:
        kubelet = self._kubelet(request)
        items = [w.pod for w in kubelet.pods.values() if not w.gone]
        return _json({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def _logs(self, request: web.Request) -> web.Response:
        kubelet = self._kubelet(request)
        ns, pod, container = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        work = next((w for w in kubelet.pods.values() if w.namespace == ns and w.name == pod), None)
        if work is None or not any(c.name == container for c in work.containers):
            raise web.HTTPNotFound(text=f"container {container!r} of pod {ns}/{pod} not found on {kubelet.name}\n")
        try:
            tail = int(request.query.get("tailLines", "10"))
        except ValueError:
            tail = 10
        stamp = format_rfc3339(self._clock())
        lines = [
            f"{stamp} hollow container {container} of {ns}/{pod}: line {i}" for i in range(max(0, min(tail, 1000)))
        ]
        return web.Response(text="".join(line + "\n" for line in lines))

    async def _pool(self, request: web.Request) -> web.Response:
        body = self._pool_metrics() if self._pool_metrics else b""
        return web.Response(body=body, headers={"Content-Type": _TEXT})

    def _node_routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.get(prefix + "/healthz", self._healthz),
            web.get(prefix + "/metrics", self._metrics),
            web.get(prefix + "/metrics/resource", self._resource),
            web.get(prefix + "/stats/summary", self._summary),
            web.get(prefix + "/pods", self._pods),
            web.get(prefix + "/containerLogs/{ns}/{pod}/{container}", self._logs),
        ]

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.get("/metrics", self._pool), *self._node_routes("/nodes/{node}")])
        return app

    def node_app(self, node: str) -> web.Application:
        app = web.Application()
        app[_NODE] = node
        app.add_routes(self._node_routes(""))
        return app

    async def _serve(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        sockets = getattr(site._server, "sockets", None) or ()
        return sockets[0].getsockname()[1] if sockets else port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve every node by path prefix; returns the bound port."""
        self.port = await self._serve(self.app(), host, port)
        return self.port

    async def serve_node(self, node: str, host: str, port: int) -> int:
        """Also serve one node on its own port (its kubeletEndpoint)."""
        return await self._serve(self.node_app(node), host, port)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
