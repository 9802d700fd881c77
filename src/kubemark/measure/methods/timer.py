"""Timer: wall-clock durations of labelled parts of a test, as clusterloader2's Timer measurement.

`action: start` with a `label` starts that label's timer (a second start of the same label restarts it);
`action: stop` with the `label` records the time since its start (a label never started is an error, as
clusterloader2's "uninitialized timer"); `action: gather` writes every recorded duration as the summary "Timer":
PerfData {"version": "v1", "dataItems": [{"data": {<label>: seconds}, "unit": "s", "labels": {"test": "phases"}}]}.
One instance per Identifier lives for the whole test (clusterloader2 keeps its instances), so labels started
and stopped in different steps add up in one summary, and a later gather includes the earlier durations again.
Durations come from the run's monotonic clock (`MeasureContext.monotonic`), so a test injects its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.results import MeasurementResult, SummaryFile

__all__ = ["Timer"]

log = logging.getLogger(__name__)


def _label(identifier: str, params: Mapping[str, Any]) -> str:
    label = params.get("label")
    if label is None or label == "":
        raise ValueError(f"{identifier}: Timer needs a label")
    return str(label)


class Timer(MeasurementBase):
    method: ClassVar[str] = "Timer"
    actions: ClassVar[frozenset[str] | None] = frozenset({"start", "stop", "gather"})
    stateful: ClassVar[bool] = True

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self.started: dict[str, float] = {}  # label -> monotonic start
        self.durations: dict[str, float] = {}  # label -> seconds between its start and stop

    @classmethod
    def check_params(cls, action: str | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """start and stop need a label (clusterloader2 fails them at run time without one)."""
        if action in ("start", "stop") and params.get("label") in (None, ""):
            return [("label", f"Timer's {action} needs a label")]
        return []

    async def start(self, params: Mapping[str, Any]) -> None:
        self.started[_label(self.identifier, params)] = self.ctx.monotonic()

    async def act(self, action: str, params: Mapping[str, Any]) -> MeasurementResult | None:
        if action != "stop":
            return await super().act(action, params)
        label = _label(self.identifier, params)
        if label not in self.started:
            raise ValueError(f"{self.identifier}: uninitialized timer {label}")
        self.durations[label] = self.ctx.monotonic() - self.started.pop(label)
        log.info("%s: %s - %.3fs", self.method, label, self.durations[label])
        return None

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        content = {
            "version": "v1",
            "dataItems": [{"data": dict(self.durations), "unit": "s", "labels": {"test": "phases"}}],
        }
        return MeasurementResult(summaries=[SummaryFile(self.method, content)])
