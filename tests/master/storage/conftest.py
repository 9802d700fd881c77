"""Fixtures for the storage tests: one etcd per test session, a Storage fixture over both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubemark.master.storage.base import Storage
from kubemark.master.storage.etcd_server import EtcdServer
from kubemark.master.storage.memory import MemoryStorage

T = TypeVar("T")


def run_in_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion in a fresh loop on another thread (callable even inside a running loop).

    EtcdServer drives a plain child process, not an asyncio subprocess, so it is not tied to that loop.
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One etcd (no fsync, for speed) shared by the session; tests isolate themselves by key prefix."""
    server = EtcdServer(tmp_path_factory.mktemp("etcd-shared"), unsafe_no_fsync=True)
    run_in_own_loop(server.start())
    try:
        yield server.endpoint
    finally:
        run_in_own_loop(server.stop())


@pytest.fixture(params=["memory", pytest.param("etcd", marks=pytest.mark.etcd)])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    """A started Storage; for etcd, rooted at a fresh random prefix so tests do not see each other's keys."""
    if request.param == "memory":
        store: Storage = MemoryStorage()
    else:
        from kubemark.master.storage.etcd import EtcdStorage

        endpoint = request.getfixturevalue("etcd_endpoint")
        store = EtcdStorage(endpoint, prefix=f"/test-{uuid.uuid4().hex[:12]}")
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "etcd-data"
