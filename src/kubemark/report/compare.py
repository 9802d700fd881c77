"""Compare two runs metric by metric and flag regressions (`kubemark compare A B` exits 1 if any).

A regression is a latency or resource figure that went *up*, or a throughput that went *down*, by more than
`threshold_pct` percent of run A's value. Latencies also need an absolute change above `latency_floor` seconds,
so 1 ms -> 2 ms (100%) on a fast path is not flagged as noise would be.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kubemark.measure.percentiles import POD_STARTUP_TRANSITIONS, pod_startup_series, summarize
from kubemark.report.model import RunResult, read_run_dir

__all__ = ["Comparison", "Figures", "MetricDelta", "compare_metrics", "compare_results", "compare_runs", "run_metrics"]

Better = Literal["lower", "higher"]
Figures = dict[str, tuple[float, str, Better]]  # metric name -> (value, unit, which direction is better)


@dataclass(frozen=True, slots=True)
class MetricDelta:
    metric: str
    unit: str
    better: Better
    a: float | None
    b: float | None
    change_pct: float | None  # (b - a) / a * 100; None when either side is missing or a is 0
    regression: bool


@dataclass
class Comparison:
    run_a: str
    run_b: str
    threshold_pct: float
    deltas: list[MetricDelta] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regression]

    @property
    def has_regression(self) -> bool:
        return any(d.regression for d in self.deltas)


def run_metrics(result: RunResult) -> Figures:
    """The comparable figures of a run: name -> (value, unit, which direction is better)."""
    out: Figures = {}
    series = pod_startup_series(result.pods)
    for name in POD_STARTUP_TRANSITIONS:
        if series[name].samples:
            s = series[name].summary()
            for p in (50, 90, 99):
                out[f"pod_startup/{name}/p{p}"] = (s[f"Perc{p}"], "s", "lower")
    for key, samples in sorted(result.api_samples().items()):
        if key.verb in ("WATCH", "CONNECT"):
            continue
        sub = f"/{key.subresource}" if key.subresource else ""
        s = summarize(samples)
        out[f"api/{key.verb} {key.resource}{sub} {key.scope}/p99"] = (s["Perc99"], "s", "lower")
    if result.throughput:
        s = summarize(v for _, v in result.throughput)
        out["scheduling_throughput/p50"] = (s["Perc50"], "pods/s", "higher")
        out["scheduling_throughput/max"] = (s["max"], "pods/s", "higher")
    cpu: dict[str, list[float]] = defaultdict(list)
    mem: dict[str, list[float]] = defaultdict(list)
    for u in result.usage:
        cpu[u.component].append(u.cpu_cores)
        mem[u.component].append(u.memory_bytes)
    for name in sorted(cpu):
        out[f"resources/{name}/cpu_p99"] = (summarize(cpu[name])["Perc99"], "cores", "lower")
        out[f"resources/{name}/memory_max"] = (max(mem[name]), "bytes", "lower")
    return out


def compare_results(
    a: RunResult,
    b: RunResult,
    threshold_pct: float = 10.0,
    *,
    latency_floor: float = 0.005,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:
    return compare_metrics(run_metrics(a), run_metrics(b), threshold_pct, latency_floor=latency_floor, names=names)


def compare_metrics(
    ma: Figures,
    mb: Figures,
    threshold_pct: float = 10.0,
    *,
    latency_floor: float = 0.005,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:
    """The rule itself, over two runs' figures (`run_metrics`' names; a summary-only run gives the same)."""
    cmp = Comparison(names[0], names[1], threshold_pct)
    for metric in sorted(set(ma) | set(mb)):
        va = ma.get(metric)
        vb = mb.get(metric)
        unit, better = (va or vb)[1:]  # type: ignore[index]
        xa = va[0] if va else None
        xb = vb[0] if vb else None
        change = None
        regression = False
        if xa is not None and xb is not None:
            if xa != 0:
                change = (xb - xa) / abs(xa) * 100.0
            worse = xb - xa if better == "lower" else xa - xb
            if worse > 0:
                pct = math.inf if xa == 0 else worse / abs(xa) * 100.0
                floor = latency_floor if unit == "s" else 0.0
                regression = pct > threshold_pct and worse > floor
        cmp.deltas.append(MetricDelta(metric, unit, better, xa, xb, change, regression))
    return cmp


def compare_runs(dir_a: str | Path, dir_b: str | Path, threshold_pct: float = 10.0) -> Comparison:
    """Compare run directory B against baseline A (see the module docstring for what counts as a regression)."""
    return compare_results(read_run_dir(dir_a), read_run_dir(dir_b), threshold_pct, names=(str(dir_a), str(dir_b)))
