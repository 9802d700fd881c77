"""clusterloader2's summary files, so perfdash and existing tooling can read kubemark runs.

PerfData (`{"version": "1.0", "dataItems": [{"data": {...}, "unit": "ms", "labels": {...}}]}`) for
PodStartupLatency and APIResponsivenessPrometheus; SchedulingThroughput and ResourceUsageSummary use the plain
structures clusterloader2 writes for them; every other measurement's summary (EtcdMetrics, SchedulingMetrics,
MetricsForE2E, JobLifecycleLatency_<Identifier>, ...) is written as the measurement produced it. File names follow clusterloader2: `<Summary>_<test>_<RFC3339>.json`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubemark import codec
from kubemark.measure.percentiles import POD_STARTUP_TRANSITIONS, percentile, pod_startup_series
from kubemark.measure.slo import SLOThresholds, api_threshold
from kubemark.report.model import RunResult

__all__ = [
    "PERFDATA_VERSION",
    "api_responsiveness_perfdata",
    "perfdata_file_name",
    "pod_startup_perfdata",
    "resource_usage_summary",
    "scheduling_throughput_summary",
    "validate_perfdata",
    "write_summaries",
]

PERFDATA_VERSION = "1.0"
# clusterloader2 writes "1.0" (pod startup) and "v1" (API call latency, timers, ...); perfdash reads both.
PERFDATA_VERSIONS = (PERFDATA_VERSION, "v1")
POD_STARTUP_SUMMARY = "PodStartupLatency_PodStartupLatency"  # <measurement>_<identifier>, as clusterloader2
API_SUMMARY = "APIResponsivenessPrometheus"
THROUGHPUT_SUMMARY = "SchedulingThroughput"
USAGE_SUMMARY = "ResourceUsageSummary"


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 6)


def _latency_data(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {f"Perc{p}": _ms(percentile(ordered, p, presorted=True)) for p in (50, 90, 99)}


def pod_startup_perfdata(result: RunResult) -> dict[str, Any]:
    """One data item per transition (create_to_schedule ... pod_startup), in ms, labelled Metric."""
    series = pod_startup_series(result.pods)
    items = [
        {"data": _latency_data(series[name].samples), "unit": "ms", "labels": {"Metric": name}}
        for name in POD_STARTUP_TRANSITIONS
    ]
    return {"version": PERFDATA_VERSION, "dataItems": items}


def api_responsiveness_perfdata(result: RunResult, thresholds: SLOThresholds | None = None) -> dict[str, Any]:
    """One data item per (verb, resource, subresource, scope), in ms; SlowCount counts calls over the SLO."""
    thresholds = thresholds or SLOThresholds()
    items = []
    for key, samples in sorted(result.api_samples().items()):
        if key.verb in ("WATCH", "CONNECT"):
            continue  # long-running calls are not API-call latency (clusterloader2 excludes them too)
        limit = api_threshold(key, thresholds)
        slow = sum(1 for s in samples if limit is not None and s > limit)
        items.append(
            {
                "data": _latency_data(samples),
                "unit": "ms",
                "labels": {
                    "Count": str(len(samples)),
                    "Resource": key.resource,
                    "Scope": key.scope,
                    "SlowCount": str(slow),
                    "Subresource": key.subresource,
                    "Verb": key.verb,
                },
            }
        )
    return {"version": PERFDATA_VERSION, "dataItems": items}


def scheduling_throughput_summary(result: RunResult) -> dict[str, float]:
    """clusterloader2's SchedulingThroughput content: {"perc50", "perc90", "perc99", "max"} in pods/s."""
    values = sorted(v for _, v in result.throughput)
    return {
        "perc50": percentile(values, 50, presorted=True),
        "perc90": percentile(values, 90, presorted=True),
        "perc99": percentile(values, 99, presorted=True),
        "max": values[-1] if values else 0.0,
    }


def resource_usage_summary(result: RunResult) -> dict[str, list[dict[str, Any]]]:
    """clusterloader2's ResourceUsageSummary: per percentile ("50", "90", "99", "100"), Name/Cpu(cores)/Mem(bytes)."""
    cpu: dict[str, list[float]] = defaultdict(list)
    mem: dict[str, list[float]] = defaultdict(list)
    for u in result.usage:
        cpu[u.component].append(u.cpu_cores)
        mem[u.component].append(u.memory_bytes)
    out: dict[str, list[dict[str, Any]]] = {}
    for p in (50, 90, 99, 100):
        out[str(p)] = [
            {"Name": name, "Cpu": percentile(cpu[name], p), "Mem": int(percentile(mem[name], p))}
            for name in sorted(cpu)
        ]
    return out


def rfc3339(when: datetime) -> str:
    """Go's time.RFC3339 layout: seconds precision, "Z" for UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    text = when.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")


def perfdata_file_name(summary: str, test: str, when: datetime) -> str:
    return f"{summary}_{test}_{rfc3339(when)}.json"


def write_summaries(
    result: RunResult, report_dir: str | Path, *, when: datetime | None = None, thresholds: SLOThresholds | None = None
) -> list[Path]:
    """Write the clusterloader2 summary files for the series the run has; returns their paths."""
    d = Path(report_dir)
    d.mkdir(parents=True, exist_ok=True)
    when = when or datetime.fromtimestamp(result.end, UTC)
    contents: list[tuple[str, Any]] = []
    if result.pods:
        contents.append((POD_STARTUP_SUMMARY, pod_startup_perfdata(result)))
    if result.api_calls:
        contents.append((API_SUMMARY, api_responsiveness_perfdata(result, thresholds)))
    if result.throughput:
        contents.append((THROUGHPUT_SUMMARY, scheduling_throughput_summary(result)))
    if result.usage:
        contents.append((USAGE_SUMMARY, resource_usage_summary(result)))
    # The other measurements' summaries (SchedulingMetrics, EtcdMetrics, JobLifecycleLatency_<id>, ...), as
    # they produced them; a name produced twice (a measurement gathered twice) keeps the last.
    contents.extend({s.name: (s.name, s.content) for s in result.summaries}.values())
    paths = []
    for summary, content in contents:
        path = d / perfdata_file_name(summary, result.test, when)
        path.write_bytes(codec.dumps_pretty(content))
        paths.append(path)
    return paths


def validate_perfdata(obj: Any) -> list[str]:
    """Problems that would stop perfdash from reading `obj` as PerfData; empty when it is valid."""
    problems: list[str] = []
    if not isinstance(obj, Mapping):
        return ["top level: expected an object"]
    extra = set(obj) - {"version", "dataItems", "labels"}
    if extra:
        problems.append(f"top level: unexpected keys {sorted(extra)}")
    if obj.get("version") not in PERFDATA_VERSIONS:
        problems.append(f'version: expected "{PERFDATA_VERSION}" or "v1", got {obj.get("version")!r}')
    items = obj.get("dataItems")
    if not isinstance(items, list):
        return [*problems, "dataItems: expected a list"]
    for i, item in enumerate(items):
        where = f"dataItems[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: expected an object")
            continue
        extra = set(item) - {"data", "unit", "labels"}
        if extra:
            problems.append(f"{where}: unexpected keys {sorted(extra)}")
        data = item.get("data")
        if not isinstance(data, Mapping) or not data:
            problems.append(f"{where}.data: expected a non-empty object of numbers")
        else:
            for k, v in data.items():
                if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float):
                    problems.append(f"{where}.data.{k}: expected a number, got {v!r}")
        if not isinstance(item.get("unit"), str) or not item.get("unit"):
            problems.append(f"{where}.unit: expected a non-empty string")
        labels = item.get("labels", {})
        if not isinstance(labels, Mapping) or any(not isinstance(v, str) for v in labels.values()):
            problems.append(f"{where}.labels: expected an object of strings")
    return problems
