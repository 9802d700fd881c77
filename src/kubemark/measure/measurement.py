"""The Measurement interface (clusterloader2's Execute/Dispose), and the context measurements run in.

A test config names a measurement by its `Method`; each Method is a class (registered in `registry.py`) made once
per `Identifier` with that identifier and the run's `MeasureContext`. Its lifecycle:

- `start(params)` when a step says `action: start` (or no action);
- `gather(params)` when a step says `action: gather` (or no action): returns a `MeasurementResult`. For an
  ordinary measurement that is the end of it. A *barrier* (`barrier = True`: WaitForControlledPodsRunning,
  WaitForFinishedJobs) waits in `gather` for its condition and stays running, since a later gather checks the
  same objects again (scaled down, deleted) — as clusterloader2 configs re-start and re-gather them;
- `stop()` disposes of what it holds (subscriptions, tasks); it is called once after the last gather, and also
  for a measurement a failed or interrupted run never gathered (then after a `gather` that must not wait).

clusterloader2 Methods that take more actions than start and gather (Timer's `stop`, NodeHealthTracker's `stop`,
APIResponsiveness' `reset`) name them all in `actions`, and `act(action, params)` runs the others. A Method
with `actions` is checked by config validation (an action it does not take is an error before the cluster
starts, as clusterloader2's "unknown action" is at run time). A `stateful` one (Timer) is one instance per
Identifier for the whole test, as clusterloader2 keeps every instance until the test ends: a second start goes
to the same instance and a gather does not end it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from kubemark.client import RestClient
from kubemark.kube.durations import parse_duration
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.component_metrics import MetricsReader, read_component_metrics
from kubemark.measure.results import MeasurementResult
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

if TYPE_CHECKING:
    from kubemark.node_killer import NodeFailureTarget

__all__ = [
    "DEFAULT_OPERATION_TIMEOUT",
    "BarrierMeasurement",
    "MeasureContext",
    "Measurement",
    "MeasurementBase",
    "operation_timeout",
]

DEFAULT_OPERATION_TIMEOUT = 600.0


@dataclass
class MeasureContext:
    """What measurements need from the run: the admin client, the shared pods watch, thresholds, the player's
    call recorder, local PIDs, whether latencies can be trusted (clock check); and watches they share."""

    client: RestClient
    pods: ObjectWatch
    thresholds: SLOThresholds
    recorder: ApiCallRecorder
    namespace_prefix: str = ""
    pids: Mapping[str, int | Sequence[int]] = field(default_factory=dict)
    latency_trusted: bool = True  # False when the clock check refuses latency SLIs
    skew_reason: str = ""
    watch_factory: Callable[[str], ObjectWatch] | None = None  # REST path -> ObjectWatch (tests inject one)
    # component (kube-scheduler, kube-controller-manager, etcd, kube-proxy) -> reader of its /metrics, for the
    # components this run can reach directly (see kubemark.measure.component_metrics)
    component_metrics: Mapping[str, MetricsReader] = field(default_factory=dict)
    # seconds on a monotonic clock, for measurements that time intervals (Timer); tests inject a fake one
    monotonic: Callable[[], float] = time.monotonic
    # the hollow nodes the ChaosMonkey measurement may fail (the run's NodePool); None when the run has none
    node_failures: NodeFailureTarget | None = None
    _watches: dict[str, ObjectWatch] = field(default_factory=dict, init=False, repr=False)

    async def watch(self, path: str) -> ObjectWatch:
        """The started watch of `path`, shared by every measurement that asks for it (one informer per path)."""
        watch = self._watches.get(path)
        if watch is None:
            watch = self.watch_factory(path) if self.watch_factory is not None else ObjectWatch(self.client, path)
            await watch.start()
            self._watches[path] = watch
        return watch

    async def close(self) -> None:
        """Stop the watches opened through `watch`."""
        watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            await watch.stop()


class Measurement(Protocol):
    """One running measurement (see the module docstring for the lifecycle)."""

    barrier: ClassVar[bool]

    def __init__(self, identifier: str, ctx: MeasureContext) -> None: ...

    async def start(self, params: Mapping[str, Any]) -> None: ...

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult: ...

    async def stop(self) -> None: ...


class MeasurementBase:
    """What every measurement keeps (its Identifier and the context), and nothing to dispose of by default."""

    barrier: ClassVar[bool] = False
    method: ClassVar[str] = ""  # clusterloader2's Method name, for warnings and summary names
    # Every action the Method takes, when it takes more than start and gather (None: start and gather, and no
    # action meaning both, unchecked).
    actions: ClassVar[frozenset[str] | None] = None
    stateful: ClassVar[bool] = False  # one instance per Identifier for the whole test (see the module docstring)

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        self.identifier = identifier
        self.ctx = ctx

    @classmethod
    def check_params(cls, action: str | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems (param, message) config validation reports for one step of this Method; none by default."""
        return []

    async def act(self, action: str, params: Mapping[str, Any]) -> MeasurementResult | None:
        """Run an action other than start and gather (one of `actions`); what it produced, if anything."""
        raise ValueError(f"{self.identifier}: unknown action {action}")

    async def metrics_text(self, component: str) -> str | None:
        """`component`'s /metrics text, or None when this run cannot reach it."""
        return await read_component_metrics(self.ctx.client, self.ctx.component_metrics, component)

    async def stop(self) -> None:
        return None


class Waiter(Protocol):
    """A barrier's condition over watched objects (ControlledPodsBarrier, FinishedJobsBarrier)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def wait(self, timeout: float) -> None: ...  # noqa: ASYNC109 - the barrier's own deadline


class BarrierMeasurement(MeasurementBase):
    """A measurement that waits in each gather until its condition over the objects of `path` holds.

    Subclasses say which objects (`path`) and make the condition (`waiter`) from the shared watch of that path,
    the `labelSelector` and a lister of the matching objects (for a timeout's report).
    """

    barrier: ClassVar[bool] = True

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._waiter: Waiter | None = None

    def path(self, params: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def waiter(
        self, objects: ObjectWatch, selector: str, lister: Callable[[], Awaitable[list[dict[str, Any]]]]
    ) -> Waiter:
        raise NotImplementedError

    async def start(self, params: Mapping[str, Any]) -> None:
        path = self.path(params)
        selector = str(params.get("labelSelector") or "")
        client = self.ctx.client

        async def lister() -> list[dict[str, Any]]:
            items, _ = await client.list_all(path, label_selector=selector or None)
            return items

        self._waiter = self.waiter(await self.ctx.watch(path), selector, lister)
        self._waiter.start()

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        if self._waiter is not None:
            await self._waiter.wait(operation_timeout(params))
        return MeasurementResult()

    async def stop(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.stop()


def operation_timeout(params: Mapping[str, Any]) -> float:
    """A barrier's deadline: `timeout`, else clusterloader2's `operationTimeout`, else 10 minutes."""
    return parse_duration(params.get("timeout", params.get("operationTimeout", DEFAULT_OPERATION_TIMEOUT)))
