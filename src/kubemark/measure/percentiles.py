"""Percentiles as clusterloader2 computes them, and the latency records measurements produce.

clusterloader2 sorts the samples and takes index ceil(n*p/100)-1 (no interpolation); an empty set gives 0.
Matching that exactly keeps our figures comparable with published clusterloader2 results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kubemark.measure.results import PodTimeline

__all__ = [
    "POD_STARTUP_TRANSITIONS",
    "LatencySeries",
    "percentile",
    "pod_startup_series",
    "summarize",
]

# The transitions clusterloader2's PodStartupLatency reports, in order.
POD_STARTUP_TRANSITIONS = ("create_to_schedule", "schedule_to_run", "run_to_watch", "schedule_to_watch", "pod_startup")


def percentile(samples: Sequence[float], p: float, *, presorted: bool = False) -> float:
    """The p-th percentile (0 < p <= 100): sorted[ceil(n*p/100) - 1]; 0.0 for no samples."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    n = len(samples)
    if n == 0:
        return 0.0
    ordered = samples if presorted else sorted(samples)
    idx = math.ceil(n * p / 100) - 1
    return float(ordered[max(0, min(idx, n - 1))])


def summarize(samples: Iterable[float], percentiles: Sequence[float] = (10, 50, 90, 99)) -> dict[str, float]:
    """{"Perc10", "Perc50", "Perc90", "Perc99", "max", "count"} (keys follow `percentiles`)."""
    ordered = sorted(samples)
    out: dict[str, float] = {f"Perc{_label(p)}": percentile(ordered, p, presorted=True) for p in percentiles}
    out["max"] = float(ordered[-1]) if ordered else 0.0
    out["count"] = len(ordered)
    return out


def _label(p: float) -> str:
    return str(int(p)) if float(p).is_integer() else str(p).replace(".", "_")


@dataclass(slots=True)
class LatencySeries:
    """Samples (seconds) of one latency metric, with the wall time each was observed at (for over-time plots)."""

    metric: str
    samples: list[float] = field(default_factory=list)
    observed_at: list[float] = field(default_factory=list)  # unix seconds; empty if unknown

    def add(self, seconds: float, at: float | None = None) -> None:
        self.samples.append(seconds)
        if at is not None:
            self.observed_at.append(at)

    def summary(self) -> dict[str, float]:
        return summarize(self.samples)


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def pod_startup_series(timelines: Iterable[PodTimeline]) -> dict[str, LatencySeries]:
    """The five clusterloader2 transitions over pods that reached each end of the transition."""
    series = {name: LatencySeries(name) for name in POD_STARTUP_TRANSITIONS}
    for t in timelines:
        gaps: Mapping[str, tuple[float | None, float | None]] = {
            "create_to_schedule": (_gap(t.created, t.scheduled), t.scheduled),
            "schedule_to_run": (_gap(t.scheduled, t.running), t.running),
            "run_to_watch": (_gap(t.running, t.watched), t.watched),
            "schedule_to_watch": (_gap(t.scheduled, t.watched), t.watched),
            "pod_startup": (_gap(t.created, t.watched), t.watched),
        }
        for name, (value, at) in gaps.items():
            if value is not None:
                series[name].add(value, at)
    return series


def by_measurement(timelines: Iterable[PodTimeline]) -> dict[str, list[PodTimeline]]:
    """Timelines grouped by the measurement that tracked them, in first-seen order."""
    groups: dict[str, list[PodTimeline]] = {}
    for t in timelines:
        groups.setdefault(t.measurement, []).append(t)
    return groups
