"""clusterloader2 test-config features: modules (params, nesting, paths), namespace options, case-insensitive keys,
measurement Instances, chaosMonkey, dependencies, CL2_* environment parameters, and errors that name the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubemark.load.config import ConfigError, load_test_config
from kubemark.load.environment import EnvParamError, cl2_env_params, parse_env_value

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.Name}}
data:
  color: "{{.Color}}"
"""

MAIN = """\
{{$ns := DefaultParam .CL2_NAMESPACES 2}}
name: modular
namespace:
  number: {{$ns}}
  prefix: mod
tuningSets:
- name: Sequence
  parallelismLimitedLoad:
    parallelismLimit: 1
steps:
- module:
    path: /modules/outer.yaml
    params:
      count: 3
      color: red
- name: plain step
  measurements:
  - Identifier: Wait
    Method: Sleep
    Params:
      duration: 1s
"""

OUTER = """\
{{$count := .count}}
steps:
- name: outer creates {{$count}} {{.color}} objects in {{.CL2_NAMESPACES}} namespaces
  phases:
  - namespaceRange: {min: 1, max: {{DefaultParam .CL2_NAMESPACES 2}}}
    replicasPerNamespace: {{$count}}
    tuningSet: Sequence
    objectBundle:
    - basename: cm
      objectTemplatePath: configmap.yaml
      templateFillMap:
        Color: {{.color}}
- module:
    path: modules/inner.yaml
    params:
      what: inner-{{$count}}
"""

# A nested module gets the test's mapping and its own params, not its parent's (.color is unset here).
INNER = """\
steps:
- name: "{{.what}} sees color={{DefaultParam .color "unset"}}"
  phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 1
    tuningSet: Sequence
    objectBundle:
    - basename: local
      objectTemplatePath: local.yaml
"""


def tree(tmp_path: Path, main: str = MAIN, outer: str = OUTER, inner: str = INNER) -> Path:
    (tmp_path / "modules").mkdir(exist_ok=True)
    (tmp_path / "configmap.yaml").write_text(CONFIGMAP)
    (tmp_path / "modules" / "outer.yaml").write_text(outer)
    (tmp_path / "modules" / "inner.yaml").write_text(inner)
    # Only next to the module: found relative to the module that names it when the test's directory lacks it.
    (tmp_path / "modules" / "local.yaml").write_text(CONFIGMAP)
    path = tmp_path / "config.yaml"
    path.write_text(main)
    return path


def test_modules_are_spliced_in_with_their_params(tmp_path: Path) -> None:
    cfg = load_test_config(tree(tmp_path), {"CL2_NAMESPACES": 2})
    assert [s.name for s in cfg.steps] == [
        "outer creates 3 red objects in 2 namespaces",
        "inner-3 sees color=unset",
        "plain step",
    ]
    outer_phase = cfg.steps[0].phases[0]
    assert outer_phase.replicas_per_namespace == 3
    assert outer_phase.object_bundle[0].template_fill_map == {"Color": "red"}
    # /modules/... and modules/... are both joined to the test's directory, as clusterloader2's template provider.
    assert cfg.template_path(outer_phase.object_bundle[0]) == tmp_path / "configmap.yaml"
    assert cfg.template_path(cfg.steps[1].phases[0].object_bundle[0]) == tmp_path / "modules" / "local.yaml"
    # Where each spliced step was written, for messages about it (e.g. an unknown measurement).
    assert [cfg.step_label(i) for i in range(3)] == [
        "steps[0].module(/modules/outer.yaml).steps[0]",
        "steps[0].module(/modules/outer.yaml).steps[1].module(modules/inner.yaml).steps[0]",
        "steps[1]",
    ]


def test_a_module_error_names_where_the_module_was_used(tmp_path: Path) -> None:
    path = tree(tmp_path, inner=INNER.replace("tuningSet: Sequence", "tuningSet: Missing"))
    with pytest.raises(ConfigError) as info:
        load_test_config(path, {})
    assert (
        "steps[0].module(/modules/outer.yaml).steps[1].module(modules/inner.yaml).steps[0].phases[0].tuningSet: "
        'unknown tuning set "Missing"'
    ) in str(info.value)


@pytest.mark.parametrize(
    ("outer", "expected"),
    [
        (
            "steps:\n- module: {path: modules/nope.yaml}\n",
            "steps[0].module(/modules/outer.yaml).steps[0].module.path: cannot read module",
        ),
        (
            "steps:\n- module: {params: {a: 1}}\n",
            "steps[0].module(/modules/outer.yaml).steps[0].module.path: path not set",
        ),
        (
            "steps:\n- module: {path: x.yaml, prams: {}}\n",
            "steps[0].module(/modules/outer.yaml).steps[0].module.prams: Extra inputs are not permitted",
        ),
        ("name: x\nsteps: []\n", "steps[0].module(/modules/outer.yaml).name: Extra inputs are not permitted"),
        ("steps:\n- module: {path: modules/outer.yaml}\n", "modules nest deeper than 16"),
        ("{{DivideInt 1 0}}", "steps[0].module(/modules/outer.yaml): template error: outer.yaml:1:"),
        ("[1, 2]", "steps[0].module(/modules/outer.yaml): a module must be a YAML map with `steps`"),
    ],
)
def test_bad_modules(tmp_path: Path, outer: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_test_config(tree(tmp_path, outer=outer), {})
    assert expected in str(info.value)


def test_a_module_without_steps_adds_none(tmp_path: Path) -> None:
    cfg = load_test_config(tree(tmp_path, outer="{{if false}}\nsteps: []\n{{end}}\n"), {})
    assert [s.name for s in cfg.steps] == ["plain step"]


def test_go_style_keys_instances_and_empty_bundles(tmp_path: Path) -> None:
    text = """\
Name: cl2
automanagedNamespaces: 3
TuningSets:
- Name: R
  RandomizedTimeLimitedLoad: {timeLimit: 10s}
steps:
- Measurements:
  - Method: WaitForControlledPodsRunning
    Instances:
    - Identifier: WaitForRunningDeployments
      Params: {kind: Deployment}
    - identifier: WaitForRunningJobs
      params: {kind: Job, action: gather}
    Params: {action: start, labelSelector: group = load}
- name: nothing to do
  phases:
  - namespaceRange: {min: 1, max: 3}
    replicasPerNamespace: 0
    tuningSet: R
    objectBundle:
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    cfg = load_test_config(path, {})
    assert cfg.name == "cl2" and cfg.namespace.number == 3  # the deprecated automanagedNamespaces
    assert cfg.namespace.prefix.startswith("test-") and len(cfg.namespace.prefix) == 11  # clusterloader2's default
    ms = cfg.steps[0].measurements
    assert [(m.identifier, m.method, m.params) for m in ms] == [
        (
            "WaitForRunningDeployments",
            "WaitForControlledPodsRunning",
            {"action": "start", "labelSelector": "group = load", "kind": "Deployment"},
        ),
        (
            "WaitForRunningJobs",
            "WaitForControlledPodsRunning",
            {"action": "gather", "labelSelector": "group = load", "kind": "Job"},
        ),
    ]
    assert cfg.steps[1].phases[0].object_bundle == []


def test_namespace_options_chaos_monkey_and_list_unknown_objects(tmp_path: Path) -> None:
    (tmp_path / "pvc.yaml").write_text("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\n")
    text = """\
name: options
namespace:
  number: 0
  prefix: opt
  deleteStaleNamespaces: true
  deleteAutomanagedNamespaces: false
  enableExistingNamespaces: true
  deleteNamespaceTimeout: 2m
tuningSets:
- {name: Q, qpsLoad: {qps: 1}}
chaosMonkey:
  nodeFailure: {failureRate: 0.5, interval: 1m, jitterFactor: 2.0, simulatedDowntime: 30s}
  excludedNodes: [hollow-node-0]
steps:
- phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 0
    tuningSet: Q
    objectBundle:
    - basename: pv-ss-0
      objectTemplatePath: pvc.yaml
      listUnknownObjectOptions:
        labelSelector:
          matchLabels: {name: ss-0}
          matchExpressions: [{key: tier, operator: NotIn, values: [a, b]}]
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    cfg = load_test_config(path, {})
    ns = cfg.namespace
    assert (ns.number, ns.prefix, ns.delete_stale_namespaces, ns.delete_automanaged_namespaces) == (
        1,
        "opt",
        True,
        False,
    )
    assert ns.enable_existing_namespaces and ns.delete_namespace_timeout == 120
    nf = cfg.chaos_monkey.node_failure
    assert nf is not None and (nf.failure_rate, nf.interval, nf.jitter_factor, nf.simulated_downtime) == (
        0.5,
        60,
        2.0,
        30,
    )
    assert cfg.chaos_monkey.excluded_nodes == ["hollow-node-0"]
    options = cfg.steps[0].phases[0].object_bundle[0].list_unknown_object_options
    assert options is not None and options.label_selector.as_query() == "name=ss-0,tier notin (a,b)"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  number: 0\n", "  number: -2\n", "namespace: number must be positive"),
        ("  prefix: opt\n", "  prefx: opt\n", "namespace.prefx: Extra inputs are not permitted"),
        (
            "failureRate: 0.5",
            "failureRate: 5",
            "chaosMonkey.nodeFailure.failureRate: Input should be less than or equal to 1",
        ),
        ("interval: 1m", "interval: 0s", "chaosMonkey.nodeFailure.interval: Input should be greater than 0"),
        (
            "basename: pv-ss-0",
            "basename: PV_ss",
            'steps[0].phases[0].objectBundle[0]: basename "PV_ss" must be a DNS-1123',
        ),
        ("operator: NotIn", "operator: Sometimes", "operator must be In, NotIn, Exists or DoesNotExist"),
        (
            "steps:\n",
            "dependencies:\n- {name: dra, method: DRAInstall, timeout: 10m}\nsteps:\n",
            'dependencies[0].method: dependency "DRAInstall" is not supported by kubemark',
        ),
    ],
)
def test_bad_options_name_the_path(tmp_path: Path, old: str, new: str, expected: str) -> None:
    (tmp_path / "pvc.yaml").write_text("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\n")
    text = """\
name: options
namespace:
  number: 0
  prefix: opt
tuningSets:
- {name: Q, qpsLoad: {qps: 1}}
chaosMonkey:
  nodeFailure: {failureRate: 0.5, interval: 1m, jitterFactor: 2.0, simulatedDowntime: 30s}
steps:
- phases:
  - namespaceRange: {min: 1, max: 1}
    tuningSet: Q
    objectBundle:
    - basename: pv-ss-0
      objectTemplatePath: pvc.yaml
      listUnknownObjectOptions:
        labelSelector:
          matchExpressions: [{key: tier, operator: NotIn, values: [a, b]}]
"""
    assert old in text
    path = tmp_path / "config.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_test_config(path, {})
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("-3", -3),
        ("+7", 7),
        ("1", 1),  # an int before a bool, as clusterloader2 tries them
        ("0", 0),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("9223372036854775808", 9.223372036854776e18),  # beyond int64: ParseFloat takes it
        ("true", True),
        ("F", False),
        ("TRUE", True),
        ("yes", "yes"),
        ("1_000", "1_000"),
        (" 5", " 5"),
        ("5m", "5m"),
        ("", ""),
    ],
)
def test_env_values_parse_as_clusterloader2_parses_them(text: str, value: object) -> None:
    parsed = parse_env_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_cl2_env_params_become_template_params(tmp_path: Path) -> None:
    env = {"CL2_NAMESPACES": "3", "CL2_COLOR": "blue", "PATH": "/bin", "NOT_CL2_X": "1"}
    params = cl2_env_params(env)
    assert params == {"CL2_NAMESPACES": 3, "CL2_COLOR": "blue"}
    cfg = load_test_config(tree(tmp_path), params)
    assert cfg.namespace.number == 3
    assert cfg.steps[0].name == "outer creates 3 red objects in 3 namespaces"
    with pytest.raises(EnvParamError, match="CL2_BAD"):
        cl2_env_params({"CL2_BAD": "a=b"})


def test_templates_get_clusterloader2s_image_registry_unless_overridden(tmp_path: Path) -> None:
    from kubemark.run import RunOptions, prepare

    path = tmp_path / "config.yaml"
    path.write_text(
        "name: {{.ImageRegistry}}\nnamespace: {number: 1}\ntuningSets: [{name: Q, qpsLoad: {qps: 1}}]\n"
        "steps:\n- measurements: [{Identifier: S, Method: Sleep, Params: {duration: 0s}}]\n"
    )
    config, params, _ = prepare(RunOptions(test=str(path)), 3)
    assert config.name == "registry.k8s.io" and params["Nodes"] == 3
    config, _, _ = prepare(RunOptions(test=str(path), overrides={"ImageRegistry": "mirror.example"}), 3)
    assert config.name == "mirror.example"
