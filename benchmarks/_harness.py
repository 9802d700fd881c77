"""Shared plumbing of the API server benchmarks: a master in its own process, clients, percentiles, /proc.

The master runs as `python -m kubemark master start` in a child process so that it and the benchmark's
clients each get a core; its etcd is a child of that process. CPU and memory come from /proc.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kubemark import codec
from kubemark.aio import raise_open_files_limit
from kubemark.client import APIError, ClusterCredentials, RestClient, load_kubeconfig, resource_path
from kubemark.master.launcher import READY_PREFIX
from kubemark.measure.api_responsiveness import Histogram, histogram_quantile

_READY = re.compile(re.escape(READY_PREFIX.encode()) + rb"(\S+)")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- figures ------------------------------------------------------------------------------------------------


def histogram_of(text: str, metric: str, **labels: str) -> Histogram:
    """`metric`'s buckets from a Prometheus exposition, summed over the series matching `labels`."""
    buckets: dict[float, float] = collections.defaultdict(float)
    count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != metric:
            continue
        for sample in family.samples:
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            if sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
    return Histogram(dict(buckets), count)


def histogram_window_ms(before: str, after: str, metric: str, **labels: str) -> dict[str, float]:
    """p50/p99 (ms, bucket-interpolated as Prometheus does) and count of `metric` between two scrapes."""
    delta = histogram_of(after, metric, **labels).minus(histogram_of(before, metric, **labels))
    return {
        "count": int(delta.count),
        "p50_ms": round(histogram_quantile(0.5, delta) * 1000, 1),
        "p99_ms": round(histogram_quantile(0.99, delta) * 1000, 1),
    }


def percentile(ordered: Sequence[float], p: float) -> float:
    """clusterloader2's percentile of an already sorted sequence: element ceil(n*p/100)-1."""
    if not ordered:
        return float("nan")
    index = max(0, -(-len(ordered) * p // 100) - 1)
    return ordered[int(min(index, len(ordered) - 1))]


def latency_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    """Count, p50/p90/p99/max (and min) in milliseconds of a list of durations in seconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "min_ms": round(ordered[0] * 1000, 3),
        "p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "p90_ms": round(percentile(ordered, 90) * 1000, 3),
        "p99_ms": round(percentile(ordered, 99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def emit(result: dict[str, Any], summary: str) -> None:
    """The benchmark convention: one JSON object, then one human line."""
    sys.stdout.write(codec.dumps_pretty(result).decode() + "\n")
    sys.stdout.write(summary + "\n")
    sys.stdout.flush()


def raise_open_files(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards `wanted` (the hard limit too where privileged); children inherit it."""
    return raise_open_files_limit(wanted)


# -- /proc ---------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included, its children not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_bytes(pid: int) -> int:
    """VmRSS of one process, in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def child_pids(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(p) for p in (task / "children").read_text().split()]
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine spent busy (not idle, not iowait) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _CLK_TCK


@dataclass
class CpuMeter:
    """CPU used by named processes over an interval, in cores (1.0 = one core busy the whole time).

    `other_cores` is what the rest of the machine used meanwhile: the host is shared, and a busy neighbour
    explains a figure better than any profile.
    """

    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _machine: float = 0.0
    _t0: float = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._machine = machine_busy_seconds()
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        used = {name: (cpu_seconds(pid) - self._start[name]) / wall for name, pid in self.pids.items()}
        machine = (machine_busy_seconds() - self._machine) / wall
        out = {f"{name}_cores": round(v, 3) for name, v in used.items()}
        out["other_cores"] = round(max(0.0, machine - sum(used.values())), 3)
        out["machine_cores"] = os.cpu_count() or 0
        return out


# -- objects ------------------------------------------------------------------------------------------------


def microtime() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bench_pod(name: str, namespace: str, node: str | None = None) -> dict[str, Any]:
    """A pod like a Deployment's replica, ~2 KB of JSON."""
    app = "bench-app"
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "app",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.47",
                "args": ["netexec", "--http-port=8080"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "LOG_LEVEL", "value": "info"},
                ],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 5, "periodSeconds": 20},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
                "imagePullPolicy": "IfNotPresent",
            },
            {
                "name": "sidecar",
                "image": "registry.k8s.io/pause:3.9",
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
            },
        ],
        "volumes": [{"name": "config", "configMap": {"name": "bench-config", "optional": True}}],
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "terminationGracePeriodSeconds": 30,
        "restartPolicy": "Always",
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": app, "tier": "backend", "pod-template-hash": "5d8f7c6b9", "group": "load"},
            "annotations": {
                "kubemark.io/benchmark": "apiserver",
                "kubectl.kubernetes.io/default-container": "app",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "8080",
            },
        },
        "spec": spec,
    }


# -- the master ----------------------------------------------------------------------------------------------


@dataclass
class Master:
    """A running `kubemark master start` child process."""

    proc: asyncio.subprocess.Process
    url: str
    data_dir: Path
    creds: ClusterCredentials
    storage: str
    insecure_http: bool
    apiserver_workers: int = 1
    output: collections.deque[bytes] = field(default_factory=lambda: collections.deque(maxlen=40))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _children(self) -> dict[str, int]:
        """etcd and the extra API server processes (`--apiserver-workers`) by name."""
        out: dict[str, int] = {}
        for pid in child_pids(self.proc.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if Path(argv[0].decode()).name == "etcd":
                out["etcd"] = pid
            elif b"apiserver-worker" in argv:
                out[f"apiserver-{len(out)}"] = pid
        return out

    @property
    def etcd_pid(self) -> int | None:
        return self._children().get("etcd")

    @property
    def etcd_endpoint(self) -> str:
        ports = codec.loads((self.data_dir / "etcd" / "ports.json").read_bytes())
        return f"127.0.0.1:{ports['client']}"

    def pids(self, include_self: bool = True) -> dict[str, int]:
        out = {"client": os.getpid()} if include_self else {}
        out["apiserver"] = self.pid
        out.update(self._children())
        return out

    def died(self) -> dict[str, Any] | None:
        """None while the master runs; else its exit code and last lines of output (for the JSON)."""
        if self.proc.returncode is None:
            return None
        return {"returncode": self.proc.returncode, "output_tail": b"".join(self.output).decode(errors="replace")}

    def describe(self) -> dict[str, Any]:
        return {
            "storage": self.storage,
            "tls": not self.insecure_http,
            "process": "separate",
            "apiserver_processes": self.apiserver_workers,
        }


@contextlib.asynccontextmanager
async def running_master(
    *,
    storage: str = "etcd",
    insecure_http: bool = False,
    unsafe_no_fsync: bool = False,
    ready_timeout: float = 90.0,
    components: bool = True,
    apiserver_workers: int = 1,
) -> AsyncIterator[Master]:
    """Start the master in a child process on a free loopback port, yield it, then SIGTERM it."""
    data_dir = Path(tempfile.mkdtemp(prefix="kubemark-bench-"))
    cmd = [sys.executable, "-m", "kubemark", "master", "start", "--data-dir", str(data_dir), "--port", "0"]
    cmd += ["--storage", storage]
    if insecure_http:
        cmd.append("--insecure-http")
    if unsafe_no_fsync:
        cmd.append("--unsafe-no-fsync")
    if not components:
        cmd += ["--no-scheduler", "--no-controllers"]
    if apiserver_workers > 1:
        cmd += ["--apiserver-workers", str(apiserver_workers)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True
    )
    assert proc.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        url = await asyncio.wait_for(_read_ready(proc.stdout), ready_timeout)
        creds = load_kubeconfig(str(data_dir / "admin.kubeconfig"))
        master = Master(proc, url, data_dir, creds, storage, insecure_http, apiserver_workers)
        # Keep reading its output so a chatty master never blocks on a full pipe; keep the tail.
        drain = asyncio.create_task(_drain(proc.stdout, master.output))
        yield master
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            drain.cancel()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _read_ready(stream: asyncio.StreamReader) -> str:
    seen: list[bytes] = []
    while True:
        line = await stream.readline()
        if not line:
            raise RuntimeError("the master exited before it was ready:\n" + b"".join(seen[-20:]).decode())
        seen.append(line)
        match = _READY.search(line)
        if match:
            return match.group(1).decode()


async def _drain(stream: asyncio.StreamReader, tail: collections.deque[bytes]) -> None:
    while line := await stream.readline():
        tail.append(line)


def new_client(creds: ClusterCredentials, *, timeout: float = 60.0) -> RestClient:
    """One benchmark client: its own session (hence its own connection), no rate limit, no retries, so every
    attempt is one measured request."""
    return RestClient(creds, qps=0, burst=1, max_retries=0, timeout=timeout, connection_limit=1, user_agent="bench")


def error_key(exc: BaseException) -> str:
    if isinstance(exc, APIError):
        return f"{exc.status}"
    return type(exc).__name__


async def ensure_namespace(client: RestClient, name: str) -> None:
    try:
        await client.create(resource_path("", "v1", "namespaces"), {"metadata": {"name": name}})
    except APIError as exc:
        if exc.status != 409:
            raise


async def gather_limited(coros: Sequence[Any], limit: int) -> list[Any]:
    """Await coroutines with at most `limit` running at once (e.g. opening thousands of TLS connections)."""
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)
