"""`ControllerManager`: the kube-controller-manager of the embedded master, on one set of shared informers.

`run_controllers(kubeconfig, ...)` is the CLI entry (`kubemark master controllers --kubeconfig K`): it builds
a client with kube-controller-manager's defaults (qps 20, burst 30), runs the enabled controllers until
cancelled, and serves the workqueue metrics on an optional /metrics port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest

from kubemark.client import RestClient, load_kubeconfig
from kubemark.master.controllers.base import Controller, SharedInformers
from kubemark.master.controllers.daemonset import DaemonSetController
from kubemark.master.controllers.deployment import DeploymentController
from kubemark.master.controllers.disruption import DisruptionController
from kubemark.master.controllers.endpoints import EndpointsController
from kubemark.master.controllers.endpointslice import MAX_ENDPOINTS_PER_SLICE, EndpointSliceController
from kubemark.master.controllers.garbagecollector import GarbageCollector
from kubemark.master.controllers.ipam import DEFAULT_CLUSTER_CIDR, DEFAULT_NODE_MASK, NodeIpamController
from kubemark.master.controllers.job import JobController
from kubemark.master.controllers.namespace import NamespaceController
from kubemark.master.controllers.nodelifecycle import NodeLifecycleController, NodeLifecycleOptions
from kubemark.master.controllers.persistentvolume import (
    PV_CLAIM_BINDER_SYNC_PERIOD,
    HollowProvisioner,
    PersistentVolumeController,
)
from kubemark.master.controllers.podgc import GC_CHECK_PERIOD, TERMINATED_POD_GC_THRESHOLD, PodGCController
from kubemark.master.controllers.replicaset import REPLICATION_CONTROLLER, ReplicaSetController
from kubemark.master.controllers.serviceaccount import ServiceAccountController
from kubemark.master.controllers.statefulset import StatefulSetController
from kubemark.master.controllers.workqueue import QueueMetrics
from kubemark.metrics_endpoint import MetricsEndpoint

log = logging.getLogger(__name__)

ALL_CONTROLLERS = (
    "replicaset",
    "replicationcontroller",
    "deployment",
    "garbagecollector",
    "namespace",
    "serviceaccount",
    "nodelifecycle",
    "nodeipam",
    "endpoint",
    "endpointslice",
    "job",
    "podgc",
    "statefulset",
    "daemonset",
    "disruption",
    "persistentvolume-binder",
    # Not kube-controller-manager's: the hollow CSI driver's external-provisioner, for the default class.
    "hollow-provisioner",
)


@dataclass(frozen=True)
class ControllerOptions:
    """kube-controller-manager flags that matter here (defaults as upstream)."""

    concurrent_replicaset_syncs: int = 5
    concurrent_rc_syncs: int = 5
    concurrent_deployment_syncs: int = 5
    concurrent_gc_syncs: int = 20
    concurrent_namespace_syncs: int = 10
    concurrent_serviceaccount_syncs: int = 1
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    node_startup_grace_period: float = 60.0
    allocate_node_cidrs: bool = True
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    node_cidr_mask_size: int = DEFAULT_NODE_MASK
    concurrent_endpoint_syncs: int = 5
    concurrent_service_endpoint_syncs: int = 5
    max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE
    concurrent_job_syncs: int = 5
    concurrent_statefulset_syncs: int = 5
    concurrent_daemonset_syncs: int = 2
    terminated_pod_gc_threshold: int = TERMINATED_POD_GC_THRESHOLD
    pod_gc_period: float = GC_CHECK_PERIOD
    pvclaimbinder_sync_period: float = PV_CLAIM_BINDER_SYNC_PERIOD
    extra: dict[str, object] = field(default_factory=dict)


Factory = Callable[[RestClient, SharedInformers, ControllerOptions, QueueMetrics | None], Controller]

FACTORIES: dict[str, Factory] = {
    "replicaset": lambda c, i, o, m: ReplicaSetController(c, i, workers=o.concurrent_replicaset_syncs, metrics=m),
    "replicationcontroller": lambda c, i, o, m: ReplicaSetController(
        c, i, kind=REPLICATION_CONTROLLER, workers=o.concurrent_rc_syncs, metrics=m
    ),
    "deployment": lambda c, i, o, m: DeploymentController(c, i, workers=o.concurrent_deployment_syncs, metrics=m),
    "garbagecollector": lambda c, i, o, m: GarbageCollector(c, i, workers=o.concurrent_gc_syncs, metrics=m),
    "namespace": lambda c, i, o, m: NamespaceController(c, i, workers=o.concurrent_namespace_syncs, metrics=m),
    "serviceaccount": lambda c, i, o, m: ServiceAccountController(
        c, i, workers=o.concurrent_serviceaccount_syncs, metrics=m
    ),
    "nodelifecycle": lambda c, i, o, m: NodeLifecycleController(
        c,
        i,
        options=NodeLifecycleOptions(
            monitor_period=o.node_monitor_period,
            grace_period=o.node_monitor_grace_period,
            startup_grace_period=o.node_startup_grace_period,
        ),
        metrics=m,
    ),
    "nodeipam": lambda c, i, o, m: NodeIpamController(
        c, i, cluster_cidr=o.cluster_cidr, node_mask=o.node_cidr_mask_size, metrics=m
    ),
    "endpoint": lambda c, i, o, m: EndpointsController(c, i, workers=o.concurrent_endpoint_syncs, metrics=m),
    "endpointslice": lambda c, i, o, m: EndpointSliceController(
        c, i, workers=o.concurrent_service_endpoint_syncs, max_endpoints_per_slice=o.max_endpoints_per_slice, metrics=m
    ),
    "job": lambda c, i, o, m: JobController(c, i, workers=o.concurrent_job_syncs, metrics=m),
    "statefulset": lambda c, i, o, m: StatefulSetController(c, i, workers=o.concurrent_statefulset_syncs, metrics=m),
    "daemonset": lambda c, i, o, m: DaemonSetController(c, i, workers=o.concurrent_daemonset_syncs, metrics=m),
    "disruption": lambda c, i, o, m: DisruptionController(c, i, metrics=m),
    "persistentvolume-binder": lambda c, i, o, m: PersistentVolumeController(
        c, i, resync_period=o.pvclaimbinder_sync_period, metrics=m
    ),
    "hollow-provisioner": lambda c, i, o, m: HollowProvisioner(c, i, metrics=m),
    "podgc": lambda c, i, o, m: PodGCController(
        c, i, period=o.pod_gc_period, terminated_pod_gc_threshold=o.terminated_pod_gc_threshold, metrics=m
    ),
}


class ControllerManager:
    """Runs a set of controllers (all by default) over one SharedInformers."""

    def __init__(
        self,
        client: RestClient,
        *,
        enabled: set[str] | None = None,
        options: ControllerOptions | None = None,
        registry: CollectorRegistry | None = None,
        controller_qps: tuple[float, int] | None = None,
    ) -> None:
        """`controller_qps` = (qps, burst) gives every controller its own client with that rate limit, as
        kube-controller-manager's client builder does (its flags set each controller's limit, not a shared
        one); None shares `client` and its limiter between all controllers."""
        self.client = client
        self.options = options or ControllerOptions()
        names = set(ALL_CONTROLLERS) if enabled is None else set(enabled)
        if not self.options.allocate_node_cidrs:
            names.discard("nodeipam")
        unknown = names - set(FACTORIES)
        if unknown:
            raise ValueError(f"unknown controllers: {sorted(unknown)}; known: {list(ALL_CONTROLLERS)}")
        self.registry = registry
        self.metrics = QueueMetrics(registry) if registry is not None else None
        self.informers = SharedInformers(client)
        self._own_clients: list[RestClient] = []
        self.controllers: dict[str, Controller] = {}
        for name in ALL_CONTROLLERS:
            if name not in names:
                continue
            controller_client = client
            if controller_qps is not None:
                qps, burst = controller_qps
                controller_client = client.sibling(qps=qps, burst=burst, user_agent=f"kube-controller-manager/{name}")
                self._own_clients.append(controller_client)
            self.controllers[name] = FACTORIES[name](controller_client, self.informers, self.options, self.metrics)

    async def start(self) -> None:
        self.informers.start()
        for controller in self.controllers.values():
            controller.start()

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract
        results = await asyncio.gather(*(c.wait_synced(timeout) for c in self.controllers.values()))
        return all(results)

    async def stop(self) -> None:
        for controller in self.controllers.values():
            await controller.stop()
        await self.informers.stop()
        for client in self._own_clients:
            await client.close()

    async def __aenter__(self) -> ControllerManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_controllers(
    kubeconfig: str | None = None,
    *,
    context: str | None = None,
    enabled: set[str] | None = None,
    options: ControllerOptions | None = None,
    qps: float = 20.0,
    burst: int = 30,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the controller manager against the cluster in `kubeconfig` until `stop` is set (or cancelled)."""
    creds = load_kubeconfig(kubeconfig, context=context)
    registry = CollectorRegistry()
    # Informers share this client; each controller gets its own qps/burst budget, as upstream.
    client = RestClient(creds, qps=qps, burst=burst, user_agent="kube-controller-manager/kubemark")
    endpoint = MetricsEndpoint(lambda: generate_latest(registry), metrics_host, metrics_port or 0, "controller-manager")
    manager = ControllerManager(
        client, enabled=enabled, options=options, registry=registry, controller_qps=(qps, burst)
    )
    try:
        if metrics_port is not None:
            await endpoint.start()
        await manager.start()
        log.info("controller manager running: %s", ", ".join(manager.controllers))
        await (stop or asyncio.Event()).wait()
    finally:
        await manager.stop()
        await endpoint.stop()
        await client.close()
