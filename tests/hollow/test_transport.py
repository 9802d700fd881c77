"""A hollow node's connections: calls share CALL_CONNECTIONS, watches get their own, as HTTP/2 would multiplex."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.hollow.pool import HollowNode
from kubemark.hollow.transport import CALL_CONNECTIONS

from .conftest import fast_config


class HoldingServer:
    """Answers after `release` is set; counts the distinct connections calls and watches arrived on."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.call_connections: set[int] = set()
        self.watch_connections: set[int] = set()
        self.held = 0
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        conn = id(request.transport)
        if request.query.get("watch") == "true":
            self.watch_connections.add(conn)
            self.changed.set()
            response = web.StreamResponse()
            await response.prepare(request)
            await self.release.wait()
            return response
        self.call_connections.add(conn)
        self.held += 1
        self.changed.set()
        await self.release.wait()
        return web.json_response({"kind": "Pod", "metadata": {"name": "p"}})

    async def until(self, condition: object) -> None:
        while not condition():  # type: ignore[operator]
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


@pytest.fixture
async def server() -> AsyncIterator[tuple[HoldingServer, str]]:
    holding = HoldingServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", holding.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield holding, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        holding.release.set()
        await runner.cleanup()


async def test_calls_queue_for_a_few_connections_while_watches_open_their_own(
    server: tuple[HoldingServer, str],
) -> None:
    holding, url = server
    node = HollowNode("n1", 0, ClusterCredentials(server=url), fast_config())
    client = node.kubelet_client
    try:
        calls = [asyncio.create_task(client.get(f"/api/v1/namespaces/ns/pods/p{i}", retry=False)) for i in range(12)]
        await holding.until(lambda: holding.held >= CALL_CONNECTIONS)
        # The server holds CALL_CONNECTIONS calls; a watch still gets through, on a connection of its own.
        async with client.stream("/api/v1/pods", params={"watch": "true"}) as response:
            assert response.status == 200
            await holding.until(lambda: holding.watch_connections)
        assert holding.held == CALL_CONNECTIONS
        holding.release.set()
        await asyncio.gather(*calls)
        assert holding.held == 12
        assert len(holding.call_connections) == CALL_CONNECTIONS
        assert not holding.watch_connections & holding.call_connections
    finally:
        await node.stop()
