"""`kubemark master start` as a user runs it: a subprocess on etcd, reached with the real kubectl over TLS."""

from __future__ import annotations

import asyncio
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubemark.client import ClusterCredentials, RestClient, Unauthorized, load_kubeconfig
from kubemark.client.paths import resource_path

KUBEMARK = [sys.executable, "-m", "kubemark"]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
READY = re.compile(r"ready at (https?://\S+)")


class Master:
    """A `kubemark master start` child process."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [*KUBEMARK, "master", "start", "--data-dir", str(data_dir), "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self.url = self.read_until(READY, timeout=120).group(1)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def read_until(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Read the master's output up to the first line matching `pattern`."""
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if match := pattern.search(line):
                return match
        self.proc.kill()
        raise AssertionError(f"no line matching {pattern.pattern!r} from the master:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.output.append(self.proc.stdout.read())
        return code


def kubectl(kubeconfig: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def etcd_children(data_dir: Path) -> list[int]:
    """PIDs of etcd processes serving this data dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if Path(argv[0]).name == "etcd" and any(str(data_dir) in arg for arg in argv):
            pids.append(int(entry.name))
    return pids


def wait_gone(pids: list[int], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
        if not alive:
            return True
        time.sleep(0.05)  # polling the process table, not standing in for a synchronisation
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


@pytest.fixture
def master(tmp_path: Path) -> Iterator[Master]:
    m = Master(tmp_path / "master")
    yield m
    m.stop()


@pytest.mark.etcd
@pytest.mark.kubectl
def test_kubectl_over_tls_then_clean_stop_and_restart_keeps_objects(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    cache = tmp_path / "kubectl-cache"
    m = Master(data_dir)
    assert m.url.startswith("https://")
    out = kubectl(m.kubeconfig, cache, "get", "namespaces", "-o", "name")
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) >= {
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
        "namespace/kube-node-lease",
    }
    # `kubectl create configmap` uses a typed client: the body is Kubernetes protobuf.
    created = kubectl(m.kubeconfig, cache, "create", "configmap", "keep-me", "--from-literal=a=b")
    assert created.returncode == 0, created.stderr
    etcd_pids = etcd_children(data_dir)
    assert etcd_pids, "the master should run etcd as its child"

    assert m.stop(signal.SIGINT) == 0, "".join(m.output)
    assert wait_gone(etcd_pids), "etcd must stop with the master"

    again = Master(data_dir)
    try:
        got = kubectl(again.kubeconfig, cache, "get", "configmap", "keep-me", "-o", "jsonpath={.data.a}")
        assert got.returncode == 0, got.stderr
        assert got.stdout == "b"
    finally:
        assert again.stop() == 0


@pytest.mark.etcd
def test_anonymous_requests_are_rejected(master: Master) -> None:
    async def probe() -> tuple[int, str]:
        anonymous = ClusterCredentials(server=master.url, insecure_skip_tls_verify=True)
        async with RestClient(anonymous, max_retries=0) as client:
            health = await client.request("GET", "/healthz")
            with pytest.raises(Unauthorized) as err:
                await client.get(resource_path("", "v1", "pods"))
            return err.value.status, health

    status, health = asyncio.run(probe())
    assert status == 401
    assert health == "ok"


@pytest.mark.etcd
def test_kill_9_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    m = Master(data_dir)
    acknowledged: list[str] = []

    async def write_until_killed() -> None:
        creds = load_kubeconfig(m.kubeconfig)
        async with RestClient(creds, qps=0, max_retries=0) as client:
            path = resource_path("", "v1", "configmaps", "default")
            for i in range(10_000):
                name = f"cm-{i}"
                try:
                    await client.create(path, {"metadata": {"name": name}, "data": {"i": str(i)}})
                except Exception:
                    return  # the master is gone
                acknowledged.append(name)
                if len(acknowledged) == 40:
                    os.kill(m.proc.pid, signal.SIGKILL)

    asyncio.run(write_until_killed())
    m.proc.wait(timeout=30)
    assert len(acknowledged) >= 40
    assert wait_gone(etcd_children(data_dir)), "etcd must not outlive a killed master"

    again = Master(data_dir)
    try:

        async def names() -> set[str]:
            creds = load_kubeconfig(again.kubeconfig)
            async with RestClient(creds) as client:
                items, _ = await client.list_all(resource_path("", "v1", "configmaps", "default"))
                return {item["metadata"]["name"] for item in items}

        stored = asyncio.run(names())
        missing = [n for n in acknowledged if n not in stored]
        assert not missing, f"acknowledged writes lost: {missing[:10]}"
    finally:
        again.stop()


def test_bad_storage_choice_is_a_usage_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [*KUBEMARK, "master", "start", "--storage", "sqlite", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--storage" in out.stderr


def test_insecure_http_only_on_loopback(tmp_path: Path) -> None:
    out = subprocess.run(
        [*KUBEMARK, "master", "start", "--insecure-http", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "loopback" in out.stderr


def master_children(master_pid: int) -> dict[int, list[str]]:
    """pid -> argv of the `kubemark master ...` processes whose parent is the master."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == master_pid and "master" in argv:
            found[int(entry.name)] = argv
    return found


def component_children(master_pid: int) -> dict[str, int]:
    """`kubemark master scheduler|controllers` processes whose parent is the master."""
    return {
        component: pid
        for pid, argv in master_children(master_pid).items()
        for component in ("scheduler", "controllers")
        if component in argv
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_scheduler_and_controllers_run_as_child_processes_and_die_with_the_master(tmp_path: Path, sig: int) -> None:
    m = Master(tmp_path / "master", "--storage", "memory")
    try:
        # The rest of the start-up lines (metrics URLs) follow "ready" at once; read them as they are buffered.
        assert m.proc.stdout is not None
        while not m.output[-1].startswith("try: kubectl"):
            line = m.proc.stdout.readline()
            assert line, "the master exited:\n" + "".join(m.output)
            m.output.append(line)
        children = component_children(m.proc.pid)
        assert set(children) == {"scheduler", "controllers"}, "".join(m.output)
        metrics = {
            line.split(" metrics: ")[0]: line.split(" metrics: ")[1].strip()
            for line in m.output
            if " metrics: " in line
        }
        assert set(metrics) == {"scheduler", "controller-manager"}

        async def work() -> tuple[str, dict[str, str]]:
            import aiohttp

            from kubemark.measure.watch import ObjectWatch

            creds = load_kubeconfig(m.kubeconfig)
            async with RestClient(creds) as client:
                # A ReplicaSet's pod is created by the controllers' process and bound by the scheduler's.
                node = {
                    "metadata": {"name": "n1"},
                    "status": {
                        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"},
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }
                await client.create(resource_path("", "v1", "nodes"), node)
                labels = {"app": "x"}
                template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "p"}]}}
                await client.create(
                    resource_path("apps", "v1", "replicasets", "default"),
                    {
                        "metadata": {"name": "x"},
                        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
                    },
                )
                pods = ObjectWatch(client, resource_path("", "v1", "pods", "default"))
                await pods.start(30)
                try:
                    bound = await pods.wait_until(
                        lambda: any((p.get("spec") or {}).get("nodeName") for p in pods.list()), 60
                    )
                    placed = [(p.get("spec") or {}).get("nodeName", "") for p in pods.list()]
                finally:
                    await pods.stop()
            assert bound, placed
            texts = {}
            async with aiohttp.ClientSession() as session:
                for name, url in metrics.items():
                    async with session.get(url) as resp:
                        texts[name] = await resp.text()
            return placed[0], texts

        node, texts = asyncio.run(work())
        assert node == "n1"
        assert "scheduler_schedule_attempts_total" in texts["scheduler"]
        assert "workqueue_adds_total" in texts["controller-manager"]
    finally:
        if sig == signal.SIGKILL:
            os.kill(m.proc.pid, signal.SIGKILL)
            m.proc.wait(timeout=30)
        else:
            assert m.stop(sig) == 0, "".join(m.output)
    assert wait_gone(list(children.values())), "components must not outlive the master"


def test_node_kubeconfig_is_minted_from_the_masters_ca(tmp_path: Path) -> None:
    from kubemark.client import Forbidden
    from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

    output = tmp_path / "n1.kubeconfig"

    def node_kubeconfig(server: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
        args = ["master", "node-kubeconfig", "n1", "--server", server, "--data-dir", str(data_dir), "-o", str(output)]
        return subprocess.run([*KUBEMARK, *args], capture_output=True, text=True, timeout=60)

    no_ca = node_kubeconfig("https://127.0.0.1:6443", tmp_path / "nothing")
    assert no_ca.returncode == 2 and "start the master once first" in no_ca.stderr

    async def scenario() -> None:
        async with ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "master", storage="memory", port=0)) as plane:
            out = await asyncio.to_thread(node_kubeconfig, plane.url, plane.data_dir)
            assert out.returncode == 0, out.stderr
            async with RestClient(load_kubeconfig(output), qps=0, max_retries=0) as node:
                await node.create(resource_path("", "v1", "nodes"), {"metadata": {"name": "n1"}})
                with pytest.raises(Forbidden):  # it is system:node:n1, held to its own Node
                    await node.create(resource_path("", "v1", "nodes"), {"metadata": {"name": "n2"}})

    asyncio.run(scenario())
