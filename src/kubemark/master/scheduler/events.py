"""EventRecorder: the scheduler's Scheduled/FailedScheduling Events, posted like client-go's events library.

events.k8s.io/v1 when served (else core/v1). Isomorphic events (same regarding object, action, reason,
controller) are aggregated into a series: the first is created, the second PATCHes `series.count: 2`, later
ones only bump the local count, sent on the periodic refresh; a series not seen for `finish_after` seconds is
forgotten. Sending is asynchronous with a bounded backlog (excess events are dropped, as upstream does), so
events never slow scheduling down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubemark.client import APIError, RestClient, resource_path
from kubemark.kube.meta import format_micro, format_rfc3339

log = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass(slots=True)
class _Cached:
    event: Obj
    api_v1: bool
    count: int  # 1 until it becomes a series
    sent_count: int
    last_observed: float  # wall clock


def _event_key(event: Obj) -> tuple[Any, ...]:
    r = event.get("regarding") or event.get("involvedObject") or {}
    return (
        event.get("action"),
        event.get("reason"),
        event.get("reportingController"),
        r.get("namespace"),
        r.get("name"),
        r.get("uid"),
    )


class EventRecorder:
    def __init__(
        self,
        client: RestClient,
        *,
        controller: str = "default-scheduler",
        instance: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        max_backlog: int = 1000,
        concurrency: int = 8,
        refresh_interval: float = 1800.0,
        finish_after: float = 360.0,
    ) -> None:
        self._client = client
        self.controller = controller
        self.instance = instance or f"{controller}-{socket.gethostname()}"
        self._wall = wall_clock
        self._backlog: asyncio.Queue[Obj] = asyncio.Queue(maxsize=max_backlog)
        self._concurrency = concurrency
        self._refresh_interval = refresh_interval
        self._finish_after = finish_after
        self._cache: dict[tuple[Any, ...], _Cached] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.use_events_v1: bool | None = None
        self.sent = 0
        self.dropped = 0
        self.failed = 0

    async def start(self) -> None:
        if self.use_events_v1 is None:
            self.use_events_v1 = await self._events_v1_served()
        self._tasks = [asyncio.create_task(self._worker(), name=f"events-{i}") for i in range(self._concurrency)]
        self._tasks.append(asyncio.create_task(self._maintain(), name="events-series"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _events_v1_served(self) -> bool:
        try:
            doc = await self._client.get("/apis/events.k8s.io/v1", retry=False)
        except (APIError, OSError, TimeoutError):
            return False
        except Exception:  # transport errors of any kind: fall back to core/v1
            return False
        return any(r.get("name") == "events" for r in (doc or {}).get("resources") or ())

    async def drain(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - bounded wait for tests and shutdown
        """Wait until the backlog is sent; False on timeout."""
        try:
            await asyncio.wait_for(self._backlog.join(), timeout)
        except TimeoutError:
            return False
        return True

    # -- recording ------------------------------------------------------------------------------------------

    def record(self, pod: Obj, event_type: str, reason: str, action: str, note: str) -> None:
        """Queue one event about `pod` (never blocks)."""
        meta = pod.get("metadata") or {}
        now = self._wall()
        regarding = {
            "kind": "Pod",
            "namespace": meta.get("namespace") or "",
            "name": meta.get("name") or "",
            "uid": meta.get("uid") or "",
            "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion") or "",
        }
        event: Obj = {
            "metadata": {"name": f"{regarding['name']}.{int(now * 1e9):x}", "namespace": regarding["namespace"]},
            "eventTime": format_micro(now),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "action": action,
            "reason": reason,
            "regarding": regarding,
            "note": note[:1024],
            "type": event_type,
        }
        try:
            self._backlog.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _worker(self) -> None:
        while True:
            event = await self._backlog.get()
            try:
                await self._handle(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed += 1
                log.debug("event %s/%s not recorded: %s", event["reason"], event["regarding"]["name"], exc)
            finally:
                self._backlog.task_done()

    async def _handle(self, event: Obj) -> None:
        key = _event_key(event)
        now = self._wall()
        cached = self._cache.get(key)
        if cached is not None:
            cached.count += 1
            cached.last_observed = now
            if cached.count > 2:
                return  # the series is sent on refresh
            await self._patch_series(cached)
            return
        api_v1 = bool(self.use_events_v1)
        cached = _Cached(event, api_v1, 1, 1, now)
        self._cache[key] = cached
        await self._create(cached)

    def _core_event(self, event: Obj) -> Obj:
        stamp = format_rfc3339(self._wall())
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": event["metadata"],
            "involvedObject": event["regarding"],
            "reason": event["reason"],
            "message": event["note"],
            "type": event["type"],
            "source": {"component": self.controller},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "eventTime": event["eventTime"],
            "action": event["action"],
            "reportingComponent": self.controller,
            "reportingInstance": self.instance,
        }

    def _path(self, cached: _Cached, name: str | None = None) -> str:
        ns = cached.event["metadata"]["namespace"]
        if cached.api_v1:
            return resource_path("events.k8s.io", "v1", "events", ns, name)
        return resource_path("", "v1", "events", ns, name)

    async def _create(self, cached: _Cached) -> None:
        if cached.api_v1:
            body = {"apiVersion": "events.k8s.io/v1", "kind": "Event", **cached.event}
        else:
            body = self._core_event(cached.event)
        await self._client.create(self._path(cached), body)
        self.sent += 1

    async def _patch_series(self, cached: _Cached) -> None:
        name = cached.event["metadata"]["name"]
        if cached.api_v1:
            patch: Obj = {"series": {"count": cached.count, "lastObservedTime": format_micro(cached.last_observed)}}
        else:
            patch = {"count": cached.count, "lastTimestamp": format_rfc3339(cached.last_observed)}
        cached.sent_count = cached.count
        await self._client.patch(self._path(cached, name), patch, "merge")
        self.sent += 1

    async def _maintain(self) -> None:
        """Send grown series every refresh interval; forget series not observed for `finish_after`."""
        period = min(self._refresh_interval, self._finish_after, 60.0)
        last_refresh = self._wall()
        while True:
            await asyncio.sleep(period)
            now = self._wall()
            refresh = now - last_refresh >= self._refresh_interval
            if refresh:
                last_refresh = now
            for key, cached in list(self._cache.items()):
                finished = now - cached.last_observed >= self._finish_after
                if (refresh or finished) and cached.count > cached.sent_count:
                    try:
                        await self._patch_series(cached)
                    except Exception as exc:
                        log.debug("event series update failed: %s", exc)
                if finished:
                    del self._cache[key]
