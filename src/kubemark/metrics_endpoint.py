"""`MetricsEndpoint`: a component's own `/metrics` (Prometheus text) and `/healthz` HTTP server.

kube-scheduler and kube-controller-manager each serve their metrics on their own port; ours do the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


class MetricsEndpoint:
    """Serves `render()` at /metrics and "ok" at /healthz on host:port (port 0 picks a free one)."""

    def __init__(self, render: Callable[[], bytes], host: str = "127.0.0.1", port: int = 0, name: str = "") -> None:
        self._render = render
        self.host = host
        self.port = port
        self.name = name
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("%s metrics on %s", self.name or "component", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
