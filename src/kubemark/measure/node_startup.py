"""NodeStartupLatency: from a Node's creation to the watch seeing its Ready condition turn True.

Creation is taken as min(first watch sighting, creationTimestamp + 1 s) (the stamp is truncated to the second,
see pod_startup.py); Ready is the receive time of the first event with Ready=True. Nodes that existed before
`start` are not measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubemark.kube.meta import parse_rfc3339

Obj = dict[str, Any]


def node_ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


class NodeStartupTracker:
    """Subscribe it to a nodes `ObjectWatch`; `samples()` are seconds from creation to Ready per node."""

    def __init__(self, *, started: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.started = clock() if started is None else started
        self._created: dict[str, float] = {}
        self._ready: dict[str, float] = {}
        self._ready_now: set[str] = set()

    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        name = str((new.get("metadata") or {}).get("name", ""))
        if kind == "DELETED":
            self._ready_now.discard(name)
            return
        if node_ready(new):
            self._ready_now.add(name)
        else:
            self._ready_now.discard(name)
        if name not in self._created:
            stamp_text = (new.get("metadata") or {}).get("creationTimestamp")
            if not stamp_text:
                return
            stamp = parse_rfc3339(str(stamp_text))
            if stamp < self.started - 1.0:
                return  # existed before we started
            self._created[name] = stamp if received < stamp else min(received, stamp + 1.0)
        if name not in self._ready and node_ready(new):
            self._ready[name] = received

    @property
    def ready_count(self) -> int:
        """Nodes whose latest state is Ready (for live progress)."""
        return len(self._ready_now)

    def samples(self) -> dict[str, float]:
        return {
            name: max(0.0, self._ready[name] - created)
            for name, created in self._created.items()
            if name in self._ready
        }

    def not_ready(self) -> list[str]:
        return sorted(name for name in self._created if name not in self._ready)
