"""Every clusterloader2 measurement Method is known: implemented, accepted as not measured here, or refused as
not supported yet; an unknown name stays a config error; the doc's table lists each name with its status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubemark.load.config import ConfigError, TestConfig
from kubemark.load.measurements import validate_measurements
from kubemark.measure.catalog import NOT_MEASURED_HERE, NOT_YET
from kubemark.measure.methods.not_measured import NotMeasuredHere
from kubemark.measure.registry import IMPLEMENTED, MEASUREMENTS

DOC = Path(__file__).parents[2] / "docs" / "clusterloader2-measurements.md"

# The Methods clusterloader2's density and load configs (testing/density/config.yaml,
# testing/load/config.yaml with its modules) name.
DENSITY_AND_LOAD = {
    "APIResponsivenessPrometheus",
    "InClusterNetworkLatency",
    "DnsLookupLatency",
    "TestMetrics",
    "PodStartupLatency",
    "WaitForControlledPodsRunning",
    "SchedulingThroughput",
    "NodeLocalDNSLatencyPrometheus",
    "SLOMeasurement",
    "NetworkProgrammingLatency",
    "KubeStateMetricsLatency",
    "MetricsServerPrometheus",
    "APIAvailability",
    "ContainerRestarts",
    "GenericPrometheusQuery",
    "CiliumEndpointPropagationDelay",
    "WaitForFinishedJobs",
    "JobLifecycleLatency",
    "Sleep",
    "WaitForRunningPods",
    "DNSPerformanceK8sHostnames",
    "WaitForBoundPVCs",  # modules/reconcile-objects.yaml, after deleting the StatefulSets' claims (CL2_ENABLE_PVS)
}


def _config(*methods: str) -> TestConfig:
    return TestConfig.model_validate(
        {
            "name": "t",
            "namespace": {"number": 1},
            "steps": [{"measurements": [{"Identifier": f"m{i}", "Method": m} for i, m in enumerate(methods)]}],
        }
    )


def test_implemented_not_measured_and_not_yet_are_disjoint_and_registered() -> None:
    assert not set(IMPLEMENTED) & set(NOT_MEASURED_HERE)
    assert not set(MEASUREMENTS) & set(NOT_YET)
    assert set(MEASUREMENTS) == set(IMPLEMENTED) | set(NOT_MEASURED_HERE)
    for name in NOT_MEASURED_HERE:
        kind = MEASUREMENTS[name]
        assert issubclass(kind, NotMeasuredHere) and kind.method == name and not kind.barrier


def test_every_density_and_load_measurement_is_known() -> None:
    known = set(MEASUREMENTS) | set(NOT_YET)
    assert DENSITY_AND_LOAD - known == set()
    validate_measurements(_config("InClusterNetworkLatency", "DnsLookupLatency", "TestMetrics"))  # no error


def test_an_unknown_name_is_a_config_error_and_a_not_yet_one_says_so() -> None:
    if not NOT_YET:
        pytest.skip("no clusterloader2 measurement is left refused as not yet supported")
    not_yet_name = sorted(NOT_YET)[0]  # whichever is left: others are being implemented
    with pytest.raises(ConfigError) as err:
        validate_measurements(_config("NoSuchMeasurement", not_yet_name))
    (where0, unknown), (where1, not_yet) = err.value.problems
    assert where0 == "steps[0].measurements[0].Method" and unknown.startswith('unknown measurement "NoSuchMeasurement"')
    assert where1 == "steps[0].measurements[1].Method"
    assert not_yet.startswith(f'clusterloader2 measurement "{not_yet_name}" is not supported by kubemark: ')


def test_the_doc_lists_every_name_with_its_status() -> None:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\|\s*`([A-Za-z0-9]+)`\s*\|\s*([^|]+?)\s*\|", line)
        if m:
            rows[m.group(1)] = m.group(2)
    expected = {
        **{n: "implemented" for n in IMPLEMENTED},
        **{n: "accepted with warning" for n in NOT_MEASURED_HERE},
        **{n: "not yet" for n in NOT_YET},
    }
    assert rows == expected
