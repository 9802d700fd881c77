"""EtcdMetrics: etcd's disk and network histograms and its largest database size during the test, as clusterloader2.

`start` samples etcd's database size every `waitTime` (default 1m) until gather; `gather` scrapes etcd's /metrics
once more and writes the "EtcdMetrics" summary: backendCommitDuration, snapshotSaveTotalDuration,
peerRoundTripTime and walFsyncDuration (each a list of {labels, buckets}, cumulative since etcd started, as
clusterloader2 reads them) and maxDatabaseSize in bytes. clusterloader2 reads etcd over SSH to the master; here
etcd's /metrics must be one the run can read (the embedded master's etcd), else the measurement is reported as
not measured here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from kubemark.aio import cancel_and_wait
from kubemark.kube.durations import parse_duration
from kubemark.measure.component_metrics import ETCD
from kubemark.measure.measurement import MeasureContext, MeasurementBase
from kubemark.measure.prometheus_samples import histogram_vec, parse_samples
from kubemark.measure.results import MeasurementResult, MeasurementWarning, SummaryFile

__all__ = ["EtcdMetrics", "etcd_database_size"]

log = logging.getLogger(__name__)

HISTOGRAMS = {
    "backendCommitDuration": "etcd_disk_backend_commit_duration_seconds",
    "snapshotSaveTotalDuration": "etcd_debugging_snap_save_total_duration_seconds",
    "peerRoundTripTime": "etcd_network_peer_round_trip_time_seconds",
    "walFsyncDuration": "etcd_disk_wal_fsync_duration_seconds",
}
# etcd 3.4+ serves the size as etcd_mvcc_db_total_size_in_bytes; clusterloader2 reads the older debugging name.
DB_SIZE = ("etcd_mvcc_db_total_size_in_bytes", "etcd_debugging_mvcc_db_total_size_in_bytes")
UNREACHABLE = "etcd's /metrics is not reachable from this run (clusterloader2 reads it over SSH to the master)"


def etcd_database_size(text: str) -> float | None:
    """The database size etcd reports, in bytes (None when it reports none)."""
    sizes = {s.name: s.value for s in parse_samples(text) if s.name in DB_SIZE}
    for name in DB_SIZE:
        if name in sizes:
            return sizes[name]
    return None


class EtcdMetrics(MeasurementBase):
    method: ClassVar[str] = "EtcdMetrics"

    def __init__(self, identifier: str, ctx: MeasureContext) -> None:
        super().__init__(identifier, ctx)
        self._max_size = 0.0
        self._reachable = False
        self._task: asyncio.Task[None] | None = None

    async def _sample_size(self) -> bool:
        text = await self.metrics_text(ETCD)
        if text is None:
            return False
        size = etcd_database_size(text)
        if size is not None:
            self._max_size = max(self._max_size, size)
        return True

    async def _poll(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._sample_size()

    async def start(self, params: Mapping[str, Any]) -> None:
        self._reachable = await self._sample_size()
        if self._reachable:
            interval = parse_duration(params.get("waitTime", "1m"))
            self._task = asyncio.create_task(self._poll(interval), name="etcd database size sampler")

    async def gather(self, params: Mapping[str, Any]) -> MeasurementResult:
        await self.stop()
        text = await self.metrics_text(ETCD) if self._reachable else None
        if text is None:
            return MeasurementResult(warnings=[MeasurementWarning(self.identifier, self.method, UNREACHABLE)])
        size = etcd_database_size(text)
        if size is not None:
            self._max_size = max(self._max_size, size)
        samples = parse_samples(text)
        summary: dict[str, Any] = {key: histogram_vec(samples, metric) for key, metric in HISTOGRAMS.items()}
        summary["maxDatabaseSize"] = self._max_size
        return MeasurementResult(summaries=[SummaryFile(self.method, summary)])

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
