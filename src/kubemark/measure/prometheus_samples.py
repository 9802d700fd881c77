"""Prometheus text expositions as clusterloader2's measurements read them (measurementutil's samples,
histograms and latency metrics), so their summaries have clusterloader2's shapes.

- `Sample`: one line of an exposition (name, labels, value), as model.Sample.
- `histogram(...)`: the cumulative buckets of one histogram family, summed over the series matching some labels
  (measurementutil.ConvertSampleToHistogram adds every matching series' buckets up the same way).
- `histogram_vec(...)`: one histogram per label set (measurementutil.HistogramVec, e.g. EtcdMetrics').
- `latency_metric(...)`: Perc50/90/99 as Go durations in nanoseconds (measurementutil.LatencyMetric's JSON);
  `latency_perfdata(...)`: the same as a PerfData item in ms (LatencyMetric.ToPerfData).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kubemark.measure.api_responsiveness import Histogram, histogram_quantile

__all__ = [
    "Sample",
    "histogram",
    "histogram_vec",
    "latency_metric",
    "latency_perfdata",
    "parse_samples",
    "sample_json",
]

QUANTILES = ((0.5, "Perc50"), (0.9, "Perc90"), (0.99, "Perc99"))


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_samples(text: str) -> list[Sample]:
    """Every sample of an exposition; counters keep their `_total` name as it was served."""
    return [
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def histogram(samples: Iterable[Sample], metric: str, match: Mapping[str, str] | None = None) -> Histogram:
    """`metric`'s buckets (and count) summed over the series whose labels include `match`."""
    match = match or {}
    buckets: dict[float, float] = {}
    count = 0.0
    for s in samples:
        if any(s.labels.get(k) != v for k, v in match.items()):
            continue
        if s.name == f"{metric}_bucket":
            le = float(s.labels["le"])
            buckets[le] = buckets.get(le, 0.0) + s.value
        elif s.name == f"{metric}_count":
            count += s.value
    if not count and buckets:
        count = buckets.get(math.inf, 0.0)
    return Histogram(buckets, count)


def histogram_vec(samples: Iterable[Sample], metric: str) -> list[dict[str, Any]]:
    """One `{"labels": {...}, "buckets": {le: count}}` per label set of `metric` (measurementutil.HistogramVec)."""
    out: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for s in samples:
        if s.name != f"{metric}_bucket":
            continue
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        entry = out.setdefault(key, {"labels": labels, "buckets": {}})
        entry["buckets"][_le_text(float(s.labels["le"]))] = s.value
    return list(out.values())


def _le_text(le: float) -> str:
    return "+Inf" if math.isinf(le) else f"{le:g}"


def latency_metric(hist: Histogram) -> dict[str, int]:
    """Perc50/90/99 of `hist` in nanoseconds; all zero for an empty histogram (clusterloader2 leaves them unset)."""
    if hist.count <= 0:
        return {name: 0 for _, name in QUANTILES}
    return {name: round(histogram_quantile(q, hist) * 1e9) for q, name in QUANTILES}


def latency_perfdata(metric: str, latency: Mapping[str, int]) -> dict[str, Any]:
    """LatencyMetric.ToPerfData: the percentiles in ms, labelled Metric=<metric>."""
    return {
        "data": {name: latency[name] / 1e6 for _, name in QUANTILES},
        "unit": "ms",
        "labels": {"Metric": metric},
    }


def sample_json(sample: Sample, timestamp: float) -> dict[str, Any]:
    """model.Sample's JSON: {"metric": {"__name__": ..., labels}, "value": [unix seconds, "value"]}."""
    value = (
        "NaN"
        if math.isnan(sample.value)
        else repr(sample.value)
        if not sample.value.is_integer()
        else f"{sample.value:g}"
    )
    return {"metric": {"__name__": sample.name, **sample.labels}, "value": [round(timestamp, 3), value]}
