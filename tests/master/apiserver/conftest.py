"""Fixtures of the generic REST machinery tests: an in-process APIServer on memory storage plus a client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kubemark import codec
from kubemark.master.apiserver.server import APIServer, APIServerConfig


class Rest:
    """An aiohttp session on the server's URL with a JSON `call` helper; other attributes are the session's."""

    def __init__(self, server: APIServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (codec.dumps(body) if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(method, path, data=data, headers=headers, params=params) as resp:
            payload = await resp.read()
            return resp.status, codec.loads(payload) if payload else None


@pytest.fixture
async def api() -> AsyncIterator[Rest]:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0, freshness_timeout=0.5))
    await server.start()
    session = aiohttp.ClientSession(base_url=server.url)
    try:
        yield Rest(server, session)
    finally:
        await session.close()
        await server.stop()


class FakeAPIServer:
    """Serves chosen aiohttp routes (discovery, OpenAPI, a fake resource) on loopback for the real kubectl."""

    KUBECTL = Path(sys.executable).parent / "kubectl"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runners: list[web.AppRunner] = []

    async def serve(self, routes: list[web.RouteDef]) -> Path:
        """Start a server with `routes`; returns a plain-HTTP kubeconfig pointing at it."""
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        port = runner.addresses[0][1]
        path = self.tmp / f"kubeconfig-{len(self.runners)}"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: u, user: {}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\n"
            "current-context: x\n"
        )
        return path

    async def kubectl(self, kubeconfig: Path, *args: str, timeout: float = 60) -> tuple[int, str, str]:
        """Run the real kubectl (without blocking the servers' event loop): (exit code, stdout, stderr)."""
        proc = await asyncio.create_subprocess_exec(
            str(self.KUBECTL),
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(self.tmp / "kubectl-cache"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def fake_apiserver(tmp_path: Path) -> AsyncIterator[FakeAPIServer]:
    server = FakeAPIServer(tmp_path)
    yield server
    await server.close()
