"""The results vocabulary: plain values that measurements produce and reports read.

Everything a run records is one of these (or a list of them); `report/` imports them from here, never the
reverse. `MeasurementResult` is what a measurement's gather returns; a run merges them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ApiCall",
    "ApiCallKey",
    "MeasurementResult",
    "MeasurementWarning",
    "PodTimeline",
    "PriorityLevelStats",
    "ServerLatency",
    "StepResult",
    "SummaryFile",
    "UsageSample",
    "Verdict",
]


@dataclass(frozen=True, slots=True, order=True)
class ApiCallKey:
    verb: str
    resource: str
    subresource: str
    scope: str  # resource | namespace | cluster


@dataclass(frozen=True, slots=True)
class ApiCall:
    started_at: float
    verb: str
    resource: str
    subresource: str
    scope: str
    status: int | None
    seconds: float

    @property
    def key(self) -> ApiCallKey:
        return ApiCallKey(self.verb, self.resource, self.subresource, self.scope)


@dataclass(frozen=True)
class ServerLatency:
    """Server-side latency of one (verb, resource, subresource, scope) between two scrapes, in seconds."""

    key: ApiCallKey
    count: int
    p50: float
    p90: float
    p99: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """One SLO check: `measured` against `threshold` in `unit`; `detail` says what was measured and why it failed."""

    name: str
    measured: float
    threshold: float
    unit: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": self.measured,
            "threshold": self.threshold,
            "unit": self.unit,
            "passed": self.passed,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(
            name=str(d["name"]),
            measured=math.nan if d.get("measured") is None else float(d["measured"]),  # JSON has no NaN
            threshold=float(d["threshold"]),
            unit=str(d.get("unit", "")),
            passed=bool(d["passed"]),
            detail=str(d.get("detail", "")),
        )


@dataclass(frozen=True, slots=True)
class PodTimeline:
    """When one pod was created (server), scheduled, running, and its running state seen by our watch.

    All in unix seconds; None where the pod never got there.
    """

    name: str
    created: float | None
    scheduled: float | None
    running: float | None
    watched: float | None
    measurement: str = ""  # the PodStartupLatency measurement (Identifier) that tracked it, e.g. saturation pods


@dataclass(frozen=True, slots=True)
class UsageSample:
    time: float
    component: str
    cpu_cores: float
    memory_bytes: float


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    started: float
    finished: float
    error: str = ""

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started)


@dataclass(frozen=True)
class PriorityLevelStats:
    """One priority level between two scrapes; waits in seconds (histogram_quantile over the wait buckets)."""

    priority_level: str
    dispatched: int
    rejected: int
    wait_p50: float
    wait_p99: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriorityLevelStats:
        return cls(
            str(data["priority_level"]),
            int(data["dispatched"]),
            int(data["rejected"]),
            float(data["wait_p50"]),
            float(data["wait_p99"]),
        )


@dataclass(frozen=True, slots=True)
class MeasurementWarning:
    """A measurement the test asked for that this run did not measure, and why ("not measured here: ...").

    clusterloader2 configs name measurements that need things hollow nodes do not have (pod networking, DNS,
    Prometheus, SSH to the master); such a measurement is accepted, and the run says so in the terminal,
    summary.json and report.html instead of passing silently or inventing a number.
    """

    identifier: str
    method: str
    reason: str  # why, e.g. "needs real pod networking" (shown after "not measured here: ")

    def as_dict(self) -> dict[str, str]:
        return {"identifier": self.identifier, "method": self.method, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MeasurementWarning:
        return cls(str(d.get("identifier", "")), str(d.get("method", "")), str(d.get("reason", "")))

    def __str__(self) -> str:
        return f"{self.identifier} ({self.method}): not measured here: {self.reason}"


@dataclass(frozen=True, slots=True)
class SummaryFile:
    """One clusterloader2 summary file a measurement produced: `<name>_<test>_<time>.json` holds `content`.

    `name` is clusterloader2's summary name (e.g. "EtcdMetrics", "SchedulingMetrics",
    "JobLifecycleLatency_<Identifier>"), so tooling that reads clusterloader2's report directory finds it.
    """

    name: str
    content: Any


@dataclass
class MeasurementResult:
    """What gathering one or more measurements produced; `merge` folds another result in.

    Pod timelines are kept per measurement Identifier (a later gather of the same identifier replaces its pods);
    the server-side latencies and priority-and-fairness figures are one window's, so a later non-empty window
    replaces an earlier one; everything else accumulates.
    """

    verdicts: list[Verdict] = field(default_factory=list)
    pods: dict[str, list[PodTimeline]] = field(default_factory=dict)  # identifier -> timelines
    fill_levels: dict[float, list[float]] = field(default_factory=dict)  # fill % -> pod startup samples (s)
    throughput: list[tuple[float, float]] = field(default_factory=list)  # (unix s, pods/s)
    usage: list[UsageSample] = field(default_factory=list)
    server_latency: list[ServerLatency] = field(default_factory=list)
    flowcontrol: list[PriorityLevelStats] = field(default_factory=list)
    warnings: list[MeasurementWarning] = field(default_factory=list)  # measurements not measured here
    summaries: list[SummaryFile] = field(default_factory=list)  # clusterloader2 summary files to write

    def merge(self, other: MeasurementResult) -> None:
        self.verdicts.extend(other.verdicts)
        self.pods.update(other.pods)
        for pct, samples in other.fill_levels.items():
            self.fill_levels.setdefault(pct, []).extend(samples)
        self.throughput.extend(other.throughput)
        self.usage.extend(other.usage)
        for warning in other.warnings:
            if warning not in self.warnings:  # a measurement started and gathered twice warns once
                self.warnings.append(warning)
        self.summaries.extend(other.summaries)
        if other.server_latency:
            self.server_latency = list(other.server_latency)
        if other.flowcontrol:
            self.flowcontrol = list(other.flowcontrol)
