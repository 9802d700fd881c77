"""WatchStreams: one sweeper notices watch clients that went away; shutdown ends every open watch."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import aiohttp

from kubemark.master.apiserver.app import WATCH_STREAMS
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.apiserver.watch import WatchStreams


class FakeTransport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


def fake_request(transport: FakeTransport | None) -> Any:
    return SimpleNamespace(transport=transport)


async def until(condition: Any, timeout: float = 5.0) -> bool:
    """Poll a server-side condition (there is no event for it) until true or timeout; returns it."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return bool(condition())


async def test_sweeper_ends_only_watches_whose_client_left() -> None:
    streams = WatchStreams(poll_interval=0.01)
    gone, stays = FakeTransport(), FakeTransport()
    ended_gone = streams.register(fake_request(gone))
    ended_stays = streams.register(fake_request(stays))
    gone.closing = True
    await asyncio.wait_for(ended_gone, 5)
    assert not ended_stays.done()
    streams.unregister(ended_stays)
    sweeper = streams._sweeper
    assert sweeper is not None
    await asyncio.wait_for(sweeper, 5)  # nothing left to watch: the sweeper ends by itself
    assert streams._sweeper is None


async def test_close_all_ends_every_watch_and_later_ones_at_once() -> None:
    streams = WatchStreams(poll_interval=60)
    ended = [streams.register(fake_request(FakeTransport())) for _ in range(3)]
    streams.close_all()
    assert all(f.done() for f in ended)
    assert streams.register(fake_request(FakeTransport())).done()
    assert streams._sweeper is None


async def test_server_drops_watch_of_disconnected_client() -> None:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    try:
        assert server.app is not None
        streams = server.app[WATCH_STREAMS]
        streams.poll_interval = 0.02
        session = aiohttp.ClientSession(base_url=server.url)
        resp = await session.get("/api/v1/namespaces/default/pods", params={"watch": "true"})
        assert resp.status == 200
        assert await until(lambda: streams.active == 1)
        resp.close()  # drops the connection without reading to the end
        await session.close()
        # The sweeper runs every 20 ms; with the old 15 s poll this would time out.
        assert await until(lambda: streams.active == 0)
    finally:
        await server.stop()
