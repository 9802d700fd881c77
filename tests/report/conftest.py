"""A synthetic run, written to a run directory by the tests that need one."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from kubemark.measure.results import ApiCall, PodTimeline, StepResult, UsageSample, Verdict
from kubemark.report.model import RunResult, write_run_dir

START = 1_700_000_000.0


def synthetic_run(slowdown: float = 1.0, throughput: float = 100.0, seed: int = 1) -> RunResult:
    rng = random.Random(seed)
    pods = []
    for i in range(200):
        created = START + i * 0.1
        scheduled = created + rng.uniform(0.01, 0.2) * slowdown
        running = scheduled + rng.uniform(0.5, 1.5) * slowdown
        watched = running + rng.uniform(0.01, 0.05)
        # As density: saturation pods and latency pods are tracked by two PodStartupLatency measurements.
        measurement = "SaturationPodStartupLatency" if i < 150 else "PodStartupLatency"
        pods.append(PodTimeline(f"pod-{i}", created, scheduled, running, watched, measurement))
    pods.append(PodTimeline("stuck", START, None, None, None))
    calls = [
        ApiCall(
            START + i, verb, resource, sub, scope, 201 if verb == "POST" else 200, rng.uniform(0.01, 0.1) * slowdown
        )
        for i in range(100)
        for verb, resource, sub, scope in (
            ("POST", "pods", "", "namespace"),
            ("LIST", "nodes", "", "cluster"),
            ("PUT", "nodes", "status", "resource"),
        )
    ]
    calls.append(ApiCall(START, "GET", "pods", "", "resource", None, 30.0))  # no answer: not a latency sample
    return RunResult(
        test="density",
        start=START,
        end=START + 60.0,
        parameters={"nodes": 100, "CL2_NODES": 100, "tuning": {"qps": 5}},
        steps=[
            StepResult("Start measurements", START, START + 1),
            StepResult("Create pods", START + 1, START + 40, error="3 pods not running: pod-a (Pending: no nodes)"),
        ],
        verdicts=[
            Verdict("pod_startup_latency", 1.6, 5.0, "s", True, "ok"),
            Verdict(
                "api_call_latency PUT nodes/status resource",
                1.4,
                1.0,
                "s",
                False,
                "PUT nodes/status: perc99 1.4s; expected perc99 <= 1s",
            ),
        ],
        clock_skew={"level": "ok", "message": "no clock skew above 100 ms proven"},
        pods=pods,
        api_calls=calls,
        throughput=[(START + 5 * i, throughput * (0.8 + 0.1 * (i % 3))) for i in range(12)],
        usage=[
            UsageSample(START + 5 * i, comp, 0.2 + 0.01 * i, 100e6 + i * 1e6)
            for i in range(12)
            for comp in ("apiserver", "etcd")
        ],
        fill_levels={10.0: [0.8, 0.9, 1.0], 50.0: [1.0, 1.2, 1.4], 100.0: [1.5, 1.9, 2.4]},
    )


@pytest.fixture
def make_run_dir(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "run", **kw: float) -> Path:
        return write_run_dir(synthetic_run(**kw), tmp_path / name)

    return make


@pytest.fixture(scope="session")
def make_run() -> Callable[..., RunResult]:
    """The synthetic run builder itself, for tests that compare against the data written."""
    return synthetic_run
