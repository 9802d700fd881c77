"""clusterloader2 measurements that cannot have a meaning on hollow nodes: accepted, and reported as not measured.

Such a Method (InClusterNetworkLatency, DnsLookupLatency, the profiles, the Prometheus queries, ...) is made by
`not_measured_here(method, reason)`. Its gather returns the warning as a `MeasurementWarning`, which the
measurement set logs (the terminal), and the run writes to summary.json and shows in report.html. It produces no verdict
and no number, so a run never passes on something it did not measure and never shows a made-up value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.measure.measurement import MeasurementBase
from kubemark.measure.results import MeasurementResult, MeasurementWarning

__all__ = ["NotMeasuredHere", "not_measured_here"]


class NotMeasuredHere(MeasurementBase):
    """A measurement this run accepts but does not measure; `reason` says why (set by `not_measured_here`)."""

    reason: ClassVar[str] = ""

    def warning(self) -> MeasurementWarning:
        return MeasurementWarning(self.identifier, self.method, self.reason)

    async def start(self, params: Mapping[str, Any]) -> None:
        return None

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        return MeasurementResult(warnings=[self.warning()])


def not_measured_here(method: str, reason: str) -> type[NotMeasuredHere]:
    """The Method class for clusterloader2's `method`, reported as "not measured here: <reason>"."""
    return type(method, (NotMeasuredHere,), {"method": method, "reason": reason, "__doc__": reason})
