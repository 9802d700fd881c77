"""Timer (clusterloader2's start/stop/gather with a label), the action dispatch beyond start and gather, and
NodeHealthTracker's stop — driven through clusterloader2-format configs; time comes from an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from kubemark import codec
from kubemark.client import RestClient, resource_path
from kubemark.load.config import ConfigError, TestConfig, load_test_config
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet, validate_measurements
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch
from kubemark.report.model import RunResult
from kubemark.report.perfdata import write_summaries

CONFIG = """\
name: timed
namespace:
  number: 1
steps:
- name: Start timers
  measurements:
  - Identifier: Timer
    Method: Timer
    Params:
      action: start
      label: create
- name: Second phase starts
  measurements:
  - Identifier: Timer
    Method: Timer
    Params:
      action: start
      label: scale
- name: Create ends
  measurements:
  - Identifier: Timer
    Method: Timer
    Params:
      action: stop
      label: create
- name: Scale ends
  measurements:
  - Identifier: Timer
    Method: Timer
    Params:
      action: stop
      label: scale
- name: Collect
  measurements:
  - Identifier: Timer
    Method: Timer
    Params:
      action: gather
"""


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _context(clock: Clock, client: RestClient | None = None, pods: ObjectWatch | None = None) -> MeasureContext:
    return MeasureContext(
        client=cast(RestClient, client),
        pods=cast(ObjectWatch, pods),
        thresholds=SLOThresholds(),
        recorder=ApiCallRecorder(),
        monotonic=clock,
    )


def _config(tmp_path: Path, text: str) -> TestConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_test_config(path)
    validate_measurements(config)
    return config


def step(identifier: str, method: str, **params: Any) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


async def _play(config: TestConfig, mset: MeasurementSet, clock: Clock, seconds: list[float]) -> None:
    """Each step's measurements, the clock moved by the next of `seconds` before each step."""
    for advance, s in zip(seconds, config.steps, strict=True):
        clock.now += advance
        await mset.execute_all(s.measurements)


async def test_timer_config_writes_clusterloader2s_timer_summary(tmp_path: Path) -> None:
    config = _config(tmp_path, CONFIG)
    clock = Clock()
    mset = MeasurementSet(_context(clock))
    # create: started at +0, stopped at +10+5 = 15 s later; scale: started at +10, stopped 5+7 = 12 s later
    await _play(config, mset, clock, [0, 10, 5, 7, 100])
    [summary] = mset.result.summaries
    assert summary.name == "Timer"
    assert summary.content == {
        "version": "v1",
        "dataItems": [{"data": {"create": 15.0, "scale": 12.0}, "unit": "s", "labels": {"test": "phases"}}],
    }
    # The file clusterloader2 writes: Timer_<test>_<RFC3339>.json.
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = RunResult(config.name, 0.0, 1.0, summaries=mset.result.summaries)
    [path] = write_summaries(result, tmp_path / "out", when=when)
    assert path.name == "Timer_timed_2026-01-02T03:04:05Z.json"
    assert codec.loads(path.read_bytes()) == summary.content


async def test_one_timer_instance_lives_for_the_test_and_finish_does_not_gather_it_again() -> None:
    clock = Clock()
    mset = MeasurementSet(_context(clock))
    await mset.execute(step("T", "Timer", action="start", label="a"))
    clock.now += 2
    await mset.execute(step("T", "Timer", action="stop", label="a"))
    await mset.execute(step("T", "Timer", action="gather"))
    await mset.execute(step("T", "Timer", action="start", label="b"))  # the same instance: "a" is kept
    clock.now += 3
    await mset.execute(step("T", "Timer", action="stop", label="b"))
    await mset.execute(step("T", "Timer", action="gather"))
    first, second = (s.content["dataItems"][0]["data"] for s in mset.result.summaries)
    assert first == {"a": 2.0}
    assert second == {"a": 2.0, "b": 3.0}  # clusterloader2's gather repeats earlier durations
    await mset.finish()
    assert len(mset.result.summaries) == 2  # already gathered: finish adds nothing


async def test_finish_gathers_a_timer_never_gathered_and_restarting_a_label_restarts_it() -> None:
    clock = Clock()
    mset = MeasurementSet(_context(clock))
    await mset.execute(step("T", "Timer", action="start", label="a"))
    clock.now += 50
    await mset.execute(step("T", "Timer", action="start", label="a"))  # restarted: counts from here
    clock.now += 4
    await mset.execute(step("T", "Timer", action="stop", label="a"))
    await mset.finish()
    [summary] = mset.result.summaries
    assert summary.content["dataItems"][0]["data"] == {"a": 4.0}


async def test_stopping_a_label_never_started_fails_the_step() -> None:
    mset = MeasurementSet(_context(Clock()))
    await mset.execute(step("T", "Timer", action="start", label="a"))
    with pytest.raises(ValueError, match="uninitialized timer b"):
        await mset.execute(step("T", "Timer", action="stop", label="b"))
    await mset.execute(step("T", "Timer", action="stop", label="a"))  # a stop is never given the start's label
    with pytest.raises(ValueError, match="uninitialized timer a"):
        await mset.execute(step("T", "Timer", action="stop", label="a"))


def test_validation_checks_the_actions_and_labels_of_methods_that_list_them() -> None:
    config = TestConfig.model_validate(
        {
            "name": "t",
            "namespace": {"number": 1},
            "steps": [
                {
                    "measurements": [
                        {"Identifier": "T", "Method": "Timer", "Params": {"label": "x"}},
                        {"Identifier": "T", "Method": "Timer", "Params": {"action": "reset", "label": "x"}},
                        {"Identifier": "T", "Method": "Timer", "Params": {"action": "stop"}},
                        {"Identifier": "T", "Method": "Timer", "Params": {"action": "gather"}},
                        {"Identifier": "H", "Method": "NodeHealthTracker", "Params": {"action": "stop"}},
                        {"Identifier": "A", "Method": "APIResponsiveness", "Params": {"action": "reset"}},
                        {"Identifier": "D", "Method": "DnsLookupLatency", "Params": {"action": "stop"}},
                    ]
                }
            ],
        }
    )
    with pytest.raises(ConfigError) as err:
        validate_measurements(config)
    assert err.value.problems == [
        ("steps[0].measurements[0].Params.action", "Timer needs an action (gather, start, stop)"),
        ("steps[0].measurements[1].Params.action", 'Timer has no action "reset" (known: gather, start, stop)'),
        ("steps[0].measurements[2].Params.label", "Timer's stop needs a label"),
    ]


async def test_an_action_a_method_does_not_list_is_ignored_and_not_measured_ones_take_any(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mset = MeasurementSet(_context(Clock()))
    await mset.execute(step("S", "Sleep", action="stop"))
    assert "S" not in mset.running
    assert "action 'stop' is not supported by kubemark; ignored" in caplog.text
    await mset.execute(step("D", "DnsLookupLatency", action="stop"))
    await mset.execute(step("D", "DnsLookupLatency", action="gather"))
    [warning] = mset.result.warnings
    assert warning.method == "DnsLookupLatency"


NODES = resource_path("", "v1", "nodes")


async def test_node_health_tracker_stop_ends_tracking_without_a_summary(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    await admin.create(
        NODES,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "a"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
    )
    mset = MeasurementSet(_context(Clock(), admin, pod_watch))
    await mset.execute(step("H", "NodeHealthTracker", action="start"))
    tracker = mset.running["H"]
    health = tracker._health  # type: ignore[attr-defined]
    nodes = await mset.ctx.watch(NODES)
    assert health in nodes._subscribers
    await mset.execute(step("H", "NodeHealthTracker", action="stop"))
    assert health not in nodes._subscribers
    assert "H" not in mset.running  # stopped for good: finish has nothing to gather
    assert mset.result.summaries == [] and mset.result.verdicts == []
    await mset.execute(step("H", "NodeHealthTracker", action="gather"))  # clusterloader2: "has not been started"
    assert mset.result.summaries == [] and mset.result.verdicts == []
    await mset.finish()
