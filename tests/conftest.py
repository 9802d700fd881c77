"""Fixtures shared by every test package: an in-process API server (memory storage) and an admin client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kubemark.client import ClusterCredentials, RestClient
from kubemark.master.apiserver.server import APIServer, APIServerConfig


@pytest.fixture
async def apiserver() -> AsyncIterator[APIServer]:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def admin(apiserver: APIServer) -> AsyncIterator[RestClient]:
    """Plain HTTP, no rate limit, one retry: tests see the server's answers, not the client's patience."""
    client = RestClient(ClusterCredentials(server=apiserver.url), qps=0, burst=1, max_retries=1)
    try:
        yield client
    finally:
        await client.close()
