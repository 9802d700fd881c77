"""Run directories for the dashboard tests, written by kubemark's own artifact writers (`write_artifacts`, as
`kubemark run` ends), beside the checked-in clusterloader2 report directory `cl2-density/` and two broken runs.

`make_runs_dir(root)` lays out:

    density-01 .. density-04   density, 100 nodes, a day apart, within noise of each other
    density-05                 density, 100 nodes, 1.6x slower: the planted regression against density-04
    density-50-nodes           density, 50 nodes (another size)
    load-01                    load, 100 nodes (another test)
    cl2-density                clusterloader2's PerfData files + junit.xml (copied from this directory)
    corrupt-run                summary.json cut in half
    half-written               only a CSV, as while `kubemark run` is still going
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from kubemark import codec
from kubemark.measure.results import ApiCall, MeasurementResult, PodTimeline, StepResult, UsageSample
from kubemark.measure.slo import SLOThresholds, check_api_latency, check_pod_startup
from kubemark.report.model import RunResult
from kubemark.run import write_artifacts

__all__ = ["CL2_DIR", "DENSITY_100", "T0", "FixtureRun", "fixture_result", "make_runs_dir", "write_fixture_run"]

CL2_DIR = Path(__file__).parent / "cl2-density"
T0 = 1_767_571_200.0  # 2026-01-05T00:00:00Z
DAY = 86_400.0
DENSITY_100 = ("density-01", "density-02", "density-03", "density-04", "density-05")


@dataclass(frozen=True)
class FixtureRun:
    name: str
    test: str = "density"
    nodes: int = 100
    day: float = 0.0
    slowdown: float = 1.0
    seed: int = 1
    labels: dict[str, str] | None = None


FIXTURE_RUNS = (
    FixtureRun("density-01", day=0, seed=1, labels={"git": "a1b2c3d"}),
    FixtureRun("density-02", day=1, seed=2, slowdown=1.02, labels={"git": "b2c3d4e"}),
    FixtureRun("density-03", day=2, seed=3, slowdown=0.98, labels={"git": "c3d4e5f"}),
    FixtureRun("density-04", day=3, seed=4, labels={"git": "d4e5f60"}),
    FixtureRun("density-05", day=4, seed=4, slowdown=1.6, labels={"git": "e5f6071", "branch": "slow-change"}),
    FixtureRun("density-50-nodes", nodes=50, day=2.5, seed=5),
    FixtureRun("load-01", test="load", day=1.5, seed=6),
)


def fixture_result(spec: FixtureRun) -> tuple[RunResult, MeasurementResult]:
    """A run as `kubemark run` would have recorded it: density-style latency and saturation pods, API calls,
    scheduling throughput and component usage, judged by the project's own SLO checks."""
    rng = random.Random(spec.seed)
    start = T0 + spec.day * DAY
    pods: dict[str, list[PodTimeline]] = {"PodStartupLatency": [], "SaturationPodStartupLatency": []}
    for i in range(120):
        created = start + 10 + i * 0.2
        scheduled = created + rng.uniform(0.01, 0.05) * spec.slowdown
        running = scheduled + rng.uniform(0.2, 0.8) * spec.slowdown
        watched = running + rng.uniform(0.01, 0.03) * spec.slowdown
        identifier = "PodStartupLatency" if i % 3 == 0 else "SaturationPodStartupLatency"
        pods[identifier].append(PodTimeline(f"pod-{i}", created, scheduled, running, watched, identifier))
    calls = [
        ApiCall(start + 10 + i, verb, resource, sub, scope, 200, rng.uniform(0.005, 0.05) * spec.slowdown)
        for i in range(60)
        for verb, resource, sub, scope in (
            ("POST", "pods", "", "namespace"),
            ("LIST", "pods", "", "namespace"),
            ("PATCH", "nodes", "status", "resource"),
        )
    ]
    thresholds = SLOThresholds()
    latency = [p.watched - p.created for p in pods["PodStartupLatency"] if p.watched and p.created]
    measured = MeasurementResult(
        verdicts=[check_pod_startup(latency, thresholds)],
        pods=pods,
        throughput=[(start + 10 + 5 * i, 40.0 / spec.slowdown + rng.uniform(-2, 2)) for i in range(8)],
        usage=[
            UsageSample(start + 10 + 5 * i, component, rng.uniform(0.2, 0.4) * spec.slowdown, 2e8 + 1e6 * i)
            for i in range(8)
            for component in ("apiserver", "etcd")
        ],
    )
    result = RunResult(
        test=spec.test,
        start=start,
        end=start + 95.0 * spec.slowdown,
        parameters={"nodes": spec.nodes, "test": spec.test, "overrides": {}, "cluster": "embedded (etcd)"},
        steps=[StepResult("Create pods", start + 5, start + 60), StepResult("Delete pods", start + 60, start + 90)],
        api_calls=calls,
    )
    result.merge(measured)
    result.verdicts.extend(check_api_latency(result.api_samples(), thresholds))
    return result, measured


def write_fixture_run(root: Path, spec: FixtureRun) -> Path:
    result, measured = fixture_result(spec)
    out = root / spec.name
    write_artifacts(result, out, None, measured)
    if spec.labels:
        (out / "labels.json").write_bytes(codec.dumps(spec.labels))
    return out


def make_runs_dir(root: Path) -> Path:
    """The fixture runs (see the module docstring) under `root`; returns it."""
    root.mkdir(parents=True, exist_ok=True)
    for spec in FIXTURE_RUNS:
        write_fixture_run(root, spec)
    shutil.copytree(CL2_DIR, root / "cl2-density")
    corrupt = write_fixture_run(root, FixtureRun("corrupt-run", day=5))
    summary = (corrupt / "summary.json").read_bytes()
    (corrupt / "summary.json").write_bytes(summary[: len(summary) // 2])
    (root / "half-written").mkdir()
    (root / "half-written" / "pod_startup.csv").write_text("pod,created,scheduled,running,watched,measurement\n")
    return root
