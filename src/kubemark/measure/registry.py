"""The measurement Methods a test config can name, by name: every clusterloader2 measurement kubemark accepts.

Implemented ones are classes in `kubemark.measure.methods`; the ones that cannot mean anything on hollow nodes
(`catalog.NOT_MEASURED_HERE`) are accepted and report "not measured here" instead of a number. Config
validation reads this table, so an unknown name fails before a cluster starts (and `catalog.NOT_YET` names are
refused as clusterloader2 measurements kubemark does not run yet).
"""

from __future__ import annotations

from collections.abc import Mapping

from kubemark.measure.catalog import NOT_MEASURED_HERE
from kubemark.measure.measurement import Measurement
from kubemark.measure.methods.api_availability import APIAvailability
from kubemark.measure.methods.api_responsiveness import (
    APICallLatency,
    APIResponsiveness,
    APIResponsivenessPrometheus,
)
from kubemark.measure.methods.chaos_monkey import ChaosMonkeyMeasurement
from kubemark.measure.methods.container_restarts import ContainerRestarts
from kubemark.measure.methods.etcd_metrics import EtcdMetrics
from kubemark.measure.methods.job_lifecycle_latency import JobLifecycleLatency
from kubemark.measure.methods.kcm_workqueue_depth import KCMWorkQueueDepthMetrics
from kubemark.measure.methods.metrics_for_e2e import MetricsForE2E
from kubemark.measure.methods.network_programming_latency import NetworkProgrammingLatency
from kubemark.measure.methods.node_health_tracker import NodeHealthTracker
from kubemark.measure.methods.not_measured import not_measured_here
from kubemark.measure.methods.objects_periodic_updates import ObjectsPeriodicUpdates
from kubemark.measure.methods.periodic_pod_list import PeriodicPodList
from kubemark.measure.methods.pod_startup_latency import PodStartupLatency
from kubemark.measure.methods.resource_usage_summary import ResourceUsageSummary
from kubemark.measure.methods.scheduling_metrics import SchedulingMetrics
from kubemark.measure.methods.scheduling_throughput import SchedulingThroughput
from kubemark.measure.methods.sleep import Sleep
from kubemark.measure.methods.system_pod_metrics import SystemPodMetrics
from kubemark.measure.methods.test_metrics import TestMetrics
from kubemark.measure.methods.timer import Timer
from kubemark.measure.methods.wait_for_controlled_pods import WaitForControlledPodsRunning
from kubemark.measure.methods.wait_for_finished_jobs import WaitForFinishedJobs
from kubemark.measure.methods.wait_for_generic_k8s_objects import WaitForGenericK8sObjects
from kubemark.measure.methods.wait_for_nodes import WaitForNodes
from kubemark.measure.methods.wait_for_pvcs import WaitForBoundPVCs
from kubemark.measure.methods.wait_for_pvs import WaitForAvailablePVs
from kubemark.measure.methods.wait_for_running_pods import WaitForRunningPods

__all__ = ["IMPLEMENTED", "MEASUREMENTS"]

IMPLEMENTED: Mapping[str, type[Measurement]] = {
    "PodStartupLatency": PodStartupLatency,
    "WaitForControlledPodsRunning": WaitForControlledPodsRunning,
    "WaitForFinishedJobs": WaitForFinishedJobs,
    "WaitForRunningPods": WaitForRunningPods,
    "WaitForNodes": WaitForNodes,
    "WaitForGenericK8sObjects": WaitForGenericK8sObjects,
    "WaitForBoundPVCs": WaitForBoundPVCs,
    "WaitForAvailablePVs": WaitForAvailablePVs,
    "SchedulingThroughput": SchedulingThroughput,
    "APIResponsivenessPrometheus": APIResponsivenessPrometheus,
    "APIResponsiveness": APIResponsiveness,
    "ResourceUsageSummary": ResourceUsageSummary,
    "Sleep": Sleep,
    "TestMetrics": TestMetrics,
    "EtcdMetrics": EtcdMetrics,
    "SchedulingMetrics": SchedulingMetrics,
    "MetricsForE2E": MetricsForE2E,
    "SystemPodMetrics": SystemPodMetrics,
    "JobLifecycleLatency": JobLifecycleLatency,
    "ContainerRestarts": ContainerRestarts,
    "NetworkProgrammingLatency": NetworkProgrammingLatency,
    "APIAvailability": APIAvailability,
    "NodeHealthTracker": NodeHealthTracker,
    "PeriodicPodList": PeriodicPodList,
    "Timer": Timer,
    "KCMWorkQueueDepthMetrics": KCMWorkQueueDepthMetrics,
    "ChaosMonkey": ChaosMonkeyMeasurement,
    "APICallLatency": APICallLatency,
    "ObjectsPeriodicUpdates": ObjectsPeriodicUpdates,
}

MEASUREMENTS: Mapping[str, type[Measurement]] = {
    **IMPLEMENTED,
    **{method: not_measured_here(method, reason) for method, reason in NOT_MEASURED_HERE.items()},
}
