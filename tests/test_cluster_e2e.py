"""A whole hollow cluster as users run it: `kubemark master start` + `kubemark nodes start`, driven by kubectl.

Proves the control plane's observable behaviour with real kubelets' stand-ins: a Deployment of 50 replicas
lands on 10 hollow nodes (spread, within capacity), `kubectl rollout status` / `scale` / `set image` /
`drain` (eviction subresource) work, and deletes cascade.
"""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

KUBEMARK = [sys.executable, "-m", "kubemark"]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
NODES = 10

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(300)]


def wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> re.Match[str]:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and sel.select(timeout=max(0.0, deadline - time.monotonic())):
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(seen))


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.master = subprocess.Popen(
            [*KUBEMARK, "master", "start", "--data-dir", str(tmp / "master"), "--port", "0", "--storage", "memory"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_line(self.master, r"ready at (https://\S+)", 60)
        self.kubeconfig = tmp / "master" / "admin.kubeconfig"
        self.nodes = subprocess.Popen(
            [*KUBEMARK, "nodes", "start", "--kubeconfig", str(self.kubeconfig), "--count", str(NODES)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kubectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.tmp / "cache"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, timeout: float = 120) -> str:
        out = self.kubectl(*args, timeout=timeout)
        assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
        return out.stdout

    def pods(self, selector: str) -> list[dict]:
        return json.loads(self.ok("get", "pods", "-l", selector, "-o", "json"))["items"]

    def wait_registered(self, timeout: float) -> None:
        """`kubectl wait --all` needs the nodes to exist: watch until all have registered."""
        watch = subprocess.Popen(
            [
                KUBECTL,
                "--kubeconfig",
                str(self.kubeconfig),
                "--cache-dir",
                str(self.tmp / "cache"),
                "get",
                "nodes",
                "--watch",
                "-o",
                "name",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            seen: set[str] = set()
            while len(seen) < NODES:
                seen.add(wait_for_line(watch, r"^node/\S+", timeout).group(0))
        finally:
            watch.kill()
            watch.wait()

    def stop(self) -> None:
        for proc in (self.nodes, self.master):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        assert self.nodes.wait(timeout=60) == 0
        assert self.master.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.wait_registered(timeout=90)
        c.ok("wait", "--for=condition=Ready", "node", "--all", "--timeout=90s", timeout=120)
        yield c
    finally:
        c.stop()


def test_hollow_nodes_register_ready_with_unique_addresses(cluster: Cluster) -> None:
    nodes = json.loads(cluster.ok("get", "nodes", "-o", "json"))["items"]
    assert len(nodes) == NODES
    ips = {a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"}
    assert len(ips) == NODES
    assert all(n["spec"].get("podCIDR") for n in nodes), "node IPAM assigns a podCIDR to every node"
    leases = cluster.ok("get", "leases", "-n", "kube-node-lease", "-o", "name").split()
    assert len(leases) == NODES


PROBE = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: probe}
spec:
  replicas: %d
  selector: {matchLabels: {app: probe}}
  template:
    metadata: {labels: {app: probe}}
    spec:
      containers: [{name: c, image: pause}]
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: probe}}
            topologyKey: kubernetes.io/hostname
"""


def test_one_pod_per_node_with_required_anti_affinity(cluster: Cluster) -> None:
    """Also the synchronisation point for the next test: it passes only once the scheduler itself sees
    every node schedulable (kubectl seeing them Ready says nothing about the scheduler's informer)."""
    manifest = cluster.tmp / "probe.yaml"
    manifest.write_text(PROBE % NODES)
    cluster.ok("apply", "-f", str(manifest))
    cluster.ok("rollout", "status", "deployment/probe", "--timeout=120s", timeout=150)
    assert sorted(p["spec"]["nodeName"] for p in cluster.pods("app=probe")) == sorted(
        f"hollow-node-{i}" for i in range(NODES)
    )
    cluster.ok("delete", "deployment", "probe", "--cascade=foreground", "--timeout=120s", timeout=150)


def test_deployment_rollout_scale_update_and_cascade(cluster: Cluster) -> None:
    cluster.ok("create", "deployment", "web", "--image=nginx:1.25", "--replicas=50")
    cluster.ok("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    pods = cluster.pods("app=web")
    assert len(pods) == 50
    assert all(p["status"]["phase"] == "Running" for p in pods)
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    assert len(per_node) == NODES and max(per_node.values()) - min(per_node.values()) <= 1, per_node
    assert len({p["status"]["podIP"] for p in pods}) == 50

    cluster.ok("scale", "deployment/web", "--replicas=0")
    cluster.ok("wait", "--for=delete", "pod", "-l", "app=web", "--timeout=90s", timeout=120)
    cluster.ok("scale", "deployment/web", "--replicas=20")
    cluster.ok("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    assert len(cluster.pods("app=web")) == 20

    cluster.ok("set", "image", "deployment/web", "nginx=nginx:1.26")
    cluster.ok("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    # As upstream, rollout status is complete once the old ReplicaSet has no *active* pods: old pods may
    # still be Terminating (deletionTimestamp set) for a moment.
    active = [p for p in cluster.pods("app=web") if not p["metadata"].get("deletionTimestamp")]
    assert len(active) == 20
    assert {p["spec"]["containers"][0]["image"] for p in active} == {"nginx:1.26"}
    replicasets = json.loads(cluster.ok("get", "rs", "-l", "app=web", "-o", "json"))["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replicasets) == [0, 20]

    cluster.ok("delete", "deployment", "web", "--cascade=foreground", "--timeout=120s", timeout=150)
    cluster.ok("wait", "--for=delete", "pod", "-l", "app=web", "--timeout=90s", timeout=120)
    assert cluster.ok("get", "rs", "-l", "app=web", "-o", "name").strip() == ""


def test_drain_evicts_pods_to_other_nodes(cluster: Cluster) -> None:
    cluster.ok("create", "deployment", "drainme", "--image=busybox", "--replicas=10")
    cluster.ok("rollout", "status", "deployment/drainme", "--timeout=120s", timeout=150)
    victim = cluster.pods("app=drainme")[0]["spec"]["nodeName"]
    out = cluster.ok("drain", victim, "--ignore-daemonsets", "--timeout=120s", timeout=150)
    assert "evicting pod" in out or "drained" in out
    node = json.loads(cluster.ok("get", "node", victim, "-o", "json"))
    assert node["spec"]["unschedulable"] is True
    cluster.ok("rollout", "status", "deployment/drainme", "--timeout=120s", timeout=150)
    # Evicted pods may still be Terminating on the drained node; the active ones are all elsewhere.
    pods = [p for p in cluster.pods("app=drainme") if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 10
    assert victim not in {p["spec"]["nodeName"] for p in pods}
    cluster.ok("uncordon", victim)
    cluster.ok("delete", "deployment", "drainme", "--wait=false")
