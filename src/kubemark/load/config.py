"""clusterloader2-style test configs: template-render, parse and validate a YAML file into a `TestConfig`.

The file is itself a template (see templates.py) executed against the overrides (`--set key=value`, override
files), so `{{$nodes := DefaultParam .CL2_NODES 100}}` works as in clusterloader2. Validation is pydantic v2; every
problem becomes a `ConfigError` whose message names the path inside the file (`steps[2].phases[0].tuningSet`) and
the reason, so the CLI can print it and exit 2.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from kubemark.kube.durations import parse_duration
from kubemark.load.templates import Template, TemplateError

__all__ = [
    "ConfigError",
    "Measurement",
    "NamespaceConfig",
    "NamespaceRange",
    "ObjectBundle",
    "Phase",
    "Step",
    "TestConfig",
    "TuningSetConfig",
    "load_override_files",
    "load_test_config",
    "parse_set_overrides",
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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class NamespaceConfig(_Model):
    number: int = Field(1, ge=0)
    prefix: str = "test"
    delete_stale_namespaces: bool = False
    delete_automanaged_namespaces: bool = True
    enable_existing_namespaces: bool = False


class QPSLoad(_Model):
    qps: float = Field(gt=0)


class RandomizedLoad(_Model):
    average_qps: float = Field(gt=0)


class SteppedLoad(_Model):
    burst_size: int = Field(gt=0)
    step_delay: Duration


class TimeLimitedLoad(_Model):
    time_limit: Duration


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
    qps_load: QPSLoad | None = None
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


class ObjectBundle(_Model):
    basename: str = Field(min_length=1)
    object_template_path: str = Field(min_length=1)
    template_fill_map: dict[str, Any] = Field(default_factory=dict)


class Phase(_Model):
    namespace_range: NamespaceRange | None = None
    namespace_list: list[str] | None = None
    replicas_per_namespace: int = Field(ge=0)
    tuning_set: str = Field(min_length=1)
    object_bundle: list[ObjectBundle] = Field(min_length=1)


class Measurement(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    identifier: str = Field(alias="Identifier", min_length=1)
    method: str = Field(alias="Method", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict, alias="Params")

    @model_validator(mode="after")
    def _action(self) -> Measurement:
        action = self.params.get("action")
        if action is not None and action not in ("start", "gather"):
            raise ValueError(f'Params.action must be "start" or "gather", not {action!r}')
        return self

    @property
    def action(self) -> str | None:
        return self.params.get("action")


class Step(_Model):
    name: str = ""
    phases: list[Phase] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if bool(self.phases) == bool(self.measurements):
            raise ValueError("a step needs either phases or measurements (exactly one of them, non-empty)")
        return self


class TestConfig(_Model):
    name: str = Field(min_length=1)
    namespace: NamespaceConfig = Field(default_factory=NamespaceConfig)
    tuning_sets: list[TuningSetConfig] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    # kubemark extension: SLO threshold overrides, read by kubemark.measure.slo.SLOThresholds.from_config.
    slos: dict[str, Any] = Field(default_factory=dict)
    # Where the file lives: object template paths are relative to it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    __test__ = False  # not a pytest test class despite the name

    def tuning_set(self, name: str) -> TuningSetConfig:
        for ts in self.tuning_sets:
            if ts.name == name:
                return ts
        raise KeyError(name)

    def template_path(self, bundle: ObjectBundle) -> Path:
        path = Path(bundle.object_template_path)
        return path if path.is_absolute() else self.base_dir / path


def _alias(model: type[BaseModel], field_name: str) -> str:
    info = model.model_fields[field_name]
    return info.alias or field_name


# -- errors -----------------------------------------------------------------------------------------------------


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
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


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        problems.append((_path(err["loc"]), _reason(err)))
    return problems


def _cross_check(cfg: TestConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, ts in enumerate(cfg.tuning_sets):
        if ts.name in seen:
            problems.append(
                (f"tuningSets[{i}].name", f'duplicate tuning set "{ts.name}" (also tuningSets[{seen[ts.name]}])')
            )
        seen.setdefault(ts.name, i)
    defined = ", ".join(ts.name for ts in cfg.tuning_sets) or "none"
    for si, step in enumerate(cfg.steps):
        for pi, phase in enumerate(step.phases):
            where = f"steps[{si}].phases[{pi}]"
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


def load_override_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Merge override files (YAML maps of parameter name -> value); later files win."""
    out: dict[str, Any] = {}
    for p in paths:
        path = Path(p)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(str(path), [("", f"cannot read override file: {exc.strerror or exc}")]) from None
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), [("", f"invalid YAML: {exc}")]) from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(
                str(path), [("", f"an override file must be a map of names to values, not {type(data).__name__}")]
            )
        out.update(data)
    return out


def load_test_config(
    path: str | Path, overrides: Mapping[str, Any] | None = None, *, rng: random.Random | None = None
) -> TestConfig:
    """Render the config template with `overrides`, parse the YAML and validate it; raises ConfigError."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read test config: {exc.strerror or exc}")]) from None
    try:
        rendered = Template(text, path.name, rng=rng).render(dict(overrides or {}))
    except TemplateError as exc:
        raise ConfigError(source, [("", f"template error: {exc}")]) from None
    try:
        data = yaml.safe_load(rendered)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("", f"invalid YAML after rendering the template: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, [("", "a test config must be a YAML map")])
    try:
        cfg = TestConfig.model_validate({**data, "base_dir": path.parent})
    except ValidationError as exc:
        raise ConfigError(source, _pydantic_problems(exc)) from None
    problems = _cross_check(cfg)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def render_object_template(path: str | Path, mapping: Mapping[str, Any], *, rng: random.Random | None = None) -> Any:
    """Render an object template (with `.Name`, `.Index`, `.Replicas`, fill-map and overrides in `mapping`).

    Returns the parsed YAML (usually one object dict). Raises TemplateError on template or YAML problems.
    """
    path = Path(path)
    rendered = Template(path.read_text(), path.name, rng=rng).render(dict(mapping))
    try:
        # libyaml's loader: the player renders one object per create, thousands a minute at scale.
        return yaml.load(rendered, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path.name}: rendered template is not valid YAML: {exc}") from None
