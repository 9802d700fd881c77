"""Priority and fairness during a measurement: per priority level, the requests dispatched and rejected, and how
long they waited in queues — from the API server's /metrics at start and at gather.

The API-latency SLI leaves queue wait out (as upstream's apiserver_request_sli_duration_seconds), so this is
where a run shows the time requests spent waiting for a seat when the server was saturated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from kubemark.measure.api_responsiveness import Histogram, histogram_quantile
from kubemark.measure.results import PriorityLevelStats

__all__ = ["LevelCounts", "flowcontrol_delta", "parse_flowcontrol"]

_DISPATCHED = "apiserver_flowcontrol_dispatched_requests"
_REJECTED = "apiserver_flowcontrol_rejected_requests"
_WAIT = "apiserver_flowcontrol_request_wait_duration_seconds"


@dataclass
class LevelCounts:
    """Cumulative counters of one priority level in one scrape."""

    dispatched: float = 0.0
    rejected: float = 0.0
    wait: Histogram | None = None  # of dispatched requests (execute="true")


def parse_flowcontrol(text: str) -> dict[str, LevelCounts]:
    """Per priority level, summed over flow schemas; empty for servers without priority and fairness."""
    levels: dict[str, LevelCounts] = {}
    buckets: dict[str, dict[float, float]] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (_DISPATCHED, _REJECTED, _WAIT):
            continue
        for sample in family.samples:
            level = sample.labels.get("priority_level", "")
            entry = levels.setdefault(level, LevelCounts())
            if family.name == _DISPATCHED and sample.name.endswith("_total"):
                entry.dispatched += sample.value
            elif family.name == _REJECTED and sample.name.endswith("_total"):
                entry.rejected += sample.value
            elif family.name == _WAIT and sample.labels.get("execute") == "true":
                if sample.name.endswith("_bucket"):
                    le = float(sample.labels["le"])
                    per_level = buckets.setdefault(level, {})
                    per_level[le] = per_level.get(le, 0.0) + sample.value
                elif sample.name.endswith("_count"):
                    counts[level] = counts.get(level, 0.0) + sample.value
    for level, b in buckets.items():
        levels[level].wait = Histogram(b, counts.get(level, 0.0))
    return levels


def flowcontrol_delta(after: Mapping[str, LevelCounts], before: Mapping[str, LevelCounts]) -> list[PriorityLevelStats]:
    """What each priority level did between the scrapes (levels with no requests are left out)."""
    out = []
    for level, end in sorted(after.items()):
        start = before.get(level, LevelCounts())
        dispatched = round(end.dispatched - start.dispatched)
        rejected = round(end.rejected - start.rejected)
        if dispatched <= 0 and rejected <= 0:
            continue
        wait = end.wait.minus(start.wait) if end.wait is not None else None
        p50 = histogram_quantile(0.50, wait) if wait is not None else 0.0
        p99 = histogram_quantile(0.99, wait) if wait is not None else 0.0
        out.append(PriorityLevelStats(level, dispatched, rejected, p50, p99))
    return out
