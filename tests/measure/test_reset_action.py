"""`action: reset` where clusterloader2's Method takes it (SchedulingMetrics: the window begins, as start)."""

from __future__ import annotations

from typing import Any, cast

from kubemark.client import RestClient
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.component_metrics import SCHEDULER, exposition_reader
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

ATTEMPT = "scheduler_scheduling_attempt_duration_seconds"


def exposition(fast: int, slow: int) -> str:
    """`fast` attempts within 10 ms, `slow` more within 1 s."""
    lines = [f"# TYPE {ATTEMPT} histogram"]
    for le, n in (("0.01", fast), ("1", fast + slow), ("+Inf", fast + slow)):
        lines.append(f'{ATTEMPT}_bucket{{result="scheduled",profile="default-scheduler",le="{le}"}} {n}')
    lines.append(f'{ATTEMPT}_count{{result="scheduled",profile="default-scheduler"}} {fast + slow}')
    lines.append(f'{ATTEMPT}_sum{{result="scheduled",profile="default-scheduler"}} 1')
    return "\n".join(lines) + "\n"


def step(identifier: str, method: str, **params: Any) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


async def test_scheduling_metrics_reset_begins_the_window() -> None:
    texts = [exposition(100, 0), exposition(100, 10)]  # reset's scrape, then gather's: 10 slow attempts between
    reader = exposition_reader(lambda: texts.pop(0))
    ctx = MeasureContext(
        client=cast(RestClient, None),
        pods=cast(ObjectWatch, None),
        thresholds=SLOThresholds(),
        recorder=ApiCallRecorder(),
        component_metrics={SCHEDULER: reader},
    )
    mset = MeasurementSet(ctx)
    await mset.execute(step("SchedulingMetrics", "SchedulingMetrics", action="reset"))
    await mset.execute(step("SchedulingMetrics", "SchedulingMetrics", action="gather"))
    [summary] = mset.result.summaries
    assert summary.name == "SchedulingMetrics"
    # Only the window's 10 attempts, all in (10 ms, 1 s]: the since-start 100 fast ones are subtracted.
    assert summary.content["e2eSchedulingLatency"]["Perc50"] > 10_000_000
    assert texts == []
