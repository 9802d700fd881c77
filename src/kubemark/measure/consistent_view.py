"""A shared watch's objects, never older than a consistent LIST taken when a wait begins.

A watch may lag a write made just before a wait starts, so a wait that only read the watch could return on an
object's previous state (a Job still "Complete" a moment after it failed). clusterloader2's waits read
consistent LISTs. `ConsistentView` subscribes to the shared watch, then LISTs the same objects: its `objects()`
are, per object, the newer of the listed and the watched state, without those the watch has since seen deleted.
(A deletion the watch delivered before the subscription happened before the LIST, so the LIST does not have it.)
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from kubemark.client import RestClient
from kubemark.measure.barrier import revision_of
from kubemark.measure.watch import ObjectWatch

__all__ = ["ConsistentView", "wait_for_selected"]

Obj = dict[str, Any]


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class ConsistentView:
    """`async with ConsistentView(client, path, watch) as view:` then `view.objects()` (see the module)."""

    def __init__(self, client: RestClient, path: str, watch: ObjectWatch) -> None:
        self.client = client
        self.path = path
        self.watch = watch
        self._listed: dict[str, Obj] = {}
        self._deleted: dict[str, int] = {}  # key -> the resourceVersion it was deleted at

    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        if kind == "DELETED":
            self._deleted[_key(new)] = revision_of(new)

    async def __aenter__(self) -> ConsistentView:
        self.watch.subscribe(self)
        try:
            items, _ = await self.client.list_all(self.path)
        except BaseException:
            self.watch.unsubscribe(self)
            raise
        self._listed = {_key(obj): obj for obj in items}
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.watch.unsubscribe(self)

    def objects(self) -> list[Obj]:
        out = dict(self._listed)
        for obj in self.watch.list():
            key = _key(obj)
            if key not in out or revision_of(obj) >= revision_of(out[key]):
                out[key] = obj
        for key, rv in self._deleted.items():
            if key in out and revision_of(out[key]) <= rv:
                del out[key]
        return list(out.values())


async def wait_for_selected(
    client: RestClient,
    path: str,
    watch: ObjectWatch,
    selected: Callable[[Obj], bool],
    condition: Callable[[list[Obj]], bool],
    timeout: float,  # noqa: ASYNC109 - the wait's own deadline
) -> tuple[bool, list[Obj]]:
    """Wait until `condition` holds for the objects of `path` that `selected` keeps, as a consistent view of the
    shared `watch` shows them; (whether it did within `timeout`, those objects at the end)."""
    async with ConsistentView(client, path, watch) as view:

        def matching() -> list[Obj]:
            return [o for o in view.objects() if selected(o)]

        reached = await watch.wait_until(lambda: condition(matching()), timeout)
        return reached, matching()
