"""API Priority and Fairness: kube-apiserver's default admission of requests (queue fairly instead of 429).

Each request is classified by the first matching `FlowSchema` (lowest precedence first: by user, group,
resource and verb) into a `PriorityLevel` and a flow (the schema plus the user or namespace). A priority level
owns a share of the server's concurrency, `--max-requests-inflight + --max-mutating-requests-inflight` split by
nominal shares as upstream. A request that finds its level's seats taken waits in one of the level's queues:
shuffle sharding deals its flow `hand_size` of the queues and it joins the shortest, and freed seats go to the
queues in turn, so one busy flow (a kubelet flooding pod status) cannot starve the others (lease renewals ride
their own level). It gets 429 only when its queue is full or it has waited `wait_limit` (upstream: a quarter of
the 60 s request timeout). Exempt levels (system:masters, health probes) never wait; long-running requests
(watch, proxy, log, ...) are not limited, as upstream.

The defaults mirror upstream's bootstrap objects (mandatory + suggested, k8s 1.29+). Not modelled: borrowing
between levels, per-request seat widths (a LIST costs one seat like a GET), the FlowSchema /
PriorityLevelConfiguration API objects (the configuration is built in).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kubemark.master.apiserver.inflight import InflightWatermark
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.request_info import RequestInfo, UserInfo

# A quarter of kube-apiserver's default --request-timeout (60 s), its bound on queue wait.
DEFAULT_WAIT_LIMIT = 15.0
_BY_USER = "ByUser"
_BY_NAMESPACE = "ByNamespace"


@dataclass(frozen=True)
class PriorityLevel:
    """A PriorityLevelConfiguration: nominal concurrency shares and queuing (queues=0: reject when full)."""

    name: str
    shares: int = 0
    queues: int = 0
    hand_size: int = 0
    queue_length_limit: int = 0
    exempt: bool = False


@dataclass(frozen=True)
class FlowSchema:
    """A FlowSchema: which requests (subjects x rules) go to `priority_level`, and how they split into flows.

    Empty `users` and `groups` match every subject. `resources` are (api group, resource) pairs, "*" for any;
    `verbs` likewise; `non_resource_paths` match non-resource requests; with neither, every request matches.
    """

    name: str
    precedence: int
    priority_level: str
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    resources: frozenset[tuple[str, str]] = frozenset()
    verbs: frozenset[str] = frozenset({"*"})
    namespaces: frozenset[str] = frozenset({"*"})
    non_resource_paths: frozenset[str] = frozenset()
    distinguisher: str | None = _BY_USER

    def matches(self, user: UserInfo, info: RequestInfo) -> bool:
        if (self.users or self.groups) and not (user.name in self.users or self.groups.intersection(user.groups)):
            return False
        if not self.resources and not self.non_resource_paths:
            return True
        if not info.is_resource_request:
            return info.path in self.non_resource_paths
        if not self.resources:
            return False
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        if not ((info.group, resource) in self.resources or ("*", "*") in self.resources):
            return False
        if "*" not in self.verbs and info.verb not in self.verbs:
            return False
        return "*" in self.namespaces or info.namespace in self.namespaces

    def flow(self, user: UserInfo, info: RequestInfo) -> str:
        if self.distinguisher == _BY_USER:
            return f"{self.name}/{user.name}"
        if self.distinguisher == _BY_NAMESPACE:
            return f"{self.name}/{info.namespace}"
        return self.name


def _pairs(group: str, *resources: str) -> frozenset[tuple[str, str]]:
    return frozenset((group, r) for r in resources)


_ANY = frozenset({("*", "*")})
_KCM = "system:kube-controller-manager"
_SCHEDULER = "system:kube-scheduler"

DEFAULT_PRIORITY_LEVELS: tuple[PriorityLevel, ...] = (
    PriorityLevel("exempt", exempt=True),
    PriorityLevel("system", shares=30, queues=64, hand_size=6, queue_length_limit=50),
    PriorityLevel("node-high", shares=40, queues=64, hand_size=6, queue_length_limit=50),
    PriorityLevel("leader-election", shares=10, queues=16, hand_size=4, queue_length_limit=50),
    PriorityLevel("workload-high", shares=40, queues=128, hand_size=6, queue_length_limit=50),
    PriorityLevel("workload-low", shares=100, queues=128, hand_size=6, queue_length_limit=50),
    PriorityLevel("global-default", shares=20, queues=128, hand_size=6, queue_length_limit=50),
    PriorityLevel("catch-all", shares=5),
)

DEFAULT_FLOW_SCHEMAS: tuple[FlowSchema, ...] = (
    FlowSchema("exempt", 1, "exempt", groups=frozenset({"system:masters"}), distinguisher=None),
    FlowSchema(
        "probes",
        2,
        "exempt",
        groups=frozenset({"system:authenticated", "system:unauthenticated"}),
        non_resource_paths=frozenset({"/healthz", "/readyz", "/livez"}),
        distinguisher=None,
    ),
    FlowSchema(
        "system-leader-election",
        100,
        "leader-election",
        users=frozenset({_KCM, _SCHEDULER}),
        resources=_pairs("", "endpoints", "configmaps") | _pairs("coordination.k8s.io", "leases"),
        verbs=frozenset({"get", "create", "update"}),
        namespaces=frozenset({"kube-system"}),
    ),
    FlowSchema(
        "system-node-high",
        400,
        "node-high",
        groups=frozenset({"system:nodes"}),
        resources=_pairs("", "nodes", "nodes/status") | _pairs("coordination.k8s.io", "leases"),
    ),
    FlowSchema("system-nodes", 500, "system", groups=frozenset({"system:nodes"}), resources=_ANY),
    FlowSchema("kube-controller-manager", 800, "workload-high", users=frozenset({_KCM}), distinguisher=_BY_NAMESPACE),
    FlowSchema("kube-scheduler", 800, "workload-high", users=frozenset({_SCHEDULER}), distinguisher=_BY_NAMESPACE),
    FlowSchema("service-accounts", 9000, "workload-low", groups=frozenset({"system:serviceaccounts"})),
    FlowSchema(
        "global-default", 9900, "global-default", groups=frozenset({"system:authenticated", "system:unauthenticated"})
    ),
    FlowSchema("catch-all", 10000, "catch-all"),
)


def nominal_limits(levels: Sequence[PriorityLevel], server_limit: int) -> dict[str, int]:
    """Seats per non-exempt level: ceil(server_limit * shares / sum of shares), as upstream's NominalCL."""
    total = sum(level.shares for level in levels if not level.exempt)
    return {level.name: max(1, math.ceil(server_limit * level.shares / total)) for level in levels if not level.exempt}


def deal_hand(flow: str, deck: int, hand_size: int) -> list[int]:
    """Shuffle sharding: `hand_size` distinct queue indices out of `deck`, fixed for the flow."""
    hand_size = min(hand_size, deck)
    value = int.from_bytes(hashlib.blake2b(flow.encode(), digest_size=8).digest(), "big")
    cards: list[int] = []
    for i in range(hand_size):
        # Draw from the cards not dealt yet (upstream's Dealer does the same with a mixed-radix number).
        pick = value % (deck - i)
        value //= deck - i
        for taken in sorted(cards):
            if pick >= taken:
                pick += 1
        cards.append(pick)
    return cards


class Rejected(Exception):
    """A request APF turned away (429); `reason` as upstream's rejected_requests_total label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Waiter:
    future: asyncio.Future[None]
    enqueued: float


@dataclass
class _Level:
    config: PriorityLevel
    limit: int
    executing: int = 0
    waiting: int = 0
    queues: list[deque[_Waiter]] = field(default_factory=list)
    next_queue: int = 0
    hands: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class Ticket:
    """An admitted request: release it exactly once with `PriorityAndFairness.finish`."""

    level: _Level | None
    schema: str
    priority_level: str
    kind: str
    waited: float


class PriorityAndFairness:
    """Classifies, queues and dispatches requests per priority level (one event loop; no locks)."""

    def __init__(
        self,
        server_limit: int = 600,
        *,
        schemas: Sequence[FlowSchema] = DEFAULT_FLOW_SCHEMAS,
        levels: Sequence[PriorityLevel] = DEFAULT_PRIORITY_LEVELS,
        wait_limit: float = DEFAULT_WAIT_LIMIT,
        metrics: APIServerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schemas = sorted(schemas, key=lambda s: (s.precedence, s.name))
        limits = nominal_limits(levels, server_limit)
        self._levels: dict[str, _Level] = {}
        for config in levels:
            level = _Level(config, 0 if config.exempt else limits[config.name])
            level.queues = [deque() for _ in range(config.queues)]
            self._levels[config.name] = level
        missing = {s.priority_level for s in self._schemas} - self._levels.keys()
        if missing:
            raise ValueError(f"flow schemas name unknown priority levels: {sorted(missing)}")
        self._wait_limit = wait_limit
        self._metrics = metrics
        self._clock = clock
        self.watermark = InflightWatermark(metrics=metrics, clock=clock)
        if metrics is not None:
            for name, level in self._levels.items():
                metrics.flowcontrol_nominal_limit(name, level.limit)

    def limit(self, priority_level: str) -> int:
        return self._levels[priority_level].limit

    def executing(self, priority_level: str) -> int:
        return self._levels[priority_level].executing

    def waiting(self, priority_level: str) -> int:
        return self._levels[priority_level].waiting

    def classify(self, user: UserInfo, info: RequestInfo) -> tuple[FlowSchema, _Level]:
        for schema in self._schemas:
            if schema.matches(user, info):
                return schema, self._levels[schema.priority_level]
        raise LookupError("no flow schema matched (the defaults end with a catch-all)")

    async def admit(self, user: UserInfo, info: RequestInfo) -> Ticket:
        """Wait for a seat; raises `Rejected` (answer 429). Long-running requests pass unlimited."""
        kind = self.watermark.kind(info)
        if info.is_long_running:
            return Ticket(None, "", "", kind, 0.0)
        schema, level = self.classify(user, info)
        name = level.config.name
        if level.config.exempt or (level.executing < level.limit and level.waiting == 0):
            return self._start(level, schema.name, kind, 0.0)
        if not level.queues:
            self._rejected(schema.name, name, "concurrency-limit")
        queue = self._pick_queue(level, schema.flow(user, info))
        if len(queue) >= level.config.queue_length_limit:
            self._rejected(schema.name, name, "queue-full")
        waiter = _Waiter(asyncio.get_running_loop().create_future(), self._clock())
        queue.append(waiter)
        level.waiting += 1
        if self._metrics is not None:
            self._metrics.flowcontrol_inqueue(schema.name, name, 1)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), self._wait_limit)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                # Dispatched just as the wait ended: the seat is ours, so hand it back.
                self._end(level)
            else:
                waiter.future.cancel()
                queue.remove(waiter)
                level.waiting -= 1
                if self._metrics is not None:
                    self._metrics.flowcontrol_inqueue(schema.name, name, -1)
            if isinstance(exc, TimeoutError):
                self._observe_wait(schema.name, name, self._clock() - waiter.enqueued, executed=False)
                self._rejected(schema.name, name, "time-out")
            raise
        finally:
            if waiter.future.done() and not waiter.future.cancelled() and self._metrics is not None:
                self._metrics.flowcontrol_inqueue(schema.name, name, -1)
        return self._started(level, schema.name, kind, self._clock() - waiter.enqueued)

    def finish(self, ticket: Ticket) -> None:
        """The request is done: free its seat and dispatch waiters."""
        if ticket.level is None:
            return
        self.watermark.release(ticket.kind)
        if self._metrics is not None:
            self._metrics.flowcontrol_executing(ticket.schema, ticket.priority_level, -1)
        if not ticket.level.config.exempt:
            self._end(ticket.level)

    # -- internals -----------------------------------------------------------------------------------

    def _pick_queue(self, level: _Level, flow: str) -> deque[_Waiter]:
        hand = level.hands.get(flow)
        if hand is None:
            if len(level.hands) > 10_000:
                level.hands.clear()  # flows come and go (users, namespaces); the hand is cheap to re-deal
            hand = level.hands[flow] = deal_hand(flow, len(level.queues), level.config.hand_size)
        return min((level.queues[i] for i in hand), key=len)

    def _start(self, level: _Level, schema: str, kind: str, waited: float) -> Ticket:
        if not level.config.exempt:
            level.executing += 1
        return self._started(level, schema, kind, waited)

    def _started(self, level: _Level, schema: str, kind: str, waited: float) -> Ticket:
        # Seats of dispatched waiters were taken in _dispatch; this only records the start.
        self.watermark.acquire(kind)
        name = level.config.name
        if self._metrics is not None:
            self._metrics.flowcontrol_dispatched(schema, name)
            self._metrics.flowcontrol_executing(schema, name, 1)
        self._observe_wait(schema, name, waited, executed=True)
        return Ticket(level, schema, name, kind, waited)

    def _end(self, level: _Level) -> None:
        level.executing -= 1
        self._dispatch(level)

    def _dispatch(self, level: _Level) -> None:
        """Give free seats to waiters, one queue after another (round robin across non-empty queues)."""
        queues = level.queues
        n = len(queues)
        while level.waiting and level.executing < level.limit:
            for step in range(n):
                index = (level.next_queue + step) % n
                if queues[index]:
                    break
            else:  # pragma: no cover - waiting > 0 means a queue holds someone
                return
            level.next_queue = (index + 1) % n
            waiter = queues[index].popleft()
            level.waiting -= 1
            level.executing += 1
            waiter.future.set_result(None)

    def _observe_wait(self, schema: str, level: str, seconds: float, *, executed: bool) -> None:
        if self._metrics is not None:
            self._metrics.flowcontrol_wait(schema, level, seconds, executed=executed)

    def _rejected(self, schema: str, level: str, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.flowcontrol_rejected(schema, level, reason)
        raise Rejected(reason)
