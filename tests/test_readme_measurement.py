"""README's "adding a measurement" example, taken from README.md as written and run through the dispatcher."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any, cast

from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.registry import MEASUREMENTS

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> type[Any]:
    text = README.read_text()
    section = text[text.index("## Developing: adding a measurement") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "README's measurement example is gone"
    module = types.ModuleType("readme_pod_count")
    sys.modules[module.__name__] = module
    exec(compile(code.group(1), str(README), "exec"), module.__dict__)
    return cast(type[Any], module.PodCount)


class _Pods:
    def list(self) -> list[dict[str, Any]]:
        return [
            {"metadata": {"name": "a", "labels": {"group": "latency"}}},
            {"metadata": {"name": "b", "labels": {"group": "latency"}}},
            {"metadata": {"name": "c", "labels": {"group": "saturation"}}},
            {"metadata": {"name": "d"}},
        ]


class _Ctx:
    pods = _Pods()

    async def close(self) -> None:
        return None


async def test_the_readme_example_runs_as_a_registered_measurement() -> None:
    registry = {**MEASUREMENTS, "PodCount": _example()}
    mset = MeasurementSet(cast(MeasureContext, _Ctx()), registry)
    step = {"Identifier": "Pods", "Method": "PodCount", "Params": {"labelSelector": "group=latency", "max": 1}}
    await mset.execute(MeasurementStep.model_validate(step))
    [verdict] = mset.result.verdicts
    assert (verdict.name, verdict.measured, verdict.threshold, verdict.passed) == ("pod_count Pods", 2, 1.0, False)
