"""`ObjectWatch`: one informer shared by several measurements, with subscribers that come and go.

Informer handlers must be registered before the informer starts, but measurements start and stop during a test;
this fans every event out to the current subscribers, stamped with the local wall time it was received (the
"watch time" latency measurements need), and wakes anyone waiting for the cache to change.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubemark.client import APIError, Informer, RestClient, is_not_found

Obj = dict[str, Any]


class WatchSubscriber(Protocol):
    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        """kind is ADDED, MODIFIED or DELETED; `old` is None for ADDED; `new` is the last state for DELETED."""


class ObjectWatch:
    """An informer over `path` whose events reach every subscriber and wake `wait_until` callers."""

    def __init__(
        self,
        client: RestClient,
        path: str,
        *,
        label_selector: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.informer = Informer(client, path, label_selector=label_selector)
        self._clock = clock
        self._subscribers: builtins.list[WatchSubscriber] = []
        self._changed = asyncio.Event()
        self.informer.add_handler(self._added, self._updated, self._deleted)

    def subscribe(self, subscriber: WatchSubscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: WatchSubscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - a sync deadline, not a cancel scope
        # A resource the server does not serve is an error now, not a minute of the informer's retries.
        path = self.informer.reflector.path
        try:
            await self.informer.reflector.client.list(path, limit=1)
        except APIError as exc:
            if is_not_found(exc):
                raise LookupError(f"the server does not serve {path} (404)") from None
        self.informer.start()
        if not await self.informer.wait_synced(timeout):
            raise TimeoutError(f"the watch on {self.informer.reflector.path} did not sync within {timeout:g}s")

    async def stop(self) -> None:
        await self.informer.stop()

    def list(self) -> builtins.list[Obj]:
        return self.informer.list()

    def _emit(self, kind: str, old: Obj | None, new: Obj) -> None:
        received = self._clock()
        for subscriber in list(self._subscribers):
            subscriber.on_event(kind, old, new, received)
        self._changed.set()

    def _added(self, obj: Obj) -> None:
        self._emit("ADDED", None, obj)

    def _updated(self, old: Obj, new: Obj) -> None:
        self._emit("MODIFIED", old, new)

    def _deleted(self, obj: Obj) -> None:
        self._emit("DELETED", obj, obj)

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109
        *,
        min_interval: float = 0.0,
    ) -> bool:
        """Re-check `predicate` after events until it holds (True) or `timeout` passes (False); with
        `min_interval`, events are coalesced so an expensive predicate runs at most that often."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if min_interval > 0:
                await asyncio.sleep(min(min_interval, remaining))
                if self._changed.is_set():
                    self._changed.clear()
                    continue
            self._changed.clear()
            # Re-check at least every second: a quiet watch must still honour the deadline. asyncio.timeout, not
            # wait_for: on 3.11 wait_for can swallow a cancellation racing with the event (Ctrl-C would be lost).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 1.0)):
                    await self._changed.wait()
        return True
