"""Measurement steps of a test config: `Method`s started and gathered by `Identifier`, results kept for the report.

Methods: PodStartupLatency, WaitForControlledPodsRunning, WaitForFinishedJobs, SchedulingThroughput,
APIResponsivenessPrometheus (alias APIResponsiveness), ResourceUsageSummary, Sleep. A measurement whose Params have
no `action` is started and gathered at once (only meaningful for Sleep and the barriers). `finish()` gathers whatever is still running without
waiting on barriers, so an interrupted or failed run still reports what it measured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kubemark.client import RestClient, object_path
from kubemark.kube.labels import LabelSelectorError, parse_label_selector
from kubemark.load.config import ConfigError, Measurement, TestConfig, parse_duration
from kubemark.measure.api_responsiveness import (
    ApiCallRecorder,
    ServerLatency,
    histogram_delta,
    parse_request_histograms,
    scrape_text,
    server_verdicts,
    summarize_histograms,
)
from kubemark.measure.barrier import ControlledPodsBarrier
from kubemark.measure.finished_jobs import FinishedJobsBarrier
from kubemark.measure.flowcontrol import PriorityLevelStats, flowcontrol_delta, parse_flowcontrol
from kubemark.measure.percentiles import PodTimeline
from kubemark.measure.pod_startup import PodStartupTracker
from kubemark.measure.resource_usage import ProcessSampler
from kubemark.measure.scheduling_throughput import SchedulingThroughput
from kubemark.measure.slo import (
    SLOThresholds,
    Verdict,
    check_api_latency,
    check_pod_startup,
    check_scheduler_throughput,
    refused,
)
from kubemark.measure.watch import ObjectWatch
from kubemark.report.model import UsageSample

__all__ = ["METHODS", "MeasureContext", "MeasurementSet", "validate_measurements"]

log = logging.getLogger(__name__)

METHODS = (
    "PodStartupLatency",
    "WaitForControlledPodsRunning",
    "WaitForFinishedJobs",
    "SchedulingThroughput",
    "APIResponsivenessPrometheus",
    "APIResponsiveness",
    "ResourceUsageSummary",
    "Sleep",
)
DEFAULT_OPERATION_TIMEOUT = 600.0
BARRIERS = ("WaitForControlledPodsRunning", "WaitForFinishedJobs")  # stay running across gathers


def validate_measurements(config: TestConfig) -> None:
    """Raise ConfigError for unknown methods and malformed durations (before any cluster is started)."""
    problems: list[tuple[str, str]] = []
    for si, step in enumerate(config.steps):
        for mi, m in enumerate(step.measurements):
            where = f"steps[{si}].measurements[{mi}]"
            if m.method not in METHODS:
                problems.append((f"{where}.Method", f'unknown measurement "{m.method}" (known: {", ".join(METHODS)})'))
            if "labelSelector" in m.params:
                try:
                    parse_label_selector(str(m.params["labelSelector"] or ""))
                except LabelSelectorError as exc:
                    problems.append((f"{where}.Params.labelSelector", str(exc)))
            for key in ("threshold", "operationTimeout", "timeout", "duration", "samplingInterval"):
                if key in m.params:
                    try:
                        parse_duration(m.params[key])
                    except ValueError as exc:
                        problems.append((f"{where}.Params.{key}", str(exc)))
    if problems:
        raise ConfigError(config.name, problems)


@dataclass
class MeasureContext:
    """What measurements need from the run: the admin client, shared watches, thresholds, local PIDs."""

    client: RestClient
    pods: ObjectWatch
    thresholds: SLOThresholds
    recorder: ApiCallRecorder
    namespace_prefix: str = ""
    pids: Mapping[str, int | Sequence[int]] = field(default_factory=dict)
    latency_trusted: bool = True  # False when the clock check refuses latency SLIs
    skew_reason: str = ""
    watch_factory: Callable[[str], ObjectWatch] | None = None  # REST path -> started ObjectWatch


class MeasurementSet:
    """The running and finished measurements of one test; results accumulate in the public attributes."""

    def __init__(self, ctx: MeasureContext) -> None:
        self.ctx = ctx
        self.running: dict[str, Any] = {}
        self.verdicts: list[Verdict] = []
        self.pods: dict[str, list[PodTimeline]] = {}  # identifier -> timelines
        self.fill_levels: dict[float, list[float]] = {}
        self.throughput: list[tuple[float, float]] = []
        self.usage: list[UsageSample] = []
        self.server_latency: list[ServerLatency] = []
        self.flowcontrol: list[PriorityLevelStats] = []
        self._watches: dict[str, ObjectWatch] = {}
        self._params: dict[str, dict[str, Any]] = {}

    async def execute(self, m: Measurement) -> None:
        action = m.action
        if action in (None, "start"):
            await self._start(m)
            self._params[m.identifier] = dict(m.params)
        if action in (None, "gather"):
            await self._gather(m.identifier, m.method, {**self._params.get(m.identifier, {}), **m.params})

    async def execute_all(self, measurements: list[Measurement]) -> None:
        """The measurements of one step, concurrently (as clusterloader2 runs them)."""
        await asyncio.gather(*(self.execute(m) for m in measurements))

    # -- start ---------------------------------------------------------------------------------------------

    async def _start(self, m: Measurement) -> None:
        p, ctx = m.params, self.ctx
        if m.identifier in self.running and m.method not in BARRIERS:
            log.warning("measurement %s started twice; restarting it", m.identifier)
        if m.method == "PodStartupLatency":
            tracker = PodStartupTracker(
                label_selector=str(p.get("labelSelector") or ""), namespace_prefix=ctx.namespace_prefix
            )
            ctx.pods.subscribe(tracker)
            self.running[m.identifier] = tracker
        elif m.method == "WaitForControlledPodsRunning":
            if m.identifier in self.running:
                return  # already tracking: clusterloader2 configs re-start before each wait
            sample = {"apiVersion": p.get("apiVersion", "apps/v1"), "kind": p.get("kind", "Deployment")}
            path = object_path(sample, "") if sample else ""
            objects = await self._watch(path)
            selector = str(p.get("labelSelector") or "")

            async def lister(path: str = path, selector: str = selector) -> list[dict[str, Any]]:
                items, _ = await ctx.client.list_all(path, label_selector=selector or None)
                return items

            barrier = ControlledPodsBarrier(
                objects,
                ctx.pods,
                label_selector=selector,
                namespace_prefix=ctx.namespace_prefix,
                lister=lister,
            )
            barrier.start()
            self.running[m.identifier] = barrier
        elif m.method == "WaitForFinishedJobs":
            if m.identifier in self.running:
                return
            path = object_path({"apiVersion": "batch/v1", "kind": "Job"}, "")
            selector = str(p.get("labelSelector") or "")

            async def list_jobs(path: str = path, selector: str = selector) -> list[dict[str, Any]]:
                items, _ = await ctx.client.list_all(path, label_selector=selector or None)
                return items

            jobs = FinishedJobsBarrier(
                await self._watch(path),
                label_selector=selector,
                namespace_prefix=ctx.namespace_prefix,
                lister=list_jobs,
            )
            jobs.start()
            self.running[m.identifier] = jobs
        elif m.method == "SchedulingThroughput":
            sampler = SchedulingThroughput(interval=parse_duration(p.get("samplingInterval", 1.0)))
            ctx.pods.subscribe(sampler)
            sampler.start(ctx.pods.list())
            self.running[m.identifier] = sampler
        elif m.method in ("APIResponsivenessPrometheus", "APIResponsiveness"):
            before: str | None
            try:
                before = await scrape_text(ctx.client)
            except Exception as exc:
                log.warning("cannot scrape the API server's /metrics (%s); using client-side latencies only", exc)
                before = None
            self.running[m.identifier] = (before, len(ctx.recorder))
        elif m.method == "ResourceUsageSummary":
            usage = ProcessSampler(ctx.pids)
            if ctx.pids:
                usage.start()
            self.running[m.identifier] = usage
        elif m.method == "Sleep":
            await asyncio.sleep(parse_duration(p.get("duration", 0)))

    async def _watch(self, path: str) -> ObjectWatch:
        watch = self._watches.get(path)
        if watch is None:
            if self.ctx.watch_factory is not None:
                watch = self.ctx.watch_factory(path)
            else:
                watch = ObjectWatch(self.ctx.client, path)
            await watch.start()
            self._watches[path] = watch
        return watch

    # -- gather --------------------------------------------------------------------------------------------

    async def _gather(self, identifier: str, method: str, p: Mapping[str, Any], *, wait: bool = True) -> None:
        ctx = self.ctx
        if method == "Sleep":
            return
        state = self.running.get(identifier)
        if state is None:
            if method in BARRIERS:
                raise RuntimeError(f"{identifier}: gathered before it was started")
            log.warning("measurement %s gathered but never started", identifier)
            return
        if method in BARRIERS:
            if wait:
                timeout = p.get("timeout", p.get("operationTimeout", DEFAULT_OPERATION_TIMEOUT))
                await state.wait(parse_duration(timeout))
            return  # stays running: later gathers check deletions
        del self.running[identifier]
        if method == "PodStartupLatency":
            ctx.pods.unsubscribe(state)
            self._pod_startup(identifier, state, p)
        elif method == "SchedulingThroughput":
            ctx.pods.unsubscribe(state)
            series = await state.stop()
            self.throughput.extend(series)
            thresholds = ctx.thresholds
            if "threshold" in p:
                thresholds = SLOThresholds.from_config({"schedulerThroughput": p["threshold"]}, thresholds)
            verdict = check_scheduler_throughput([v for _, v in series], thresholds)
            if verdict is not None:
                self.verdicts.append(verdict)
        elif method in ("APIResponsivenessPrometheus", "APIResponsiveness"):
            await self._api(state, p)
        elif method == "ResourceUsageSummary":
            self.usage.extend(await state.stop())

    def _pod_startup(self, identifier: str, tracker: PodStartupTracker, p: Mapping[str, Any]) -> None:
        self.pods[identifier] = tracker.timelines()
        stateless = [t for t in tracker.timelines(stateful=False) if t.created is not None and t.watched is not None]
        samples = [t.watched - t.created for t in stateless]  # type: ignore[operator]
        threshold = parse_duration(p["threshold"]) if "threshold" in p else self.ctx.thresholds.pod_startup_p99
        name = "pod_startup_latency" if identifier == "PodStartupLatency" else f"pod_startup_latency {identifier}"
        if not self.ctx.latency_trusted:
            self.verdicts.append(refused(name, threshold, "s", self.ctx.skew_reason))
        elif samples:
            verdict = check_pod_startup(samples, replace(self.ctx.thresholds, pod_startup_p99=threshold))
            self.verdicts.append(replace(verdict, name=name, detail=f"{identifier}, stateless pods: {verdict.detail}"))
        else:
            self.verdicts.append(Verdict(name, 0.0, threshold, "s", False, f"{identifier}: no pod reached Running"))
        if "fillLevel" in p:
            self.fill_levels.setdefault(float(p["fillLevel"]), []).extend(samples)

    async def _api(self, state: tuple[str | None, int], p: Mapping[str, Any]) -> None:
        ctx = self.ctx
        before, first_call = state
        server: list[ServerLatency] = []
        if before is not None:
            try:
                after = await scrape_text(ctx.client)
                server = summarize_histograms(
                    histogram_delta(parse_request_histograms(after), parse_request_histograms(before))
                )
                self.flowcontrol = flowcontrol_delta(parse_flowcontrol(after), parse_flowcontrol(before))
            except Exception as exc:
                log.warning("cannot scrape the API server's /metrics at gather (%s)", exc)
        if server:
            self.server_latency = server
            self.verdicts.extend(server_verdicts(server, ctx.thresholds))
            return
        calls: dict[Any, list[float]] = {}
        for call in ctx.recorder.calls[first_call:]:
            if call.status is not None:
                calls.setdefault(call.key, []).append(call.seconds)
        self.verdicts.extend(check_api_latency(calls, ctx.thresholds))

    async def finish(self) -> None:
        """Gather everything still running (barriers are not waited on) and stop the watches we opened."""
        for identifier, state in list(self.running.items()):
            method = _method_of(state)
            try:
                await self._gather(identifier, method, self._params.get(identifier, {}), wait=False)
            except Exception:
                log.exception("gathering %s failed", identifier)
            if isinstance(state, ControlledPodsBarrier | FinishedJobsBarrier):
                state.stop()
                self.running.pop(identifier, None)
        for watch in self._watches.values():
            await watch.stop()
        self._watches.clear()


def _method_of(state: Any) -> str:
    if isinstance(state, PodStartupTracker):
        return "PodStartupLatency"
    if isinstance(state, ControlledPodsBarrier):
        return "WaitForControlledPodsRunning"
    if isinstance(state, FinishedJobsBarrier):
        return "WaitForFinishedJobs"
    if isinstance(state, SchedulingThroughput):
        return "SchedulingThroughput"
    if isinstance(state, ProcessSampler):
        return "ResourceUsageSummary"
    return "APIResponsivenessPrometheus"
