"""How `kubemark run` gets a master: `MasterLauncher` starts one (or adopts one), hands out its credentials and
names its processes for resource usage; `EmbeddedMasterLauncher` runs `kubemark master start` as a child.

A launcher is an async context manager yielding the running master as a `Cluster`:

    async with EmbeddedMasterLauncher(data_dir) as cluster:
        ...  # cluster.admin, cluster.node_credentials("n1"), cluster.pids

Another way to run a master (say, the real kube-apiserver, kube-controller-manager and kube-scheduler binaries)
is another `MasterLauncher` subclass. This module also holds what `kubemark master start` tells its launcher:
the ready line it prints (`ready_line`, `READY_PREFIX`) and the PIDs of its component processes, which it
writes to `<data-dir>/components.json` (`write_component_pids`, `read_component_pids`) once they are up, and
where the components' own /metrics are (`<data-dir>/component_metrics.json`, `write_component_metrics`,
`read_component_metrics`: kube-scheduler, kube-controller-manager and etcd on loopback, plain HTTP), which
clusterloader2's SchedulingMetrics, EtcdMetrics and MetricsForE2E read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from kubemark.client import ClusterCredentials, load_kubeconfig

if TYPE_CHECKING:
    from kubemark.master.pki import ClusterPKI

__all__ = [
    "COMPONENTS_FILE",
    "READY_PREFIX",
    "Cluster",
    "ComponentPids",
    "EmbeddedMasterLauncher",
    "ExternalMaster",
    "MasterLauncher",
    "MasterStartError",
    "read_component_metrics",
    "read_component_pids",
    "ready_line",
    "write_component_metrics",
    "write_component_pids",
]

log = logging.getLogger(__name__)

MASTER_READY_TIMEOUT = 120.0  # seconds for `kubemark master start` (etcd + PKI) to come up
STOP_TIMEOUT = 60.0  # seconds after SIGTERM before the master is killed
READY_PREFIX = "kubemark master ready at "  # `kubemark master start` prints this, then the URL, once serving
COMPONENTS_FILE = "components.json"  # in the master's data dir: its processes' PIDs by component
METRICS_FILE = "component_metrics.json"  # in the master's data dir: component name -> its /metrics URL
ADMIN_KUBECONFIG = "admin.kubeconfig"
LOG_FILE = "kube-apiserver.log"

# Component name -> PID, or for kube-apiserver the PIDs of all its processes (the first is the master's own).
ComponentPids = dict[str, int | tuple[int, ...]]


def ready_line(url: str, storage: str) -> str:
    """What `kubemark master start` prints once it serves (and its components run)."""
    return f"{READY_PREFIX}{url} ({storage} storage)"


def _publish(path: Path, doc: object) -> Path:
    """Write `doc` as JSON atomically (a reader never sees half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc) + "\n")
    tmp.replace(path)
    return path


def write_component_pids(data_dir: Path, pids: Mapping[str, int | tuple[int, ...]]) -> Path:
    """Publish the master's processes in `<data_dir>/components.json`."""
    return _publish(data_dir / COMPONENTS_FILE, {n: list(p) if isinstance(p, tuple) else p for n, p in pids.items()})


def write_component_metrics(data_dir: Path, urls: Mapping[str, str]) -> Path:
    """Publish the components' /metrics URLs (kube-scheduler, kube-controller-manager, etcd) beside their PIDs."""
    return _publish(data_dir / METRICS_FILE, dict(urls))


def read_component_metrics(data_dir: Path) -> dict[str, str]:
    """What `write_component_metrics` published; {} when nothing is."""
    try:
        raw = json.loads((data_dir / METRICS_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {str(name): str(url) for name, url in raw.items()}


def read_component_pids(data_dir: Path) -> ComponentPids:
    """What `write_component_pids` published; {} when nothing is (yet)."""
    try:
        raw = json.loads((data_dir / COMPONENTS_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {str(name): tuple(int(p) for p in pid) if isinstance(pid, list) else int(pid) for name, pid in raw.items()}


class MasterStartError(RuntimeError):
    """The master did not come up; the message has the tail of its output and log."""


@dataclass
class Cluster:
    """A running master as a run uses it."""

    admin: ClusterCredentials
    pids: ComponentPids  # for resource usage; {} when the master's processes are not ours to watch
    node_credentials: Callable[[str], ClusterCredentials]  # node name -> credentials of system:node:<name>
    embedded: bool  # started for this run (and gone with it), so its nodes and objects need no clean-up
    # node name -> credentials of its kube-proxy; None: the node's own (enough for the embedded master)
    proxy_credentials: Callable[[str], ClusterCredentials] | None = None
    # component (kube-scheduler, kube-controller-manager, etcd) -> its /metrics URL, where the master publishes it
    metrics_urls: dict[str, str] = field(default_factory=dict)


class MasterLauncher(ABC):
    """Starts a master, or adopts a running one, and stops it again: `async with launcher as cluster`."""

    embedded: bool = True  # whether the master is started for this run and goes away with it

    @abstractmethod
    async def start(self) -> None:
        """Bring the master up; returns once it serves requests (and its components run)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop what `start` started (also after a failed or partial start); a no-op when nothing runs."""

    @property
    @abstractmethod
    def admin(self) -> ClusterCredentials:
        """The running master's administrator credentials (system:masters)."""

    @abstractmethod
    def node_credentials(self, name: str) -> ClusterCredentials:
        """Credentials for node `name`: the user system:node:<name> in system:nodes, as a kubelet has."""

    @abstractmethod
    def component_pids(self) -> ComponentPids:
        """The master's processes by component (kube-apiserver, etcd, kube-scheduler, kube-controller-manager),
        for resource usage; kube-apiserver maps to all the API server's processes."""

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the master's log, for error reports ("" when there is none to show)."""
        return ""

    def component_metrics_urls(self) -> dict[str, str]:
        """Component -> /metrics URL a run can scrape without credentials; {} when none are published."""
        return {}

    def cluster(self) -> Cluster:
        return Cluster(
            self.admin,
            self.component_pids(),
            self.node_credentials,
            self.embedded,
            metrics_urls=self.component_metrics_urls(),
        )

    async def __aenter__(self) -> Cluster:
        await self.start()
        try:
            return self.cluster()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ExternalMaster(MasterLauncher):
    """A cluster someone else runs, named by a kubeconfig: nothing to start or stop, no processes to watch, and
    its nodes use the kubeconfig's own credentials."""

    embedded = False

    def __init__(self, kubeconfig: str | Path | None, context: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self._admin: ClusterCredentials | None = None

    async def start(self) -> None:
        self._admin = load_kubeconfig(self.kubeconfig, self.context)

    async def stop(self) -> None:
        pass

    @property
    def admin(self) -> ClusterCredentials:
        if self._admin is None:
            raise RuntimeError("the launcher is not started")
        return self._admin

    def node_credentials(self, name: str) -> ClusterCredentials:
        return self.admin

    def component_pids(self) -> ComponentPids:
        return {}


class EmbeddedMasterLauncher(MasterLauncher):
    """`python -m kubemark master start` as a child process on a free port, stopped with SIGTERM.

    The master gets its own event loop (and core), apart from the hollow nodes and the player, and its resource
    usage is its own. Its log (stderr) goes to `<data_dir>/kube-apiserver.log`; its stdout carries only the few
    status lines, the ready line first."""

    embedded = True

    def __init__(
        self,
        data_dir: Path,
        storage: str = "etcd",
        apiserver_workers: int = 1,
        *,
        ready_timeout: float = MASTER_READY_TIMEOUT,
    ) -> None:
        self.data_dir = data_dir
        self.storage = storage
        self.apiserver_workers = apiserver_workers
        self.ready_timeout = ready_timeout
        self.log_path = data_dir / LOG_FILE
        self.output: list[str] = []  # the last lines of its stdout
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self._admin: ClusterCredentials | None = None
        self._pki: ClusterPKI | None = None
        self._pids: ComponentPids = {}

    @property
    def pid(self) -> int | None:
        """The master process (the primary API server), while started."""
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "kubemark", "master", "start", "--data-dir", str(self.data_dir), "--port", "0"]
        cmd += ["--storage", self.storage, "--unsafe-no-fsync"]  # a throw-away cluster: etcd fsync is not measured
        cmd += ["--apiserver-workers", str(self.apiserver_workers)]
        return cmd

    async def start(self) -> None:
        from kubemark.master.pki import ClusterPKI

        # Its log goes to a file: through a pipe, a burst of log lines while this busy process drains it late
        # would block the API server's event loop on write.
        with _append(self.log_path) as log_file:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdout=asyncio.subprocess.PIPE, stderr=log_file, stdin=asyncio.subprocess.DEVNULL
            )
        try:
            await asyncio.wait_for(self._wait_ready(), self.ready_timeout)
            self._drain = asyncio.create_task(self._keep_reading())
            self._admin = load_kubeconfig(self.data_dir / ADMIN_KUBECONFIG)
            self._pki = ClusterPKI.load_or_create(self.data_dir / "pki")
            self._pids = self._published_pids(self._proc.pid)
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := (await self._proc.stdout.readline()).decode(errors="replace"):
            self.output.append(line)
            if READY_PREFIX in line:
                return
        raise MasterStartError(
            "the embedded master exited before it was ready:\n" + "".join(self.output[-30:]) + self.log_tail()
        )

    async def _keep_reading(self) -> None:
        # Keep its pipe drained (a full pipe would block the master) and the tail for error reports.
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            self.output.append(line.decode(errors="replace"))
            del self.output[:-200]

    def _published_pids(self, master_pid: int) -> ComponentPids:
        """The master is the (primary) API server; etcd, the scheduler, the controller manager and the other API
        server processes are its children, which it lists in components.json before it prints the ready line."""
        pids = read_component_pids(self.data_dir)
        if not pids:
            log.warning("the master published no %s; resource usage covers its own process only", COMPONENTS_FILE)
            return {"kube-apiserver": (master_pid,)}
        apiserver = pids.get("kube-apiserver", ())
        if not isinstance(apiserver, tuple) or master_pid not in apiserver:
            raise MasterStartError(f"{self.data_dir / COMPONENTS_FILE} is not this master's (pid {master_pid})")
        return pids

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "".join(text.splitlines(keepends=True)[-lines:])

    @property
    def admin(self) -> ClusterCredentials:
        if self._admin is None:
            raise RuntimeError("the master is not running")
        return self._admin

    def node_credentials(self, name: str) -> ClusterCredentials:
        # Each hollow node authenticates as system:node:<name>, as kubelets do (NodeRestriction applies).
        if self._pki is None:
            raise RuntimeError("the master is not running")
        cert, key = self._pki.node_credentials(name)
        return ClusterCredentials(server=self.admin.server, ca_pem=self._pki.ca_pem, cert_pem=cert, key_pem=key)

    def component_pids(self) -> ComponentPids:
        return dict(self._pids)

    def component_metrics_urls(self) -> dict[str, str]:
        return read_component_metrics(self.data_dir)

    async def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        drain, self._drain = self._drain, None
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


def _append(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")
