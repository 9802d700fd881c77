"""PoolMetrics: what a NodePool exposes on its own /metrics (prometheus-client, its own registry).

Heartbeat lateness, API errors by code and network programming latency are recorded as they happen; pods by
phase and nodes ready are read from the pool at scrape time; event-loop lag is sampled by `LoopLagProbe`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily

from kubemark.client.rest import RequestRecord

LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40)
# kube-proxy's buckets for network programming: 0.25 s .. ~20 min.
PROGRAMMING_BUCKETS = (0.25, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 45, 60, 120, 300, 600, 1200)


class _PoolCollector:
    """Reads pods-by-phase and nodes-ready from the pool when scraped (no per-change bookkeeping)."""

    def __init__(self, phases: Callable[[], Counter[str]], ready: Callable[[], int], total: Callable[[], int]) -> None:
        self._phases = phases
        self._ready = ready
        self._total = total

    def collect(self):  # type: ignore[no-untyped-def]
        pods = GaugeMetricFamily("kubemark_hollow_pods", "Pods managed by hollow kubelets, by phase.", labels=["phase"])
        for phase, n in sorted(self._phases().items()):
            pods.add_metric([phase], n)
        yield pods
        yield GaugeMetricFamily("kubemark_hollow_nodes_ready", "Hollow nodes that reported Ready.", value=self._ready())
        yield GaugeMetricFamily("kubemark_hollow_nodes", "Hollow nodes in this pool.", value=self._total())


class PoolMetrics:
    """One registry per pool (per worker process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.heartbeat_lateness = Histogram(
            "kubemark_hollow_heartbeat_lateness_seconds",
            "How late lease renewals started versus their schedule.",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.renewal_lateness = Histogram(
            "kubemark_hollow_lease_renewal_lateness_seconds",
            "How late successful lease renewals completed versus their schedule (start lateness + write latency).",
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.api_errors = PromCounter(
            "kubemark_hollow_api_errors",
            "API calls of hollow nodes that failed, by HTTP code (0: no response).",
            ["code"],
            registry=self.registry,
        )
        self.api_requests = PromCounter(
            "kubemark_hollow_api_requests", "API calls of hollow nodes, by verb.", ["verb"], registry=self.registry
        )
        self.loop_lag = Gauge(
            "kubemark_hollow_event_loop_lag_seconds", "Latest event-loop lag sample.", registry=self.registry
        )
        self.programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In-cluster network programming latency in seconds (hollow kube-proxy).",
            buckets=PROGRAMMING_BUCKETS,
            registry=self.registry,
        )

    def bind_pool(self, phases: Callable[[], Counter[str]], ready: Callable[[], int], total: Callable[[], int]) -> None:
        self.registry.register(_PoolCollector(phases, ready, total))

    def observe_lease_lateness(self, seconds: float) -> None:
        self.heartbeat_lateness.observe(seconds)

    def observe_renewal_lateness(self, seconds: float) -> None:
        self.renewal_lateness.observe(seconds)

    def on_request(self, record: RequestRecord) -> None:
        self.api_requests.labels(record.verb).inc()
        if record.status is None or record.status >= 400:
            self.api_errors.labels(str(record.status or 0)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class LoopLagProbe:
    """Samples how late a periodic wake-up fires: the event loop's responsiveness."""

    def __init__(self, gauge: Gauge, interval: float = 0.5) -> None:
        self._gauge = gauge
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.max_lag = 0.0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            lag = max(0.0, loop.time() - due)
            self.max_lag = max(self.max_lag, lag)
            self._gauge.set(lag)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop lag probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
