"""clusterloader2 test suites (`--testsuite`): a YAML list of scenarios, each a test config with its own override
files, run one after another (clusterloader2's api.TestSuite of api.TestScenario).

    - identifier: pod-affinity
      configPath: testing/density/config.yaml
      overridePaths: [testing/density/scheduler/pod-affinity/overrides.yaml]

clusterloader2 reads the paths relative to its working directory (the clusterloader2 checkout); kubemark tries
that first, then the suite file's directory and each directory above it, so a suite copied with its tree runs
from anywhere. The identifier names the scenario's run directory and, as in clusterloader2, is appended to the
test name in PerfData file names (`PodStartupLatency_PodStartupLatency_density_pod-affinity_<time>.json`).
Every scenario's paths are checked before the first one starts; problems name the scenario's index and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubemark.load.config import ConfigError, read_yaml_file

__all__ = ["TestScenario", "load_test_suite"]

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identifier: str = ""
    config_path: str = Field(alias="configPath", min_length=1)
    override_paths: list[str] = Field(default_factory=list, alias="overridePaths")


@dataclass(frozen=True)
class TestScenario:
    __test__ = False  # not a pytest test class, whatever its name

    identifier: str  # "" when the suite gives none: the run directory is then the scenario's index
    config_path: Path
    override_paths: tuple[Path, ...]

    def run_dir_name(self, index: int) -> str:
        return self.identifier or f"scenario-{index:02d}"


def _resolve(raw: str, suite: Path) -> Path | None:
    path = Path(raw).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    candidates = [Path.cwd() / path, *(d / path for d in [suite.parent, *suite.parent.parents])]
    return next((c for c in candidates if c.is_file()), None)


def load_test_suite(path: Path) -> list[TestScenario]:
    """Parse and check a suite file; ConfigError names every problem (`[2].configPath: file not found: ...`)."""
    data = read_yaml_file(path, "test suite")
    if not isinstance(data, list) or not data:
        raise ConfigError(str(path), [("", "a test suite must be a non-empty YAML list of scenarios")])
    problems: list[tuple[str, str]] = []
    scenarios: list[TestScenario] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(data):
        where = f"[{i}]"
        if not isinstance(item, dict):
            problems.append((where, f"a scenario must be a map, not {type(item).__name__}"))
            continue
        try:
            scenario = _Scenario.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(part) for part in err["loc"])
                problems.append((f"{where}.{loc}", err["msg"]))
            continue
        if scenario.identifier:
            if not _IDENTIFIER.match(scenario.identifier):
                problems.append(
                    (f"{where}.identifier", "letters, digits, '.', '_' and '-' only (it names a directory)")
                )
            elif scenario.identifier in seen:
                problems.append((f"{where}.identifier", f"duplicate of [{seen[scenario.identifier]}]"))
            seen.setdefault(scenario.identifier, i)
        config = _resolve(scenario.config_path, path)
        if config is None:
            problems.append((f"{where}.configPath", f"file not found: {scenario.config_path}"))
        overrides: list[Path] = []
        for j, raw in enumerate(scenario.override_paths):
            found = _resolve(raw, path)
            if found is None:
                problems.append((f"{where}.overridePaths[{j}]", f"file not found: {raw}"))
            else:
                overrides.append(found)
        if config is not None:
            scenarios.append(TestScenario(scenario.identifier, config, tuple(overrides)))
    if problems:
        raise ConfigError(str(path), problems)
    return scenarios
