"""WatchCache over the memory backend (and once over etcd): reads, watch semantics, dispatch, bookmarks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubemark import codec
from kubemark.master.storage.base import CompactedError, Storage, UnavailableError
from kubemark.master.storage.cacher import CacheWatcher, WatchCache, WatchEvent
from kubemark.master.storage.memory import MemoryStorage

P = "/registry/pods/"


def pod(name: str, node: str = "", labels: dict[str, str] | None = None, ns: str = "default") -> bytes:
    return codec.dumps(
        {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": {"nodeName": node}}
    )


@pytest.fixture
async def store() -> AsyncIterator[MemoryStorage]:
    s = MemoryStorage()
    await s.start()
    yield s
    await s.close()


async def make_cache(storage: Storage, prefix: str = P, **kw: Any) -> WatchCache:
    cache = WatchCache(storage, prefix, **kw)
    await cache.start()
    return cache


async def take(watcher: CacheWatcher, n: int, timeout: float = 5.0) -> list[WatchEvent]:
    async def go() -> list[WatchEvent]:
        return [await anext(watcher) for _ in range(n)]

    return await asyncio.wait_for(go(), timeout)


async def test_list_get_consistency(store: MemoryStorage) -> None:
    for i in range(7):  # some objects exist before the cache starts
        await store.create(f"{P}a/p{i}", pod(f"p{i}"))
    await store.create("/registry/nodes/n1", b"{}")
    cache = await make_cache(store)
    try:
        kv = await store.create(f"{P}b/q", pod("q"))
        await store.delete(f"{P}a/p3")
        await cache.wait_until_fresh(await store.current_revision())
        items, rev = cache.list()
        assert rev == await store.current_revision()
        stored = (await store.list(P)).kvs
        assert [c.key for c in items] == [kv.key for kv in stored]
        assert all(c.obj["metadata"]["resourceVersion"] == str(c.revision) for c in items)
        assert cache.count() == 7
        got = cache.get(kv.key)
        assert got is not None and got.revision == kv.mod_revision and got.obj["metadata"]["name"] == "q"
        assert cache.get(f"{P}a/p3") is None
        ns_items, _ = cache.list(f"{P}a/", lambda o: o["metadata"]["name"] != "p0")
        assert [c.key for c in ns_items] == [f"{P}a/p{i}" for i in (1, 2, 4, 5, 6)]
    finally:
        await cache.stop()


async def test_watch_from_revision_window_and_410(store: MemoryStorage) -> None:
    cache = await make_cache(store, window=3)
    try:
        kvs = [await store.create(f"{P}x/p{i}", pod(f"p{i}")) for i in range(5)]
        upd = await store.update(kvs[4].key, pod("p4", "n1"), kvs[4].mod_revision)
        await cache.wait_until_fresh(upd.mod_revision)
        w = cache.watch("", kvs[2].mod_revision)
        events = await take(w, 3)
        assert [(e.type, e.revision) for e in events] == [
            ("ADDED", kvs[3].mod_revision),
            ("ADDED", kvs[4].mod_revision),
            ("MODIFIED", upd.mod_revision),
        ]
        assert events[2].prev is not None and events[2].prev["spec"]["nodeName"] == ""
        assert events[2].encoded().startswith(b'{"type":"MODIFIED","object":{')
        await store.delete(kvs[0].key)
        (ev,) = await take(w, 1)
        assert ev.type == "DELETED" and ev.obj["metadata"]["resourceVersion"] == str(await store.current_revision())
        w.close()
        old = cache.watch("", kvs[0].mod_revision)
        with pytest.raises(CompactedError):
            await anext(old)
    finally:
        await cache.stop()


async def test_initial_events_then_live(store: MemoryStorage) -> None:
    await store.create(f"{P}a/p1", pod("p1"))
    await store.create(f"{P}b/p2", pod("p2"))
    cache = await make_cache(store)
    try:
        w = cache.watch(f"{P}a/", 0, initial_events=True)
        (first,) = await take(w, 1)
        assert first.type == "ADDED" and first.key == f"{P}a/p1"
        await store.create(f"{P}b/p3", pod("p3"))
        kv = await store.create(f"{P}a/p4", pod("p4"))
        (live,) = await take(w, 1)
        assert live.type == "ADDED" and live.revision == kv.mod_revision
        assert w.pending() == 0
    finally:
        await cache.stop()


async def test_predicate_transitions(store: MemoryStorage) -> None:
    cache = await make_cache(store)
    try:
        w = cache.watch("", 0, lambda o: o["metadata"]["labels"].get("app") == "web")
        a = await store.create(f"{P}d/a", pod("a", labels={"app": "db"}))  # never matches: not delivered
        a2 = await store.update(a.key, pod("a", labels={"app": "web"}), a.mod_revision)  # starts matching
        a3 = await store.update(a.key, pod("a", "n1", labels={"app": "web"}), a2.mod_revision)
        a4 = await store.update(a.key, pod("a", "n1", labels={"app": "db"}), a3.mod_revision)  # stops matching
        await store.update(a.key, pod("a", "n2", labels={"app": "db"}), a4.mod_revision)  # not delivered
        b = await store.create(f"{P}d/b", pod("b", labels={"app": "web"}))
        await store.delete(b.key)
        events = await take(w, 5)
        assert [(e.type, e.revision) for e in events] == [
            ("ADDED", a2.mod_revision),
            ("MODIFIED", a3.mod_revision),
            ("DELETED", a4.mod_revision),
            ("ADDED", b.mod_revision),
            ("DELETED", b.mod_revision + 1),
        ]
        assert events[2].obj["metadata"]["labels"] == {"app": "db"}  # DELETED carries the new state
        assert w.pending() == 0
    finally:
        await cache.stop()


async def test_index_list_and_dispatch(store: MemoryStorage) -> None:
    cache = WatchCache(store, P)
    cache.add_index("spec.nodeName", lambda o: o["spec"].get("nodeName") or None)
    await cache.start()
    calls: dict[str, int] = {}

    def counting(node: str) -> Any:
        def pred(obj: dict[str, Any]) -> bool:
            calls[node] = calls.get(node, 0) + 1
            return True

        return pred

    try:
        watchers = {f"n{i}": cache.watch("", 0, counting(f"n{i}"), index=("spec.nodeName", f"n{i}")) for i in range(50)}
        p = await store.create(f"{P}d/p", pod("p"))
        p2 = await store.update(p.key, pod("p", "n7"), p.mod_revision)  # bound to n7
        q = await store.create(f"{P}d/q", pod("q", "n8"))
        await cache.wait_until_fresh(q.mod_revision)
        (ev,) = await take(watchers["n7"], 1)
        assert ev.type == "MODIFIED" and ev.revision == p2.mod_revision
        (ev,) = await take(watchers["n8"], 1)
        assert ev.type == "ADDED" and ev.key == q.key
        # Only the two interested watchers ever evaluated anything.
        assert set(calls) == {"n7", "n8"}
        assert all(w.pending() == 0 for w in watchers.values())
        items, rev = cache.list_by_index("spec.nodeName", "n7")
        assert [c.key for c in items] == [p.key] and rev == q.mod_revision
        await store.update(p.key, pod("p", "n9"), p2.mod_revision)  # moves n7 -> n9
        (ev,) = await take(watchers["n7"], 1)  # n7 still hears it (prev was on n7)
        assert ev.type == "MODIFIED"
        assert cache.list_by_index("spec.nodeName", "n7")[0] == []
        with pytest.raises(KeyError):
            cache.list_by_index("nope", "x")
    finally:
        await cache.stop()


async def test_bookmarks(store: MemoryStorage) -> None:
    cache = await make_cache(
        store,
        bookmark_interval=0.05,
        bookmark_object=lambda rev: {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": str(rev)}},
    )
    try:
        kv = await store.create("/registry/other/x", b"{}")
        await cache.wait_until_fresh(kv.mod_revision)
        w = cache.watch("", 0, bookmarks=True)
        (ev,) = await take(w, 1)
        assert ev.type == "BOOKMARK"
        assert ev.obj == {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": str(kv.mod_revision)}}
        quiet = cache.watch("", 0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(quiet), 0.2)
    finally:
        await cache.stop()


async def test_slow_watcher_is_ended_without_blocking_others(store: MemoryStorage) -> None:
    cache = await make_cache(store, max_pending=5)
    try:
        slow = cache.watch("", 0)
        fast = cache.watch("", 0)
        received: list[WatchEvent] = []

        async def consume() -> None:
            async for ev in fast:
                received.append(ev)
                if len(received) == 20:
                    return

        task = asyncio.create_task(consume())
        for i in range(20):
            await store.create(f"{P}s/p{i}", pod(f"p{i}"))
            await asyncio.sleep(0)  # yield so the fast consumer keeps up, as a live client would
        await asyncio.wait_for(task, 5)
        assert len(received) == 20
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(slow), 1)
        assert slow.terminated and not fast.terminated
    finally:
        await cache.stop()


async def test_index_watch_replays_only_its_values_events(store: MemoryStorage) -> None:
    """A watch on one index value from a past revision gets that value's events (moves in and out included),
    in order, from a per-value history that the window's trimming keeps bounded."""
    cache = WatchCache(store, P, window=10)
    by_node = ("spec.nodeName", lambda o: o["spec"].get("nodeName") or None)
    cache.add_index(*by_node)
    await cache.start()
    try:
        start = await store.current_revision()
        a = await store.create(f"{P}d/a", pod("a", "n1"))
        await store.create(f"{P}d/b", pod("b", "n2"))
        a2 = await store.update(a.key, pod("a", "n2"), a.mod_revision)  # moves n1 -> n2
        c = await store.create(f"{P}d/c", pod("c", "n1"))
        await store.delete(c.key)
        await cache.wait_until_fresh(await store.current_revision())
        n1 = cache.watch("", start, index=("spec.nodeName", "n1"))
        got = await take(n1, 4)
        assert [(e.type, e.key) for e in got] == [
            ("ADDED", a.key),
            ("MODIFIED", a.key),  # seen by n1 as well: the object was on n1 before
            ("ADDED", c.key),
            ("DELETED", c.key),
        ]
        assert [e.revision for e in got] == sorted(e.revision for e in got)
        assert got[1].revision == a2.mod_revision
        assert n1.pending() == 0
        n1.close()
        # An index added now attributes the window's events too.
        cache.add_index("late", by_node[1])
        late = cache.watch("", start, index=("late", "n2"))
        assert [e.key for e in await take(late, 2)] == [f"{P}d/b", a.key]
        late.close()
        # Enough churn on n3 to trim the window twice: n1's history goes, n3's keeps only the window.
        x = await store.create(f"{P}d/x", pod("x", "n3"))
        for _ in range(25):
            x = await store.update(x.key, pod("x", "n3"), x.mod_revision)
        await cache.wait_until_fresh(x.mod_revision)
        history = cache._index_events["spec.nodeName"]
        assert "n1" not in history and len(history["n3"]) <= 2 * cache.window
        with pytest.raises(CompactedError):
            await anext(cache.watch("", start, index=("spec.nodeName", "n1")))
        recent = cache.watch("", x.mod_revision - 3, index=("spec.nodeName", "n3"))
        assert [e.revision for e in await take(recent, 3)] == [x.mod_revision - 2, x.mod_revision - 1, x.mod_revision]
    finally:
        await cache.stop()


async def test_wait_until_fresh(store: MemoryStorage) -> None:
    cache = await make_cache(store)
    try:
        # A write under another prefix still makes the cache fresh at that revision (storage progress).
        kv = await store.create("/registry/nodes/n1", b"{}")
        await cache.wait_until_fresh(kv.mod_revision, timeout=2)
        assert cache.revision >= kv.mod_revision
        with pytest.raises(UnavailableError):
            await cache.wait_until_fresh(kv.mod_revision + 100, timeout=0.2)
    finally:
        await cache.stop()


@pytest.mark.etcd
async def test_cache_over_etcd(etcd_endpoint: str) -> None:
    from kubemark.master.storage.etcd import EtcdStorage

    root = f"/cache-{uuid.uuid4().hex[:8]}"
    storage = EtcdStorage(etcd_endpoint, prefix=root)
    await storage.start()
    await storage.create(f"{P}a/p0", pod("p0"))
    cache = await make_cache(storage)
    try:
        w = cache.watch("", cache.revision)
        kv = await storage.create(f"{P}a/p1", pod("p1"))
        (ev,) = await take(w, 1)
        assert ev.type == "ADDED" and ev.revision == kv.mod_revision
        other = await storage.create("/registry/nodes/n1", b"{}")
        await cache.wait_until_fresh(other.mod_revision, timeout=5)  # via etcd progress notification
        items, rev = cache.list()
        assert [c.key for c in items] == [f"{P}a/p0", f"{P}a/p1"] and rev >= other.mod_revision
    finally:
        await cache.stop()
        await storage.close()
