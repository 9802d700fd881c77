"""One metric over many runs: the points of the trend view, grouped so that runs of different tests or sizes
are not mixed unless asked.

A group is (test, nodes). Without `mix`, the trend holds the chosen group only (by default the group of the
most recent run that has the metric); with `mix`, one series per group on a common time axis. Each point
carries the SLO threshold that applied to its run (see `metrics.metric_threshold`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kubemark.report.compare import Better
from kubemark.report.dashboard.metrics import POD_STARTUP_SLO_METRIC, metric_threshold
from kubemark.report.dashboard.runs import RunIndex, RunInfo, RunKind

__all__ = ["Group", "Trend", "TrendPoint", "build_trend", "format_group", "parse_group"]

Group = tuple[str, int | None]


def format_group(group: Group) -> str:
    """`("density", 100)` -> "density/100"; unknown size -> "density/-" (the form the URL carries)."""
    return f"{group[0]}/{'-' if group[1] is None else group[1]}"


def parse_group(text: str) -> Group | None:
    test, sep, nodes = text.rpartition("/")
    if not sep:
        return None
    if nodes == "-":
        return (test, None)
    return (test, int(nodes)) if nodes.isdigit() else None


@dataclass(frozen=True)
class TrendPoint:
    run: RunInfo
    value: float
    threshold: float | None


@dataclass
class Trend:
    metric: str  # "" when no run has any metric
    unit: str = ""
    better: Better = "lower"
    group: Group | None = None  # None: groups mixed
    series: dict[Group, list[TrendPoint]] = field(default_factory=dict)  # chronological per group
    groups: dict[Group, int] = field(default_factory=dict)  # groups with the metric -> runs in it
    metrics: dict[str, int] = field(default_factory=dict)  # every metric of any run -> runs that have it
    skipped: list[tuple[RunInfo, str]] = field(default_factory=list)  # runs whose summary files failed to read

    @property
    def points(self) -> list[TrendPoint]:
        return sorted((p for s in self.series.values() for p in s), key=lambda p: (p.run.start or 0.0, p.run.id))


def _chronological(runs: Iterable[RunInfo]) -> list[RunInfo]:
    return sorted(runs, key=lambda r: (r.start or 0.0, r.id))


def build_trend(
    index: RunIndex, runs: Iterable[RunInfo], metric: str | None = None, group: Group | None = None, mix: bool = False
) -> Trend:
    """The trend of `metric` (default: latency pods' pod-startup p99, else the first metric by name)."""
    ordered = _chronological(r for r in runs if r.kind is not RunKind.BROKEN)
    values = {}
    counts: Counter[str] = Counter()
    trend = Trend(metric="")
    for run in ordered:
        m = index.metrics(run)
        if m.errors:
            trend.skipped.append((run, "; ".join(m.errors)))
        values[run.id] = m.values
        counts.update(m.values.keys())
    trend.metrics = dict(sorted(counts.items()))
    if not counts:
        return trend
    if metric is None or metric not in counts:
        metric = POD_STARTUP_SLO_METRIC if POD_STARTUP_SLO_METRIC in counts else min(counts)
    trend.metric = chosen = metric
    having = [r for r in ordered if chosen in values[r.id]]
    first = values[having[0].id][chosen]
    trend.unit, trend.better = first.unit, first.better
    trend.groups = dict(Counter(r.group for r in having))
    if not mix:
        trend.group = group if group in trend.groups else having[-1].group
    for run in having:
        if trend.group is not None and run.group != trend.group:
            continue
        threshold = metric_threshold(chosen, run.thresholds, index.thresholds)
        trend.series.setdefault(run.group, []).append(TrendPoint(run, values[run.id][chosen].value, threshold))
    return trend
