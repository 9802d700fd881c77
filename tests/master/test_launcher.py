"""`MasterLauncher`s as `kubemark run` uses them: the embedded master's published PIDs are its real component
processes, its node credentials are system:node:<name>, a master that dies early is reported with its log, and
an external cluster is adopted as it is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from kubemark.client import Forbidden, RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig
from kubemark.master.launcher import (
    COMPONENTS_FILE,
    ComponentPids,
    EmbeddedMasterLauncher,
    ExternalMaster,
    MasterStartError,
    read_component_pids,
    ready_line,
    write_component_pids,
)
from kubemark.master.pki import write_kubeconfig

from .test_master_cli import READY, etcd_children, master_children, wait_gone

NODES = resource_path("", "v1", "nodes")


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@pytest.mark.etcd
async def test_embedded_launcher_pids_are_the_masters_component_processes(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    launcher = EmbeddedMasterLauncher(data_dir, "etcd", apiserver_workers=2)
    async with launcher as cluster:
        master = launcher.pid
        assert master is not None
        assert cluster.embedded
        pids = cluster.pids
        assert set(pids) == {"kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"}
        apiserver = pids["kube-apiserver"]
        assert isinstance(apiserver, tuple) and len(apiserver) == 2
        assert apiserver[0] == master  # the master process is the primary API server
        (worker,) = apiserver[1:]
        etcd, scheduler, kcm = (pids[c] for c in ("etcd", "kube-scheduler", "kube-controller-manager"))
        assert isinstance(etcd, int) and isinstance(scheduler, int) and isinstance(kcm, int)
        # Each is a child of the master, running what its name says.
        for pid in (worker, etcd, scheduler, kcm):
            assert parent(pid) == master, (pid, argv(pid))
        assert Path(argv(etcd)[0]).name == "etcd"
        assert {"master", "apiserver-worker"} <= set(argv(worker))
        assert {"master", "scheduler"} <= set(argv(scheduler))
        assert {"master", "controllers"} <= set(argv(kcm))
        # ... and they are all of its children: nothing left out.
        assert set(master_children(master)) == {worker, scheduler, kcm}
        assert etcd_children(data_dir) == [etcd]
        assert read_component_pids(data_dir) == pids

        # Node credentials: system:node:<name>, which node authorization holds to its own Node.
        creds = cluster.node_credentials("n1")
        assert creds.cert_pem is not None
        subject = x509.load_pem_x509_certificate(creds.cert_pem).subject
        assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
        async with RestClient(creds, qps=0, max_retries=0) as node:
            await node.create(NODES, {"metadata": {"name": "n1"}})
            with pytest.raises(Forbidden):
                await node.create(NODES, {"metadata": {"name": "n2"}})
        async with RestClient(cluster.admin, qps=0) as admin:
            assert [n["metadata"]["name"] for n in (await admin.list(NODES))["items"]] == ["n1"]
    assert wait_gone([master, worker, etcd, scheduler, kcm]), "the master's processes must stop with it"
    assert not (data_dir / COMPONENTS_FILE).exists()


async def test_a_master_that_exits_before_it_is_ready_is_reported_with_its_log(tmp_path: Path) -> None:
    launcher = EmbeddedMasterLauncher(tmp_path / "master", "sqlite")  # a usage error: exits at once
    with pytest.raises(MasterStartError, match="exited before it was ready") as err:
        async with launcher:
            pytest.fail("the master cannot be ready")
    assert "--storage" in str(err.value)  # its stderr, from the log file
    assert "--storage" in launcher.log_tail()


async def test_external_master_is_used_as_it_is(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, server="https://192.0.2.1:6443", ca_pem=None)
    async with ExternalMaster(kubeconfig) as cluster:
        assert not cluster.embedded
        assert cluster.admin.server == "https://192.0.2.1:6443"
        assert cluster.pids == {}  # not ours to watch
        assert cluster.node_credentials("n1") == cluster.admin


async def test_control_plane_publishes_its_processes_while_it_runs(tmp_path: Path) -> None:
    async with ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0)) as plane:
        # In-process components (and memory storage) are all this one process.
        assert read_component_pids(tmp_path) == plane.component_pids() == {"kube-apiserver": (os.getpid(),)}
        assert load_kubeconfig(plane.kubeconfig_path).server == plane.url
    assert read_component_pids(tmp_path) == {}


def test_component_pids_round_trip(tmp_path: Path) -> None:
    pids: ComponentPids = {"kube-apiserver": (10, 11), "etcd": 12}
    write_component_pids(tmp_path, pids)
    assert read_component_pids(tmp_path) == pids
    assert [p.name for p in tmp_path.iterdir()] == [COMPONENTS_FILE]  # no temporary file left behind


def test_the_ready_line_is_what_launchers_and_tests_look_for() -> None:
    line = ready_line("https://127.0.0.1:6443", "etcd")
    assert line == "kubemark master ready at https://127.0.0.1:6443 (etcd storage)"
    match = READY.search(line)
    assert match is not None and match.group(1) == "https://127.0.0.1:6443"
