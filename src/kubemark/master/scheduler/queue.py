"""SchedulingQueue: kube-scheduler's PriorityQueue (activeQ, podBackoffQ, unschedulablePods, gated pods).

- activeQ: pods ready to be tried, highest priority first, then oldest.
- backoffQ: pods waiting out 1 s x 2^(attempts-1) (max 10 s) after a failed attempt.
- unschedulable: pods no node fitted; moved back on a cluster event (node added/changed, pod deleted) or
  after `max_unschedulable_seconds`. A pod that failed while a move request arrived during its attempt goes
  to backoffQ instead, so the event is not lost.
- gated: pods with spec.schedulingGates, never tried until the gates are removed.
All timing uses the injected clock; `flush_backoff_completed`/`flush_unschedulable_leftover` are driven by
the owner's loop (or called directly by tests).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubemark.master.scheduler.pod_info import PodInfo

Clock = Callable[[], float]

ACTIVE = "active"
BACKOFF = "backoff"
UNSCHEDULABLE = "unschedulable"
GATED = "gated"


@dataclass(slots=True)
class QueuedPod:
    info: PodInfo
    timestamp: float  # when it last entered a queue
    initial_attempt_timestamp: float | None = None  # first time it was popped (for the SLI metric)
    attempts: int = 0
    queued_at: float = 0.0  # first time it was added, for e2e figures
    unschedulable_reasons: frozenset[str] = field(default_factory=frozenset)

    @property
    def key(self) -> str:
        return self.info.key


class SchedulingQueue:
    def __init__(
        self,
        clock: Clock = time.monotonic,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable_seconds: float = 300.0,
        on_change: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        self._clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable_seconds = max_unschedulable_seconds
        self._on_change = on_change
        self._seq = itertools.count()
        self._active: dict[str, tuple[int, QueuedPod]] = {}  # key -> (heap entry seq, pod)
        self._active_heap: list[tuple[int, float, int, str]] = []
        self._backoff: dict[str, tuple[int, QueuedPod]] = {}
        self._backoff_heap: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._gated: dict[str, QueuedPod] = {}
        self._in_flight: dict[str, QueuedPod] = {}
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._ready = asyncio.Event()
        self._closed = False

    # -- bookkeeping ----------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            ACTIVE: len(self._active),
            BACKOFF: len(self._backoff),
            UNSCHEDULABLE: len(self._unschedulable),
            GATED: len(self._gated),
        }

    def _changed(self) -> None:
        if self._active:
            self._ready.set()
        else:
            self._ready.clear()
        if self._on_change is not None:
            self._on_change(self.counts())

    def __contains__(self, key: str) -> bool:
        return (
            key in self._active
            or key in self._backoff
            or key in self._unschedulable
            or key in self._gated
            or key in self._in_flight
        )

    def where(self, key: str) -> str | None:
        """Which queue holds `key` (for tests and debugging); "in-flight" while being scheduled."""
        for name, table in (
            (ACTIVE, self._active),
            (BACKOFF, self._backoff),
            (UNSCHEDULABLE, self._unschedulable),
            (GATED, self._gated),
            ("in-flight", self._in_flight),
        ):
            if key in table:
                return name
        return None

    def backoff_duration(self, attempts: int) -> float:
        duration = self.initial_backoff
        for _ in range(1, attempts):
            duration *= 2
            if duration >= self.max_backoff:
                return self.max_backoff
        return min(duration, self.max_backoff)

    def backoff_expiry(self, qp: QueuedPod) -> float:
        return qp.timestamp + self.backoff_duration(qp.attempts)

    def _push_active(self, qp: QueuedPod) -> None:
        seq = next(self._seq)
        self._active[qp.key] = (seq, qp)
        heapq.heappush(self._active_heap, (-qp.info.priority, qp.timestamp, seq, qp.key))

    def _push_backoff(self, qp: QueuedPod) -> None:
        seq = next(self._seq)
        self._backoff[qp.key] = (seq, qp)
        heapq.heappush(self._backoff_heap, (self.backoff_expiry(qp), seq, qp.key))

    def _remove_everywhere(self, key: str) -> QueuedPod | None:
        entry = self._active.pop(key, None) or self._backoff.pop(key, None)
        if entry is not None:
            return entry[1]
        return self._unschedulable.pop(key, None) or self._gated.pop(key, None)

    # -- informer side --------------------------------------------------------------------------------------

    def add(self, info: PodInfo) -> None:
        """A new pending pod (or one seen again after a relist)."""
        if info.key in self:
            self.update(info)
            return
        now = self._clock()
        qp = QueuedPod(info, now, queued_at=now)
        if info.scheduling_gates:
            self._gated[info.key] = qp
        else:
            self._push_active(qp)
        self._changed()

    def update(self, info: PodInfo, relevant: bool = True) -> None:
        """A pending pod changed; `relevant` means its spec/labels changed, so a parked pod deserves a new try."""
        key = info.key
        if key in self._in_flight:
            self._in_flight[key].info = info
            return
        for table in (self._active, self._backoff):
            entry = table.get(key)
            if entry is not None:
                entry[1].info = info
                return
        parked = self._unschedulable.get(key)
        if parked is not None and not relevant:
            parked.info = info
            return
        qp = self._remove_everywhere(key)
        if qp is None:
            self.add(info)
            return
        qp.info = info
        if info.scheduling_gates:
            self._gated[key] = qp
        elif self._is_backing_off(qp):
            self._push_backoff(qp)
        else:
            self._push_active(qp)
        self._changed()

    def delete(self, key: str) -> None:
        self._in_flight.pop(key, None)
        if self._remove_everywhere(key) is not None:
            self._changed()

    # -- scheduler side -------------------------------------------------------------------------------------

    async def pop(self) -> QueuedPod | None:
        """The next pod to try (waits while activeQ is empty); None once closed."""
        while True:
            if self._closed:
                return None
            while self._active_heap:
                _, _, seq, key = heapq.heappop(self._active_heap)
                entry = self._active.get(key)
                if entry is None or entry[0] != seq:
                    continue  # superseded heap entry
                del self._active[key]
                qp = entry[1]
                qp.attempts += 1
                if qp.initial_attempt_timestamp is None:
                    qp.initial_attempt_timestamp = self._clock()
                self.scheduling_cycle += 1
                self._in_flight[key] = qp
                self._changed()
                return qp
            self._ready.clear()
            await self._ready.wait()

    def done(self, key: str) -> None:
        """The pod's attempt ended with a binding (or it vanished)."""
        self._in_flight.pop(key, None)

    def add_unschedulable(self, qp: QueuedPod, cycle: int, reasons: Iterable[str] = ()) -> None:
        """After a failed attempt in `cycle`: park the pod, or back it off if a move request came meanwhile."""
        if self._in_flight.pop(qp.key, None) is None:
            return  # deleted (or scheduled by someone else) while we were trying it
        qp.timestamp = self._clock()
        qp.unschedulable_reasons = frozenset(reasons)
        if self._move_request_cycle >= cycle:
            self._push_backoff(qp)
        else:
            self._unschedulable[qp.key] = qp
        self._changed()

    def add_backoff(self, qp: QueuedPod) -> None:
        """After an error (not a misfit, e.g. a failed binding): retry after the backoff."""
        if self._in_flight.pop(qp.key, None) is None:
            return
        qp.timestamp = self._clock()
        self._push_backoff(qp)
        self._changed()

    # -- cluster events -------------------------------------------------------------------------------------

    def _is_backing_off(self, qp: QueuedPod) -> bool:
        return qp.attempts > 0 and self.backoff_expiry(qp) > self._clock()

    def move_all_to_active_or_backoff(self, predicate: Callable[[QueuedPod], bool] | None = None) -> int:
        """A cluster event may make parked pods fit: requeue them (those still backing off to backoffQ)."""
        self._move_request_cycle = self.scheduling_cycle
        moved = 0
        for key in list(self._unschedulable):
            qp = self._unschedulable[key]
            if predicate is not None and not predicate(qp):
                continue
            del self._unschedulable[key]
            if self._is_backing_off(qp):
                self._push_backoff(qp)
            else:
                self._push_active(qp)
            moved += 1
        if moved:
            self._changed()
        return moved

    def flush_backoff_completed(self) -> int:
        """Move pods whose backoff has expired to activeQ."""
        now = self._clock()
        moved = 0
        heap = self._backoff_heap
        while heap and heap[0][0] <= now:
            _, seq, key = heapq.heappop(heap)
            entry = self._backoff.get(key)
            if entry is None or entry[0] != seq:
                continue
            del self._backoff[key]
            self._push_active(entry[1])
            moved += 1
        if moved:
            self._changed()
        return moved

    def next_backoff_expiry(self) -> float | None:
        heap = self._backoff_heap
        while heap:
            expiry, seq, key = heap[0]
            entry = self._backoff.get(key)
            if entry is not None and entry[0] == seq:
                return expiry
            heapq.heappop(heap)
        return None

    def flush_unschedulable_leftover(self) -> int:
        """Pods parked longer than max_unschedulable_seconds get another try regardless of events."""
        now = self._clock()
        stale = [k for k, qp in self._unschedulable.items() if now - qp.timestamp > self.max_unschedulable_seconds]
        if not stale:
            return 0
        stale_set = set(stale)
        return self.move_all_to_active_or_backoff(lambda qp: qp.key in stale_set)

    def close(self) -> None:
        self._closed = True
        self._ready.set()
