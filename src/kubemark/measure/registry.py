"""The measurement Methods a test config can name, by name: one line per measurement.

Adding a measurement is a module in `kubemark.measure.methods` with a class that follows the `Measurement`
protocol, and its line here; config validation reads this table, so an unknown name fails before a cluster starts.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubemark.measure.measurement import Measurement
from kubemark.measure.methods.api_responsiveness import APIResponsiveness, APIResponsivenessPrometheus
from kubemark.measure.methods.pod_startup_latency import PodStartupLatency
from kubemark.measure.methods.resource_usage_summary import ResourceUsageSummary
from kubemark.measure.methods.scheduling_throughput import SchedulingThroughput
from kubemark.measure.methods.sleep import Sleep
from kubemark.measure.methods.wait_for_controlled_pods import WaitForControlledPodsRunning
from kubemark.measure.methods.wait_for_finished_jobs import WaitForFinishedJobs

__all__ = ["MEASUREMENTS"]

MEASUREMENTS: Mapping[str, type[Measurement]] = {
    "PodStartupLatency": PodStartupLatency,
    "WaitForControlledPodsRunning": WaitForControlledPodsRunning,
    "WaitForFinishedJobs": WaitForFinishedJobs,
    "SchedulingThroughput": SchedulingThroughput,
    "APIResponsivenessPrometheus": APIResponsivenessPrometheus,
    "APIResponsiveness": APIResponsiveness,
    "ResourceUsageSummary": ResourceUsageSummary,
    "Sleep": Sleep,
}
