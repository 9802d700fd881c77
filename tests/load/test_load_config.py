"""Test-config loading: template rendering, overrides, and validation errors that name the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubemark.kube.durations import parse_duration
from kubemark.load.config import (
    ConfigError,
    load_override_files,
    load_test_config,
    parse_set_overrides,
    render_object_template,
)

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{.Name}}
  labels: {group: {{.Group}}}
spec:
  replicas: {{.Replicas}}
"""

GOOD = """\
{{$nodes := DefaultParam .CL2_NODES 100}}
{{$ns := MaxInt 1 (DivideInt $nodes 100)}}
name: density
namespace:
  number: {{$ns}}
  prefix: dens
tuningSets:
- name: Uniform5qps
  qpsLoad:
    qps: 5
- name: Shared
  globalQPSLoad:
    qps: 20
    burst: 5
- name: Steps
  steppedLoad:
    burstSize: 10
    stepDelay: 1m30s
steps:
- name: Start measurements
  measurements:
  - Identifier: PodStartupLatency
    Method: PodStartupLatency
    Params:
      action: start
      threshold: 5s
- name: Create deployments
  phases:
  - namespaceRange:
      min: 1
      max: {{$ns}}
    replicasPerNamespace: {{DefaultParam .CL2_REPLICAS 2}}
    tuningSet: Uniform5qps
    objectBundle:
    - basename: latency
      objectTemplatePath: deployment.yaml
      templateFillMap:
        Replicas: 1
        Group: latency
slos:
  podStartup: 5s
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_config_parses_with_defaults(tmp_path: Path) -> None:
    cfg = load_test_config(write(tmp_path, GOOD), {})
    assert cfg.name == "density"
    assert cfg.namespace.number == 1
    assert cfg.namespace.prefix == "dens"
    assert cfg.namespace.delete_automanaged_namespaces is True
    assert [t.name for t in cfg.tuning_sets] == ["Uniform5qps", "Shared", "Steps"]
    assert cfg.tuning_set("Uniform5qps").kind == "qpsLoad"
    assert cfg.tuning_set("Shared").kind == "globalQPSLoad"
    assert cfg.tuning_set("Shared").global_qps_load.burst == 5
    assert cfg.tuning_set("Steps").stepped_load.step_delay == 90.0
    m = cfg.steps[0].measurements[0]
    assert (m.identifier, m.method, m.action, m.params["threshold"]) == (
        "PodStartupLatency",
        "PodStartupLatency",
        "start",
        "5s",
    )
    phase = cfg.steps[1].phases[0]
    assert phase.replicas_per_namespace == 2
    assert phase.namespace_range.min == 1 and phase.namespace_range.max == 1
    assert cfg.template_path(phase.object_bundle[0]) == tmp_path / "deployment.yaml"
    assert cfg.slos == {"podStartup": "5s"}


def test_overrides_feed_the_template(tmp_path: Path) -> None:
    cfg = load_test_config(write(tmp_path, GOOD), {"CL2_NODES": 500, "CL2_REPLICAS": 7})
    assert cfg.namespace.number == 5
    assert cfg.steps[1].phases[0].namespace_range.max == 5
    assert cfg.steps[1].phases[0].replicas_per_namespace == 7


def test_set_overrides_parse_yaml_scalars() -> None:
    assert parse_set_overrides(["CL2_NODES=500", "FLAG=true", "D=5s", "S=hello world", "E="]) == {
        "CL2_NODES": 500,
        "FLAG": True,
        "D": "5s",
        "S": "hello world",
        "E": "",
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_set_overrides(["novalue"])


def test_override_files_merge_in_order(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("CL2_NODES: 100\nX: 1\n")
    b.write_text("CL2_NODES: 300\n")
    assert load_override_files([a, b]) == {"CL2_NODES": 300, "X": 1}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a map"):
        load_override_files([bad])


def test_override_file_then_load(tmp_path: Path) -> None:
    ov = tmp_path / "ov.yaml"
    ov.write_text("CL2_NODES: 300\n")
    cfg = load_test_config(write(tmp_path, GOOD), load_override_files([ov]) | parse_set_overrides(["CL2_REPLICAS=4"]))
    assert cfg.namespace.number == 3
    assert cfg.steps[1].phases[0].replicas_per_namespace == 4


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "tuningSet: Uniform5qps",
            "tuningSet: fast",
            'steps[1].phases[0].tuningSet: unknown tuning set "fast" (defined: Uniform5qps, Shared, Steps)',
        ),
        ("qps: 5\n", "qps: 0\n", "tuningSets[0].qpsLoad.qps: Input should be greater than 0"),
        ("stepDelay: 1m30s", "stepDelay: soon", 'tuningSets[2].steppedLoad.stepDelay: invalid duration "soon"'),
        ("  qpsLoad:\n    qps: 5\n", "  qpsLod:\n    qps: 5\n", "tuningSets[0].qpsLod: Extra inputs are not permitted"),
        (
            "- name: Shared\n  globalQPSLoad:",
            "- name: Shared\n  qpsLoad: {qps: 1}\n  globalQPSLoad:",
            "tuningSets[1]: a tuning set needs exactly one of",
        ),
        ("      min: 1\n", "      min: 3\n", "steps[1].phases[0].namespaceRange: min (3) is greater than max (1)"),
        (
            "      max: {{$ns}}",
            "      max: 4",
            "steps[1].phases[0].namespaceRange.max: 4 is beyond the 1 automanaged namespaces",
        ),
        (
            "objectTemplatePath: deployment.yaml",
            "objectTemplatePath: nope.yaml",
            "steps[1].phases[0].objectBundle[0].objectTemplatePath: file not found",
        ),
        (
            "    tuningSet: Uniform5qps\n",
            "",
            "steps[1].phases[0].tuningSet: Field required",
        ),
        (
            "  - Identifier: PodStartupLatency\n    Method",
            "  - Method",
            "steps[0].measurements[0]: a measurement needs exactly one of Identifier and Instances",
        ),
        ("    Method: PodStartupLatency\n", "", "steps[0].measurements[0].Method: Field required"),
        (
            "- name: Start measurements\n  measurements:",
            "- name: Start measurements\n  phases: []\n  measurements: []\n  unused:",
            "steps[0].unused: Extra inputs are not permitted",
        ),
        ("name: density\n", "", "name: Field required"),
    ],
)
def test_bad_configs_name_the_path(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD, old
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_test_config(path, {})
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_step_needs_phases_or_measurements(tmp_path: Path) -> None:
    text = GOOD.replace("slos:", "- name: empty\nslos:")
    with pytest.raises(ConfigError) as info:
        load_test_config(write(tmp_path, text), {})
    assert info.value.problems == [
        ("steps[2]", "a step needs either phases or measurements (exactly one of them, non-empty)")
    ]


def test_template_and_yaml_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"template error: config.yaml:1: function \"Bogus\" not defined"):
        load_test_config(write(tmp_path, "{{Bogus}}\n" + GOOD), {})
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_test_config(write(tmp_path, "name: [unclosed\n"), {})
    with pytest.raises(ConfigError, match="cannot read test config"):
        load_test_config(tmp_path / "missing.yaml", {})


def test_render_object_template(tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text(DEPLOYMENT)
    obj = render_object_template(path, {"Name": "latency-0", "Replicas": 3, "Group": "latency"})
    assert obj == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "latency-0", "labels": {"group": "latency"}},
        "spec": {"replicas": 3},
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0), ("0", 0.0), (2, 2.0), ("1.5s", 1.5)]
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "5x", "-1s", True, -3])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)
