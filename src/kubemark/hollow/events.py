"""EventRecorder: core/v1 Events as a node daemon posts them (kubelet: Pulling, Pulled, Created, Started, Killing).

Posting is fire-and-forget, like client-go's broadcaster: a failed POST is logged and dropped, never retried
beyond the client's own retries, and never blocks the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubemark.client.paths import resource_path
from kubemark.kube.meta import format_rfc3339

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)


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
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.enabled = enabled
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()
        self.posted = 0
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
        try:
            await self.client.create(path, event)
            self.posted += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("event %s/%s not posted: %r", self.host, event["reason"], exc)

    async def flush(self) -> None:
        """Wait for the events already recorded to be posted (or dropped)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
