"""max-in-flight: kube-apiserver's --max-requests-inflight / --max-mutating-requests-inflight.

Requests beyond the limit get 429 instead of queueing (kube-apiserver with --enable-priority-and-fairness=false;
the default is `flowcontrol.PriorityAndFairness`). Long-running requests (watch, proxy, log, exec, ...)
are exempt, as upstream, and so are system:masters users ("a super-admin should always get an answer").
The gauge apiserver_current_inflight_requests reports the high-water mark of the last second, as upstream.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kubemark.master.apiserver.metrics import MUTATING, READ_ONLY, APIServerMetrics, request_kind
from kubemark.master.apiserver.request_info import RequestInfo, UserInfo

_MASTERS_GROUP = "system:masters"
_WATERMARK_WINDOW = 1.0


class InflightWatermark:
    """Executing requests per kind (readOnly / mutating) and the high-water mark of the last second.

    Publishes apiserver_current_inflight_requests as upstream does, under max-in-flight and under APF alike.
    """

    def __init__(self, *, metrics: APIServerMetrics | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.current = {READ_ONLY: 0, MUTATING: 0}
        self._watermark = {READ_ONLY: 0, MUTATING: 0}
        self._window_start = {READ_ONLY: clock(), MUTATING: clock()}
        self._metrics = metrics
        self._clock = clock

    @staticmethod
    def kind(info: RequestInfo) -> str:
        return request_kind(info)

    def acquire(self, kind: str) -> None:
        self.current[kind] += 1
        self._note(kind)

    def release(self, kind: str) -> None:
        self.current[kind] -= 1
        self._note(kind)

    def _note(self, kind: str) -> None:
        now = self._clock()
        current = self.current[kind]
        if now - self._window_start[kind] >= _WATERMARK_WINDOW:
            self._window_start[kind] = now
            self._watermark[kind] = current
        elif current > self._watermark[kind]:
            self._watermark[kind] = current
        else:
            return
        if self._metrics is not None:
            self._metrics.set_inflight(kind, self._watermark[kind])


class InflightLimiter:
    """Counts executing requests per kind (readOnly / mutating); a limit <= 0 means unlimited."""

    def __init__(
        self,
        max_read_only: int = 400,
        max_mutating: int = 200,
        *,
        metrics: APIServerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {READ_ONLY: max_read_only, MUTATING: max_mutating}
        self._counts = InflightWatermark(metrics=metrics, clock=clock)

    def in_flight(self, kind: str) -> int:
        return self._counts.current[kind]

    def try_acquire(self, info: RequestInfo, user: UserInfo | None = None) -> bool:
        """Take a slot; False means answer 429. Every True must be paired with `release(info)`.

        Exempt (long-running) requests return True without taking a slot; release() ignores them too.
        A system:masters `user` is admitted over the limit (but still counted).
        """
        if info.is_long_running:
            return True
        kind = request_kind(info)
        limit = self._limits[kind]
        if 0 < limit <= self._counts.current[kind] and not (user is not None and _MASTERS_GROUP in user.groups):
            return False
        self._counts.acquire(kind)
        return True

    def release(self, info: RequestInfo) -> None:
        if info.is_long_running:
            return
        self._counts.release(request_kind(info))
