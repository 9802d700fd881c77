"""EventRecorder: core/v1 Events as a node daemon posts them (kubelet: Pulling, Pulled, Created, Started, Killing).

Posting is fire-and-forget, like client-go's broadcaster (record/event.go `recordToSink`): it never blocks the
caller. A POST that failed in transport (dropped connection, apiserver restarting) is tried again, up to
`MAX_TRIES` times in all, `retry_interval` apart (the first wait a random fraction of it, so nodes that lost the
same apiserver do not come back in step); an answer from the server ends it: AlreadyExists means an earlier try
did land (the event's name is unique), any other Status is a rejection, logged and dropped, as client-go does.
Stopping (`flush`) gives up the events still waiting to retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubemark.client.errors import APIError, is_already_exists
from kubemark.client.paths import resource_path
from kubemark.kube.meta import format_rfc3339

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)

MAX_TRIES = 12  # client-go's maxTriesPerEvent
RETRY_INTERVAL = 10.0  # seconds; client-go's defaultSleepDuration


def object_reference(obj: dict[str, Any], field_path: str = "") -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind") or "Pod",
        "apiVersion": obj.get("apiVersion") or "v1",
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v != ""}


class EventRecorder:
    """Posts Events for one component on one host. `enabled=False` makes every call a no-op."""

    def __init__(
        self,
        client: RestClient,
        *,
        component: str,
        host: str,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        retry_interval: float = RETRY_INTERVAL,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.enabled = enabled
        self._clock = clock
        self.retry_interval = retry_interval
        self._rng = rng or random.Random()
        self._pending: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()  # posts sleeping before a retry
        self.posted = 0
        self.retried = 0  # tries after a transport failure
        self.dropped = 0  # events given up (rejected, out of tries, or stopped while waiting)
        self._last_ns = 0

    def _name(self, involved_name: str) -> str:
        # client-go names events "<object>.<unix nanos in hex>"; keep them unique within this recorder.
        ns = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = ns
        return f"{involved_name}.{ns:x}"

    def build(
        self, involved: dict[str, Any], event_type: str, reason: str, message: str, field_path: str = ""
    ) -> dict[str, Any]:
        ref = object_reference(involved, field_path)
        stamp = format_rfc3339(self._clock())
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self._name(ref.get("name", "event")), "namespace": ref.get("namespace", "default")},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }

    def record(
        self, involved: dict[str, Any], event_type: str, reason: str, message: str, field_path: str = ""
    ) -> None:
        if not self.enabled:
            return
        event = self.build(involved, event_type, reason, message, field_path)
        task = asyncio.create_task(self._post(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, event: dict[str, Any]) -> None:
        path = resource_path("", "v1", "events", event["metadata"]["namespace"])
        for attempt in range(1, MAX_TRIES + 1):
            try:
                await self.client.create(path, event)
            except asyncio.CancelledError:
                raise
            except APIError as exc:
                if is_already_exists(exc) and attempt > 1:  # an earlier try landed; its answer was lost
                    self.posted += 1
                else:
                    self.dropped += 1
                    log.debug("event %s/%s rejected: %s", self.host, event["reason"], exc)
                return
            except Exception as exc:  # transport: the server may not have seen it
                if attempt == MAX_TRIES:
                    self.dropped += 1
                    log.debug("event %s/%s not posted after %d tries: %r", self.host, event["reason"], attempt, exc)
                    return
                delay = self.retry_interval * (self._rng.random() if attempt == 1 else 1.0)
                log.debug("event %s/%s: %r; retry in %.1fs", self.host, event["reason"], exc, delay)
                await self._wait_before_retry(delay)
                self.retried += 1
            else:
                self.posted += 1
                return

    async def _wait_before_retry(self, delay: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            await asyncio.sleep(delay)
        finally:
            self._waiting.discard(task)

    async def flush(self) -> None:
        """Wait for the events already recorded to be posted (or dropped); those waiting to retry are dropped."""
        while self._pending:
            for task in list(self._waiting):
                task.cancel()
            tasks = list(self._pending)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            self.dropped += sum(1 for r in results if isinstance(r, asyncio.CancelledError))
