"""Controller expectations (k8s.io/kubernetes/pkg/controller ControllerExpectations + UID-tracked deletes).

A controller that just issued N creates must not create again before its informer has seen them, or it would
overshoot. Creates are counted; deletes are tracked by pod UID so a graceful delete (deletionTimestamp set,
then the real DELETED event) is observed once. Expectations expire after 5 minutes, as upstream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 300.0


@dataclass(slots=True)
class _Expectation:
    adds: int
    deletes: set[str] = field(default_factory=set)
    timestamp: float = 0.0


class Expectations:
    """Pending creates/deletes per controller key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._items: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, adds: int) -> None:
        self._items[key] = _Expectation(adds, set(), self._clock())

    def expect_deletions(self, key: str, uids: Iterable[str]) -> None:
        self._items[key] = _Expectation(0, set(uids), self._clock())

    def creation_observed(self, key: str, count: int = 1) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.adds -= count

    def deletion_observed(self, key: str, uid: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.deletes.discard(uid)

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True
        if exp.adds <= 0 and not exp.deletes:
            return True
        return self._clock() - exp.timestamp > self._timeout

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._items.get(key)
        return (0, 0) if exp is None else (max(0, exp.adds), len(exp.deletes))

    def delete(self, key: str) -> None:
        self._items.pop(key, None)
