"""Kubernetes scalability SLOs and the verdicts a run gets against them.

Defaults are sig-scalability's: pod startup p99 <= 5 s; mutating API calls p99 <= 1 s per resource+verb;
read-only calls p99 <= 1 s at resource scope and <= 30 s at namespace/cluster scope; node startup <= 4 s;
scheduler throughput (the best interval, as clusterloader2 checks it) >= a threshold, off by default.
A test config's `slos:` map overrides any of them (see `SLOThresholds.from_config`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from kubemark.kube.durations import parse_duration
from kubemark.measure.percentiles import percentile, summarize
from kubemark.measure.results import ApiCallKey, Verdict

__all__ = [
    "EXCLUDED_SUBRESOURCES",
    "MUTATING_VERBS",
    "READ_ONLY_VERBS",
    "SLOThresholds",
    "api_threshold",
    "check_api_latency",
    "check_node_startup",
    "check_pod_startup",
    "check_scheduler_throughput",
    "refused",
]

MUTATING_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_ONLY_VERBS = frozenset({"GET", "LIST"})
# Long-running or streaming subresources are not API-call-latency SLIs.
EXCLUDED_SUBRESOURCES = frozenset({"proxy", "log", "exec", "attach", "portforward"})

# config key -> (field, is a duration)
_CONFIG_KEYS: dict[str, tuple[str, bool]] = {
    "podStartup": ("pod_startup_p99", True),
    "mutatingApiCall": ("mutating_p99", True),
    "readOnlyResource": ("read_resource_p99", True),
    "readOnlyNamespace": ("read_namespace_p99", True),
    "readOnlyCluster": ("read_cluster_p99", True),
    "nodeStartup": ("node_startup_p99", True),
    "schedulerThroughput": ("scheduler_throughput", False),
}


@dataclass(frozen=True, slots=True)
class SLOThresholds:
    pod_startup_p99: float = 5.0
    mutating_p99: float = 1.0
    read_resource_p99: float = 1.0
    read_namespace_p99: float = 30.0
    read_cluster_p99: float = 30.0
    node_startup_p99: float = 4.0
    scheduler_throughput: float = 0.0  # pods/s; 0 disables the check (clusterloader2's default)

    @classmethod
    def from_config(cls, slos: Mapping[str, Any] | None, base: SLOThresholds | None = None) -> SLOThresholds:
        """Apply a config's `slos:` map ({podStartup: 5s, mutatingApiCall: 1s, schedulerThroughput: 100, ...})."""
        result = base or cls()
        if not slos:
            return result
        changes: dict[str, float] = {}
        for key, value in slos.items():
            if key not in _CONFIG_KEYS:
                raise ValueError(f"slos.{key}: unknown SLO (known: {', '.join(_CONFIG_KEYS)})")
            name, is_duration = _CONFIG_KEYS[key]
            try:
                number = parse_duration(value) if is_duration else float(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"slos.{key}: {exc}") from None
            if number < 0 or math.isnan(number):
                raise ValueError(f"slos.{key}: must not be negative")
            changes[name] = number
        return replace(result, **changes)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.3g}s"


def _latency_verdict(name: str, samples: Sequence[float], threshold: float, what: str) -> Verdict:
    s = summarize(samples, (50, 90, 99))
    p99 = s["Perc99"]
    passed = p99 <= threshold
    detail = (
        f"{what}: perc50 {_fmt_s(s['Perc50'])}, perc90 {_fmt_s(s['Perc90'])}, perc99 {_fmt_s(p99)} "
        f"over {int(s['count'])} samples; expected perc99 <= {_fmt_s(threshold)}"
    )
    return Verdict(name, p99, threshold, "s", passed, detail)


def check_pod_startup(samples: Sequence[float], thresholds: SLOThresholds) -> Verdict:
    """Pod startup (create to running seen by watch) p99 against the SLO."""
    return _latency_verdict("pod_startup_latency", samples, thresholds.pod_startup_p99, "pod_startup")


def check_node_startup(samples: Sequence[float], thresholds: SLOThresholds) -> Verdict:
    return _latency_verdict("node_startup_latency", samples, thresholds.node_startup_p99, "node_startup")


def api_threshold(key: ApiCallKey, t: SLOThresholds) -> float | None:
    if key.subresource in EXCLUDED_SUBRESOURCES:
        return None
    if key.verb in MUTATING_VERBS:
        return t.mutating_p99
    if key.verb in READ_ONLY_VERBS:
        if key.scope == "resource":
            return t.read_resource_p99
        return t.read_namespace_p99 if key.scope == "namespace" else t.read_cluster_p99
    return None  # WATCH, CONNECT, DELETECOLLECTION: not single-call SLIs


def check_api_latency(calls: Mapping[ApiCallKey, Sequence[float]], thresholds: SLOThresholds) -> list[Verdict]:
    """One verdict per (verb, resource, subresource, scope) that an API-call SLO covers, sorted by key."""
    verdicts = []
    for key in sorted(calls):
        threshold = api_threshold(key, thresholds)
        if threshold is None or not calls[key]:
            continue
        sub = f"/{key.subresource}" if key.subresource else ""
        name = f"api_call_latency {key.verb} {key.resource}{sub} {key.scope}"
        what = f"{key.verb} {key.resource}{sub} (scope {key.scope})"
        verdicts.append(_latency_verdict(name, calls[key], threshold, what))
    return verdicts


def check_scheduler_throughput(per_interval: Iterable[float], thresholds: SLOThresholds) -> Verdict | None:
    """clusterloader2 compares the best interval's throughput (pods/s) with the threshold; None when disabled."""
    values = sorted(per_interval)
    if thresholds.scheduler_throughput <= 0:
        return None
    best = values[-1] if values else 0.0
    passed = best >= thresholds.scheduler_throughput
    detail = (
        f"scheduling throughput: perc50 {percentile(values, 50, presorted=True):.1f}, max {best:.1f} pods/s "
        f"over {len(values)} intervals; expected max >= {thresholds.scheduler_throughput:g} pods/s"
    )
    return Verdict("scheduling_throughput", best, thresholds.scheduler_throughput, "pods/s", passed, detail)


def refused(name: str, threshold: float, unit: str, reason: str) -> Verdict:
    """A verdict that could not be given honestly (e.g. clock skew): counted as failed, with the reason."""
    return Verdict(name, math.nan, threshold, unit, False, f"not evaluated: {reason}")
