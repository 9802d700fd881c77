"""The figures a run's summary files hold, named for the trend view, and the SLO threshold of each.

Every run, kubemark's or clusterloader2's, is read through its summary files (PerfData and the plain
SchedulingThroughput / ResourceUsageSummary structures), so both kinds give the same metric names:

    pod_startup/<Identifier>/<transition>/p50|p90|p99   s        PodStartupLatency_<Identifier>
    api/<VERB> <resource>[/<sub>] <scope>/p50|p90|p99   s        APIResponsivenessPrometheus
    api[<variant>]/...                                  s        APIResponsivenessPrometheus_<variant>
    scheduling_throughput/p50|p90|p99|max               pods/s   SchedulingThroughput
    resources/<component>/cpu_p50|cpu_p99               cores    ResourceUsageSummary
    resources/<component>/memory_p50|memory_max         bytes
    <Summary>/<label=value,...>/<key>                   as given any other PerfData (e.g. network-ready latency)

Latencies are in seconds (PerfData's ms divided by 1000), as `kubemark compare` keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubemark.measure.results import ApiCallKey
from kubemark.measure.slo import SLOThresholds, api_threshold
from kubemark.report.compare import Better
from kubemark.report.perfdata import validate_perfdata

__all__ = [
    "POD_STARTUP_SLO_METRIC",
    "MetricValue",
    "api_key",
    "metric_threshold",
    "summary_metrics",
    "verdict_name",
]

POD_STARTUP_SLO_METRIC = "pod_startup/PodStartupLatency/pod_startup/p99"
_LATENCY_KEYS = {"Perc50": "p50", "Perc90": "p90", "Perc99": "p99"}
_UNIT_SCALE = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}


@dataclass(frozen=True, slots=True)
class MetricValue:
    value: float
    unit: str
    better: Better


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _items(content: Any) -> list[Mapping[str, Any]]:
    items = content.get("dataItems") if isinstance(content, Mapping) else None
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def _latencies(item: Mapping[str, Any], prefix: str, out: dict[str, MetricValue]) -> None:
    data = item.get("data")
    scale = _UNIT_SCALE.get(str(item.get("unit", "ms")), 1e-3)
    if not isinstance(data, Mapping):
        return
    for key, suffix in _LATENCY_KEYS.items():
        value = _number(data.get(key))
        if value is not None:
            out[f"{prefix}/{suffix}"] = MetricValue(value * scale, "s", "lower")


def _pod_startup(summary: str, content: Any, out: dict[str, MetricValue]) -> None:
    identifier = summary.removeprefix("PodStartupLatency").lstrip("_") or "PodStartupLatency"
    for item in _items(content):
        labels = item.get("labels") if isinstance(item.get("labels"), Mapping) else {}
        transition = str(labels.get("Metric", "")) if labels else ""
        if transition:
            _latencies(item, f"pod_startup/{identifier}/{transition}", out)


def _api(summary: str, content: Any, out: dict[str, MetricValue]) -> None:
    variant = summary.removeprefix("APIResponsivenessPrometheus").lstrip("_")
    prefix = f"api[{variant}]" if variant else "api"
    for item in _items(content):
        labels = item.get("labels")
        if not isinstance(labels, Mapping) or not labels.get("Verb"):
            continue
        verb = str(labels["Verb"])
        if verb in ("WATCH", "CONNECT"):
            continue
        sub = f"/{labels['Subresource']}" if labels.get("Subresource") else ""
        _latencies(item, f"{prefix}/{verb} {labels.get('Resource', '')}{sub} {labels.get('Scope', '')}", out)


def _throughput(content: Any, out: dict[str, MetricValue]) -> None:
    if not isinstance(content, Mapping):
        return
    for key, suffix in (("perc50", "p50"), ("perc90", "p90"), ("perc99", "p99"), ("max", "max")):
        value = _number(content.get(key))
        if value is not None:
            out[f"scheduling_throughput/{suffix}"] = MetricValue(value, "pods/s", "higher")


def _usage(content: Any, out: dict[str, MetricValue]) -> None:
    if not isinstance(content, Mapping):
        return
    wanted = {
        ("50", "Cpu"): "cpu_p50",
        ("99", "Cpu"): "cpu_p99",
        ("50", "Mem"): "memory_p50",
        ("100", "Mem"): "memory_max",
    }
    for (pct, field), suffix in wanted.items():
        rows = content.get(pct)
        for row in rows if isinstance(rows, list) else []:
            value = _number(row.get(field)) if isinstance(row, Mapping) else None
            if value is not None and row.get("Name"):
                unit = "cores" if field == "Cpu" else "bytes"
                out[f"resources/{row['Name']}/{suffix}"] = MetricValue(value, unit, "lower")


def _generic(summary: str, content: Any, out: dict[str, MetricValue]) -> None:
    if validate_perfdata(content):
        return  # not PerfData (clusterloader2 writes other summaries too): nothing to plot
    for item in _items(content):
        labels = item.get("labels") or {}
        label = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("Count", "SlowCount")) or "-"
        unit = str(item["unit"])
        scale = _UNIT_SCALE.get(unit)
        for key, raw in sorted(item["data"].items()):
            value = _number(raw)
            if value is None:
                continue
            if scale is not None:
                out[f"{summary}/{label}/{key}"] = MetricValue(value * scale, "s", "lower")
            else:
                out[f"{summary}/{label}/{key}"] = MetricValue(value, unit, "higher" if unit.endswith("/s") else "lower")


def summary_metrics(summary: str, content: Any) -> dict[str, MetricValue]:
    """The metrics of one summary file's content (see the module docstring); malformed parts are left out."""
    out: dict[str, MetricValue] = {}
    if summary.startswith("PodStartupLatency"):
        _pod_startup(summary, content, out)
    elif summary.startswith("APIResponsivenessPrometheus"):
        _api(summary, content, out)
    elif summary == "SchedulingThroughput":
        _throughput(content, out)
    elif summary == "ResourceUsageSummary":
        _usage(content, out)
    else:
        _generic(summary, content, out)
    return out


def api_key(metric: str) -> ApiCallKey | None:
    """The (verb, resource, subresource, scope) of an `api.../<VERB> <resource>[/<sub>] <scope>/pNN` metric."""
    family, _, rest = metric.partition("/")
    if family != "api" and not (family.startswith("api[") and family.endswith("]")):
        return None
    call, _, _ = rest.rpartition("/")
    parts = call.split(" ")
    if len(parts) != 3:
        return None
    verb, path, scope = parts
    resource, _, sub = path.partition("/")
    return ApiCallKey(verb, resource, sub, scope)


def verdict_name(metric: str) -> str | None:
    """The name of the kubemark SLO verdict that judges `metric`, if one does (as `kubemark run` names them)."""
    if metric.startswith("pod_startup/") and metric.endswith("/pod_startup/p99"):
        identifier = metric.split("/")[1]
        return "pod_startup_latency" if identifier == "PodStartupLatency" else f"pod_startup_latency {identifier}"
    if metric == "scheduling_throughput/max":
        return "scheduling_throughput"
    key = api_key(metric)
    if key is not None and metric.endswith("/p99"):
        sub = f"/{key.subresource}" if key.subresource else ""
        return f"api_call_latency {key.verb} {key.resource}{sub} {key.scope}"
    return None


def metric_threshold(metric: str, run_thresholds: Mapping[str, float], defaults: SLOThresholds) -> float | None:
    """The SLO threshold of `metric` for one run: the run's own verdict's, else the default SLO's (or None)."""
    name = verdict_name(metric)
    if name is None:
        return None
    if name in run_thresholds:
        return run_thresholds[name]
    if metric == POD_STARTUP_SLO_METRIC:
        return defaults.pod_startup_p99
    key = api_key(metric)
    if key is not None:
        return api_threshold(key, defaults)
    return None
