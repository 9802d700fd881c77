"""The controller skeleton: shared informers, secondary indexes, and a work-queue driven `Controller`.

Controllers register informer handlers in their constructor (handlers only enqueue keys), then `start()`
waits for their informers to sync and runs N workers; each worker takes a key, calls `sync(key)`, and on an
exception re-queues the key rate-limited (client-go's processNextWorkItem).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from kubemark.client import APIError, Informer, RestClient, namespaced_key, resource_path
from kubemark.master.controllers.workqueue import QueueMetrics, WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class Index:
    """A secondary index over one informer's objects: index value -> {key: obj}. Kept current by a handler."""

    def __init__(self, fn: Callable[[Obj], str | None]) -> None:
        self._fn = fn
        self._by_value: dict[str, dict[str, Obj]] = {}

    def _add(self, obj: Obj) -> None:
        value = self._fn(obj)
        if value is not None:
            self._by_value.setdefault(value, {})[namespaced_key(obj)] = obj

    def _remove(self, obj: Obj) -> None:
        value = self._fn(obj)
        if value is None:
            return
        bucket = self._by_value.get(value)
        if bucket is not None:
            bucket.pop(namespaced_key(obj), None)
            if not bucket:
                del self._by_value[value]

    def on_update(self, old: Obj, new: Obj) -> None:
        self._remove(old)
        self._add(new)

    def get(self, value: str) -> list[Obj]:
        return list((self._by_value.get(value) or {}).values())

    def count(self, value: str) -> int:
        return len(self._by_value.get(value) or ())

    def values(self) -> list[str]:
        return list(self._by_value)


def namespace_of(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def controller_uid_key(obj: Obj) -> str:
    """Index value: the controller's UID, or `orphan/<namespace>` for objects without a controller
    (upstream's PodControllerUIDIndex with its orphan key), so an owner's sync reads only its own objects and
    the orphans it might adopt instead of its whole namespace."""
    md = obj.get("metadata") or {}
    for ref in md.get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return f"orphan/{md.get('namespace') or ''}"


def pod_node_name(obj: Obj) -> str | None:
    return (obj.get("spec") or {}).get("nodeName") or None


class SharedInformers:
    """One Informer per collection path, shared by every controller (client-go's SharedInformerFactory)."""

    def __init__(self, client: RestClient, **informer_options: Any) -> None:
        self.client = client
        self._options = informer_options
        self._informers: dict[str, Informer] = {}
        self._indexes: dict[tuple[str, str], Index] = {}
        self._started: set[str] = set()

    def informer(self, group: str, version: str, plural: str, namespace: str | None = None) -> Informer:
        path = resource_path(group, version, plural, namespace)
        informer = self._informers.get(path)
        if informer is None:
            informer = Informer(self.client, path, **self._options)
            self._informers[path] = informer
            if self._started:
                # Created after start(): start it now so late controllers still get events.
                informer.start()
                self._started.add(path)
        return informer

    def index(self, group: str, version: str, plural: str, name: str, fn: Callable[[Obj], str | None]) -> Index:
        """A named secondary index on a (cluster-wide) informer; the same name returns the same index."""
        path = resource_path(group, version, plural)
        found = self._indexes.get((path, name))
        if found is None:
            found = Index(fn)
            informer = self.informer(group, version, plural)
            for obj in informer.list():  # an index made after start() begins from the cache
                found._add(obj)
            informer.add_handler(found._add, found.on_update, found._remove)
            self._indexes[(path, name)] = found
        return found

    def by_namespace(self, group: str, version: str, plural: str) -> Index:
        return self.index(group, version, plural, "namespace", namespace_of)

    def by_controller(self, group: str, version: str, plural: str) -> Index:
        """Objects by controller UID; orphans under `orphan/<namespace>` (see controller_uid_key)."""
        return self.index(group, version, plural, "controller-uid", controller_uid_key)

    def start(self) -> None:
        for path, informer in self._informers.items():
            if path not in self._started:
                informer.start()
                self._started.add(path)

    async def wait_synced(self, informers: Iterable[Informer] | None = None, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        chosen = list(informers) if informers is not None else list(self._informers.values())
        results = await asyncio.gather(*(i.wait_synced(timeout) for i in chosen))
        return all(results)

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
        self._started.clear()


class Controller:
    """A named controller with its own work queue and `workers` concurrent syncs (never two on one key)."""

    name = "controller"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 1,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self.informers = informers
        self.workers = workers
        self.clock = clock or time.time
        self.queue = WorkQueue(self.name, metrics=metrics)
        self._used: list[Informer] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    # -- wiring ---------------------------------------------------------------------------------------------

    def use(self, group: str, version: str, plural: str, namespace: str | None = None) -> Informer:
        """The shared informer for a collection, remembered so start() waits for it to sync."""
        informer = self.informers.informer(group, version, plural, namespace)
        if informer not in self._used:
            self._used.append(informer)
        return informer

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(namespaced_key(obj))

    # -- to override ----------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def on_synced(self) -> None:
        """Called once the informers synced, before any worker runs (e.g. to seed state from the caches)."""

    def background(self) -> list[Coroutine[Any, Any, None]]:
        """Extra loops (periodic monitors) started after the informers synced."""
        return []

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"controller {self.name}")
        return self._runner

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract
        try:
            await asyncio.wait_for(self.synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        await self.informers.wait_synced(self._used)
        log.info("controller %s: caches synced, starting %d workers", self.name, self.workers)
        await self.on_synced()
        for n in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"{self.name} worker {n}"))
        for n, coro in enumerate(self.background()):
            self._tasks.append(asyncio.create_task(coro, name=f"{self.name} loop {n}"))
        self.synced.set()

    async def stop(self) -> None:
        self.queue.shutdown()
        tasks = [t for t in [self._runner, *self._tasks] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._runner = None

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.sync(key)
            except asyncio.CancelledError:
                self.queue.done(key)
                raise
            except APIError as exc:
                log.info("controller %s: sync %r failed: %s; requeueing", self.name, key, exc)
            except Exception:
                log.exception("controller %s: sync %r failed; requeueing", self.name, key)
            else:
                self.queue.forget(key)
                self.queue.done(key)
                continue
            self.queue.add_rate_limited(key)
            self.queue.done(key)
