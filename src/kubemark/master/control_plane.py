"""`ControlPlane`: the embedded master as one unit — PKI, the filter chain, metrics and the API server.

This is what `kubemark master start` runs and what tests and `kubemark run` start in-process. The API server
is secure by default (TLS, client certificates or bearer tokens, node authorization); `insecure_http` serves
plain HTTP on loopback with every caller treated as an administrator, for speed experiments only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry, generate_latest

from kubemark.client import RestClient, load_kubeconfig
from kubemark.master.apiserver.auth import Authenticator, Authorizer
from kubemark.master.apiserver.filters import build_filters, metrics_route
from kubemark.master.apiserver.flowcontrol import PriorityAndFairness
from kubemark.master.apiserver.inflight import InflightLimiter
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.request_info import UserInfo
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.apiserver.service_account_tokens import ServiceAccountTokens
from kubemark.master.child_process import ComponentProcess, free_port
from kubemark.master.controllers.manager import ControllerOptions
from kubemark.master.launcher import (
    COMPONENTS_FILE,
    METRICS_FILE,
    ComponentPids,
    write_component_metrics,
    write_component_pids,
)
from kubemark.master.pki import ClusterPKI, write_kubeconfig
from kubemark.metrics_endpoint import MetricsEndpoint

log = logging.getLogger(__name__)

ADMIN_KUBECONFIG = "admin.kubeconfig"
DEFAULT_MAX_REQUESTS_INFLIGHT = 120
DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT = 80
# Each component talks to the API server as itself (as kubeadm sets them up), so API Priority and Fairness
# classifies it as upstream does (workload-high, leader-election) instead of exempting it as a system:master.
COMPONENT_USERS = {"controller-manager": "system:kube-controller-manager", "scheduler": "system:kube-scheduler"}
# Component processes by the names resource usage reports them under (kube-scheduler's, not "scheduler").
COMPONENT_NAMES = {"controller-manager": "kube-controller-manager", "scheduler": "kube-scheduler"}
TOKEN_FILE = "admin.token"


@dataclass
class ControlPlaneConfig:
    """How to run the embedded master."""

    data_dir: Path
    storage: Literal["etcd", "memory"] = "etcd"
    host: str = "127.0.0.1"
    port: int = 6443
    insecure_http: bool = False
    etcd_binary: str | None = None
    unsafe_no_fsync: bool = False
    # Per API server process. Upstream's 400 + 200 size a multi-core Go server; one event loop runs out of CPU
    # long before 600 requests execute at once, and extra seats only stretch every executing request's latency
    # (Little's law) instead of leaving the excess queued by priority level, where upstream's overload control
    # puts it. 200 seats (kubelets' level "system": 25) keep ~450 writes/s flowing at ~0.2 s each; with 100 the
    # kubelets' level was bound by its seats (13 x ~0.1 s) while the CPU had room.
    max_requests_inflight: int = DEFAULT_MAX_REQUESTS_INFLIGHT
    max_mutating_requests_inflight: int = DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT
    # API Priority and Fairness (kube-apiserver's default) over the sum of both limits; False: max-in-flight.
    enable_priority_and_fairness: bool = True
    compaction_interval: float = 300.0
    scheduler: bool = True
    controllers: bool = True
    # kube-controller-manager settings (node-monitor periods, CIDRs, ...); None: upstream defaults.
    controller_options: ControllerOptions | None = None
    # Scheduler and controller manager as child processes (`kubemark master scheduler|controllers`), each with
    # its own event loop and core, as the real components run; False: in this process (tests, small runs).
    component_processes: bool = False
    # API server processes serving one port (SO_REUSEPORT) over one etcd, "one event loop per core"; etcd only.
    # This process is the primary (etcd, compaction, components); the others are `master apiserver-worker`.
    apiserver_workers: int = 1
    # Set for a worker: the etcd to use, its index among the API server processes, and the private /metrics
    # URLs of all of them (its own at worker_index), which every process merges into its public /metrics.
    etcd_endpoint: str | None = None
    worker_index: int = 0
    peer_metrics: tuple[str, ...] = ()


class ControlPlane:
    """The embedded master. `start()` writes `<data_dir>/admin.kubeconfig`; restarting on the same data dir
    keeps every object (etcd storage), the CA and the credentials."""

    def __init__(self, config: ControlPlaneConfig) -> None:
        self.config = config
        self.metrics = APIServerMetrics()
        self.pki: ClusterPKI | None = None
        self.apiserver: APIServer | None = None
        self.scheduler: Any = None
        self.controller_manager: Any = None
        self._clients: list[RestClient] = []
        self._endpoints: list[MetricsEndpoint] = []
        self.processes: list[ComponentProcess] = []
        self.workers: list[ComponentProcess] = []
        # component -> URL of its /metrics (the API server's own is at <url>/metrics)
        self.component_metrics: dict[str, str] = {}

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / ADMIN_KUBECONFIG

    @property
    def url(self) -> str:
        if self.apiserver is None:
            raise RuntimeError("the control plane is not running")
        return self.apiserver.url

    @property
    def primary(self) -> bool:
        return self.config.worker_index == 0

    async def start(self) -> None:
        cfg = self.config
        if cfg.apiserver_workers > 1 and cfg.storage != "etcd":
            raise ValueError("several API server processes need etcd storage (memory storage is per process)")
        port, peers = cfg.port, cfg.peer_metrics
        if self.primary and cfg.apiserver_workers > 1:
            # The workers must bind the same port and find each other's metrics: choose them all up front.
            port = port or free_port(cfg.host)
            peers = tuple(f"http://127.0.0.1:{free_port()}/metrics" for _ in range(cfg.apiserver_workers))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        limiter: InflightLimiter | PriorityAndFairness
        if cfg.enable_priority_and_fairness:
            server_limit = cfg.max_requests_inflight + cfg.max_mutating_requests_inflight
            limiter = PriorityAndFairness(server_limit, metrics=self.metrics)
        else:
            limiter = InflightLimiter(
                cfg.max_requests_inflight, cfg.max_mutating_requests_inflight, metrics=self.metrics
            )
        ssl_context = None
        authenticator = authorizer = None
        sa_tokens = None
        if not cfg.insecure_http:
            self.pki = ClusterPKI.load_or_create(self.data_dir / "pki", hosts=_serving_hosts(cfg.host))
            ssl_context = self.pki.server_ssl_context()
            # Service-account tokens (TokenRequest) are signed with the PKI's sa.key and verified against it.
            sa_tokens = ServiceAccountTokens(self.pki.service_account_key)
            authenticator = Authenticator(
                {self._admin_token(): UserInfo("kubernetes-admin", ("system:masters",))},
                token_authenticators=(sa_tokens.authenticate,),
            )
            # The components' identities may do anything (upstream: their bootstrap ClusterRoles); everyone else
            # is authorized by the Node rules and RBAC (Authorizer.rbac, fed from the API server's caches).
            authorizer = Authorizer(superuser_names=COMPONENT_USERS.values())
        filters = build_filters(
            authenticator=authenticator, authorizer=authorizer, metrics=self.metrics, limiter=limiter
        )
        self.apiserver = APIServer(
            APIServerConfig(
                storage=cfg.storage,
                data_dir=self.data_dir / "etcd",
                host=cfg.host,
                port=port,
                etcd_binary=cfg.etcd_binary,
                unsafe_no_fsync=cfg.unsafe_no_fsync,
                etcd_endpoint=cfg.etcd_endpoint,
                ssl_context=ssl_context,
                middlewares=filters,
                extra_routes=[
                    metrics_route(self.metrics, peers=[u for i, u in enumerate(peers) if i != cfg.worker_index])
                ],
                metrics=self.metrics,
                object_authorizer=authorizer.authorize_object if authorizer is not None else None,
                node_graph=authorizer.node_graph if authorizer is not None else None,
                rbac=authorizer.rbac if authorizer is not None else None,
                rbac_write_authorizer=authorizer.authorize_rbac_write if authorizer is not None else None,
                access_check=authorizer.authorize if authorizer is not None else None,
                service_account_tokens=sa_tokens,
                compaction_interval=cfg.compaction_interval,
                reuse_port=len(peers) > 1,
                primary=self.primary,
                worker_index=cfg.worker_index,
                worker_count=max(1, len(peers)),
            )
        )
        await self.apiserver.start()
        try:
            if len(peers) > 1:
                # This process's own metrics, for the others to merge (plain HTTP on loopback, a private port).
                own = int(peers[cfg.worker_index].rsplit(":", 1)[1].split("/", 1)[0])
                endpoint = MetricsEndpoint(lambda: self.metrics.render()[0], "127.0.0.1", own, name="apiserver")
                await endpoint.start()
                self._endpoints.append(endpoint)
            if not self.primary:
                return
            self._write_admin_kubeconfig()
            await self._start_workers(peers)
            await self._start_components()
            # For whoever started this master (`kubemark run`): which processes are its components, and where
            # their /metrics are.
            write_component_pids(self.data_dir, self.component_pids())
            write_component_metrics(self.data_dir, self.published_metrics())
        except BaseException:
            await self.stop()
            raise
        log.info("control plane ready at %s; kubeconfig %s", self.url, self.kubeconfig_path)

    async def _start_workers(self, peers: tuple[str, ...]) -> None:
        """The other API server processes (`kubemark master apiserver-worker`), on this one's port and etcd."""
        cfg = self.config
        assert self.apiserver is not None
        for index in range(1, len(peers)):
            args = ["master", "apiserver-worker", "--data-dir", str(self.data_dir), "--host", cfg.host]
            args += ["--port", str(self.apiserver.port), "--etcd-endpoint", str(self.apiserver.etcd_endpoint)]
            args += ["--worker-index", str(index), *(f"--peer-metrics={url}" for url in peers)]
            args += ["--max-requests-inflight", str(cfg.max_requests_inflight)]
            args += ["--max-mutating-requests-inflight", str(cfg.max_mutating_requests_inflight)]
            if not cfg.enable_priority_and_fairness:
                args.append("--no-enable-priority-and-fairness")
            if cfg.insecure_http:
                args.append("--insecure-http")
            name = f"apiserver-{index}"
            self.workers.append(ComponentProcess(name, args, peers[index], self.data_dir / f"{name}.log"))
        await asyncio.gather(*(w.start() for w in self.workers))

    async def _start_components(self) -> None:
        """Scheduler and controllers, each with its own client of the public API, as the real ones run."""
        if self.config.component_processes:
            await self._start_component_processes()
            return
        if self.config.controllers:
            creds = load_kubeconfig(self._component_kubeconfig("controller-manager"))
            from kubemark.master.controllers.manager import ControllerManager

            # Kubernetes' scalability jobs run kube-controller-manager with --kube-api-qps=100 --kube-api-burst=100
            # (the upstream defaults, 20/30, throttle density tests); each controller has its own limit.
            client = RestClient(creds, qps=100, burst=100, user_agent="kube-controller-manager/kubemark")
            self._clients.append(client)
            registry = CollectorRegistry()
            self.controller_manager = ControllerManager(
                client, options=self.config.controller_options, controller_qps=(100, 100), registry=registry
            )
            await self.controller_manager.start()
            # Its own /metrics (workqueue depth, latency, retries), as kube-controller-manager serves on :10257.
            endpoint = MetricsEndpoint(
                lambda: generate_latest(registry), self.config.host, 0, name="controller-manager"
            )
            await endpoint.start()
            self._endpoints.append(endpoint)
            self.component_metrics["controller-manager"] = endpoint.url
        if self.config.scheduler:
            from kubemark.master.scheduler.scheduler import Scheduler

            creds = load_kubeconfig(self._component_kubeconfig("scheduler"))
            # kube-scheduler's client defaults (50/100) are also what scalability jobs use.
            client = RestClient(creds, qps=50, burst=100, user_agent="kube-scheduler/kubemark")
            # Events go through a client (and rate limit) of their own, as kube-scheduler's createClients does.
            event_client = RestClient(creds, qps=50, burst=100, user_agent="kube-scheduler/kubemark")
            self._clients += [client, event_client]
            self.scheduler = Scheduler(client, event_client=event_client, metrics_host=self.config.host, metrics_port=0)
            await self.scheduler.start()
            self.component_metrics["scheduler"] = f"http://{self.config.host}:{self.scheduler.metrics_port}/metrics"

    async def _start_component_processes(self) -> None:
        cfg = self.config
        wanted: list[tuple[str, list[str]]] = []
        if cfg.controllers:
            kubeconfig = ["--kubeconfig", str(self._component_kubeconfig("controller-manager"))]
            grace = (cfg.controller_options or ControllerOptions()).node_monitor_grace_period
            # --kube-api-qps/burst 100: Kubernetes' scalability jobs' setting (see _start_components).
            args = ["master", "controllers", *kubeconfig, "--kube-api-qps", "100", "--kube-api-burst", "100"]
            wanted.append(("controller-manager", [*args, "--node-monitor-grace-period", str(grace)]))
        if cfg.scheduler:
            kubeconfig = ["--kubeconfig", str(self._component_kubeconfig("scheduler"))]
            wanted.append(("scheduler", ["master", "scheduler", *kubeconfig]))
        for name, args in wanted:
            port = free_port(cfg.host)
            url = f"http://{cfg.host}:{port}/metrics"
            process = ComponentProcess(name, [*args, "--metrics-port", str(port)], url, self.data_dir / f"{name}.log")
            self.processes.append(process)
            self.component_metrics[name] = url
        # Started together (each waits for its own /metrics); a failure stops them all via start()'s cleanup.
        await asyncio.gather(*(p.start() for p in self.processes))

    def published_metrics(self) -> dict[str, str]:
        """Component -> /metrics URL under the names measurements use (kube-scheduler, kube-controller-manager,
        etcd: an etcd this master runs serves /metrics on its client URL)."""
        urls = {COMPONENT_NAMES.get(name, name): url for name, url in self.component_metrics.items()}
        etcd = self.apiserver.etcd if self.apiserver is not None else None
        if etcd is not None:
            urls["etcd"] = f"{etcd.client_url}/metrics"
        return urls

    def component_pids(self) -> ComponentPids:
        """This master's processes by component, for resource usage: under kube-apiserver this process and its
        other API server processes, then etcd, kube-scheduler and kube-controller-manager when each runs as a
        process of its own (in-process components are part of kube-apiserver's). Published in
        `<data_dir>/components.json` once all are up."""
        pids: ComponentPids = {"kube-apiserver": (os.getpid(), *(w.pid for w in self.workers if w.pid is not None))}
        etcd = self.apiserver.etcd if self.apiserver is not None else None
        if etcd is not None and etcd.pid is not None:
            pids["etcd"] = int(etcd.pid)
        for process in self.processes:
            if process.pid is not None:
                pids[COMPONENT_NAMES.get(process.name, process.name)] = process.pid
        return pids

    async def stop(self) -> None:
        if self.primary:
            for published in (COMPONENTS_FILE, METRICS_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (self.data_dir / published).unlink()
        for process in reversed(self.processes):
            await process.stop()
        self.processes.clear()
        await asyncio.gather(*(w.stop() for w in self.workers))
        self.workers.clear()
        for endpoint in self._endpoints:
            await endpoint.stop()
        self._endpoints.clear()
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        if self.controller_manager is not None:
            await self.controller_manager.stop()
            self.controller_manager = None
        for client in self._clients:
            await client.close()
        self._clients.clear()
        if self.apiserver is not None:
            await self.apiserver.stop()
            self.apiserver = None

    async def __aenter__(self) -> ControlPlane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def node_kubeconfig(self, node_name: str) -> dict[str, Any]:
        """A kubeconfig (as a dict) for hollow node `node_name`: user system:node:<name> in system:nodes."""
        if self.pki is None:
            return _insecure_kubeconfig(self.url)
        return self.pki.node_kubeconfig(node_name, server=self.url)

    def _admin_token(self) -> str:
        """A bearer token for the admin, kept beside the PKI (for clients that cannot use certificates)."""
        path = self.data_dir / "pki" / TOKEN_FILE
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(32)
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token

    def _component_kubeconfig(self, component: str) -> Path:
        """`<data_dir>/<component>.kubeconfig` with a client certificate for the component's own user."""
        if self.pki is None:
            return self.kubeconfig_path  # no authentication: everyone is the unsecured admin
        path = self.data_dir / f"{component}.kubeconfig"
        cert, key = self.pki.issue_client_cert(COMPONENT_USERS[component])
        write_kubeconfig(path, server=self.url, ca_pem=self.pki.ca_pem, cert_pem=cert, key_pem=key, user=component)
        return path

    def _write_admin_kubeconfig(self) -> None:
        if self.pki is not None:
            self.pki.write_admin_kubeconfig(self.kubeconfig_path, server=self.url)
        else:
            write_kubeconfig(self.kubeconfig_path, server=self.url, ca_pem=None)


def _serving_hosts(host: str) -> tuple[str, ...]:
    hosts = ["127.0.0.1", "localhost", "::1"]
    if host not in hosts and host not in ("0.0.0.0", "::"):
        hosts.append(host)
    return tuple(hosts)


def _insecure_kubeconfig(server: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubemark", "cluster": {"server": server}}],
        "users": [{"name": "kubemark", "user": {}}],
        "contexts": [{"name": "kubemark", "context": {"cluster": "kubemark", "user": "kubemark"}}],
        "current-context": "kubemark",
    }
