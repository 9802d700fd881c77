"""A hollow kubelet's secret and configmap managers: how it reads the objects its pods reference.

kubelet's `configMapAndSecretChangeDetectionStrategy` picks one of three managers (pkg/kubelet/secret,
pkg/kubelet/configmap, pkg/kubelet/util/manager); each node here runs its own, so the API server sees every
node's reads, as from real kubelets (nothing is shared between nodes but interned key strings):

- Get: every read is a GET (simpleSecretManager).
- Cache (cache_based_manager.go): a TTL cache per node. Registering a pod invalidates the objects it references,
  so each pod start GETs each of them once; later reads within the TTL are answered locally, older entries are
  refreshed with a GET from the API server's cache (resourceVersion=0). The TTL is the node's
  `node.alpha.kubernetes.io/ttl` annotation (set by the TTL controller), else kubelet's default of 60 s. A
  NotFound answer is cached too but retried on the next read.
- Watch (watch_based_manager.go, kubelet's default): one reflector per referenced object, a LIST and a WATCH
  with `fieldSelector=metadata.name=<name>` in the pod's namespace, started when the first pod referencing it
  registers and stopped when the last one goes, when the object turns out immutable, or after 5 x syncFrequency
  without reads (env-only references); a read waits up to 1 s for the reflector's first LIST.

Default here: Cache. Watch is faithful to a default kubelet but costs a connection per object: every watch is
its own HTTP/1.1 connection in this client (a real kubelet multiplexes them over HTTP/2), and a process may hold
about 20,000 open files. A hollow node already holds about 9 (6 watches: kubelet node/pods/services, proxy
services/slices/node; 2 call connections; 1 heartbeat), so 1,000 nodes use ~9,000. In the load test at 1,000
nodes (10 namespaces of 3 big, 25 medium and 300 small Deployments, each with its own ConfigMap and Secret) a
node's 30 pods come from ~29 Deployments: ~58 objects, so Watch would add ~58,000 connections, and fits only
~300 nodes (20,000 / (9 + 58)) per process. Cache opens no connection (its GETs ride the node's pooled call
connections) and costs, per node, 2 GETs per pod start there (registration invalidates) plus one GET per
object per pod resync (syncFrequency x [1, 1.5) against the 60 s TTL): ~58 / 75 s = 0.8/s per node, ~800/s at
1,000 nodes (what Cache-mode kubelets do; the TTL controller would give them 30-60 s at that size). Memory: one
small entry per object per node (~300 B: resourceVersion, interned key names, immutable flag; never the
values); a pod without references registers nothing and arms no timer.

The API server's Node authorizer lets a node read only objects referenced by pods bound to it, and its graph is
eventually consistent: right after a pod is bound, a read may be refused (403). A GET answered 403 is retried
with backoff and jitter for up to `FORBIDDEN_GRACE` seconds before the error is reported like any other (a
reflector retries its LIST on its own backoff).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import aiohttp

from kubemark.client.errors import APIError
from kubemark.client.paths import resource_path
from kubemark.client.retry import Backoff
from kubemark.client.watch import Reflector
from kubemark.hollow.pod_sources import (
    Fetched,
    FetchError,
    not_found_message,
    summarize,
    sync_timeout_message,
)

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)

STRATEGIES = ("Get", "Cache", "Watch")
DEFAULT_TTL = 60.0  # kubelet's defaultTTL for the Cache strategy
FORBIDDEN_GRACE = 5.0  # seconds a 403 is retried (the Node authorizer's graph catching up with a binding)
WATCH_SYNC_WAIT = 1.0  # the watch-based manager's wait for its reflector's first LIST
IDLE_FACTOR = 5  # the watch-based manager stops a reflector unread for IDLE_FACTOR x syncFrequency

Key = tuple[str, str, str]  # (resource, namespace, name)


class ObjectManager(Protocol):
    """kubelet's secret and configmap managers in one: register / unregister a pod's objects, read one."""

    gets: int  # GETs sent (Get / Cache)
    forbidden_retries: int  # reads repeated after a 403

    def register(self, namespace: str, objects: Iterable[tuple[str, str]]) -> None: ...

    def unregister(self, namespace: str, objects: Iterable[tuple[str, str]]) -> None: ...

    async def get(self, resource: str, namespace: str, name: str) -> Fetched: ...

    def sweep(self) -> None: ...  # periodic housekeeping (the watch-based manager's idle recycling)

    def __len__(self) -> int: ...  # objects registered

    async def stop(self) -> None: ...


class _Getter:
    """GETs with the 403 grace; counts requests."""

    def __init__(self, client: RestClient, rng: random.Random) -> None:
        self.client = client
        self._rng = rng
        self.gets = 0
        self.forbidden_retries = 0

    async def fetch(self, resource: str, namespace: str, name: str, *, from_cache: bool = False) -> Fetched:
        path = resource_path("", "v1", resource, namespace, name)
        params = {"resourceVersion": "0"} if from_cache else None
        backoff = Backoff(initial=0.1, factor=2.0, jitter=0.5, cap=1.6, rng=self._rng)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FORBIDDEN_GRACE
        while True:
            self.gets += 1
            try:
                obj = await self.client.get(path, params=params)
            except APIError as exc:
                if exc.status == 403:
                    delay = backoff.next_delay()
                    if loop.time() + delay <= deadline:
                        self.forbidden_retries += 1
                        await asyncio.sleep(delay)
                        continue
                raise FetchError(exc.message, not_found=exc.status == 404, status=exc.status) from exc
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise FetchError(f"Get {path}: {exc!r}") from exc
            return summarize(resource, obj if isinstance(obj, dict) else {})

    def sweep(self) -> None:
        pass  # nothing runs in the background of a GET-based strategy

    async def stop(self) -> None:
        pass


class GetManager(_Getter):
    """Strategy Get: no cache, every read a GET (registration is a no-op, as in kubelet)."""

    def __init__(self, client: RestClient, rng: random.Random) -> None:
        super().__init__(client, rng)
        self._refs: dict[Key, int] = {}

    def register(self, namespace: str, objects: Iterable[tuple[str, str]]) -> None:
        for resource, name in objects:
            key = (resource, namespace, name)
            self._refs[key] = self._refs.get(key, 0) + 1

    def unregister(self, namespace: str, objects: Iterable[tuple[str, str]]) -> None:
        for resource, name in objects:
            key = (resource, namespace, name)
            count = self._refs.get(key, 0) - 1
            if count > 0:
                self._refs[key] = count
            else:
                self._refs.pop(key, None)

    async def get(self, resource: str, namespace: str, name: str) -> Fetched:
        return await self.fetch(resource, namespace, name)

    def __len__(self) -> int:
        return len(self._refs)


class _Counted(Protocol):
    refs: int  # pods registered that reference the object


_ItemT = TypeVar("_ItemT", bound=_Counted)


class _Items(Generic[_ItemT]):
    """The objects a Cache or Watch manager tracks, an item each, kept while a registered pod references them."""

    _items: dict[Key, _ItemT]

    def register(self, namespace: str, objects: Iterable[tuple[str, str]]) -> None:
        for resource, name in objects:
            key = (resource, namespace, name)
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = self._new_item(resource, namespace, name)
            item.refs += 1
            self._referenced(item)

    def _new_item(self, resource: str, namespace: str, name: str) -> _ItemT:
        """The item of an object a first pod references."""
        raise NotImplementedError

    def _referenced(self, item: _ItemT) -> None:
        """One more pod references the item (it is in `_items`, `refs` counts that pod)."""

    def _item(self, resource: str, namespace: str, name: str) -> _ItemT:
        """The item a read is answered from; FetchError when no registered pod references the object."""
        item = self._items.get((resource, namespace, name))
        if item is None:
            raise FetchError(f'object "{namespace}"/"{name}" not registered')
        return item

    def unregister(self, namespace: str, objects: Iterable[tuple[str, str]]) -> None:
        for resource, name in objects:
            key = (resource, namespace, name)
            item = self._items.get(key)
            if item is not None:
                item.refs -= 1
                if item.refs <= 0:
                    del self._items[key]
                    self._forget(item)

    def _forget(self, item: _ItemT) -> None:
        """The last pod referencing the item went (it is no longer in `_items`)."""

    def __len__(self) -> int:
        return len(self._items)


class _CacheItem:
    __slots__ = ("at", "data", "err", "inflight", "refs")

    def __init__(self) -> None:
        self.refs = 0
        self.data: Fetched | None = None
        self.err: FetchError | None = None
        self.at = float("-inf")
        self.inflight: asyncio.Future[None] | None = None


class CacheManager(_Getter, _Items[_CacheItem]):
    """Strategy Cache: kubelet's TTL-based object store (see the module docstring)."""

    def __init__(
        self,
        client: RestClient,
        rng: random.Random,
        *,
        ttl: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client, rng)
        self._items: dict[Key, _CacheItem] = {}
        self._ttl = ttl
        self._clock = clock

    def _new_item(self, resource: str, namespace: str, name: str) -> _CacheItem:
        return _CacheItem()

    def _referenced(self, item: _CacheItem) -> None:
        item.data, item.err, item.at = None, None, float("-inf")  # registering a pod invalidates: the next read fetches

    def _fresh(self, item: _CacheItem) -> bool:
        ttl = self._ttl()
        return self._clock() < item.at + (DEFAULT_TTL if ttl is None else ttl)

    async def get(self, resource: str, namespace: str, name: str) -> Fetched:
        item = self._item(resource, namespace, name)
        while item.inflight is not None:  # one fetch at a time per object; the others then read its result
            await asyncio.shield(item.inflight)
        if item.err is not None or item.data is None or not self._fresh(item):
            item.inflight = asyncio.get_running_loop().create_future()
            try:
                await self._refresh(item, resource, namespace, name)
            finally:
                done, item.inflight = item.inflight, None
                done.set_result(None)
        if item.err is not None:
            raise item.err
        assert item.data is not None
        return item.data

    async def _refresh(self, item: _CacheItem, resource: str, namespace: str, name: str) -> None:
        had_data = item.data is not None and item.err is None
        try:
            fetched = await self.fetch(resource, namespace, name, from_cache=had_data)
        except FetchError as exc:
            if not exc.not_found:
                if not had_data:
                    raise  # nothing cached to fall back on: the caller sees this fetch's error
                return  # keep serving the copy we have
            item.data, item.err, item.at = None, exc, self._clock()
            return
        if item.data is None or fetched.resource_version >= item.data.resource_version:
            item.data, item.err, item.at = fetched, None, self._clock()


class _WatchItem:
    __slots__ = ("data", "immutable", "last_read", "reflector", "refs", "stopped", "synced")

    reflector: Reflector

    def __init__(self) -> None:
        self.refs = 0
        self.data: Fetched | None = None
        self.synced = asyncio.Event()
        self.last_read = 0.0
        self.stopped = False
        self.immutable = False


class WatchManager(_Items[_WatchItem]):
    """Strategy Watch: kubelet's watch-based manager, one LIST + WATCH per referenced object."""

    def __init__(
        self,
        client: RestClient,
        rng: random.Random,
        *,
        sync_frequency: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._rng = rng
        self._clock = clock
        self._max_idle = max(60.0, IDLE_FACTOR * sync_frequency)  # kubelet: at least a minute
        self._items: dict[Key, _WatchItem] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self.gets = 0
        self.forbidden_retries = 0

    def _reflector(self, item: _WatchItem, resource: str, namespace: str, name: str) -> Reflector:
        def on_sync(items: list[dict[str, Any]], _rv: str) -> None:
            match = next((o for o in items if (o.get("metadata") or {}).get("name") == name), None)
            item.data = summarize(resource, match) if match is not None else None
            item.synced.set()

        def on_event(kind: str, obj: dict[str, Any]) -> None:
            if kind in ("ADDED", "MODIFIED"):
                item.data = summarize(resource, obj)
            elif kind == "DELETED":
                item.data = None

        return Reflector(
            self.client,
            resource_path("", "v1", resource, namespace),
            field_selector=f"metadata.name={name}",
            on_event=on_event,
            on_sync=on_sync,
            rng=self._rng,
        )

    def _new_item(self, resource: str, namespace: str, name: str) -> _WatchItem:
        item = _WatchItem()
        item.reflector = self._reflector(item, resource, namespace, name)
        item.last_read = self._clock()
        item.reflector.start()
        return item

    def _forget(self, item: _WatchItem) -> None:
        self._stop_item(item)

    def _stop_item(self, item: _WatchItem) -> None:
        if item.stopped:
            return
        item.stopped = True
        if not item.immutable:
            item.synced.clear()
        task = asyncio.create_task(item.reflector.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def get(self, resource: str, namespace: str, name: str) -> Fetched:
        item = self._item(resource, namespace, name)
        item.last_read = self._clock()
        if item.stopped and not item.immutable:
            # A fresh reflector (the stopped one may still be winding down): LIST again, then WATCH.
            item.stopped = False
            item.reflector = self._reflector(item, resource, namespace, name)
            item.reflector.start()
        try:
            await asyncio.wait_for(item.synced.wait(), WATCH_SYNC_WAIT)
        except TimeoutError:
            raise FetchError(sync_timeout_message(resource)) from None
        if item.data is None:
            raise FetchError(not_found_message(resource, name), not_found=True, status=404)
        if item.data.immutable and not item.immutable:
            item.immutable = True
            self._stop_item(item)
        return item.data

    def sweep(self) -> None:
        """Stop reflectors nobody read for a while (they restart on the next read)."""
        now = self._clock()
        for item in self._items.values():
            if not item.stopped and item.synced.is_set() and now > item.last_read + self._max_idle:
                self._stop_item(item)

    async def stop(self) -> None:
        items, self._items = list(self._items.values()), {}
        for item in items:
            self._stop_item(item)
        while self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)


def object_manager(
    strategy: str,
    client: RestClient,
    rng: random.Random,
    *,
    ttl: Callable[[], float | None] = lambda: None,
    sync_frequency: float = 60.0,
) -> ObjectManager:
    if strategy == "Get":
        return GetManager(client, rng)
    if strategy == "Cache":
        return CacheManager(client, rng, ttl=ttl)
    if strategy == "Watch":
        return WatchManager(client, rng, sync_frequency=sync_frequency)
    raise ValueError(f"unknown configMapAndSecretChangeDetectionStrategy {strategy!r}; use one of {STRATEGIES}")
