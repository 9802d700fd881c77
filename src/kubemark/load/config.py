"""clusterloader2-style test configs: template-render, parse and validate a YAML file into a `TestConfig`.

The file is itself a template (see templates.py) executed against the overrides (`--set key=value`, override
files, CL2_* environment variables: environment.py), so `{{$nodes := DefaultParam .CL2_NODES 100}}` works as in
clusterloader2; a missing value prints Go's "<no value>", as clusterloader2's own modules expect. Validation is pydantic v2; every
problem becomes a `ConfigError` whose message names the path inside the file (`steps[2].phases[0].tuningSet`) and
the reason, so the CLI can print it and exit 2.

clusterloader2 compatibility: keys match the schema as Go's encoding/json matches them (exactly, else ignoring
case: `RandomizedTimeLimitedLoad:` is `randomizedTimeLimitedLoad`); `module` steps are replaced by the module's
steps (modules.py); `automanagedNamespaces`, `chaosMonkey`, `dependencies`, `listUnknownObjectOptions`,
measurement `Instances` and tuning-set `initialDelay` are accepted. A key clusterloader2's schema does not have is
still an error (clusterloader2 would silently drop it, and with it the user's intent).
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from kubemark.kube.durations import parse_duration
from kubemark.kube.json_keys import fold_keys
from kubemark.load.modules import StepOrigin, flatten_steps, make_template, resolve_path
from kubemark.load.templates import TemplateError
from kubemark.node_killer import NodeFailureConfig

__all__ = [
    "ChaosMonkeyConfig",
    "ConfigError",
    "Dependency",
    "Measurement",
    "NamespaceConfig",
    "NamespaceRange",
    "NodeFailureConfig",
    "ObjectBundle",
    "Phase",
    "Step",
    "TestConfig",
    "TuningSetConfig",
    "load_override_files",
    "load_test_config",
    "parse_set_overrides",
    "random_namespace_prefix",
    "read_yaml_file",
    "render_object_template",
]


class ConfigError(ValueError):
    """An invalid test config or override; `problems` holds (path-in-file, reason) pairs."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"{path}: {reason}" if path else reason for path, reason in self.problems]
        super().__init__(f"{source}: " + ("\n  ".join(lines) if len(lines) == 1 else "\n  " + "\n  ".join(lines)))


Duration = Annotated[float, BeforeValidator(parse_duration)]


# -- the schema -------------------------------------------------------------------------------------------------


def _none_as_empty_list(value: Any) -> Any:
    """YAML `objectBundle:` with nothing under it (a `range` over zero items) is null; Go decodes it as empty."""
    return [] if value is None else value


def _none_as_empty_dict(value: Any) -> Any:
    return {} if value is None else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _match_keys_ignoring_case(cls, data: Any) -> Any:
        return fold_keys(cls, data)


_RANDOM_PREFIX_CHARS = string.ascii_lowercase + string.digits


class NamespaceConfig(_Model):
    """clusterloader2's NamespaceConfig with its defaults (api/default.go): number 0 means 1, the prefix is
    `test-<6 random characters>` unless given."""

    number: int = 1
    prefix: str = ""
    delete_stale_namespaces: bool = False
    delete_automanaged_namespaces: bool = True
    enable_existing_namespaces: bool = False
    delete_namespace_timeout: Duration = 600.0

    @model_validator(mode="after")
    def _defaults(self) -> NamespaceConfig:
        if self.number == 0:
            self.number = 1
        if self.number < 0:
            raise ValueError(f"number must be positive, not {self.number}")
        return self


class QPSLoad(_Model):
    qps: float = Field(gt=0)


class RandomizedLoad(_Model):
    average_qps: float = Field(gt=0)


class SteppedLoad(_Model):
    burst_size: int = Field(gt=0)
    step_delay: Duration


class TimeLimitedLoad(_Model):
    time_limit: Duration = Field(gt=0)


class ParallelismLimitedLoad(_Model):
    parallelism_limit: int = Field(gt=0)


class GlobalQPSLoad(_Model):
    qps: float = Field(gt=0)
    burst: int = Field(1, gt=0)


class PoissonLoad(_Model):
    expected_actions_per_second: float = Field(gt=0)


TUNING_KINDS = (
    "qps_load",
    "randomized_load",
    "stepped_load",
    "time_limited_load",
    "randomized_time_limited_load",
    "parallelism_limited_load",
    "global_qps_load",
    "poisson_load",
)


class TuningSetConfig(_Model):
    name: str = Field(min_length=1)
    # In clusterloader2's schema but not used by its tuning sets (none of them waits for it); accepted, ignored.
    initial_delay: Duration = 0.0
    qps_load: QPSLoad | None = Field(None, alias="qpsLoad")
    randomized_load: RandomizedLoad | None = None
    stepped_load: SteppedLoad | None = None
    time_limited_load: TimeLimitedLoad | None = None
    randomized_time_limited_load: TimeLimitedLoad | None = None
    parallelism_limited_load: ParallelismLimitedLoad | None = None
    global_qps_load: GlobalQPSLoad | None = Field(None, alias="globalQPSLoad")
    poisson_load: PoissonLoad | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TuningSetConfig:
        set_kinds = [k for k in TUNING_KINDS if getattr(self, k) is not None]
        if len(set_kinds) != 1:
            names = ", ".join(_alias(TuningSetConfig, k) for k in TUNING_KINDS)
            found = ", ".join(_alias(TuningSetConfig, k) for k in set_kinds) or "none"
            raise ValueError(f"a tuning set needs exactly one of {names} (found: {found})")
        return self

    @property
    def kind(self) -> str:
        """The camelCase name of the load type, e.g. "qpsLoad"."""
        return next(_alias(TuningSetConfig, k) for k in TUNING_KINDS if getattr(self, k) is not None)

    @property
    def params(self) -> BaseModel:
        return next(getattr(self, k) for k in TUNING_KINDS if getattr(self, k) is not None)


class NamespaceRange(_Model):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    basename: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> NamespaceRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class LabelSelectorRequirement(_Model):
    key: str = Field(min_length=1)
    operator: str
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _operator(self) -> LabelSelectorRequirement:
        if self.operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f'operator must be In, NotIn, Exists or DoesNotExist, not "{self.operator}"')
        return self


class LabelSelector(_Model):
    """metav1.LabelSelector."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def as_query(self) -> str:
        """The selector in the `labelSelector=` query syntax."""
        parts = [f"{k}={v}" for k, v in self.match_labels.items()]
        for req in self.match_expressions:
            if req.operator == "Exists":
                parts.append(req.key)
            elif req.operator == "DoesNotExist":
                parts.append(f"!{req.key}")
            else:
                parts.append(f"{req.key} {req.operator.lower()} ({','.join(req.values)})")
        return ",".join(parts)


class ListUnknownObjectOptions(_Model):
    label_selector: LabelSelector = Field(default_factory=LabelSelector)


_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ObjectBundle(_Model):
    basename: str = Field(min_length=1)
    object_template_path: str = Field(min_length=1)
    template_fill_map: Annotated[dict[str, Any], BeforeValidator(_none_as_empty_dict)] = Field(default_factory=dict)
    list_unknown_object_options: ListUnknownObjectOptions | None = None
    # The directory of the file (test config or module) that names this object, for path resolution.
    _source_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _dns_name(self) -> ObjectBundle:
        if len(self.basename) > 253 or not _DNS1123_SUBDOMAIN.match(self.basename):
            raise ValueError(
                f'basename "{self.basename}" must be a DNS-1123 subdomain (lower case alphanumerics, "-" and ".")'
            )
        return self


class Phase(_Model):
    namespace_range: NamespaceRange | None = None
    namespace_list: list[str] | None = None
    replicas_per_namespace: int = Field(0, ge=0)
    tuning_set: str = Field(min_length=1)
    object_bundle: Annotated[list[ObjectBundle], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)


class MeasurementInstance(_Model):
    """One instance of a wrapper measurement (`Instances:`): its identifier and params over the shared ones."""

    identifier: str = Field(alias="Identifier", min_length=1)
    params: Annotated[dict[str, Any], BeforeValidator(_none_as_empty_dict)] = Field(
        default_factory=dict, alias="Params"
    )


class Measurement(_Model):
    """A measurement call. A wrapper measurement (`Instances`) is expanded by its Step into one Measurement per
    instance, each with the shared Params overridden by its own, so the measurement runner sees plain calls."""

    identifier: str = Field("", alias="Identifier")
    method: str = Field(alias="Method", min_length=1)
    params: Annotated[dict[str, Any], BeforeValidator(_none_as_empty_dict)] = Field(
        default_factory=dict, alias="Params"
    )
    instances: list[MeasurementInstance] | None = Field(None, alias="Instances")

    @model_validator(mode="after")
    def _identifier_or_instances(self) -> Measurement:
        if bool(self.identifier) == bool(self.instances):
            raise ValueError("a measurement needs exactly one of Identifier and Instances")
        return self

    @property
    def action(self) -> str | None:
        return self.params.get("action")

    def expanded(self) -> list[Measurement]:
        if not self.instances:
            return [self]
        return [
            Measurement(identifier=i.identifier, method=self.method, params={**self.params, **i.params})
            for i in self.instances
        ]


class Step(_Model):
    name: str = ""
    phases: Annotated[list[Phase], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)
    measurements: Annotated[list[Measurement], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if bool(self.phases) == bool(self.measurements):
            raise ValueError("a step needs either phases or measurements (exactly one of them, non-empty)")
        if any(m.instances for m in self.measurements):
            self.measurements = [e for m in self.measurements for e in m.expanded()]
        return self


class ChaosMonkeyConfig(_Model):
    node_failure: NodeFailureConfig | None = None
    excluded_nodes: Annotated[list[str], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)


class Dependency(_Model):
    """A test-level dependency (clusterloader2's pkg/dependency: set up before the steps, torn down after)."""

    name: str = Field(min_length=1)
    method: str = Field(min_length=1)
    timeout: Duration = 0.0
    params: Annotated[dict[str, Any], BeforeValidator(_none_as_empty_dict)] = Field(default_factory=dict)


# Dependency methods kubemark can set up; clusterloader2's (DRAInstall, KWOK...) install cluster add-ons.
SUPPORTED_DEPENDENCIES: tuple[str, ...] = ()


class TestConfig(_Model):
    name: str = Field(min_length=1)
    # Deprecated in clusterloader2 but still written by its density config: the namespace count when
    # namespace.number is left at 1.
    automanaged_namespaces: int = Field(0, ge=0)
    namespace: NamespaceConfig = Field(default_factory=NamespaceConfig)
    tuning_sets: Annotated[list[TuningSetConfig], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)
    chaos_monkey: ChaosMonkeyConfig = Field(default_factory=ChaosMonkeyConfig)
    dependencies: Annotated[list[Dependency], BeforeValidator(_none_as_empty_list)] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    # kubemark extension: SLO threshold overrides, read by kubemark.measure.slo.SLOThresholds.from_config.
    slos: dict[str, Any] = Field(default_factory=dict)
    # Where the file lives: module and object template paths are joined to it.
    base_dir: Path = Field(default=Path("."), exclude=True)
    # Where each (flattened) step was written, e.g. "steps[3].module(modules/x.yaml).steps[0]".
    _step_labels: list[str] = PrivateAttr(default_factory=list)

    __test__ = False  # not a pytest test class despite the name

    @model_validator(mode="after")
    def _automanaged(self) -> TestConfig:
        if self.namespace.number == 1 and self.automanaged_namespaces > 1:
            self.namespace.number = self.automanaged_namespaces
        return self

    def step_label(self, index: int) -> str:
        """The path in the files of step `index` of `steps` (modules expanded), for error messages: a step that
        came from a module is named by where the module was used."""
        if index < len(self._step_labels):
            return self._step_labels[index]
        return f"steps[{index}]"

    def tuning_set(self, name: str) -> TuningSetConfig:
        for ts in self.tuning_sets:
            if ts.name == name:
                return ts
        raise KeyError(name)

    def template_path(self, bundle: ObjectBundle) -> Path:
        """The object template file: joined to the test's directory (clusterloader2's base path), else to the
        directory of the module that names it, else the path as written."""
        return resolve_path(bundle.object_template_path, self.base_dir, bundle._source_dir)


def _alias(model: type[BaseModel], field_name: str) -> str:
    info = model.model_fields[field_name]
    return info.alias or field_name


# -- errors -----------------------------------------------------------------------------------------------------


def _path(loc: Sequence[int | str], origins: Sequence[StepOrigin] = ()) -> str:
    """A pydantic error location as a path in the file; `steps[i]` becomes where a module's step was written."""
    out = ""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "steps" and isinstance(parts[1], int) and parts[1] < len(origins):
        out = origins[parts[1]].label
        parts = parts[2:]
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def _reason(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    # pydantic prefixes messages raised by our validators; the prefix is noise for a user.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def _pydantic_problems(exc: ValidationError, origins: Sequence[StepOrigin] = ()) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        problems.append((_path(err["loc"], origins), _reason(err)))
    return problems


def _cross_check(cfg: TestConfig, origins: Sequence[StepOrigin] = ()) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, ts in enumerate(cfg.tuning_sets):
        if ts.name in seen:
            problems.append(
                (f"tuningSets[{i}].name", f'duplicate tuning set "{ts.name}" (also tuningSets[{seen[ts.name]}])')
            )
        seen.setdefault(ts.name, i)
    for i, dep in enumerate(cfg.dependencies):
        if dep.method not in SUPPORTED_DEPENDENCIES:
            problems.append(
                (
                    f"dependencies[{i}].method",
                    f'dependency "{dep.method}" is not supported by kubemark (clusterloader2\'s dependencies '
                    "install cluster add-ons such as a DRA driver; install it into the cluster yourself and drop "
                    "the dependency)",
                )
            )
    defined = ", ".join(ts.name for ts in cfg.tuning_sets) or "none"
    for si, step in enumerate(cfg.steps):
        step_where = origins[si].label if si < len(origins) else f"steps[{si}]"
        for pi, phase in enumerate(step.phases):
            where = f"{step_where}.phases[{pi}]"
            if phase.tuning_set not in seen:
                problems.append((f"{where}.tuningSet", f'unknown tuning set "{phase.tuning_set}" (defined: {defined})'))
            nr = phase.namespace_range
            if nr is not None and nr.basename is None and nr.max > cfg.namespace.number:
                problems.append(
                    (
                        f"{where}.namespaceRange.max",
                        f"{nr.max} is beyond the {cfg.namespace.number} automanaged namespaces (namespace.number)",
                    )
                )
            for bi, bundle in enumerate(phase.object_bundle):
                path = cfg.template_path(bundle)
                if not path.is_file():
                    problems.append((f"{where}.objectBundle[{bi}].objectTemplatePath", f"file not found: {path}"))
    return problems


# -- loading ----------------------------------------------------------------------------------------------------


def parse_set_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`--set key=value` pairs; values are YAML scalars (10 -> int, true -> bool, 5s stays a string)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--set", [("", f'expected key=value, got "{item}"')])
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key] = value
    return out


def read_yaml_file(path: Path, what: str) -> Any:
    """The YAML document in `path`; ConfigError naming the file when it cannot be read or parsed."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), [("", f"cannot read {what}: {exc.strerror or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [("", f"invalid YAML: {exc}")]) from None


def load_override_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Merge override files (YAML maps of parameter name -> value); later files win."""
    out: dict[str, Any] = {}
    for p in paths:
        path = Path(p)
        data = read_yaml_file(path, "override file")
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(
                str(path), [("", f"an override file must be a map of names to values, not {type(data).__name__}")]
            )
        out.update(data)
    return out


def random_namespace_prefix(rng: random.Random) -> str:
    """clusterloader2's default automanaged namespace prefix: `test-` and six random DNS-1123 characters."""
    return "test-" + "".join(rng.choice(_RANDOM_PREFIX_CHARS) for _ in range(6))


def load_test_config(
    path: str | Path, overrides: Mapping[str, Any] | None = None, *, rng: random.Random | None = None
) -> TestConfig:
    """Render the config template with `overrides`, expand its modules, parse and validate; raises ConfigError.

    `overrides` is the whole template mapping (override files, `--set`, `Nodes`, CL2_* environment parameters):
    the config and every module are rendered with it, a module with its `params` on top.
    """
    path = Path(path)
    source = str(path)
    rng = rng or random.Random()
    mapping = dict(overrides or {})
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read test config: {exc.strerror or exc}")]) from None
    try:
        rendered = make_template(text, path.name, rng=rng, base_dir=path.parent).render(mapping)
    except TemplateError as exc:
        raise ConfigError(source, [("", f"template error: {exc}")]) from None
    try:
        data = yaml.safe_load(rendered)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("", f"invalid YAML after rendering the template: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, [("", "a test config must be a YAML map")])
    data = fold_keys(TestConfig, data)
    steps, origins, problems = flatten_steps(data.get("steps"), base_dir=path.parent, mapping=mapping, rng=rng)
    if problems:
        raise ConfigError(source, problems)
    if "steps" in data:
        data["steps"] = steps
    try:
        cfg = TestConfig.model_validate({**data, "base_dir": path.parent})
    except ValidationError as exc:
        raise ConfigError(source, _pydantic_problems(exc, origins)) from None
    if not cfg.namespace.prefix:
        cfg.namespace.prefix = random_namespace_prefix(rng)
    cfg._step_labels = [o.label for o in origins]
    for step, origin in zip(cfg.steps, origins, strict=False):
        for phase in step.phases:
            for bundle in phase.object_bundle:
                bundle._source_dir = origin.source_dir
    problems = _cross_check(cfg, origins)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def render_object_template(
    path: str | Path,
    mapping: Mapping[str, Any],
    *,
    rng: random.Random | None = None,
    base_dir: Path | None = None,
) -> Any:
    """Render an object template (with `.Name`, `.Index`, `.Replicas`, fill-map and overrides in `mapping`).

    Returns the parsed YAML (usually one object dict; None for an empty file, which clusterloader2 skips).
    Raises TemplateError on template or YAML problems.
    """
    path = Path(path)
    template = make_template(path.read_text(), path.name, rng=rng, base_dir=base_dir or path.parent)
    rendered = template.render(dict(mapping))
    try:
        # libyaml's loader: the player renders one object per create, thousands a minute at scale.
        return yaml.load(rendered, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path.name}: rendered template is not valid YAML: {exc}") from None
