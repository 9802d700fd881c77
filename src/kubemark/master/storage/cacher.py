"""The watch cache (kube-apiserver's "cacher"): one per resource prefix, fed by one storage watch.

It keeps every object decoded (with metadata.resourceVersion set), a sliding window of recent events for
watches from a past revision, and fans events out to many watchers, each event encoded once. Watchers are
found per event by key prefix ("/"-boundary prefixes of the key, looked up in a dict) or by index value
(e.g. pods by spec.nodeName), so dispatch costs O(interested watchers), not O(all watchers).

A slow watcher whose queue exceeds `max_pending` events is ended (its iterator stops, as upstream closes
the result channel); its client re-watches from the last revision it saw. If the storage watch itself
falls behind a compaction, the cache re-lists, and watchers that cannot be served from the new state get
CompactedError (-> 410 Gone).
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubemark import codec
from kubemark.master.storage.base import KV, CompactedError, Event, Storage, UnavailableError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]
IndexFn = Callable[[Obj], str | None]

_LIST_PAGE = 5000  # page size of the initial (and re-) LIST from storage


@dataclass(frozen=True, slots=True)
class CachedObject:
    """Immutable view of one cached object; consumers must not mutate `obj`."""

    key: str
    obj: Obj  # decoded JSON with metadata.resourceVersion already set to str(revision)
    revision: int  # mod_revision


@dataclass(slots=True)
class WatchEvent:
    """One event as sent to watchers; `encoded()` serialises it once, however many watchers get it."""

    type: str  # "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"
    obj: Obj
    revision: int
    prev: Obj | None = None  # previous object (MODIFIED/DELETED), for selector transitions
    key: str = ""
    _encoded: bytes | None = field(default=None, repr=False)
    _variants: dict[str, WatchEvent] | None = field(default=None, repr=False)

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = codec.dumps({"type": self.type, "object": self.obj}) + b"\n"
        return self._encoded

    def as_type(self, type_: str) -> WatchEvent:
        """The same event seen as `type_` (a selector transition), shared so it is encoded once too."""
        if type_ == self.type:
            return self
        if self._variants is None:
            self._variants = {}
        variant = self._variants.get(type_)
        if variant is None:
            variant = WatchEvent(type_, self.obj, self.revision, self.prev, self.key)
            self._variants[type_] = variant
        return variant


def _wake_waiter(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _event_values(fn: IndexFn, event: WatchEvent) -> set[str]:
    """The index values an event concerns: its object's now and before."""
    values = {fn(event.obj), fn(event.prev) if event.prev is not None else None}
    values.discard(None)
    return values  # type: ignore[return-value]  # None was just discarded


class CacheWatcher:
    """Async iterator of WatchEvent for one watch request. Call `close()` (or `stop()`) when done."""

    def __init__(
        self,
        cache: WatchCache,
        prefix: str,
        predicate: Predicate | None,
        from_revision: int,
        bookmarks: bool,
        index: tuple[str, str] | None,
    ) -> None:
        self.cache = cache
        self.prefix = prefix
        self.predicate = predicate
        self.index = index
        self.bookmarks = bookmarks
        self.from_revision = from_revision
        self._queue: deque[WatchEvent] = deque()
        self._limit = cache.max_pending
        self._waiter: asyncio.Future[None] | None = None  # set while the consumer waits for events
        self._error: BaseException | None = None
        self._done = False
        self.terminated = False  # closed by the cache for falling behind, not by its consumer
        self._next_bookmark = time.monotonic() + cache.bookmark_interval

    def pending(self) -> int:
        return len(self._queue)

    def _push(self, event: WatchEvent) -> None:
        self._queue.append(event)
        if len(self._queue) > self._limit:
            log.info("watch cache %s: ending slow watcher (%d events pending)", self.cache.prefix, len(self._queue))
            self._queue.clear()
            self.terminated = True
            self._finish(None)
        else:
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver(self, event: WatchEvent) -> None:
        """Filter one event for this watcher (prefix, predicate with transitions) and queue it."""
        if self._done or event.revision <= self.from_revision or not event.key.startswith(self.prefix):
            return
        pred = self.predicate
        if pred is None:
            self._push(event)
            return
        old = event.prev is not None and pred(event.prev)
        if event.type == "DELETED":
            if old:
                self._push(event)
            return
        new = pred(event.obj)
        if new:
            self._push(event.as_type("MODIFIED" if old else "ADDED"))
        elif old:
            self._push(event.as_type("DELETED"))  # stopped matching: DELETED carrying its new state

    def _finish(self, error: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._error = error
            self.cache._unregister(self)
            self._wake()

    def close(self) -> None:
        self._queue.clear()
        self._finish(None)

    stop = close

    def __aiter__(self) -> CacheWatcher:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._done:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                raise StopAsyncIteration
            timeout = None
            if self.bookmarks:
                now = time.monotonic()
                if now >= self._next_bookmark:
                    self._next_bookmark = now + self.cache.bookmark_interval
                    return self.cache._bookmark(max(self.cache.revision, self.from_revision))
                timeout = self._next_bookmark - now
            # A bare future and timer rather than wait_for(Event.wait()): no task per wait, which adds up
            # over thousands of watchers.
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _wake_waiter, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()


class WatchCache:
    """Decoded objects + recent events of one resource prefix, kept current by one storage watch."""

    def __init__(
        self,
        storage: Storage,
        prefix: str,
        *,
        window: int = 20000,
        decode: Callable[[bytes], Obj] = codec.loads,
        bookmark_interval: float = 60.0,
        bookmark_object: Callable[[int], Obj] | None = None,
        max_pending: int = 10000,
    ) -> None:
        self.storage = storage
        self.prefix = prefix
        self.window = window
        self.decode = decode
        self.bookmark_interval = bookmark_interval
        self.bookmark_object = bookmark_object or (lambda rev: {"metadata": {"resourceVersion": str(rev)}})
        self.max_pending = max_pending
        self._objects: dict[str, CachedObject] = {}
        self._keys: builtins.list[str] = []
        self._events: builtins.list[WatchEvent] = []  # the window, oldest first, from _events_head
        self._events_head = 0
        self._oldest = 0  # watches from a revision below this cannot be served (410)
        self._revision = 0
        self._indexes: dict[str, IndexFn] = {}
        self._index_keys: dict[str, dict[str, set[str]]] = {}
        self._by_prefix: dict[str, set[CacheWatcher]] = {}
        self._odd_prefix: set[CacheWatcher] = set()  # prefixes not ending in "/": checked one by one
        self._by_index: dict[str, dict[str, set[CacheWatcher]]] = {}
        # The window's events per index value, oldest first (may keep a few older than the window until the
        # next bulk trim): a watcher on one value replays its own few events instead of scanning the window.
        self._index_events: dict[str, dict[str, builtins.list[WatchEvent]]] = {}
        self._fresh = asyncio.Event()  # set and replaced whenever the revision advances
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._supports_progress = callable(getattr(storage, "request_progress", None))

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Initial LIST (paginated), then one storage watch from the list revision + 1 in the background."""
        await self._relist()
        self._task = asyncio.create_task(self._run(), name=f"watch-cache {self.prefix}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for watcher in self._all_watchers():
            watcher._finish(None)

    async def _relist(self) -> None:
        first = await self.storage.list(self.prefix, limit=_LIST_PAGE)
        revision, kvs, page = first.revision, list(first.kvs), first
        while page.more:
            page = await self.storage.list(
                self.prefix, revision=revision, limit=_LIST_PAGE, start_key=page.kvs[-1].key + "\x00"
            )
            kvs.extend(page.kvs)
        self._objects = {kv.key: self._cached(kv) for kv in kvs}
        self._keys = [kv.key for kv in kvs]
        self._index_keys = {name: {} for name in self._indexes}
        for cached in self._objects.values():
            self._index_add(cached.key, cached.obj)
        self._events, self._events_head = [], 0
        self._index_events = {name: {} for name in self._indexes}
        self._oldest = revision
        self._advance(revision)

    async def _run(self) -> None:
        while True:
            try:
                kwargs: dict[str, Any] = {"progress": self._on_progress} if self._supports_progress else {}
                async for batch in self.storage.watch(self.prefix, self._revision + 1, **kwargs):
                    for ev in batch:
                        self._apply(ev)
                    self._advance(batch[-1].kv.mod_revision)
                return
            except CompactedError as exc:
                log.warning("watch cache %s fell behind compaction (%s); re-listing", self.prefix, exc)
                old_revision = self._revision
                await self._relist_retrying()
                # Watchers are positioned at old_revision; events between it and the new list are lost.
                for watcher in self._all_watchers():
                    watcher._finish(CompactedError(old_revision, self._oldest))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch cache %s: storage watch failed; restarting", self.prefix)
                await asyncio.sleep(0.5)  # back off before re-watching a failing storage

    async def _relist_retrying(self) -> None:
        while True:
            try:
                await self._relist()
                return
            except Exception:
                log.exception("watch cache %s: re-list failed; retrying", self.prefix)
                await asyncio.sleep(0.5)  # back off before retrying a failing storage

    # --- applying storage events ---------------------------------------------------------------------------

    def _cached(self, kv: KV) -> CachedObject:
        obj = self.decode(kv.value)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        meta["resourceVersion"] = str(kv.mod_revision)
        return CachedObject(kv.key, obj, kv.mod_revision)

    def _apply(self, ev: Event) -> None:
        key, rev = ev.kv.key, ev.kv.mod_revision
        old = self._objects.get(key)
        prev_obj = old.obj if old is not None else (self.decode(ev.prev.value) if ev.prev is not None else None)
        if ev.type == "DELETE":
            if old is None and prev_obj is None:
                return
            base = prev_obj if prev_obj is not None else {}
            obj = {**base, "metadata": {**base.get("metadata", {}), "resourceVersion": str(rev)}}
            if old is not None:
                del self._objects[key]
                del self._keys[bisect.bisect_left(self._keys, key)]
                self._index_remove(key, old.obj)
            event = WatchEvent("DELETED", obj, rev, prev_obj, key)
        else:
            cached = self._cached(ev.kv)
            self._objects[key] = cached
            if old is None:
                bisect.insort(self._keys, key)
            else:
                self._index_remove(key, old.obj)
            self._index_add(key, cached.obj)
            event = WatchEvent("ADDED" if old is None else "MODIFIED", cached.obj, rev, prev_obj, key)
        values = self._index_values(event)
        self._record(event, values)
        self._dispatch(event, values)

    def _index_values(self, event: WatchEvent) -> builtins.list[tuple[str, set[str]]]:
        """Per index: the values the event's object has now or had before (a watcher on either sees it)."""
        return [(name, _event_values(fn, event)) for name, fn in self._indexes.items()]

    def _record(self, event: WatchEvent, values: builtins.list[tuple[str, set[str]]]) -> None:
        self._events.append(event)
        for name, vals in values:
            per_value = self._index_events[name]
            for value in vals:
                per_value.setdefault(value, []).append(event)
        if len(self._events) - self._events_head > self.window:
            self._oldest = self._events[self._events_head].revision
            self._events_head += 1
            if self._events_head >= self.window:  # trim the list in bulk, amortised O(1)
                del self._events[: self._events_head]
                self._events_head = 0
                self._trim_index_events()

    def _trim_index_events(self) -> None:
        oldest = self._oldest
        for per_value in self._index_events.values():
            for value in list(per_value):
                events = per_value[value]
                cut = bisect.bisect_left(events, oldest, key=lambda e: e.revision)
                if cut == len(events):
                    del per_value[value]
                elif cut:
                    del events[:cut]

    def _advance(self, revision: int) -> None:
        if revision > self._revision:
            self._revision = revision
        self._ready.set()
        self._fresh.set()
        self._fresh = asyncio.Event()

    def _on_progress(self, revision: int) -> None:
        # Storage vouches that every event under our prefix up to `revision` has been applied.
        if revision > self._revision:
            self._advance(revision)

    # --- indexes -------------------------------------------------------------------------------------------

    def add_index(self, name: str, fn: IndexFn) -> None:
        """Index objects by `fn(obj)` (None = not indexed), for list_by_index and index-filtered watches."""
        self._indexes[name] = fn
        self._index_keys[name] = {}
        self._by_index.setdefault(name, {})
        per_value: dict[str, builtins.list[WatchEvent]] = {}
        for event in self._events[self._events_head :]:
            for value in _event_values(fn, event):
                per_value.setdefault(value, []).append(event)
        self._index_events[name] = per_value
        for cached in self._objects.values():
            indexed = fn(cached.obj)
            if indexed is not None:
                self._index_keys[name].setdefault(indexed, set()).add(cached.key)

    def _index_add(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexes.items():
            value = fn(obj)
            if value is not None:
                self._index_keys[name].setdefault(value, set()).add(key)

    def _index_remove(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexes.items():
            value = fn(obj)
            if value is not None:
                keys = self._index_keys[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._index_keys[name][value]

    def list_by_index(self, name: str, value: str) -> tuple[builtins.list[CachedObject], int]:
        """Objects whose index `name` has `value`, sorted by key; raises KeyError for an unknown index."""
        keys = self._index_keys[name].get(value, ())
        return [self._objects[k] for k in sorted(keys)], self._revision

    # --- reads ---------------------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The highest revision the cache has applied (or been told by storage progress it is fresh at)."""
        return self._revision

    async def current_storage_revision(self) -> int:
        return await self.storage.current_revision()

    async def wait_until_fresh(self, revision: int, timeout: float = 3.0) -> None:  # noqa: ASYNC109 (contract)
        """Wait until the cache has applied `revision`; UnavailableError after `timeout` seconds."""
        if self._revision >= revision and self._ready.is_set():
            return
        deadline = time.monotonic() + timeout
        while not (self._revision >= revision and self._ready.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UnavailableError(f"watch cache {self.prefix} is at revision {self._revision}, not yet {revision}")
            if self._supports_progress:
                self.storage.request_progress()  # type: ignore[attr-defined]
            with contextlib.suppress(TimeoutError):
                # Re-ask for progress periodically: etcd answers only once the stream is synced.
                await asyncio.wait_for(self._fresh.wait(), min(remaining, 0.1))

    def get(self, key: str) -> CachedObject | None:
        return self._objects.get(key)

    def list(self, prefix: str = "", predicate: Predicate | None = None) -> tuple[builtins.list[CachedObject], int]:
        """Objects under `prefix` (default: all), sorted by key, with the cache revision."""
        keys = self._keys
        if prefix:
            lo = bisect.bisect_left(keys, prefix)
            hi = bisect.bisect_left(keys, prefix[:-1] + chr(ord(prefix[-1]) + 1))
            keys = keys[lo:hi]
        objects = self._objects
        items = [objects[k] for k in keys]
        if predicate is not None:
            items = [c for c in items if predicate(c.obj)]
        return items, self._revision

    def count(self) -> int:
        return len(self._objects)

    # --- watch ---------------------------------------------------------------------------------------------

    def watch(
        self,
        prefix: str = "",
        from_revision: int = 0,
        predicate: Predicate | None = None,
        *,
        initial_events: bool = False,
        bookmarks: bool = False,
        index: tuple[str, str] | None = None,
    ) -> CacheWatcher:
        """Watch objects under `prefix` (a "/"-terminated directory or one exact key).

        from_revision=0: live events only, preceded by a synthetic ADDED per matching object when
        `initial_events`. from_revision=N: every event after N from the window, then live; N older than the
        window ends the iterator with CompactedError. `index=(name, value)` restricts the watcher to objects
        whose index value is (or was) `value`, and makes dispatch to it O(1).
        """
        if index is not None and index[0] not in self._indexes:
            raise KeyError(index[0])
        start = from_revision if from_revision > 0 else self._revision
        watcher = CacheWatcher(self, prefix, predicate, start, bookmarks, index)
        if from_revision > 0 and from_revision < self._oldest:
            watcher._done = True
            watcher._error = CompactedError(from_revision, self._oldest)
            return watcher
        if from_revision <= 0 and initial_events:
            items = self.list_by_index(*index)[0] if index is not None else self.list(prefix)[0]
            for c in items:
                if c.key.startswith(prefix) and (predicate is None or predicate(c.obj)):
                    watcher._queue.append(WatchEvent("ADDED", c.obj, c.revision, None, c.key))
        elif from_revision > 0:
            if index is not None:
                events, lo = self._index_events[index[0]].get(index[1], []), 0
            else:
                events, lo = self._events, self._events_head
            pos = bisect.bisect_right(events, from_revision, lo=lo, key=lambda e: e.revision)
            for event in events[pos:]:
                watcher._deliver(event)
        watcher._limit = self.max_pending + len(watcher._queue)  # the replay itself never ends a watcher
        self._register(watcher)
        return watcher

    def _register(self, watcher: CacheWatcher) -> None:
        if watcher.index is not None:
            name, value = watcher.index
            self._by_index[name].setdefault(value, set()).add(watcher)
        elif watcher.prefix == "" or watcher.prefix.endswith("/"):
            self._by_prefix.setdefault(watcher.prefix, set()).add(watcher)
        else:
            self._odd_prefix.add(watcher)

    def _unregister(self, watcher: CacheWatcher) -> None:
        if watcher.index is not None:
            name, value = watcher.index
            group = self._by_index.get(name, {}).get(value)
            if group is not None:
                group.discard(watcher)
                if not group:
                    del self._by_index[name][value]
            return
        group = self._by_prefix.get(watcher.prefix)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self._by_prefix[watcher.prefix]
        self._odd_prefix.discard(watcher)

    def _all_watchers(self) -> builtins.list[CacheWatcher]:
        out = [w for group in self._by_prefix.values() for w in group]
        out.extend(self._odd_prefix)
        out.extend(w for values in self._by_index.values() for group in values.values() for w in group)
        return out

    def _dispatch(self, event: WatchEvent, values: builtins.list[tuple[str, set[str]]]) -> None:
        key = event.key
        by_prefix = self._by_prefix
        if by_prefix:
            # Every "/"-terminated prefix of the key (and "" and the key itself) that has watchers.
            candidates = ["", *(key[: i + 1] for i, ch in enumerate(key) if ch == "/")]
            if not key.endswith("/"):
                candidates.append(key)
            for candidate in candidates:
                group = by_prefix.get(candidate)
                if group:
                    for watcher in list(group):
                        watcher._deliver(event)
        for watcher in list(self._odd_prefix):
            watcher._deliver(event)
        by_index = self._by_index
        for name, vals in values:
            watchers_by_value = by_index.get(name)
            if watchers_by_value:
                for value in vals:
                    for watcher in list(watchers_by_value.get(value, ())):
                        watcher._deliver(event)

    def _bookmark(self, revision: int) -> WatchEvent:
        return WatchEvent("BOOKMARK", self.bookmark_object(revision), revision)
