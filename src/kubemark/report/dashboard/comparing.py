"""The compare view's computation: `kubemark compare`'s own, never a second rule.

Two kubemark runs are compared exactly as `kubemark compare A B --threshold T` does (`compare_runs` on the
run directories). When either run is clusterloader2's, only summary files exist on that side, so both runs'
figures are taken from their summary files, renamed to `run_metrics`' names (`compare_figures`), and judged by
`compare_metrics`, the same rule. For a kubemark run, the server-side API latencies
(APIResponsivenessPrometheus_server) are used when it has them, as clusterloader2's figures are server-side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubemark.measure.percentiles import POD_STARTUP_TRANSITIONS
from kubemark.report.compare import Comparison, Figures, compare_metrics, compare_runs
from kubemark.report.dashboard.metrics import MetricValue, api_key
from kubemark.report.dashboard.runs import RunIndex, RunInfo, RunKind
from kubemark.report.model import RunDirError

__all__ = ["CompareOutcome", "compare_figures", "compare_two"]

SLO_PODS = "PodStartupLatency"


@dataclass(frozen=True)
class CompareOutcome:
    comparison: Comparison | None
    error: str = ""
    source: str = ""  # how the figures were obtained, shown under the table


def compare_figures(metrics: Mapping[str, MetricValue], *, api_family: str = "api") -> Figures:
    """A run's summary figures under `run_metrics`' names: pod startup p50/p90/p99 of the SLO pods (the
    PodStartupLatency measurement, else the first one), API p99s of `api_family` (WATCH/CONNECT left out, as
    `run_metrics` does), throughput p50/max, per-component CPU p99 and memory max."""
    out: Figures = {}
    identifiers = sorted({m.split("/")[1] for m in metrics if m.startswith("pod_startup/")})
    if identifiers:
        identifier = SLO_PODS if SLO_PODS in identifiers else identifiers[0]
        for transition in POD_STARTUP_TRANSITIONS:
            for p in ("p50", "p90", "p99"):
                m = metrics.get(f"pod_startup/{identifier}/{transition}/{p}")
                if m is not None:
                    out[f"pod_startup/{transition}/{p}"] = (m.value, m.unit, m.better)
    for name, m in sorted(metrics.items()):
        key = api_key(name)
        if key is None or not name.startswith(api_family + "/") or not name.endswith("/p99"):
            continue
        if key.verb in ("WATCH", "CONNECT"):
            continue
        sub = f"/{key.subresource}" if key.subresource else ""
        out[f"api/{key.verb} {key.resource}{sub} {key.scope}/p99"] = (m.value, m.unit, m.better)
    for stat in ("p50", "max"):
        m = metrics.get(f"scheduling_throughput/{stat}")
        if m is not None:
            out[f"scheduling_throughput/{stat}"] = (m.value, m.unit, m.better)
    for name, m in sorted(metrics.items()):
        if name.startswith("resources/") and name.endswith(("/cpu_p99", "/memory_max")):
            out[name] = (m.value, m.unit, m.better)
    return out


def _api_family(run: RunInfo, metrics: Mapping[str, MetricValue]) -> str:
    """kubemark's server-side figures when it has them (clusterloader2's are server-side), else the main family."""
    families = sorted({m.partition("/")[0] for m in metrics if api_key(m) is not None})
    if run.kind is RunKind.KUBEMARK and "api[server]" in families:
        return "api[server]"
    return "api" if "api" in families or not families else families[0]


def compare_two(index: RunIndex, a: RunInfo, b: RunInfo, threshold_pct: float) -> CompareOutcome:
    """B against baseline A, with `kubemark compare`'s rule; an unreadable run gives an outcome with the error."""
    for run in (a, b):
        if run.kind is RunKind.BROKEN:
            return CompareOutcome(None, f"{run.name}: {run.error}")
    if a.kind is RunKind.KUBEMARK and b.kind is RunKind.KUBEMARK:
        try:
            cmp = compare_runs(a.path, b.path, threshold_pct=threshold_pct)
        except RunDirError as exc:
            return CompareOutcome(None, str(exc))
        return CompareOutcome(cmp, source=f"kubemark compare {a.path} {b.path} --threshold {threshold_pct:g}")
    figures, families = [], []
    for run in (a, b):
        m = index.metrics(run)
        if not m.values:
            return CompareOutcome(None, f"{run.name}: no readable summary files: {'; '.join(m.errors) or 'none'}")
        families.append(_api_family(run, m.values))
        figures.append(compare_figures(m.values, api_family=families[-1]))
    cmp = compare_metrics(figures[0], figures[1], threshold_pct, names=(str(a.path), str(b.path)))
    return CompareOutcome(
        cmp,
        source="kubemark compare's rule over both runs' summary files (a clusterloader2 run has no samples); "
        f"API latencies from {families[0]} (A) and {families[1]} (B)",
    )
