"""SchedulingThroughput: pods bound per second, sampled over fixed intervals (clusterloader2's measurement).

A pods-watch subscriber counts distinct pods first seen bound to a node; a sampler turns the running count into
one pods/s value per interval. Leading and trailing idle intervals are dropped, so a quiet start or end does not
dilute the figures (clusterloader2 only samples while pods are pending).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

Obj = dict[str, Any]


class ThroughputSampler:
    """Counts pods first seen bound to a node (a pods-watch subscriber) and samples the count per interval."""

    def __init__(self, *, interval: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        if interval <= 0:
            raise ValueError("the sampling interval must be positive")
        self.interval = interval
        self._clock = clock
        self._scheduled: set[str] = set()
        self._bound_before: set[str] = set()
        self._series: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        uid = str((new.get("metadata") or {}).get("uid", ""))
        if kind != "DELETED" and uid not in self._bound_before and (new.get("spec") or {}).get("nodeName"):
            self._scheduled.add(uid)

    @property
    def scheduled(self) -> int:
        return len(self._scheduled)

    def start(self, existing: Sequence[Obj] = ()) -> None:
        """Begin sampling; pods in `existing` already bound to a node do not count as scheduled later."""
        for pod in existing:
            if (pod.get("spec") or {}).get("nodeName"):
                self._bound_before.add(str((pod.get("metadata") or {}).get("uid", "")))
        # The baseline is taken now, not when the task first runs: pods bound in between must count.
        self._task = asyncio.create_task(self._sample(self.scheduled), name="scheduling throughput sampler")

    async def _sample(self, last: int) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = self.scheduled
            self._series.append((self._clock(), (now - last) / self.interval))
            last = now

    async def stop(self) -> list[tuple[float, float]]:
        """Stop sampling; returns (unix s, pods/s) per interval with idle ends trimmed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return trim_idle(self._series)


def trim_idle(series: list[tuple[float, float]]) -> list[tuple[float, float]]:
    busy = [i for i, (_, v) in enumerate(series) if v > 0]
    if not busy:
        return []
    return series[busy[0] : busy[-1] + 1]
