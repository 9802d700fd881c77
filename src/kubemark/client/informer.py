"""Informer: a Reflector feeding a local cache and add/update/delete handlers.

On every (re)list the cache is replaced by the fresh list: objects that vanished are reported deleted with
their last known state, new ones added, and changed ones (different resourceVersion) updated.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubemark.client.watch import Reflector

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient
    from kubemark.client.shared_objects import SharedObjects

Obj = dict[str, Any]
Handler = Callable[..., Any]


def namespaced_key(obj: Obj) -> str:
    """client-go's MetaNamespaceKeyFunc: "ns/name", or "name" for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def namespaced_key_from(namespace: str | None, name: str) -> str:
    """namespaced_key's key from the strings, for callers that have them rather than the object (an owner
    reference's name, a lease's known namespace): "ns/name", or "name" when namespace is empty."""
    return f"{namespace}/{name}" if namespace else name


def _rv(obj: Obj) -> Any:
    return (obj.get("metadata") or {}).get("resourceVersion")


@dataclass(frozen=True, slots=True)
class _Handlers:
    on_add: Handler | None
    on_update: Handler | None
    on_delete: Handler | None


async def _call(handler: Handler | None, *args: Any) -> None:
    if handler is None:
        return
    result = handler(*args)
    if inspect.isawaitable(result):
        await result


class Informer:
    """Handlers: on_add(obj), on_update(old, new), on_delete(obj); sync or async. Add them before start().

    With `shared`, cached objects are the process's shared read-only copies (see SharedObjects), and stop()
    gives them back, emptying the cache.
    """

    def __init__(
        self,
        client: RestClient,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        key: Callable[[Obj], str] = namespaced_key,
        shared: SharedObjects | None = None,
        **reflector_options: Any,
    ) -> None:
        # Sharing informers intern their keys as well: one string per object for the whole process.
        self._key = key if shared is None else (lambda o: sys.intern(key(o)))
        self._path = path
        self._shared = shared
        self._cache: dict[str, Obj] = {}
        self._handlers: builtins.list[_Handlers] = []
        self._synced = asyncio.Event()
        self.reflector = Reflector(
            client,
            path,
            label_selector=label_selector,
            field_selector=field_selector,
            on_event=self._on_event,
            on_sync=self._on_sync,
            **reflector_options,
        )

    def add_handler(
        self, on_add: Handler | None = None, on_update: Handler | None = None, on_delete: Handler | None = None
    ) -> None:
        self._handlers.append(_Handlers(on_add, on_update, on_delete))

    def start(self) -> asyncio.Task[None]:
        return self.reflector.start()

    async def stop(self) -> None:
        await self.reflector.stop()
        if self._shared is not None:
            for k, obj in self._cache.items():
                self._shared.release(self._path, k, obj)
            self._cache = {}

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract
        """True once the first LIST has been delivered; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def get(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self) -> builtins.list[Obj]:
        return list(self._cache.values())

    def keys(self) -> builtins.list[str]:
        return list(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    async def _added(self, obj: Obj) -> None:
        for h in self._handlers:
            await _call(h.on_add, obj)

    async def _updated(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            await _call(h.on_update, old, new)

    async def _deleted(self, obj: Obj) -> None:
        for h in self._handlers:
            await _call(h.on_delete, obj)

    def _hold(self, key: str, obj: Obj) -> Obj:
        return obj if self._shared is None else self._shared.hold(self._path, key, obj)

    def _release(self, key: str, obj: Obj | None) -> None:
        if self._shared is not None and obj is not None:
            self._shared.release(self._path, key, obj)

    async def _on_sync(self, items: builtins.list[Obj], resource_version: str) -> None:
        fresh: dict[str, Obj] = {}
        for o in items:
            k = self._key(o)
            fresh[k] = self._hold(k, o)
        old_cache, self._cache = self._cache, fresh
        try:
            for k, old in old_cache.items():
                if k not in fresh:
                    await self._deleted(old)
            for k, obj in fresh.items():
                previous = old_cache.get(k)
                if previous is None:
                    await self._added(obj)
                elif _rv(previous) != _rv(obj):
                    await self._updated(previous, obj)
        finally:
            for k, old in old_cache.items():
                self._release(k, old)
        self._synced.set()

    async def _on_event(self, kind: str, obj: Obj) -> None:
        k = self._key(obj)
        if kind == "DELETED":
            old = self._cache.pop(k, None)
            try:
                await self._deleted(obj if obj.get("metadata") else old or obj)
            finally:
                self._release(k, old)
            return
        obj = self._hold(k, obj)
        old = self._cache.get(k)
        self._cache[k] = obj
        try:
            if old is None:
                await self._added(obj)
            elif _rv(old) != _rv(obj):
                await self._updated(old, obj)
        finally:
            self._release(k, old)
