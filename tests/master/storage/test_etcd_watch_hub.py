"""The etcd watch hub behind the watch caches: progress never runs ahead of the events a consumer has taken,
a slightly late subscriber is replayed what it missed, and one from before the hub's reach must re-list."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kubemark.master.storage.base import CompactedError
from kubemark.master.storage.etcd import EtcdStorage

pytestmark = pytest.mark.etcd


async def _storage(endpoint: str) -> EtcdStorage:
    storage = EtcdStorage(endpoint, prefix=f"/hub-{uuid.uuid4().hex[:8]}")
    await storage.start()
    return storage


async def test_progress_never_overtakes_events_of_a_slow_consumer(etcd_endpoint: str) -> None:
    storage = await _storage(etcd_endpoint)
    try:
        start = await storage.current_revision() + 1
        progress: list[int] = []
        seen: list[int] = []
        violations: list[tuple[int, int]] = []
        stream = storage.watch("/a/", start, progress=progress.append)

        async def consume(n: int) -> None:
            async for batch in stream:
                for event in batch:
                    # An event at or below a revision already reported as complete would be one the consumer
                    # was told it had (what etcd's early progress notifications did to slow watchers).
                    if progress and event.kv.mod_revision <= progress[-1]:
                        violations.append((event.kv.mod_revision, progress[-1]))
                    seen.append(event.kv.mod_revision)
                await asyncio.sleep(0.002)  # a slow consumer: the hub runs ahead of it
                if len(seen) >= n:
                    return

        consumer = asyncio.create_task(consume(300))
        writes = []
        for i in range(300):
            writes.append(await storage.create(f"/a/k{i}", b"x"))
            await storage.create(f"/b/k{i}", b"y")  # another prefix: progress without events for /a/
        await asyncio.wait_for(consumer, 30)
        assert violations == []
        assert seen == [kv.mod_revision for kv in writes]
        # Asked for progress (as a cache does while a read waits), a consumer waiting for more learns that the
        # last write anywhere has been reached.
        last = await storage.create("/b/last", b"z")
        nxt = asyncio.create_task(anext(stream))
        deadline = asyncio.get_running_loop().time() + 10
        while not progress or progress[-1] < last.mod_revision:
            assert asyncio.get_running_loop().time() < deadline, progress[-3:]
            storage.request_progress()
            await asyncio.sleep(0.01)  # polling a list filled by the stream, not a synchronisation stand-in
        nxt.cancel()
    finally:
        await storage.close()


async def test_late_subscriber_is_replayed_and_a_too_early_one_relists(etcd_endpoint: str) -> None:
    storage = await _storage(etcd_endpoint)
    try:
        start = await storage.current_revision() + 1
        first = storage.watch("/a/", start, progress=lambda rev: None)
        created = [await storage.create(f"/a/k{i}", b"x") for i in range(5)]
        got = []
        while len(got) < 5:
            got += await asyncio.wait_for(anext(first), 10)
        # The hub has moved past these revisions; a subscriber from the third write still gets 3, 4, 5.
        late = storage.watch("/a/", created[2].mod_revision, progress=lambda rev: None)
        replayed = []
        while len(replayed) < 3:
            replayed += await asyncio.wait_for(anext(late), 10)
        assert [e.kv.mod_revision for e in replayed] == [kv.mod_revision for kv in created[2:]]
        # From before the hub started: nothing to replay from, so the cache must re-list.
        early = storage.watch("/a/", start - 1, progress=lambda rev: None)
        with pytest.raises(CompactedError):
            await asyncio.wait_for(anext(early), 10)
    finally:
        await storage.close()
