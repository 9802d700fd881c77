"""One contract suite for every Storage backend (memory and etcd): guards, pagination, history, watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kubemark.master.storage.base import (
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    Storage,
)


async def next_events(it: AsyncIterator[list[Event]], n: int, timeout: float = 5.0) -> list[Event]:
    """Collect at least `n` events from a watch iterator (batches may split or merge)."""
    out: list[Event] = []

    async def collect() -> None:
        while len(out) < n:
            out.extend(await anext(it))

    await asyncio.wait_for(collect(), timeout)
    return out


async def test_create_get_and_exists(storage: Storage) -> None:
    before = await storage.current_revision()
    kv = await storage.create("/a/x", b"1")
    assert kv.key == "/a/x" and kv.value == b"1"
    assert kv.create_revision == kv.mod_revision > before
    assert await storage.current_revision() == kv.mod_revision
    assert await storage.get("/a/x") == kv
    assert await storage.get("/a/missing") is None
    with pytest.raises(KeyExistsError):
        await storage.create("/a/x", b"2")
    assert (await storage.get("/a/x")).value == b"1"


async def test_revisions_strictly_increase(storage: Storage) -> None:
    a = await storage.create("/r/a", b"a")
    b = await storage.create("/r/b", b"b")
    c = await storage.update("/r/a", b"a2", a.mod_revision)
    d = await storage.delete("/r/b")
    assert a.mod_revision < b.mod_revision < c.mod_revision
    assert d == b
    assert await storage.current_revision() == c.mod_revision + 1


async def test_update_guards(storage: Storage) -> None:
    kv = await storage.create("/u/x", b"1")
    kv2 = await storage.update("/u/x", b"2", kv.mod_revision)
    assert kv2.value == b"2" and kv2.create_revision == kv.create_revision
    assert kv2.mod_revision > kv.mod_revision
    with pytest.raises(ConflictError) as exc:
        await storage.update("/u/x", b"3", kv.mod_revision)
    assert exc.value.current == kv2
    with pytest.raises(KeyNotFoundError):
        await storage.update("/u/missing", b"3", 5)
    assert await storage.get("/u/x") == kv2


async def test_delete_guards(storage: Storage) -> None:
    kv = await storage.create("/d/x", b"1")
    kv2 = await storage.update("/d/x", b"2", kv.mod_revision)
    with pytest.raises(ConflictError) as exc:
        await storage.delete("/d/x", kv.mod_revision)
    assert exc.value.current == kv2
    assert await storage.delete("/d/x", kv2.mod_revision) == kv2
    assert await storage.get("/d/x") is None
    with pytest.raises(KeyNotFoundError):
        await storage.delete("/d/x")
    # Unguarded delete, and re-create after delete starts a new create_revision.
    kv3 = await storage.create("/d/x", b"3")
    assert kv3.create_revision > kv2.mod_revision
    assert await storage.delete("/d/x") == kv3


async def test_list_prefix_sorted_and_paginated(storage: Storage) -> None:
    names = [f"/p/ns/{i:03d}" for i in (5, 1, 9, 3, 7, 2)]
    for n in names:
        await storage.create(n, n.encode())
    await storage.create("/p/nt/other", b"x")  # sibling prefix sharing the first letters
    await storage.create("/p/n", b"x")
    full = await storage.list("/p/ns/")
    assert [kv.key for kv in full.kvs] == sorted(names)
    assert not full.more
    assert full.revision == await storage.current_revision()

    pages: list[str] = []
    start, rev = "", full.revision
    while True:
        page = await storage.list("/p/ns/", revision=rev, limit=4, start_key=start)
        assert page.revision == rev
        pages.extend(kv.key for kv in page.kvs)
        if not page.more:
            break
        assert len(page.kvs) == 4
        start = page.kvs[-1].key + "\x00"
    assert pages == sorted(names)
    exact = await storage.list("/p/ns/", limit=6)
    assert len(exact.kvs) == 6 and not exact.more


async def test_list_and_watch_larger_than_grpc_default_message(storage: Storage) -> None:
    # gRPC refuses messages over 4 MiB unless told otherwise; kube-apiserver lifts its etcd client's limit, since
    # one page of big objects (endpoint slices, say) easily exceeds it. 12 values of 1 MiB (etcd's request limit
    # is 1.5 MiB per write) make a 12 MiB list, and a watch from the start replays them.
    value = b"x" * (1024 * 1024)
    first = await storage.current_revision() + 1
    for i in range(12):
        await storage.create(f"/big/{i:02d}", value)
    listed = await storage.list("/big/")
    assert len(listed.kvs) == 12 and all(kv.value == value for kv in listed.kvs)
    watch = storage.watch("/big/", first)
    try:
        events = await next_events(watch, 12)
    finally:
        await watch.aclose()
    assert [e.kv.key for e in events] == [f"/big/{i:02d}" for i in range(12)]


async def test_list_at_past_revision(storage: Storage) -> None:
    a = await storage.create("/h/a", b"a1")
    b = await storage.create("/h/b", b"b1")
    snapshot = b.mod_revision
    await storage.update("/h/a", b"a2", a.mod_revision)
    await storage.delete("/h/b")
    await storage.create("/h/c", b"c1")

    past = await storage.list("/h/", revision=snapshot)
    assert [(kv.key, kv.value) for kv in past.kvs] == [("/h/a", b"a1"), ("/h/b", b"b1")]
    assert past.revision == snapshot
    assert past.kvs[0] == a
    page = await storage.list("/h/", revision=snapshot, limit=1, start_key="/h/b")
    assert [kv.key for kv in page.kvs] == ["/h/b"] and not page.more
    early = await storage.list("/h/", revision=a.mod_revision)
    assert [kv.key for kv in early.kvs] == ["/h/a"]
    now = await storage.list("/h/")
    assert [(kv.key, kv.value) for kv in now.kvs] == [("/h/a", b"a2"), ("/h/c", b"c1")]


async def test_compaction(storage: Storage) -> None:
    a = await storage.create("/c/a", b"1")
    a2 = await storage.update("/c/a", b"2", a.mod_revision)
    a3 = await storage.update("/c/a", b"3", a2.mod_revision)
    await storage.compact(a2.mod_revision)
    with pytest.raises(CompactedError) as exc:
        await storage.list("/c/", revision=a.mod_revision)
    assert exc.value.requested == a.mod_revision
    # The compacted revision itself stays readable, as in etcd.
    at = await storage.list("/c/", revision=a2.mod_revision)
    assert [kv.value for kv in at.kvs] == [b"2"]
    assert (await storage.list("/c/")).kvs == [a3]
    with pytest.raises(CompactedError):
        await anext(storage.watch("/c/", a.mod_revision))


async def test_watch_from_revision_with_prev(storage: Storage) -> None:
    a = await storage.create("/w/a", b"1")
    a2 = await storage.update("/w/a", b"2", a.mod_revision)
    await storage.create("/other/x", b"x")
    watch = storage.watch("/w/", a.mod_revision)
    try:
        events = await next_events(watch, 2)
        assert [(e.type, e.kv.value, e.prev) for e in events] == [("PUT", b"1", None), ("PUT", b"2", a)]
        assert events[1].kv == a2
        # Live events follow, in revision order, filtered by prefix.
        await storage.create("/other/y", b"y")
        b = await storage.create("/w/b", b"b")
        await storage.delete("/w/a")
        live = await next_events(watch, 2)
        assert [e.type for e in live] == ["PUT", "DELETE"]
        assert live[0].kv == b and live[0].prev is None
        assert live[1].kv.key == "/w/a" and live[1].kv.value == b""
        assert live[1].kv.mod_revision == b.mod_revision + 1
        assert live[1].prev == a2
    finally:
        await watch.aclose()


async def test_watch_many_writes_in_order(storage: Storage) -> None:
    start = await storage.current_revision() + 1
    watch = storage.watch("/m/", start)
    try:
        written = [(await storage.create(f"/m/{i:04d}", b"v")).mod_revision for i in range(200)]
        events = await next_events(watch, 200)
        assert [e.kv.mod_revision for e in events] == written
    finally:
        await watch.aclose()


async def test_watch_after_compaction_raises(storage: Storage) -> None:
    a = await storage.create("/wc/a", b"1")
    a2 = await storage.update("/wc/a", b"2", a.mod_revision)
    await storage.update("/wc/a", b"3", a2.mod_revision)
    await storage.compact(a2.mod_revision)
    with pytest.raises(CompactedError):
        await next_events(storage.watch("/wc/", a.mod_revision), 1)
    events = await next_events(storage.watch("/wc/", a2.mod_revision), 2)
    assert [e.kv.value for e in events] == [b"2", b"3"]
