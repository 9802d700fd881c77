"""Fixtures of the generic REST machinery tests: an in-process APIServer on memory storage plus a client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

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
