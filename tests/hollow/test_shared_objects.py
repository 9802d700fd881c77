"""SharedObjects: informers of one process keep one copy per object version, and give it back when done."""

from __future__ import annotations

from typing import Any

from kubemark.client.informer import Informer
from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.paths import resource_path
from kubemark.client.rest import RestClient
from kubemark.client.shared_objects import SharedObjects
from kubemark.hollow.pool import NodePool
from kubemark.master.apiserver.server import APIServer

from .conftest import eventually, fast_config

SERVICES = resource_path("", "v1", "services")


def _obj(name: str, rv: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"metadata": meta}


def test_hold_shares_one_copy_per_version_and_release_counts_holders() -> None:
    shared = SharedObjects()
    first, second = _obj("a", "5"), _obj("a", "5")
    assert shared.hold("svc", "ns/a", first) is first
    assert shared.hold("svc", "ns/a", second) is first  # an equal copy: the first one is kept
    newer = _obj("a", "6")
    assert shared.hold("svc", "ns/a", newer) is newer
    assert shared.hold("slices", "ns/a", _obj("a", "5")) is not first  # another resource, another object
    assert len(shared) == 3
    shared.release("svc", "ns/a", first)
    assert shared.hold("svc", "ns/a", _obj("a", "5")) is first  # still held once
    shared.release("svc", "ns/a", first)
    shared.release("svc", "ns/a", first)
    assert len(shared) == 2  # the last holder gave it back
    shared.release("svc", "ns/a", _obj("a", "6"))  # not the shared copy: ignored
    assert len(shared) == 2
    unnamed = _obj("b", None)
    assert shared.hold("svc", "ns/b", unnamed) is unnamed and len(shared) == 2  # no version, not shared


async def test_informers_share_versions_and_release_them(apiserver: APIServer, admin: RestClient) -> None:
    shared = SharedObjects()
    clients = [RestClient(ClusterCredentials(server=apiserver.url)) for _ in range(3)]
    informers = [Informer(c, SERVICES, shared=shared) for c in clients]
    services = resource_path("", "v1", "services", "default")
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    await admin.create(services, body)
    try:
        for inf in informers:
            inf.start()
        for inf in informers:
            assert await inf.wait_synced(5)

        def cached(rv: str | None = None) -> list[Any]:
            objs = [inf.get("default/web") for inf in informers]
            if rv is not None and any(o is None or o["metadata"]["resourceVersion"] != rv for o in objs):
                return []
            return objs

        first = cached()
        assert first[0] is not None and all(o is first[0] for o in first)

        # An update: every informer moves to one shared copy of the new version; the old one is released.
        web = await admin.get(resource_path("", "v1", "services", "default", "web"))
        web["metadata"]["labels"] = {"tier": "front"}
        updated = await admin.replace(resource_path("", "v1", "services", "default", "web"), web)
        rv = updated["metadata"]["resourceVersion"]

        async def moved() -> list[Any]:
            return cached(rv)

        now = await eventually(moved)
        assert all(o is now[0] for o in now) and now[0]["metadata"]["labels"] == {"tier": "front"}
        kept = [k for k in shared._objects if k[1] == "default/web"]
        assert [k[2] for k in kept] == [rv]  # the old version is no longer held

        await admin.delete(resource_path("", "v1", "services", "default", "web"))

        async def gone() -> bool:
            return all(inf.get("default/web") is None for inf in informers)

        await eventually(gone)
        assert not [k for k in shared._objects if k[1] == "default/web"]
    finally:
        for inf in informers:
            await inf.stop()
        for c in clients:
            await c.close()
    assert len(shared) == 0  # stopped informers give everything back


async def test_pool_proxies_hold_one_copy_of_each_service(apiserver: APIServer, admin: RestClient) -> None:
    pool = NodePool(3, fast_config(), ClusterCredentials(server=apiserver.url), prefix="shared", ramp=100.0)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}}
    try:
        await pool.start()
        assert await pool.wait_ready(5)
        await admin.create(resource_path("", "v1", "services", "default"), svc)
        proxies = [n.proxy for n in pool.nodes.values() if n.proxy is not None]
        assert len(proxies) == 3

        async def seen() -> list[Any]:
            objs = [p.services.get("default/db") for p in proxies]
            return objs if all(objs) else []

        objs = await eventually(seen)
        assert all(o is objs[0] for o in objs)
    finally:
        await pool.stop()
