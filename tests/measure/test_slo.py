"""SLO thresholds, overrides from the test config, and verdicts."""

from __future__ import annotations

import math

import pytest

from kubemark.measure.results import ApiCallKey, Verdict
from kubemark.measure.slo import (
    SLOThresholds,
    check_api_latency,
    check_node_startup,
    check_pod_startup,
    check_scheduler_throughput,
    refused,
)


def test_defaults_are_the_published_slos() -> None:
    t = SLOThresholds()
    assert (t.pod_startup_p99, t.mutating_p99, t.read_resource_p99, t.read_namespace_p99, t.read_cluster_p99) == (
        5,
        1,
        1,
        30,
        30,
    )
    assert t.node_startup_p99 == 4
    assert t.scheduler_throughput == 0


def test_overrides_from_config() -> None:
    t = SLOThresholds.from_config({"podStartup": "3s", "mutatingApiCall": "500ms", "schedulerThroughput": 100})
    assert t.pod_startup_p99 == 3.0
    assert t.mutating_p99 == 0.5
    assert t.scheduler_throughput == 100.0
    assert t.read_cluster_p99 == 30.0
    with pytest.raises(ValueError, match=r"slos\.podStartupp: unknown SLO"):
        SLOThresholds.from_config({"podStartupp": "3s"})
    with pytest.raises(ValueError, match=r"slos\.podStartup: invalid duration"):
        SLOThresholds.from_config({"podStartup": "fast"})


def test_pod_startup_verdict_pass_and_fail() -> None:
    ok = check_pod_startup([1.0] * 98 + [4.9, 9.0], SLOThresholds())  # the slowest 1% may exceed it
    assert ok.passed and ok.measured == 4.9 and ok.threshold == 5.0 and ok.unit == "s"
    bad = check_pod_startup([1.0] * 98 + [6.0, 7.0], SLOThresholds())
    assert not bad.passed
    assert bad.measured == 6.0
    assert "expected perc99 <= 5s" in bad.detail and "100 samples" in bad.detail


def test_node_startup_verdict() -> None:
    assert check_node_startup([3.0, 3.5], SLOThresholds()).passed
    assert not check_node_startup([3.0, 4.5], SLOThresholds()).passed


def test_api_latency_thresholds_by_verb_and_scope() -> None:
    calls = {
        ApiCallKey("POST", "pods", "", "namespace"): [0.1] * 99 + [1.2],  # p99 = 0.1: 99 of 100 fast
        ApiCallKey("PUT", "nodes", "status", "resource"): [1.5] * 5,  # mutating > 1 s
        ApiCallKey("LIST", "pods", "", "cluster"): [20.0] * 10,  # cluster scope allows 30 s
        ApiCallKey("LIST", "pods", "", "namespace"): [31.0],
        ApiCallKey("GET", "pods", "", "resource"): [1.1],
        ApiCallKey("WATCH", "pods", "", "cluster"): [300.0],  # long-running: not an SLI
        ApiCallKey("GET", "pods", "log", "resource"): [50.0],  # excluded subresource
    }
    verdicts = {v.name: v for v in check_api_latency(calls, SLOThresholds())}
    assert set(verdicts) == {
        "api_call_latency POST pods namespace",
        "api_call_latency PUT nodes/status resource",
        "api_call_latency LIST pods cluster",
        "api_call_latency LIST pods namespace",
        "api_call_latency GET pods resource",
    }
    assert verdicts["api_call_latency POST pods namespace"].passed
    assert not verdicts["api_call_latency PUT nodes/status resource"].passed
    assert verdicts["api_call_latency LIST pods cluster"].passed
    assert verdicts["api_call_latency LIST pods cluster"].threshold == 30.0
    assert not verdicts["api_call_latency LIST pods namespace"].passed
    assert not verdicts["api_call_latency GET pods resource"].passed


def test_scheduler_throughput_uses_the_best_interval() -> None:
    assert check_scheduler_throughput([50, 60], SLOThresholds()) is None  # disabled by default
    t = SLOThresholds(scheduler_throughput=100)
    v = check_scheduler_throughput([40, 120, 80], t)
    assert v is not None and v.passed and v.measured == 120
    v = check_scheduler_throughput([40, 90], t)
    assert v is not None and not v.passed and "expected max >= 100" in v.detail
    v = check_scheduler_throughput([], t)
    assert v is not None and not v.passed


def test_verdict_round_trips_through_dicts_and_refusal_is_a_failure() -> None:
    v = refused("pod_startup_latency", 5.0, "s", "clock skew of 3 s")
    assert not v.passed and math.isnan(v.measured) and "clock skew" in v.detail
    d = v.as_dict()
    d["measured"] = None  # as it comes back from JSON
    back = Verdict.from_dict(d)
    assert back.name == v.name and math.isnan(back.measured) and back.passed is False
