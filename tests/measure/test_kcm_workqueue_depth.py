"""KCMWorkQueueDepthMetrics over the workqueue_* metrics kubemark's controller manager really exposes (its
WorkQueue with QueueMetrics): per-queue minimum depth, the HPA backlog check, and the clusterloader2 failure
without a horizontalpodautoscaler queue. Samples are taken by the test (the background interval is an hour)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kubemark.client import RestClient
from kubemark.load.config import ConfigError, TestConfig
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet, validate_measurements
from kubemark.master.controllers.workqueue import QueueMetrics, WorkQueue
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.component_metrics import MetricsReader, exposition_reader
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.methods.kcm_workqueue_depth import KCMWorkQueueDepthMetrics
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch


@pytest.fixture(autouse=True)
def _no_background_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KCMWorkQueueDepthMetrics, "sampling_interval", 3600.0)


def step(identifier: str, method: str, **params: Any) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def _mset(readers: dict[str, MetricsReader]) -> MeasurementSet:
    ctx = MeasureContext(
        client=cast(RestClient, None),
        pods=cast(ObjectWatch, None),
        thresholds=SLOThresholds(),
        recorder=ApiCallRecorder(),
        component_metrics=readers,
    )
    return MeasurementSet(ctx)


def _queues(*names: str) -> tuple[MetricsReader, dict[str, WorkQueue]]:
    registry = CollectorRegistry()
    metrics = QueueMetrics(registry)
    queues = {name: WorkQueue(name, metrics=metrics) for name in names}
    return exposition_reader(lambda: generate_latest(registry)), queues


async def test_minimum_depth_per_queue_and_the_hpa_backlog_verdict() -> None:
    reader, queues = _queues("horizontalpodautoscaler", "replicaset")
    for key in ("a", "b", "c"):
        queues["horizontalpodautoscaler"].add(key)
    queues["replicaset"].add("x")
    mset = _mset({"kube-controller-manager": reader})
    await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="start"))  # hpa 3, replicaset 1
    measurement = cast(KCMWorkQueueDepthMetrics, mset.running["KCM"])
    queues["horizontalpodautoscaler"].add("d")
    queues["replicaset"].add("y")
    queues["replicaset"].add("z")
    assert await measurement.sample()  # hpa 4, replicaset 3: minimums stay 3 and 1
    assert measurement.minimum == {"horizontalpodautoscaler": 3.0, "replicaset": 1.0}
    await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="gather", hpaAllowedBacklog=2))
    [summary] = mset.result.summaries
    assert summary.name == "KCMWorkQueueDepthMetrics"
    assert summary.content == {
        "version": "v1",
        "dataItems": [
            {"data": {"Min": 3.0}, "unit": "", "labels": {"Resource": "horizontalpodautoscaler"}},
            {"data": {"Min": 1.0}, "unit": "", "labels": {"Resource": "replicaset"}},
        ],
    }
    [verdict] = mset.result.verdicts
    assert verdict.name == "kcm_workqueue_depth horizontalpodautoscaler"
    assert not verdict.passed and verdict.measured == 3.0 and verdict.threshold == 2.0
    assert verdict.detail == "HPA work queue backlog 3 exceeds the allowed threshold 2"


async def test_no_verdict_without_hpa_allowed_backlog_and_a_drained_queue_reaches_zero() -> None:
    reader, queues = _queues("horizontalpodautoscaler")
    queues["horizontalpodautoscaler"].add("a")
    mset = _mset({"kube-controller-manager": reader})
    await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="start"))
    assert await queues["horizontalpodautoscaler"].get() == "a"  # taken off the queue: depth 0
    await cast(KCMWorkQueueDepthMetrics, mset.running["KCM"]).sample()
    await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="gather"))
    assert mset.result.verdicts == []
    assert mset.result.summaries[0].content["dataItems"][0]["data"] == {"Min": 0.0}


async def test_without_an_hpa_queue_the_gather_fails_as_clusterloader2s() -> None:
    # kubemark's embedded controller manager runs no HPA controller: its queues are the others.
    reader, _ = _queues("replicaset", "deployment")
    mset = _mset({"kube-controller-manager": reader})
    await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="start"))
    with pytest.raises(RuntimeError, match="can't find work queue depth metric for horizontalpodautoscaler"):
        await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="gather"))


async def test_an_unreachable_controller_manager_is_not_measured_here() -> None:
    async def unreachable() -> str:
        raise OSError("connection refused")

    mset = _mset({"kube-controller-manager": unreachable})
    await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="start"))
    await mset.execute(step("KCM", "KCMWorkQueueDepthMetrics", action="gather"))
    [warning] = mset.result.warnings
    assert warning.method == "KCMWorkQueueDepthMetrics" and "not reachable" in warning.reason
    assert mset.result.summaries == []


def test_a_malformed_backlog_fails_validation() -> None:
    config = TestConfig.model_validate(
        {
            "name": "t",
            "namespace": {"number": 1},
            "steps": [
                {
                    "measurements": [
                        {
                            "Identifier": "K",
                            "Method": "KCMWorkQueueDepthMetrics",
                            "Params": {"action": "gather", "hpaAllowedBacklog": "lots"},
                        }
                    ]
                }
            ],
        }
    )
    with pytest.raises(ConfigError) as err:
        validate_measurements(config)
    assert err.value.problems == [
        ("steps[0].measurements[0].Params.hpaAllowedBacklog", "expected a number, got 'lots'")
    ]
