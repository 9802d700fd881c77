"""TestMetrics: clusterloader2's bundle of control-plane measurements, started and gathered together.

As clusterloader2's bundle: `start` starts EtcdMetrics, resets SchedulingMetrics, starts ResourceUsageSummary,
the CPU/memory/block profiles of etcd, kube-apiserver, kube-scheduler and kube-controller-manager,
SystemPodMetrics and ClusterOOMsTracker; `gather` gathers them all plus MetricsForE2E, every member with the
bundle's Params (so `systemPodMetricsEnabled`, `enableRestartCountCheck`, ... reach the members that read them).
A member whose start or gather fails does not stop the others; it becomes a failed verdict naming it and the
error (clusterloader2 fails the bundle with the list of its members' errors).
Members that cannot have a meaning here (the pprof profiles: the embedded master's components are not Go
processes; ClusterOOMsTracker when enabled: hollow nodes run no processes to be OOM-killed) come back as
not-measured-here warnings, one per member Method; the others produce their own clusterloader2 summaries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.measure.catalog import NOT_MEASURED_HERE
from kubemark.measure.measurement import MeasureContext, Measurement, MeasurementBase
from kubemark.measure.methods.etcd_metrics import EtcdMetrics
from kubemark.measure.methods.metrics_for_e2e import MetricsForE2E
from kubemark.measure.methods.not_measured import not_measured_here
from kubemark.measure.methods.resource_usage_summary import ResourceUsageSummary
from kubemark.measure.methods.scheduling_metrics import SchedulingMetrics
from kubemark.measure.methods.system_pod_metrics import SystemPodMetrics
from kubemark.measure.results import MeasurementResult, Verdict

__all__ = ["TestMetrics"]

log = logging.getLogger(__name__)

PROFILES = ("CPUProfile", "MemoryProfile", "BlockProfile")  # each for etcd, apiserver, scheduler, controllers


class TestMetrics(MeasurementBase):
    method: ClassVar[str] = "TestMetrics"
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self.members: dict[str, Measurement] = {
            "EtcdMetrics": EtcdMetrics(identifier, ctx),
            "SchedulingMetrics": SchedulingMetrics(identifier, ctx),
            "ResourceUsageSummary": ResourceUsageSummary(identifier, ctx),
            "SystemPodMetrics": SystemPodMetrics(identifier, ctx),
        }
        self.profiles: dict[str, Measurement] = {
            name: not_measured_here(name, NOT_MEASURED_HERE[name])(identifier, ctx) for name in PROFILES
        }
        self.ooms: Measurement | None = None
        self.errors: list[Verdict] = []  # members whose start or gather failed: failed verdicts, as upstream fails

    def _failed(self, action: str, name: str, exc: Exception) -> None:
        log.error("%s: %s of %s failed: %s", self.identifier, action, name, exc)
        detail = f"action {action} failed for {name} measurement: {type(exc).__name__}: {exc}"
        self.errors.append(Verdict(f"measurement {self.identifier}/{name}", 0.0, 0.0, "", False, detail))

    async def start(self, params: Mapping[str, Any]) -> None:
        for name, member in self.members.items():
            try:
                await member.start(params)
            except Exception as exc:
                self._failed("start", name, exc)
        if str(params.get("clusterOOMsTrackerEnabled", False)).lower() == "true":
            self.ooms = not_measured_here("ClusterOOMsTracker", NOT_MEASURED_HERE["ClusterOOMsTracker"])(
                self.identifier, self.ctx
            )
        for member in [*self.profiles.values(), *([self.ooms] if self.ooms else [])]:
            await member.start(params)

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        result = MeasurementResult(verdicts=list(self.errors))
        members: list[tuple[str, Measurement]] = [
            *self.members.items(),
            ("MetricsForE2E", MetricsForE2E(self.identifier, self.ctx)),
            *self.profiles.items(),
            *((("ClusterOOMsTracker", self.ooms),) if self.ooms else ()),
        ]
        for name, member in members:
            try:
                result.merge(await member.gather(params))
            except Exception as exc:
                self._failed("gather", name, exc)
                result.verdicts.append(self.errors[-1])
        return result

    async def stop(self) -> None:
        for member in self.members.values():
            await member.stop()
