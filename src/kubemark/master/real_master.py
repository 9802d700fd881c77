"""The real control plane on one machine: etcd plus the real kube-apiserver, kube-controller-manager and
kube-scheduler binaries, set up as kubeadm would (the Kubemark guide's start-kubemark, on loopback).

`RealControlPlane` starts and stops the processes; `kubemark master start --master real` runs it in the
foreground and `RealMasterLauncher` runs that command for `kubemark run --master real`. The data dir has the
embedded master's layout, so `admin.kubeconfig`, `components.json` and `kubemark master node-kubeconfig` work
for both:

    pki/                 CA, apiserver serving cert, admin cert (ClusterPKI), plus sa.key/sa.pub (service accounts)
                         and front-proxy-ca.crt, front-proxy-client.{crt,key} (request-header authentication)
    etcd/                etcd's data and etcd.log
    admin.kubeconfig     kubernetes-admin (system:masters)
    controller-manager.kubeconfig, scheduler.kubeconfig   system:kube-controller-manager, system:kube-scheduler
    kube-apiserver.log, kube-controller-manager.log, kube-scheduler.log, master.log (the supervisor's own)
    components.json      PIDs by component, for resource usage
    certs/, flexvolume/  the components' self-signed serving certs; kube-controller-manager's (empty) plugin dir

Every address is on loopback. The service and cluster CIDRs are only numbers written into objects: nothing routes
to them. Binaries come from `--kube-binaries DIR`, else the cache `scripts/kube-binaries.sh` builds into, else PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubemark.client import ClusterCredentials
from kubemark.master.child_process import ChildProcess, free_port, terminate_with_parent
from kubemark.master.launcher import (
    ADMIN_KUBECONFIG,
    COMPONENTS_FILE,
    Cluster,
    ComponentPids,
    EmbeddedMasterLauncher,
    MasterStartError,
    read_component_pids,
    write_component_pids,
)
from kubemark.master.pki import ClusterPKI, write_kubeconfig

if TYPE_CHECKING:
    from kubemark.master.storage.etcd_server import EtcdServer

__all__ = [
    "DEFAULT_KUBE_VERSION",
    "REQUIRED_BINARIES",
    "KubeBinariesNotFound",
    "RealControlPlane",
    "RealControlPlaneConfig",
    "RealMasterLauncher",
    "binary_version",
    "default_kube_bin_dir",
    "find_kube_binaries",
]

log = logging.getLogger(__name__)

# The release scripts/kube-binaries.sh builds by default (tools/kube-binaries/go.mod pins it).
DEFAULT_KUBE_VERSION = "v1.37.2"
REQUIRED_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/12"  # as the embedded master's Service IP allocator
# As the embedded controller manager's (controllers/ipam.py): /24s of a /10 are 16,384 nodes' podCIDRs, apart from
# the hollow nodes' InternalIPs (10.64.0.0/10).
CLUSTER_CIDR = "10.128.0.0/10"
NODE_CIDR_MASK = 24
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
FRONT_PROXY_CLIENT = "front-proxy-client"
KUBE_PROXY_USER = "system:kube-proxy"  # the subject of the bootstrap ClusterRoleBinding system:node-proxier
APISERVER_READY_TIMEOUT = 120.0
COMPONENT_READY_TIMEOUT = 60.0
SUPERVISOR_LOG = "master.log"
BUILD_HINT = "build them with `bash scripts/kube-binaries.sh` (Go needed), or pass --kube-binaries DIR"


class KubeBinariesNotFound(MasterStartError):
    """Some of kube-apiserver, kube-controller-manager, kube-scheduler are missing; the message says which."""


def default_kube_bin_dir(version: str = DEFAULT_KUBE_VERSION) -> Path:
    """Where scripts/kube-binaries.sh puts a release's binaries: $KUBEMARK_KUBE_CACHE (default
    ~/.cache/kubemark/kube)/<version>/bin."""
    root = os.environ.get("KUBEMARK_KUBE_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubemark" / "kube"
    return base / version / "bin"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_kube_binaries(directory: Path | None = None, names: tuple[str, ...] = REQUIRED_BINARIES) -> dict[str, Path]:
    """The binaries by name: all from `directory` when given; else all from the default cache dir when it has
    them all; else each from PATH. Raises KubeBinariesNotFound naming what is missing and where it looked."""
    if directory is not None:
        directory = directory.expanduser()
        found = {n: directory / n for n in names if _executable(directory / n)}
        where = str(directory)
    else:
        cache = default_kube_bin_dir()
        found = {n: cache / n for n in names if _executable(cache / n)}
        where = f"{cache} or PATH"
        if len(found) < len(names):
            found = {}
            for name in names:
                on_path = shutil.which(name)
                if on_path:
                    found[name] = Path(on_path)
    missing = [n for n in names if n not in found]
    if missing:
        raise KubeBinariesNotFound(f"{', '.join(missing)} not found in {where}: {BUILD_HINT}")
    return found


def binary_version(path: Path | str) -> str:
    """What `<binary> --version` prints, e.g. "Kubernetes v1.37.2" ("" when it cannot say)."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip()


def ensure_service_account_keys(pki_dir: Path) -> tuple[Path, Path]:
    """pki/sa.key and pki/sa.pub: the key pair service-account tokens are signed and verified with (RSA 2048, as
    kubeadm makes it); created once and kept."""
    key_path, pub_path = pki_dir / "sa.key", pki_dir / "sa.pub"
    if not (key_path.exists() and pub_path.exists()):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private)
        pub_path.write_bytes(public)
    return key_path, pub_path


def ensure_front_proxy(pki_dir: Path) -> tuple[Path, Path, Path]:
    """pki/front-proxy-ca.crt and pki/front-proxy-client.{crt,key}, as kubeadm makes them: a CA of its own for
    the request-header (aggregation) authentication the API server publishes in kube-system/
    extension-apiserver-authentication, which kube-controller-manager and kube-scheduler read at start."""
    paths = (pki_dir / "front-proxy-ca.crt", pki_dir / "front-proxy-client.crt", pki_dir / "front-proxy-client.key")
    if all(p.exists() for p in paths):
        return paths
    proxy_pki = ClusterPKI.load_or_create(pki_dir / "front-proxy")  # a CA of its own (its apiserver cert unused)
    cert, key = proxy_pki.issue_client_cert(FRONT_PROXY_CLIENT)
    paths[0].write_bytes(proxy_pki.ca_pem)
    paths[1].write_bytes(cert)
    fd = os.open(paths[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return paths


@dataclass
class RealControlPlaneConfig:
    """How to run the real control plane."""

    data_dir: Path
    binaries: Mapping[str, Path]  # from find_kube_binaries
    port: int = 6443  # kube-apiserver's secure port on 127.0.0.1 (0: a free one)
    etcd_binary: str | None = None
    unsafe_no_fsync: bool = False
    scheduler: bool = True
    controllers: bool = True
    verbosity: int = 2  # the components' --v
    # Extra flags per component ("kube-apiserver": ["--max-requests-inflight=800"], ...), appended last.
    extra_args: Mapping[str, list[str]] = field(default_factory=dict)


class _Binary(ChildProcess):
    """One real component as a child process in its own session (Ctrl-C reaches only the supervisor, which stops
    the components in order), logging to `<data_dir>/<name>.log`, SIGTERMed when the supervisor dies."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        super().__init__(name, log_path)
        self.argv = argv

    def spawn(self) -> None:
        with self.log_path.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            out.flush()
            main_thread = threading.current_thread() is threading.main_thread()
            # Spawned from the event-loop thread: the parent-death signal is tied to the spawning thread.
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=terminate_with_parent if main_thread else None,
            )
        log.info("started %s pid %d", self.name, self._proc.pid)


class RealControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler. `start()` returns once the API server is
    ready (/readyz, RBAC bootstrapped) and the components answer /healthz; restarting on the same data dir keeps
    every object, the CA and the credentials."""

    def __init__(self, config: RealControlPlaneConfig) -> None:
        self.config = config
        self.pki: ClusterPKI | None = None
        self.etcd: EtcdServer | None = None
        self.port = 0
        self.apiserver: _Binary | None = None
        self.components: list[_Binary] = []
        self.component_ports: dict[str, int] = {}

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the control plane is not running")
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / ADMIN_KUBECONFIG

    def processes(self) -> list[_Binary]:
        return [p for p in (self.apiserver, *self.components) if p is not None]

    async def start(self) -> None:
        from kubemark.master.storage.etcd_server import EtcdServer

        cfg = self.config
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pki_dir = self.data_dir / "pki"
        self.pki = ClusterPKI.load_or_create(pki_dir)
        sa_key, sa_pub = ensure_service_account_keys(pki_dir)
        ensure_front_proxy(pki_dir)
        try:
            etcd = EtcdServer(self.data_dir / "etcd", binary=cfg.etcd_binary, unsafe_no_fsync=cfg.unsafe_no_fsync)
            self.etcd = etcd
            await etcd.start()
            self.port = cfg.port or free_port()
            self.apiserver = _Binary(
                "kube-apiserver",
                self._apiserver_argv(etcd.client_url, sa_key, sa_pub),
                self.data_dir / "kube-apiserver.log",
            )
            self.apiserver.spawn()
            await self._wait_healthy(self.apiserver, self.url, "/readyz", APISERVER_READY_TIMEOUT, admin=True)
            self.pki.write_admin_kubeconfig(self.kubeconfig_path, server=self.url)
            if cfg.controllers:
                kubeconfig = self._component_kubeconfig("controller-manager", CONTROLLER_MANAGER_USER)
                self._add_component("kube-controller-manager", kubeconfig, self._controller_manager_args(sa_key))
            if cfg.scheduler:
                kubeconfig = self._component_kubeconfig("scheduler", SCHEDULER_USER)
                self._add_component("kube-scheduler", kubeconfig, [])
            await asyncio.gather(
                *(
                    self._wait_healthy(c, f"https://127.0.0.1:{self.component_ports[c.name]}", "/healthz")
                    for c in self.components
                )
            )
            write_component_pids(self.data_dir, self.component_pids())
        except BaseException:
            await self.stop()
            raise
        log.info("real control plane ready at %s; kubeconfig %s", self.url, self.kubeconfig_path)

    async def restart_apiserver(self) -> None:
        """Stop kube-apiserver (SIGTERM) and start it again on the same port and etcd (a master upgrade or crash
        as its clients see it); returns once it is ready again. components.json gets its new PID."""
        if self.apiserver is None:
            raise RuntimeError("the control plane is not running")
        await self.apiserver.stop()
        self.apiserver.spawn()
        await self._wait_healthy(self.apiserver, self.url, "/readyz", APISERVER_READY_TIMEOUT, admin=True)
        write_component_pids(self.data_dir, self.component_pids())

    def _apiserver_argv(self, etcd_url: str, sa_key: Path, sa_pub: Path) -> list[str]:
        cfg, pki = self.config, self.data_dir / "pki"
        return [
            str(cfg.binaries["kube-apiserver"]),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--etcd-servers={etcd_url}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--enable-priority-and-fairness=true",  # the default, stated
            # The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints validation refuses: no
            # reconciler (nothing in this cluster dials the Service anyway).
            "--endpoint-reconciler-type=none",
            f"--cert-dir={self.data_dir / 'certs' / 'kube-apiserver'}",
            f"--v={cfg.verbosity}",
            *cfg.extra_args.get("kube-apiserver", []),
        ]

    def _controller_manager_args(self, sa_key: Path) -> list[str]:
        pki = self.data_dir / "pki"
        return [
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={sa_key}",
            "--use-service-account-credentials=true",
            # Else it creates /usr/libexec/kubernetes/kubelet-plugins/volume/exec on the host.
            f"--flex-volume-plugin-dir={self.data_dir / 'flexvolume'}",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={CLUSTER_CIDR}",
            f"--node-cidr-mask-size={NODE_CIDR_MASK}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # Kubernetes' scalability jobs' client limits (the defaults, 20/30, throttle density tests).
            "--kube-api-qps=100",
            "--kube-api-burst=100",
        ]

    def _add_component(self, name: str, kubeconfig: Path, args: list[str]) -> None:
        cfg = self.config
        port = free_port()
        self.component_ports[name] = port
        argv = [
            str(cfg.binaries[name]),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.data_dir / 'certs' / name}",
            # One instance: no lease to wait for after a restart (a leader's lease outlives it by 15 s).
            "--leader-elect=false",
            f"--v={cfg.verbosity}",
            *args,
            *cfg.extra_args.get(name, []),
        ]
        process = _Binary(name, argv, self.data_dir / f"{name}.log")
        self.components.append(process)
        process.spawn()

    def _component_kubeconfig(self, component: str, user: str) -> Path:
        assert self.pki is not None
        path = self.data_dir / f"{component}.kubeconfig"
        cert, key = self.pki.issue_client_cert(user)
        write_kubeconfig(path, server=self.url, ca_pem=self.pki.ca_pem, cert_pem=cert, key_pem=key, user=user)
        return path

    def _ssl_context(self, *, admin: bool) -> ssl.SSLContext:
        assert self.pki is not None
        if not admin:  # kube-controller-manager's and kube-scheduler's self-signed serving certificates
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        ctx = ssl.create_default_context(cadata=self.pki.ca_pem.decode("ascii"))
        pki = self.data_dir / "pki"
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return ctx

    async def _wait_healthy(
        self,
        process: _Binary,
        base: str,
        path: str,
        timeout: float = COMPONENT_READY_TIMEOUT,  # noqa: ASYNC109 - a start-up deadline
        *,
        admin: bool = False,
    ) -> None:
        ctx = self._ssl_context(admin=admin)
        deadline = time.monotonic() + timeout
        last = ""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0)) as session:
            delay = 0.1
            while True:
                if not process.running:
                    raise MasterStartError(
                        f"{process.name} exited with code {process.returncode}\n{process.log_tail()}"
                    )
                try:
                    async with session.get(f"{base}{path}", ssl=ctx) as resp:
                        if resp.status == 200:
                            return
                        last = f"{resp.status} {(await resp.text())[-500:]}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    last = str(exc)
                if time.monotonic() > deadline:
                    raise MasterStartError(
                        f"{process.name}: {path} not ok within {timeout:g}s ({last})\n{process.log_tail()}"
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def component_pids(self) -> ComponentPids:
        """By component, for resource usage: kube-apiserver (one process), etcd, and the two components."""
        pids: ComponentPids = {}
        if self.apiserver is not None and self.apiserver.pid is not None:
            pids["kube-apiserver"] = (self.apiserver.pid,)
        if self.etcd is not None and self.etcd.pid is not None:
            pids["etcd"] = self.etcd.pid
        for process in self.components:
            if process.pid is not None:
                pids[process.name] = process.pid
        return pids

    def exited(self) -> list[str]:
        """Components that died on their own (the supervisor reports them and stops the rest)."""
        dead = [p.name for p in self.processes() if not p.running]
        if self.etcd is not None and not self.etcd.running:
            dead.append("etcd")
        return dead

    async def wait_exited(self, poll: float = 1.0) -> list[str]:
        """Return once any process of the control plane has exited: the names of those that did."""
        while not (dead := self.exited()):
            await asyncio.sleep(poll)
        return dead

    async def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / COMPONENTS_FILE).unlink()
        # The components first (they would only log errors without an API server), then it, then etcd.
        await asyncio.gather(*(c.stop() for c in reversed(self.components)))
        self.components.clear()
        if self.apiserver is not None:
            await self.apiserver.stop()
            self.apiserver = None
        etcd, self.etcd = self.etcd, None
        if etcd is not None:
            await etcd.stop()
        self.port = 0

    async def __aenter__(self) -> RealControlPlane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class RealMasterLauncher(EmbeddedMasterLauncher):
    """`python -m kubemark master start --master real` as a child process, stopped with SIGTERM (which stops the
    real components in order). Node credentials are minted from the same CA, as for the embedded master."""

    embedded = True  # started for the run, gone with it

    def __init__(
        self,
        data_dir: Path,
        kube_binaries: Path | None = None,
        *,
        ready_timeout: float = APISERVER_READY_TIMEOUT + COMPONENT_READY_TIMEOUT + 60.0,
    ) -> None:
        super().__init__(data_dir, "etcd", 1, ready_timeout=ready_timeout)
        self.binaries = find_kube_binaries(kube_binaries)  # KubeBinariesNotFound before anything starts
        self.kube_binaries = kube_binaries
        self.log_path = data_dir / SUPERVISOR_LOG
        self._proxy: ClusterCredentials | None = None

    def command(self) -> list[str]:
        cmd = super().command()
        cmd += ["--master", "real"]
        # The directory the binaries were found in (they may have come from PATH one by one: pass it only then).
        dirs = {path.parent for path in self.binaries.values()}
        if len(dirs) == 1:
            cmd += ["--kube-binaries", str(dirs.pop())]
        return cmd

    def proxy_credentials(self, name: str) -> ClusterCredentials:
        """kube-proxy's identity: system:kube-proxy, which the bootstrap binding system:node-proxier lets list and
        watch Services, EndpointSlices and Nodes (a kubelet's system:node:<name> may not list EndpointSlices).
        One certificate for all, as every kube-proxy of a cluster shares one service account."""
        if self._pki is None:
            raise RuntimeError("the master is not running")
        if self._proxy is None:
            cert, key = self._pki.issue_client_cert(KUBE_PROXY_USER)
            self._proxy = ClusterCredentials(
                server=self.admin.server, ca_pem=self._pki.ca_pem, cert_pem=cert, key_pem=key
            )
        return self._proxy

    def cluster(self) -> Cluster:
        return dataclasses.replace(super().cluster(), proxy_credentials=self.proxy_credentials)

    def _published_pids(self, master_pid: int) -> ComponentPids:
        """The supervisor (`kubemark master start --master real`) is idle; the components are the binaries."""
        pids = read_component_pids(self.data_dir)
        if "kube-apiserver" not in pids:
            raise MasterStartError(f"{self.data_dir / COMPONENTS_FILE} names no kube-apiserver")
        return pids

    def log_tail(self, lines: int = 30) -> str:
        parts = [super().log_tail(lines)]
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            path = self.data_dir / f"{name}.log"
            with contextlib.suppress(OSError):
                tail = "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
                parts.append(f"--- {path.name}\n{tail}")
        return "\n".join(p for p in parts if p)
