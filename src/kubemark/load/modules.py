"""clusterloader2 modules: a step `module: {path, params}` is replaced by the steps of the module file.

As clusterloader2's `flattenModuleSteps`, a module file is a template rendered with a copy of the test's template
mapping (overrides, `Nodes`, CL2_* environment) updated with the module's `params` (a nested module gets the
test's mapping and its own params, not its parent's); what it renders to is a YAML
map with only `steps`, and those steps (modules again, recursively) are spliced in where the module step was. Paths
are joined to the directory of the test config, as clusterloader2's template provider joins every path to its base
path (so `/modules/x.yaml` and `modules/x.yaml` are the same file); a path that is not there is also tried relative
to the module that names it, and as an absolute path.

Every spliced step keeps a `StepOrigin` so a validation error deep inside a module still names where it came from:
`steps[3].module(modules/services.yaml).steps[0].phases[0].tuningSet`.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubemark.load.templates import Template, TemplateError

__all__ = ["MAX_MODULE_DEPTH", "StepOrigin", "flatten_steps", "make_template", "resolve_path"]

MAX_MODULE_DEPTH = 16  # a module including itself would otherwise recurse until the stack runs out

Problem = tuple[str, str]


@dataclass(frozen=True)
class StepOrigin:
    """Where a flattened step was written: its path label and the directory of the file that holds it."""

    label: str  # e.g. "steps[3].module(modules/services.yaml).steps[0]"
    source_dir: Path


# What printing a missing value writes: Go's text/template (clusterloader2's default missingkey option) writes
# this, and clusterloader2's own modules rely on it (reconcile-objects.yaml's delete pass prints an unset .Env).
GO_NO_VALUE = "<no value>"


def make_template(text: str, name: str, *, rng: random.Random | None, base_dir: Path) -> Template:
    """A Template as clusterloader2 renders configs, modules and object templates: `base_dir` (the test's
    directory, for IncludeEmbedFile/IncludeFile) and Go's "<no value>", where templates.py supports them."""
    supported = inspect.signature(Template).parameters
    extra: dict[str, Any] = {}
    if "base_dir" in supported:
        extra["base_dir"] = base_dir
    if "no_value" in supported:
        extra["no_value"] = GO_NO_VALUE
    return Template(text, name, rng=rng, **extra)


def resolve_path(path: str, base_dir: Path, source_dir: Path | None = None) -> Path:
    """clusterloader2's join of `path` to the test's base directory, then the naming file's, then as is."""
    relative = path.lstrip("/")
    candidates = [base_dir / relative]
    if source_dir is not None and source_dir != base_dir:
        candidates.append(source_dir / relative)
    if Path(path).is_absolute():
        candidates.append(Path(path))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def _key(data: Mapping[str, Any], name: str) -> str | None:
    """The key of `data` that matches `name` as encoding/json matches field names: exactly, else ignoring case."""
    if name in data:
        return name
    folded = name.casefold()
    return next((k for k in data if isinstance(k, str) and k.casefold() == folded), None)


def _module_ref(step: Mapping[str, Any]) -> Any:
    key = _key(step, "module")
    return step[key] if key is not None else None


def flatten_steps(
    steps: Any,
    *,
    base_dir: Path,
    mapping: Mapping[str, Any],
    rng: random.Random | None = None,
    read: Callable[[Path], str] = Path.read_text,
) -> tuple[list[Any], list[StepOrigin], list[Problem]]:
    """The executable steps (modules expanded), each step's origin, and the problems found on the way."""
    out: list[Any] = []
    origins: list[StepOrigin] = []
    problems: list[Problem] = []
    if not isinstance(steps, list):
        return [steps] if steps is not None else [], [], []  # let the schema report the wrong type
    _flatten(steps, "steps", base_dir, base_dir, mapping, rng, read, 0, out, origins, problems)
    return out, origins, problems


def _flatten(
    steps: list[Any],
    label: str,
    base_dir: Path,
    source_dir: Path,
    mapping: Mapping[str, Any],
    rng: random.Random | None,
    read: Callable[[Path], str],
    depth: int,
    out: list[Any],
    origins: list[StepOrigin],
    problems: list[Problem],
) -> None:
    for i, step in enumerate(steps):
        where = f"{label}[{i}]"
        ref = _module_ref(step) if isinstance(step, dict) else None
        if ref is None:
            out.append(step)
            origins.append(StepOrigin(where, source_dir))
            continue
        other = [k for k in step if k != _key(step, "module") and k != _key(step, "name")]
        if other:
            problems.append((f"{where}.{other[0]}", "a module step has only `module` (and an ignored `name`)"))
            continue
        loaded = _load_module(ref, f"{where}.module", base_dir, source_dir, mapping, rng, read, depth, problems)
        if loaded is None:
            continue
        module_steps, module_dir, module_label = loaded
        # clusterloader2 renders every module (nested ones too) with the test's mapping plus its own params.
        _flatten(
            module_steps,
            f"{module_label}.steps",
            base_dir,
            module_dir,
            mapping,
            rng,
            read,
            depth + 1,
            out,
            origins,
            problems,
        )


def _load_module(
    ref: Any,
    where: str,
    base_dir: Path,
    source_dir: Path,
    mapping: Mapping[str, Any],
    rng: random.Random | None,
    read: Callable[[Path], str],
    depth: int,
    problems: list[Problem],
) -> tuple[list[Any], Path, str] | None:
    if not isinstance(ref, dict):
        problems.append((where, f"expected a map with path and params, not {type(ref).__name__}"))
        return None
    path_key, params_key = _key(ref, "path"), _key(ref, "params")
    unknown = [k for k in ref if k not in (path_key, params_key)]
    if unknown:
        problems.append((f"{where}.{unknown[0]}", "Extra inputs are not permitted (a module has path and params)"))
        return None
    path = ref.get(path_key) if path_key else None
    if not path or not isinstance(path, str):
        problems.append((f"{where}.path", "path not set"))
        return None
    params = ref.get(params_key) if params_key else None
    if params is not None and not isinstance(params, dict):
        problems.append((f"{where}.params", f"expected a map, not {type(params).__name__}"))
        return None
    if depth >= MAX_MODULE_DEPTH:
        problems.append((f"{where}.path", f"modules nest deeper than {MAX_MODULE_DEPTH} (does {path} include itself?)"))
        return None
    file = resolve_path(path, base_dir, source_dir)
    label = f"{where.removesuffix('.module')}.module({path})"
    try:
        text = read(file)
    except OSError as exc:
        problems.append((f"{where}.path", f"cannot read module {file}: {exc.strerror or exc}"))
        return None
    module_mapping = {**mapping, **(params or {})}
    try:
        rendered = make_template(text, file.name, rng=rng, base_dir=base_dir).render(module_mapping)
    except TemplateError as exc:
        problems.append((label, f"template error: {exc}"))
        return None
    try:
        data = yaml.safe_load(rendered)
    except yaml.YAMLError as exc:
        problems.append((label, f"invalid YAML after rendering the module: {exc}"))
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append((label, "a module must be a YAML map with `steps`"))
        return None
    steps_key = _key(data, "steps")
    unknown = [k for k in data if k != steps_key]
    if unknown:
        problems.append((f"{label}.{unknown[0]}", "Extra inputs are not permitted (a module has only `steps`)"))
        return None
    steps = data.get(steps_key) if steps_key else None
    if steps is None:
        steps = []
    if not isinstance(steps, list):
        problems.append((f"{label}.steps", f"expected a list of steps, not {type(steps).__name__}"))
        return None
    return steps, file.parent, label
