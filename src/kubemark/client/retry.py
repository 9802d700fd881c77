"""Retry policy: exponential backoff with jitter and the rules for which failures may be retried."""

from __future__ import annotations

import random

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_SERVER_STATUSES = frozenset({500, 502, 503, 504})


class Backoff:
    """Delays initial, initial*factor, ... capped at `cap`, each stretched by up to `jitter` (a fraction).

    Bounds of the n-th delay (from 0): base = min(cap, initial * factor**n), delay in [base, base*(1+jitter)].
    """

    __slots__ = ("_attempt", "_rng", "cap", "factor", "initial", "jitter")

    def __init__(
        self,
        initial: float = 0.2,
        factor: float = 2.0,
        jitter: float = 0.2,
        cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.factor = factor
        self.jitter = jitter
        self.cap = cap
        self._rng = rng if rng is not None else random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        # Clamp the exponent so huge attempt counts cannot overflow the float.
        base = min(self.cap, self.initial * self.factor ** min(self._attempt, 64))
        self._attempt += 1
        if self.jitter > 0:
            base += base * self.jitter * self._rng.random()
        return base

    def reset(self) -> None:
        self._attempt = 0


def is_retryable(status: int | None, method: str, *, request_sent: bool = True) -> bool:
    """May a failed call be repeated safely?

    `status` is None for a connection error or timeout. Non-idempotent calls (POST, PATCH) are retried only
    when the server certainly did not process them: a 429, or a connection error before the request was sent.
    """
    idempotent = method.upper() in IDEMPOTENT_METHODS
    if status is None:
        return idempotent or not request_sent
    if status == 429:
        return True
    return idempotent and status in RETRYABLE_SERVER_STATUSES
