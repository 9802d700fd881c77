"""APIResponsivenessPrometheus as clusterloader2: verdicts only with enableViolations, summaryName, SlowCount with
allowedSlowCalls, customThresholds — density's two identifiers driven through a clusterloader2-format config,
against a client whose /metrics the test scripts (the delta between the start and gather scrapes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from kubemark.client import RestClient
from kubemark.load.config import ConfigError, TestConfig, load_test_config
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet, validate_measurements
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.results import ApiCall
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

BOUNDS = ("0.5", "1", "5", "30", "+Inf")


def exposition(series: Mapping[tuple[str, str, str], tuple[int, ...]]) -> str:
    """SLI histogram text: (verb, resource, scope) -> cumulative counts at BOUNDS."""
    lines = ["# TYPE apiserver_request_sli_duration_seconds histogram"]
    for (verb, resource, scope), counts in series.items():
        labels = f'verb="{verb}",resource="{resource}",subresource="",scope="{scope}"'
        for le, n in zip(BOUNDS, counts, strict=True):
            lines.append(f'apiserver_request_sli_duration_seconds_bucket{{{labels},le="{le}"}} {n}')
        lines.append(f"apiserver_request_sli_duration_seconds_count{{{labels}}} {counts[-1]}")
        lines.append(f"apiserver_request_sli_duration_seconds_sum{{{labels}}} 1")
    return "\n".join(lines) + "\n"


BEFORE = exposition({("POST", "pods", "resource"): (5, 5, 5, 5, 5), ("LIST", "pods", "namespace"): (1, 1, 1, 1, 1)})
# In the window: 10 POSTs, 6 within 0.5 s, 8 within 1 s (2 slow), all within 5 s: perc99 4.8 s;
# 4 namespace LISTs within 0.5 s (perc99 495 ms).
AFTER = exposition({("POST", "pods", "resource"): (11, 13, 15, 15, 15), ("LIST", "pods", "namespace"): (5, 5, 5, 5, 5)})


class MetricsClient:
    """The one call the measurement makes: GET /metrics, answered from a script (start's scrape, then gather's)."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)

    async def request(self, method: str, path: str, **kwargs: Any) -> str:
        assert (method, path) == ("GET", "/metrics")
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]


def _context(client: Any, recorder: ApiCallRecorder | None = None) -> MeasureContext:
    return MeasureContext(
        client=cast(RestClient, client),
        pods=cast(ObjectWatch, None),
        thresholds=SLOThresholds(),
        recorder=recorder if recorder is not None else ApiCallRecorder(),
    )


# clusterloader2's testing/density/config.yaml, its API measurements (ALLOWED_SLOW_API_CALLS from the mapping).
DENSITY = """\
{{$ALLOWED_SLOW_API_CALLS := DefaultParam .CL2_ALLOWED_SLOW_API_CALLS 0}}
name: density
namespace:
  number: 1
steps:
- name: Starting measurements
  measurements:
  - Identifier: APIResponsivenessPrometheus
    Method: APIResponsivenessPrometheus
    Params:
      action: start
  - Identifier: APIResponsivenessPrometheusSimple
    Method: APIResponsivenessPrometheus
    Params:
      action: start
- name: Collecting measurements
  measurements:
  - Identifier: APIResponsivenessPrometheusSimple
    Method: APIResponsivenessPrometheus
    Params:
      action: gather
      enableViolations: true
      useSimpleLatencyQuery: true
      summaryName: APIResponsivenessPrometheus_simple
      allowedSlowCalls: {{$ALLOWED_SLOW_API_CALLS}}
  - Identifier: APIResponsivenessPrometheus
    Method: APIResponsivenessPrometheus
    Params:
      action: gather
      allowedSlowCalls: {{$ALLOWED_SLOW_API_CALLS}}
"""


async def _run(tmp_path: Path, text: str, overrides: Mapping[str, Any] | None = None) -> MeasurementSet:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_test_config(path, overrides)
    validate_measurements(config)
    # Both identifiers scrape at start (BEFORE) and at gather (AFTER).
    mset = MeasurementSet(_context(MetricsClient(BEFORE, BEFORE, AFTER)))
    for s in config.steps:
        await mset.execute_all(s.measurements)
    return mset


async def test_density_judges_only_the_identifier_that_enables_violations(tmp_path: Path) -> None:
    mset = await _run(tmp_path, DENSITY)
    names = [v.name for v in mset.result.verdicts]
    assert names == [
        "api_call_latency LIST pods namespace APIResponsivenessPrometheusSimple",
        "api_call_latency POST pods resource APIResponsivenessPrometheusSimple",
    ]
    listing, post = mset.result.verdicts
    assert listing.passed and listing.measured == pytest.approx(0.495)
    assert not post.passed and post.measured == pytest.approx(4.8) and post.threshold == 1.0
    assert "(2 slow)" in post.detail
    by_name = {s.name: s.content for s in mset.result.summaries}
    assert set(by_name) == {"APIResponsivenessPrometheus_simple", "APIResponsivenessPrometheus"}
    for content in by_name.values():  # both identifiers write the same window's figures
        assert content["version"] == "v1"
        post_item, list_item = content["dataItems"]  # highest perc99 first
        assert post_item["labels"] == {
            "Verb": "POST",
            "Resource": "pods",
            "Subresource": "",
            "Scope": "resource",
            "Count": "10",
            "SlowCount": "2",
        }
        assert post_item["unit"] == "ms" and post_item["data"]["Perc99"] == pytest.approx(4800)
        assert list_item["labels"]["Count"] == "4" and list_item["labels"]["SlowCount"] == "0"


async def test_allowed_slow_calls_passes_a_call_with_no_more_slow_calls_than_allowed(tmp_path: Path) -> None:
    mset = await _run(tmp_path, DENSITY, {"CL2_ALLOWED_SLOW_API_CALLS": 2})
    assert [v.passed for v in mset.result.verdicts] == [True, True]
    mset = await _run(tmp_path, DENSITY, {"CL2_ALLOWED_SLOW_API_CALLS": 1})
    assert [v.passed for v in mset.result.verdicts] == [True, False]  # 2 slow POSTs > 1 allowed


def step(identifier: str, method: str, **params: Any) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


async def test_custom_thresholds_replace_the_slo_of_their_call() -> None:
    mset = MeasurementSet(_context(MetricsClient(BEFORE, AFTER)))
    await mset.execute(step("APIResponsivenessPrometheus", "APIResponsivenessPrometheus", action="start"))
    custom = "- verb: POST\n  resource: pods\n  scope: resource\n  threshold: 5s\n- verb: GET\n  resource: nodes\n  threshold: 2s\n"
    await mset.execute(
        step(
            "APIResponsivenessPrometheus",
            "APIResponsivenessPrometheus",
            action="gather",
            enableViolations="true",
            customThresholds=custom,
        )
    )
    post = next(v for v in mset.result.verdicts if v.name == "api_call_latency POST pods resource")
    assert post.passed and post.threshold == 5.0


def _validate(**params: Any) -> list[tuple[str, str]]:
    config = TestConfig.model_validate(
        {
            "name": "t",
            "namespace": {"number": 1},
            "steps": [
                {"measurements": [{"Identifier": "A", "Method": "APIResponsivenessPrometheus", "Params": params}]}
            ],
        }
    )
    try:
        validate_measurements(config)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def test_malformed_params_fail_validation() -> None:
    assert _validate(action="gather", enableViolations=True, allowedSlowCalls=3, customThresholds="") == []
    where = "steps[0].measurements[0].Params."
    assert _validate(action="gather", enableViolations="yes") == [
        (where + "enableViolations", "enableViolations: expected a bool, got 'yes'")
    ]
    assert _validate(action="gather", allowedSlowCalls="many") == [
        (where + "allowedSlowCalls", "allowedSlowCalls: expected an integer, got 'many'")
    ]
    assert _validate(action="gather", customThresholds="- verb: GET\n  resource: pods\n  threshold: 0s\n") == [
        (where + "customThresholds", "customThresholds: custom threshold must be set to a positive time duration")
    ]


async def test_the_older_api_responsiveness_resets_then_always_judges() -> None:
    # clusterloader2's legacy load config: APIResponsiveness with action reset, then gather (no enableViolations).
    recorder = ApiCallRecorder()
    mset = MeasurementSet(_context(MetricsClient(BEFORE, AFTER), recorder))
    await mset.execute(step("APIResponsiveness", "APIResponsiveness", action="reset"))
    await mset.execute(step("APIResponsiveness", "APIResponsiveness", action="gather"))
    assert {v.name: v.passed for v in mset.result.verdicts} == {
        "api_call_latency LIST pods namespace": True,
        "api_call_latency POST pods resource": False,
    }
    [summary] = mset.result.summaries
    assert summary.name == "APIResponsiveness"


async def test_client_side_slow_count_without_server_metrics() -> None:
    class NoMetrics:
        async def request(self, method: str, path: str, **kwargs: Any) -> str:
            raise RuntimeError("404")

    recorder = ApiCallRecorder()
    mset = MeasurementSet(_context(NoMetrics(), recorder))
    await mset.execute(step("A", "APIResponsivenessPrometheus", action="start"))
    recorder.calls += [ApiCall(1.0, "LIST", "pods", "", "cluster", 200, s) for s in (0.1, 29.0, 31.0)]
    await mset.execute(step("A", "APIResponsivenessPrometheus", action="gather", enableViolations=True))
    [item] = mset.result.summaries[0].content["dataItems"]
    assert item["labels"]["SlowCount"] == "1"  # a cluster LIST is slow above 30 s
    [verdict] = mset.result.verdicts
    assert verdict.name == "api_call_latency LIST pods cluster A" and not verdict.passed  # perc99 > 30 s
