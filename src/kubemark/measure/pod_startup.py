"""PodStartupLatency: per-pod transition times from watch receive times and object timestamps.

For every matching pod created after `start`, the watch records when it was first seen, first seen bound to a
node, and first seen Running. Object timestamps (creationTimestamp, containers' startedAt) are truncated to whole
seconds, so each is combined with the watch times that bound it:

- created: the true creation time lies in [stamp, stamp + 1 s) and before the first watch sighting, so we take
  min(first_seen, stamp + 1 s): millisecond-precise whenever the watch is prompt;
- scheduled: the watch time of the first event showing spec.nodeName;
- running: max(startedAt, scheduled), never after the watch saw it Running (carries startedAt's 1 s precision);
- watched: the watch time of the first event with phase Running.

pod_startup (created -> watched) and schedule_to_watch are therefore ms-precise; schedule_to_run and
run_to_watch split a watch-measured interval at a 1 s-precise point. Pods mounting a PersistentVolumeClaim are
"stateful" and kept apart, as clusterloader2 does: the pod-startup SLO covers stateless pods.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubemark.client import namespaced_key
from kubemark.kube.labels import Selector, parse_label_selector
from kubemark.kube.meta import parse_rfc3339
from kubemark.measure.results import PodTimeline

Obj = dict[str, Any]

# Pods created this long before `start` (by their whole-second stamp) existed already and are not measured.
_PREEXISTING_SLACK = 1.0


@dataclass(slots=True)
class _PodRecord:
    name: str
    stamp: float
    first_seen: float
    stateful: bool
    scheduled_seen: float | None = None
    running_stamp: float | None = None
    watched: float | None = None

    def timeline(self) -> PodTimeline:
        created = self.stamp if self.first_seen < self.stamp else min(self.first_seen, self.stamp + 1.0)
        scheduled = None if self.scheduled_seen is None else max(self.scheduled_seen, created)
        running: float | None = None
        if self.watched is not None:
            lower = max(x for x in (self.running_stamp, scheduled, created) if x is not None)
            running = min(lower, self.watched)
        return PodTimeline(self.name, created, scheduled, running, self.watched)


def _stamp(value: Any) -> float | None:
    if not value:
        return None
    try:
        return parse_rfc3339(str(value))
    except ValueError:
        return None


def _started_at(pod: Obj) -> float | None:
    """The latest container start (the pod runs once all its containers do), or None."""
    stamps = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        started = _stamp(((status.get("state") or {}).get("running") or {}).get("startedAt"))
        if started is not None:
            stamps.append(started)
    return max(stamps) if stamps else None


def is_stateful(pod: Obj) -> bool:
    return any("persistentVolumeClaim" in v for v in (pod.get("spec") or {}).get("volumes") or [])


class PodStartupTracker:
    """Subscribe it to a pods `ObjectWatch` (all namespaces); `timelines()` gives what it saw."""

    def __init__(
        self,
        *,
        label_selector: str = "",
        namespace_prefix: str = "",
        started: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.selector: Selector = parse_label_selector(label_selector)
        self.namespace_prefix = namespace_prefix
        self.started = clock() if started is None else started
        self._pods: dict[str, _PodRecord] = {}

    def _matches(self, pod: Obj) -> bool:
        meta = pod.get("metadata") or {}
        if self.namespace_prefix and not str(meta.get("namespace", "")).startswith(self.namespace_prefix):
            return False
        return self.selector.matches(meta.get("labels"))

    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        if kind == "DELETED" or not self._matches(new):
            return
        meta = new.get("metadata") or {}
        key = str(meta.get("uid") or namespaced_key(new))
        record = self._pods.get(key)
        if record is None:
            if kind != "ADDED":
                return  # it existed when we subscribed: its first moments were not watched
            stamp = _stamp(meta.get("creationTimestamp"))
            if stamp is None or stamp < self.started - _PREEXISTING_SLACK:
                return
            record = _PodRecord(namespaced_key(new), stamp, received, is_stateful(new))
            self._pods[key] = record
        if record.scheduled_seen is None and (new.get("spec") or {}).get("nodeName"):
            record.scheduled_seen = received
        if record.watched is None and (new.get("status") or {}).get("phase") == "Running":
            record.watched = received
            record.running_stamp = _started_at(new)

    def timelines(self, *, stateful: bool | None = None) -> list[PodTimeline]:
        """All measured pods (stateful=None), or only the stateful / stateless ones."""
        return [r.timeline() for r in self._pods.values() if stateful is None or r.stateful == stateful]

    def __len__(self) -> int:
        return len(self._pods)

    def counts(self) -> dict[str, int]:
        """Pods created, scheduled and running so far (for live progress)."""
        pods = self._pods.values()
        return {
            "created": len(self._pods),
            "scheduled": sum(1 for r in pods if r.scheduled_seen is not None),
            "running": sum(1 for r in pods if r.watched is not None),
        }
