"""The measurement dispatcher: registry lookup, the start/gather/stop lifecycle, barriers, finish()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

import pytest

from kubemark.load.config import ConfigError, TestConfig
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet, StepErrors, validate_measurements
from kubemark.measure.measurement import MeasureContext, Measurement
from kubemark.measure.registry import MEASUREMENTS
from kubemark.measure.results import MeasurementResult, PodTimeline, Verdict

LOG: list[tuple[str, str, dict[str, Any]]] = []


class Recording:
    """A measurement that logs its lifecycle and returns one verdict per gather."""

    barrier: ClassVar[bool] = False

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        self.identifier = identifier

    async def start(self, params: Mapping[str, Any]) -> None:
        LOG.append(("start", self.identifier, dict(params)))

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        LOG.append(("gather", self.identifier, dict(params)))
        return MeasurementResult(
            verdicts=[Verdict(self.identifier, 1.0, 2.0, "s", True)],
            pods={self.identifier: [PodTimeline(f"pod-of-{self.identifier}", 1.0, 2.0, 3.0, 4.0)]},
        )

    async def stop(self) -> None:
        LOG.append(("stop", self.identifier, {}))


class Barrier(Recording):
    barrier: ClassVar[bool] = True


class Failing(Recording):
    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        raise RuntimeError("scrape failed")


REGISTRY: Mapping[str, type[Measurement]] = {"Recording": Recording, "Barrier": Barrier, "Failing": Failing}


class _Ctx:
    closed = 0

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture
def mset() -> MeasurementSet:
    LOG.clear()
    return MeasurementSet(cast(MeasureContext, _Ctx()), REGISTRY)


def step(identifier: str, method: str, **params: Any) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


async def test_gather_gets_the_start_params_under_its_own_and_stops_the_measurement(mset: MeasurementSet) -> None:
    await mset.execute(step("A", "Recording", action="start", labelSelector="x=1", threshold="5s"))
    await mset.execute(step("A", "Recording", action="gather", threshold="2s"))
    assert LOG == [
        ("start", "A", {"action": "start", "labelSelector": "x=1", "threshold": "5s"}),
        ("gather", "A", {"action": "gather", "labelSelector": "x=1", "threshold": "2s"}),
        ("stop", "A", {}),
    ]
    assert mset.running == {}
    assert [v.name for v in mset.result.verdicts] == ["A"]
    assert list(mset.result.pods) == ["A"]


async def test_no_action_starts_and_gathers_at_once(mset: MeasurementSet) -> None:
    await mset.execute(step("S", "Recording"))
    assert [entry[0] for entry in LOG] == ["start", "gather", "stop"]


async def test_starting_twice_stops_the_first_instance(mset: MeasurementSet) -> None:
    await mset.execute(step("A", "Recording", action="start"))
    first = mset.running["A"]
    await mset.execute(step("A", "Recording", action="start"))
    assert mset.running["A"] is not first
    assert [entry[0] for entry in LOG] == ["start", "stop", "start"]


async def test_a_barrier_stays_running_across_gathers_and_is_not_restarted(mset: MeasurementSet) -> None:
    await mset.execute(step("W", "Barrier", action="start"))
    barrier = mset.running["W"]
    await mset.execute(step("W", "Barrier", action="gather"))
    await mset.execute(step("W", "Barrier", action="start"))  # configs re-start before each wait
    await mset.execute(step("W", "Barrier", action="gather"))
    assert mset.running["W"] is barrier
    assert [entry[0] for entry in LOG] == ["start", "gather", "gather"]


async def test_gathering_a_barrier_never_started_is_an_error(mset: MeasurementSet) -> None:
    with pytest.raises(RuntimeError, match="W: gathered before it was started"):
        await mset.execute(step("W", "Barrier", action="gather"))


async def test_gathering_an_ordinary_measurement_never_started_is_a_warning(
    mset: MeasurementSet, caplog: pytest.LogCaptureFixture
) -> None:
    await mset.execute(step("A", "Recording", action="gather"))
    assert "A gathered but never started" in caplog.text
    assert LOG == []


async def test_finish_gathers_what_runs_without_waiting_on_barriers_and_stops_everything(
    mset: MeasurementSet,
) -> None:
    ctx = cast(_Ctx, mset.ctx)
    await mset.execute_all(
        [
            step("A", "Recording", action="start"),
            step("W", "Barrier", action="start"),
            step("F", "Failing", action="start"),
        ]
    )
    LOG.clear()
    await mset.finish()
    assert sorted(LOG, key=lambda e: (e[1], e[0])) == [
        ("gather", "A", {"action": "start"}),
        ("stop", "A", {}),
        ("stop", "F", {}),  # a gather that raised still stops it
        ("stop", "W", {}),  # a barrier: stopped, not waited on
    ]
    assert mset.running == {}
    assert [v.name for v in mset.result.verdicts] == ["A"]
    assert ctx.closed == 1


async def test_a_failing_measurement_does_not_cut_the_others_of_its_step_short(mset: MeasurementSet) -> None:
    # clusterloader2 waits for every measurement of a step and reports each one's error.
    with pytest.raises(RuntimeError, match="scrape failed"):
        await mset.execute_all([step("F", "Failing"), step("R", "Recording")])
    assert ("gather", "R", {}) in LOG and [v.name for v in mset.result.verdicts] == ["R"]
    with pytest.raises(StepErrors) as caught:
        await mset.execute_all([step("F1", "Failing"), step("R2", "Recording"), step("F2", "Failing")])
    assert caught.value.errors == ["F1: scrape failed", "F2: scrape failed"]
    assert [v.name for v in mset.result.verdicts] == ["R", "R2"]


def test_validation_reads_the_registry() -> None:
    config = TestConfig.model_validate(
        {
            "name": "t",
            "namespace": {"number": 1},
            "steps": [
                {"measurements": [{"Identifier": "x", "Method": "Recording"}, {"Identifier": "y", "Method": "Nope"}]}
            ],
        }
    )
    with pytest.raises(ConfigError) as err:
        validate_measurements(config, REGISTRY)
    assert err.value.problems == [
        ("steps[0].measurements[1].Method", 'unknown measurement "Nope" (known: Recording, Barrier, Failing)')
    ]
    with pytest.raises(ConfigError, match='unknown measurement "Recording"'):
        validate_measurements(config)  # the built-in registry has no "Recording"


def test_every_registered_class_follows_the_lifecycle_protocol() -> None:
    for name, kind in MEASUREMENTS.items():
        assert isinstance(kind.barrier, bool), name
        for method in ("start", "gather", "stop"):
            assert callable(getattr(kind, method)), (name, method)
    assert {n for n, k in MEASUREMENTS.items() if k.barrier} == {"WaitForControlledPodsRunning", "WaitForFinishedJobs"}


def test_merged_results_keep_each_pod_once_under_its_first_measurement() -> None:
    from kubemark.report.model import RunResult

    a = MeasurementResult(
        pods={"Saturation": [PodTimeline("p1", 1, 2, 3, 4), PodTimeline("p2", 1, 2, 3, 4)]},
        fill_levels={50.0: [1.0]},
        throughput=[(1.0, 10.0)],
    )
    b = MeasurementResult(pods={"Latency": [PodTimeline("p2", 5, 6, 7, 8), PodTimeline("p3", 5, 6, 7, 8)]})
    b.fill_levels = {50.0: [2.0]}
    measured = MeasurementResult()
    measured.merge(a)
    measured.merge(b)
    assert measured.fill_levels == {50.0: [1.0, 2.0]}
    run = RunResult("t", 0.0, 1.0)
    run.merge(measured)
    assert [(p.name, p.measurement, p.created) for p in run.pods] == [
        ("p1", "Saturation", 1),
        ("p2", "Saturation", 1),
        ("p3", "Latency", 5),
    ]
    assert run.throughput == [(1.0, 10.0)]
