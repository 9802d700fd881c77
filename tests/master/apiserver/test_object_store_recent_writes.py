"""ResourceStore's memory of its own recent writes: used while the watch cache lags, never trusted blindly."""

from __future__ import annotations

from typing import Any

import pytest

from kubemark import codec
from kubemark.kube.resources import find
from kubemark.master.apiserver import object_store
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.object_store import ResourceStore
from kubemark.master.apiserver.options import DeleteOptions
from kubemark.master.apiserver.server import _strategy_for
from kubemark.master.storage.base import KV
from kubemark.master.storage.cacher import CachedObject
from kubemark.master.storage.memory import MemoryStorage

LEASES = find("coordination.k8s.io", "v1", "leases")
NS = "kube-node-lease"


class CountingStorage(MemoryStorage):
    """MemoryStorage that counts point reads (the storage round trip the memory of writes saves)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, key: str) -> KV | None:
        self.gets += 1
        return await super().get(key)


class FrozenCache:
    """A watch cache that never catches up: it serves whatever it was given, possibly nothing."""

    def __init__(self) -> None:
        self.objects: dict[str, CachedObject] = {}

    def get(self, key: str) -> CachedObject | None:
        return self.objects.get(key)


def lease(name: str, holder: str = "kubelet", rv: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": NS}
    if rv is not None:
        md["resourceVersion"] = rv
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md, "spec": {"holderIdentity": holder}}


@pytest.fixture
async def setup() -> tuple[ResourceStore, CountingStorage, FrozenCache]:
    assert LEASES is not None
    storage = CountingStorage()
    await storage.start()
    cache = FrozenCache()
    return ResourceStore(LEASES, storage, cache, _strategy_for(LEASES)), storage, cache


async def test_update_right_after_own_write_needs_no_storage_read(setup: Any) -> None:
    store, storage, _ = setup
    created = await store.create(lease("n1"))
    rv = created["metadata"]["resourceVersion"]
    updated, was_created = await store.update(NS, "n1", lease("n1", "a", rv))
    assert not was_created
    again, _ = await store.update(NS, "n1", lease("n1", "b", updated["metadata"]["resourceVersion"]))
    assert storage.gets == 0
    assert int(again["metadata"]["resourceVersion"]) > int(updated["metadata"]["resourceVersion"]) > int(rv)
    stored = codec.loads((await storage.get(store.key(NS, "n1"))).value)
    assert stored["spec"]["holderIdentity"] == "b"
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]


async def test_stale_resource_version_still_conflicts(setup: Any) -> None:
    store, _, _ = setup
    created = await store.create(lease("n1"))
    rv = created["metadata"]["resourceVersion"]
    await store.update(NS, "n1", lease("n1", "a", rv))
    with pytest.raises(StatusError) as err:
        await store.update(NS, "n1", lease("n1", "b", rv))
    assert err.value.code == 409


async def test_write_by_someone_else_is_read_from_storage(setup: Any) -> None:
    store, storage, _ = setup
    created = await store.create(lease("n1"))
    # Another API server (or anything else) rewrites the object: this store's memory is now stale.
    other = dict(created, spec={"holderIdentity": "other"})
    kv = await storage.update(
        store.key(NS, "n1"), object_store.encode_obj(other), int(created["metadata"]["resourceVersion"])
    )
    updated, _ = await store.update(NS, "n1", lease("n1", "mine", str(kv.mod_revision)))
    assert updated["spec"]["holderIdentity"] == "mine"
    assert storage.gets == 1
    # A patch from the stale memory conflicts in storage and is retried on the fresh object.
    kv2 = await storage.update(
        store.key(NS, "n1"), object_store.encode_obj(dict(updated, spec={"holderIdentity": "x"})), kv.mod_revision + 1
    )
    patched, _ = await store.patch(NS, "n1", "application/merge-patch+json", {"spec": {"leaseDurationSeconds": 40}})
    assert patched["spec"] == {"holderIdentity": "x", "leaseDurationSeconds": 40}
    assert int(patched["metadata"]["resourceVersion"]) > kv2.mod_revision


async def test_delete_forgets_so_put_recreates(setup: Any) -> None:
    store, _, _ = setup
    created = await store.create(lease("n1"))
    await store.delete(NS, "n1", {})
    # Leases allow create-on-update: with nothing remembered and nothing stored, the PUT creates it anew.
    recreated, was_created = await store.update(NS, "n1", lease("n1", "b", created["metadata"]["resourceVersion"]))
    assert was_created
    assert recreated["metadata"]["uid"] != created["metadata"]["uid"]


async def test_memory_is_bounded(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _, _ = setup
    monkeypatch.setattr(object_store, "RECENT_WRITES", 3)
    for i in range(6):
        await store.create(lease(f"n{i}"))
    assert list(store._recent) == [store.key(NS, f"n{i}") for i in (3, 4, 5)]


async def test_newer_cache_wins_over_memory(setup: Any) -> None:
    store, storage, cache = setup
    created = await store.create(lease("n1"))
    kv = await storage.update(
        store.key(NS, "n1"),
        object_store.encode_obj(dict(created, spec={"holderIdentity": "cached"})),
        int(created["metadata"]["resourceVersion"]),
    )
    obj = object_store.decode_kv(kv)
    cache.objects[kv.key] = CachedObject(kv.key, obj, kv.mod_revision)
    updated, _ = await store.update(NS, "n1", lease("n1", "next", str(kv.mod_revision)))
    assert updated["spec"]["holderIdentity"] == "next"
    assert storage.gets == 0


async def test_delete_starts_from_the_remembered_object(setup: Any) -> None:
    store, storage, _ = setup
    await store.create(lease("n1"))
    result = await store.delete_object(NS, "n1", DeleteOptions())
    assert result.deleted and storage.gets == 0
    assert await storage.get(store.key(NS, "n1")) is None


async def test_delete_from_a_stale_memory_rereads_before_judging(setup: Any) -> None:
    store, storage, _ = setup
    created = await store.create(lease("n1"))
    key = store.key(NS, "n1")
    kv = await storage.update(
        key,
        object_store.encode_obj(dict(created, spec={"holderIdentity": "other"})),
        int(created["metadata"]["resourceVersion"]),
    )
    storage.gets = 0
    # The precondition names the stored version; the remembered (older) one must not turn it into a 409.
    result = await store.delete_object(NS, "n1", DeleteOptions(precondition_resource_version=str(kv.mod_revision)))
    assert result.deleted and result.obj["spec"]["holderIdentity"] == "other"
    assert storage.gets == 1

    again = await store.create(lease("n2"))
    await storage.delete(store.key(NS, "n2"), int(again["metadata"]["resourceVersion"]))
    with pytest.raises(StatusError) as err:
        await store.delete_object(NS, "n2", DeleteOptions())
    assert err.value.code == 404


async def test_dry_run_delete_is_answered_from_storage(setup: Any) -> None:
    store, storage, _ = setup
    created = await store.create(lease("n1"))
    key = store.key(NS, "n1")
    await storage.update(
        key,
        object_store.encode_obj(dict(created, spec={"holderIdentity": "other"})),
        int(created["metadata"]["resourceVersion"]),
    )
    storage.gets = 0
    result = await store.delete_object(NS, "n1", DeleteOptions(dry_run=True))
    assert result.deleted and result.obj["spec"]["holderIdentity"] == "other"
    assert storage.gets == 1 and await storage.get(key) is not None
