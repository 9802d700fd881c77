"""Our hollow nodes side by side with Go kubemark's, on one real control plane.

The real kube-apiserver, kube-controller-manager and kube-scheduler (`RealControlPlane`, the binaries
`scripts/kube-binaries.sh` builds) run on loopback. Then, one kind at a time (so the API server's counters are
that kind's):

- **go**: N Go hollow nodes as Go kubemark runs them: two processes per node, `kubemark --morph=kubelet`
  (client certificate `system:node:<name>`, `--use-host-image-service=false`, its own `--kubelet-port`) and
  `kubemark --morph=proxy` (`system:kube-proxy`, the bootstrap binding `system:node-proxier`). No NPD: Go
  kubemark runs node-problem-detector as a separate container, not part of the `kubemark` binary.
- **ours**: N of our hollow nodes in one pool process (`NodePool`, as `kubemark nodes start`), each with its own
  `system:node:<name>` certificate and kube-proxy as `system:kube-proxy` (as `kubemark run --master real`).
  NPD off by default so both kinds are kubelet + kube-proxy (`--ours-npd` turns it on).

Per kind: start-up to Ready (all N, from the first process spawned, polled every 0.5 s), CPU-seconds per
node-minute over the steady window (utime+stime from /proc, summed over the kind's processes), RSS and PSS per
node (PSS splits the Go binary's shared pages among its processes), connections to the API server per node
(`ss`, by client PID), watches held per node (`apiserver_longrunning_requests{verb="WATCH"}` minus the level
before the kind started), the master's CPU over the window, and the request profile per node-minute by
(verb, resource, subresource): from `apiserver_request_total` deltas over the window minus the idle control
plane's own rate (measured first, with no nodes), and, cross-checked, from the API server's audit log
(Metadata level, node and kube-proxy users only, split by user agent; watches counted when they open, where
`apiserver_request_total` counts a WATCH when it ends; `startup_audit`: per node from the first spawn to the
window). `kubemark fidelity OUT.json` compares the two profiles; `lease_age_at_end_s` shows heartbeat health.

`--go-steps` then runs Go kubemark alone at growing N (shorter window) until nodes are not all Ready within
the timeout, a node goes NotReady in the window, or the next step would not fit in memory.

    .venv/bin/python benchmarks/peer_go_kubemark.py --nodes 50 [--window 300] [--go-steps 100,150,200]
    .venv/bin/python benchmarks/peer_go_kubemark.py --nodes 3 --window 30 --settle 10   # a smoke run

Bounded: every wait has a timeout; the whole run is about (settle + window + 1 min) per kind and step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from _harness import cpu_seconds, emit, machine_busy_seconds, percentile, raise_open_files, rss_bytes
from kubemark.client import ClusterCredentials, RestClient, load_kubeconfig
from kubemark.master.apiserver.metrics import RESOURCE_METRIC_VERBS  # audit verbs -> metrics verbs
from kubemark.master.child_process import terminate_with_parent

log = logging.getLogger("peer_go_kubemark")

KINDS = ("go", "ours")
PREFIX = {"go": "go-node", "ours": "py-node"}
KUBE_PROXY_USER = "system:kube-proxy"
KUBELET_PORT_BASE = 20000  # Go hollow kubelet i serves on 20000 + i (one host, unlike pods in their own netns)
READY_PREFIX = "POOL "
# The user agents each kind's clients send (Go: cmd/kubemark sets them; ours: "<daemon>/<version> ... kubemark").
AGENTS = {"go": ("hollow-kubelet", "hollow-proxy"), "ours": ("kubelet/", "kube-proxy/", "node-problem-detector/")}
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["system:nodes"]
- level: Metadata
  users: ["system:kube-proxy"]
- level: None
"""


# -- /proc and ss --------------------------------------------------------------------------------------------


def pss_bytes(pid: int) -> int:
    """Proportional set size (shared pages split among the processes mapping them); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def uptime_load() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return out or " ".join(f"{x:.2f}" for x in os.getloadavg())


_SS_PID = re.compile(r"pid=(\d+)")


def connections_by_pid(port: int) -> Counter[int]:
    """Established TCP connections to 127.0.0.1:`port`, by the client process that holds them."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    by: Counter[int] = Counter()
    for line in out.splitlines():
        for pid in set(_SS_PID.findall(line)):
            by[int(pid)] += 1
    return by


# -- API server figures ---------------------------------------------------------------------------------------

Key = tuple[str, str, str]  # (verb, resource, subresource)


def request_counts(text: str) -> dict[Key, float]:
    """apiserver_request_total by (verb, resource, subresource), resource requests only."""
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name != "apiserver_request_total" or not s.labels.get("resource"):
                continue
            key = (s.labels.get("verb", ""), s.labels["resource"], s.labels.get("subresource", ""))
            out[key] = out.get(key, 0.0) + s.value
    return out


def error_counts(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name != "apiserver_request_total" or not s.labels.get("resource"):
                continue
            code = s.labels.get("code", "")
            if code.startswith("2"):
                continue
            key = f"{s.labels.get('verb')} {row_resource(s.labels['resource'], s.labels.get('subresource', ''))} {code}"
            out[key] = out.get(key, 0.0) + s.value
    return out


def watches_held(text: str) -> dict[str, float]:
    """apiserver_longrunning_requests{verb="WATCH"} by resource (the watches open right now)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "apiserver_longrunning_requests" and s.labels.get("verb") == "WATCH":
                res = row_resource(s.labels.get("resource", ""), s.labels.get("subresource", ""))
                out[res] = out.get(res, 0.0) + s.value
    return out


def row_resource(resource: str, subresource: str) -> str:
    return f"{resource}/{subresource}" if subresource else resource


def row_key(key: Key) -> str:
    return f"{key[0]} {row_resource(key[1], key[2])}"


def rate_per_minute(before: dict[Key, float], after: dict[Key, float], seconds: float) -> dict[Key, float]:
    return {k: (v - before.get(k, 0.0)) * 60 / seconds for k, v in after.items() if v - before.get(k, 0.0) > 0}


def per_node_profile(rates: dict[Key, float], baseline: dict[Key, float], n: int) -> dict[str, float]:
    """Requests per node-minute: the window's rate minus the idle control plane's, / N (rows > 0)."""
    out: dict[str, float] = {}
    for key in sorted(set(rates) | set(baseline)):
        value = (rates.get(key, 0.0) - baseline.get(key, 0.0)) / n
        if round(value, 3) > 0:
            out[row_key(key)] = round(value, 3)
    return out


def audit_profile(
    path: Path, kind: str, since: float, until: float, n: int, *, per_minute: bool = True
) -> dict[str, Any]:
    """From the audit log: requests per node-minute (or per node, `per_minute=False`) by (verb,
    resource/subresource) of the kind's user agents completed (watches: opened) in [since, until); also per
    agent and the response codes that were not 2xx."""
    agents = AGENTS[kind]
    rows: Counter[str] = Counter()
    by_agent: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    minutes = (until - since) / 60 if per_minute else 1.0
    with contextlib.suppress(FileNotFoundError), path.open() as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            agent = event.get("userAgent", "")
            if not agent.startswith(agents):
                continue
            verb = RESOURCE_METRIC_VERBS.get(event.get("verb", ""), event.get("verb", "").upper())
            stage = event.get("stage")
            if stage != ("ResponseStarted" if verb == "WATCH" else "ResponseComplete"):
                continue
            t = _rfc3339(event.get("stageTimestamp", ""))
            if not since <= t < until:
                continue
            ref = event.get("objectRef") or {}
            key = f"{verb} {row_resource(ref.get('resource', ''), ref.get('subresource', ''))}"
            rows[key] += 1
            by_agent[agent.split("/")[0].split(" ")[0]] += 1
            code = (event.get("responseStatus") or {}).get("code", 0)
            if stage == "ResponseComplete" and not 200 <= code < 300:
                errors[f"{key} {code}"] += 1
    unit = "per_node_minute" if per_minute else "per_node"
    return {
        f"requests_{unit}": {k: round(v / n / minutes, 3) for k, v in sorted(rows.items())},
        f"by_user_agent_{unit}": {k: round(v / n / minutes, 3) for k, v in sorted(by_agent.items())},
        "errors": dict(errors),
    }


def node_rows(profile: dict[str, float], *audits: dict[str, Any]) -> dict[str, float]:
    """`profile` restricted to the rows the kind's own clients made (per the audit log): the control plane's
    components re-open their watches too, and a short baseline cannot catch those 5-10 minute cycles."""
    keys = {k for audit in audits for sub in audit.values() if isinstance(sub, dict) for k in sub if " " in k}
    return {k: v for k, v in profile.items() if k in keys}


async def lease_ages(admin: RestClient, prefix: str) -> dict[str, float]:
    """Seconds since each of the kind's Leases was last renewed (kubelet renews every 10 s; 40 s is NotReady)."""
    leases = await admin.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
    now = time.time()
    ages = [
        now - _rfc3339(item["spec"].get("renewTime", ""))
        for item in leases.get("items", [])
        if item["metadata"]["name"].startswith(prefix + "-")
    ]
    return _q(ages)


def _rfc3339(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# -- the kinds' processes -------------------------------------------------------------------------------------


class Kind:
    """The processes of one kind's N hollow nodes."""

    def __init__(self, kind: str, n: int, work: Path) -> None:
        self.kind = kind
        self.n = n
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pool_base_rss = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> int:
        return sum(1 for p in self.procs if p.poll() is None)

    def cpu(self) -> float:
        return sum(c for c in (cpu_seconds(pid) for pid in self.pids) if c == c)

    async def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(p.poll() is None for p in self.procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def spawn(
    argv: list[str], log_path: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None, stdout: Any = None
) -> subprocess.Popen[bytes]:
    """A child logging to `log_path` (stdout too unless piped), SIGTERMed if this process dies."""
    with log_path.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else out,
            env=env,
            cwd=cwd,
            preexec_fn=terminate_with_parent,
        )


async def start_go(args: argparse.Namespace, kind: Kind, cp: Any, names: list[str]) -> None:
    from kubemark.master.pki import write_kubeconfig

    pki = cp.pki
    kind.work.mkdir(parents=True, exist_ok=True)
    proxy_cfg = kind.work / "kube-proxy.kubeconfig"
    cert, key = pki.issue_client_cert(KUBE_PROXY_USER)
    write_kubeconfig(proxy_cfg, server=cp.url, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key, user=KUBE_PROXY_USER)
    configs = []
    for name in names:  # certificates first: the spawn ramp is then only processes
        path = kind.work / f"{name}.kubeconfig"
        cert, key = pki.node_credentials(name)
        write_kubeconfig(path, server=cp.url, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key, user=f"system:node:{name}")
        configs.append(path)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for i, (name, cfg) in enumerate(zip(names, configs, strict=True)):
        if args.ramp > 0:
            delay = began + i / args.ramp - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        node_dir = kind.work / name
        (node_dir / "tmp").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TMPDIR=str(node_dir / "tmp"))  # the hollow kubelet's root dir and CRI socket
        common = [f"--name={name}", "--v=0"]
        kubelet = [
            str(args.go_kubemark),
            "--morph=kubelet",
            f"--kubeconfig={cfg}",
            f"--kubelet-port={KUBELET_PORT_BASE + i}",
            "--kubelet-read-only-port=0",
            "--use-host-image-service=false",
            f"--max-pods={args.max_pods}",
            *common,
        ]
        proxy = [str(args.go_kubemark), "--morph=proxy", f"--kubeconfig={proxy_cfg}", *common]
        for argv, logname in ((kubelet, "kubelet.log"), (proxy, "proxy.log")):
            kind.procs.append(spawn(argv, node_dir / logname, env=env, cwd=node_dir))


async def start_ours(args: argparse.Namespace, kind: Kind, cp: Any) -> None:
    cmd = [sys.executable, __file__, "--pool", str(kind.n), "--data-dir", str(cp.data_dir), "--server", cp.url]
    cmd += ["--ramp", str(args.ramp), "--prefix", PREFIX["ours"], "--max-pods", str(args.max_pods)]
    if args.ours_npd:
        cmd.append("--ours-npd")
    if args.ours_memory:
        cmd += ["--ours-memory", args.ours_memory]
    kind.work.mkdir(parents=True, exist_ok=True)
    proc = spawn(cmd, kind.work / "pool.log", stdout=subprocess.PIPE)
    kind.procs.append(proc)
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)
    if not line.startswith(READY_PREFIX.encode()):
        raise RuntimeError(f"pool process said {line!r}; see {kind.work / 'pool.log'}")
    kind.pool_base_rss = int(json.loads(line[len(READY_PREFIX) :])["base_rss"])


# -- the pool process (ours) ----------------------------------------------------------------------------------


def pool_main(args: argparse.Namespace) -> None:
    from kubemark.aio import run as run_async

    run_async(_pool(args))


async def _pool(args: argparse.Namespace) -> None:
    from kubemark.aio import wait_for_shutdown_signal
    from kubemark.hollow.config import NodeConfig
    from kubemark.hollow.pool import NodePool
    from kubemark.master.pki import ClusterPKI

    n = args.pool
    base_rss = rss_bytes(os.getpid())
    pki = ClusterPKI.load_or_create(Path(args.data_dir) / "pki")  # the master's CA (default hosts: no re-issue)
    creds: dict[str, ClusterCredentials] = {}
    for i in range(n):
        name = f"{args.prefix}-{i}"
        cert, key = pki.node_credentials(name)
        creds[name] = ClusterCredentials(server=args.server, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key)
    cert, key = pki.issue_client_cert(KUBE_PROXY_USER)
    proxy = ClusterCredentials(server=args.server, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key)
    capacity = {**NodeConfig().capacity, "pods": str(args.max_pods)}
    if args.ours_memory:
        capacity["memory"] = args.ours_memory
    config = NodeConfig.model_validate({"npd": {"enabled": bool(args.ours_npd)}, "capacity": capacity})
    pool = NodePool(n, config, creds.__getitem__, prefix=args.prefix, ramp=args.ramp, proxy_credentials=proxy)
    sys.stdout.write(READY_PREFIX + json.dumps({"base_rss": base_rss}) + "\n")
    sys.stdout.flush()
    stop = asyncio.create_task(wait_for_shutdown_signal())
    await pool.start()
    await stop
    await pool.stop()


# -- one kind, one N ------------------------------------------------------------------------------------------


async def wait_ready(admin: RestClient, prefix: str, n: int, t0: float, timeout: float) -> dict[str, float]:  # noqa: ASYNC109
    """Seconds from t0 until each `prefix-*` node was first seen Ready (polled every 0.5 s)."""
    from kubemark.measure.node_startup import node_ready

    ready: dict[str, float] = {}
    deadline = t0 + timeout
    while len(ready) < n and time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            nodes = await admin.get("/api/v1/nodes")
            now = time.monotonic() - t0
            for node in nodes.get("items", []):
                name = node["metadata"]["name"]
                if name.startswith(prefix + "-") and name not in ready and node_ready(node):
                    ready[name] = now
        await asyncio.sleep(0.5)
    return ready


async def ready_now(admin: RestClient, prefix: str) -> tuple[int, list[str]]:
    from kubemark.measure.node_startup import node_ready

    nodes = await admin.get("/api/v1/nodes")
    mine = [n for n in nodes.get("items", []) if n["metadata"]["name"].startswith(prefix + "-")]
    return sum(1 for n in mine if node_ready(n)), [n["metadata"]["name"] for n in mine if not node_ready(n)]


async def delete_nodes(admin: RestClient, prefix: str) -> int:
    nodes = await admin.get("/api/v1/nodes")
    names = [n["metadata"]["name"] for n in nodes.get("items", []) if n["metadata"]["name"].startswith(prefix + "-")]
    for name in names:
        with contextlib.suppress(Exception):
            await admin.delete(f"/api/v1/nodes/{name}")
        with contextlib.suppress(Exception):
            await admin.delete(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}")
    return len(names)


def master_cpu(cp: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pid in cp.component_pids().items():
        pids = pid if isinstance(pid, tuple) else (pid,)
        out[name] = sum(cpu_seconds(p) for p in pids)
    return out


def _q(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 50), 2),
        "p99": round(percentile(ordered, 99), 2),
        "max": round(ordered[-1], 2),
    }


async def run_kind(
    args: argparse.Namespace,
    cp: Any,
    admin: RestClient,
    kind_name: str,
    n: int,
    window: float,
    baseline: dict[Key, float],
    audit_log: Path,
    runs: list[dict[str, Any]],
) -> dict[str, Any]:
    """One kind at N; its result is in `runs` from the start (an interrupted run keeps what it measured)."""
    prefix = PREFIX[kind_name]
    names = [f"{prefix}-{i}" for i in range(n)]
    kind = Kind(kind_name, n, cp.data_dir / "nodes" / f"{kind_name}-{n}")
    result: dict[str, Any] = {"kind": kind_name, "nodes": n, "load_before": uptime_load()}
    runs.append(result)
    result["mem_available_before_gib"] = round(mem_available() / 2**30, 2)
    watches0 = watches_held(await admin.get("/metrics"))
    conns0 = sum(connections_by_pid(cp.port).values())
    try:
        t0, wall_start = time.monotonic(), time.time()
        if kind_name == "go":
            await start_go(args, kind, cp, names)
        else:
            await start_ours(args, kind, cp)
        spawned_s = time.monotonic() - t0
        ready = await wait_ready(admin, prefix, n, t0, args.ready_timeout)
        all_ready_s = time.monotonic() - t0
        result["startup"] = {
            "ramp_nodes_per_s": args.ramp,
            "spawned_s": round(spawned_s, 2),
            "ready": len(ready),
            "all_ready": len(ready) == n,
            "all_ready_s": round(all_ready_s, 2) if len(ready) == n else None,
            "node_ready_s": _q(list(ready.values())),
            "cpu_s": round(kind.cpu(), 2),
        }
        if len(ready) < n:
            result["stable"] = False
            result["stopped_because"] = f"only {len(ready)}/{n} Ready within {args.ready_timeout:g}s"
            return result
        await asyncio.sleep(args.settle)
        before_text = await admin.get("/metrics")
        cpu0, mcpu0, busy0 = kind.cpu(), master_cpu(cp), machine_busy_seconds()
        wall0, t_w = time.time(), time.monotonic()
        rss_samples: list[int] = []
        pss_samples: list[int] = []
        lowest_ready = n
        while (left := window - (time.monotonic() - t_w)) > 0:
            await asyncio.sleep(min(left, 15.0))
            rss_samples.append(sum(rss_bytes(p) for p in kind.pids))
            pss_samples.append(sum(pss_bytes(p) for p in kind.pids))
        secs = time.monotonic() - t_w
        wall1 = time.time()
        cpu1, mcpu1, busy1 = kind.cpu(), master_cpu(cp), machine_busy_seconds()
        after_text = await admin.get("/metrics")
        conns = connections_by_pid(cp.port)
        mine = sum(conns.get(p, 0) for p in kind.pids)
        ready_count, not_ready = await ready_now(admin, prefix)
        ages = await lease_ages(admin, prefix)
        lowest_ready = min(lowest_ready, ready_count)
        rates = rate_per_minute(request_counts(before_text), request_counts(after_text), secs)
        watches = watches_held(after_text)
        held = {k: round((v - watches0.get(k, 0.0)) / n, 2) for k, v in sorted(watches.items())}
        held = {k: v for k, v in held.items() if v}
        cpu_window = cpu1 - cpu0
        rss = max(rss_samples) if rss_samples else 0
        pss = max(pss_samples) if pss_samples else 0
        errs0, errs1 = error_counts(before_text), error_counts(after_text)
        result.update(
            {
                "window_s": round(secs, 1),
                "processes": len(kind.procs),
                "processes_alive": kind.alive(),
                "cpu_s_per_node_minute": round(cpu_window / n / (secs / 60), 4),
                "cpu_cores": round(cpu_window / secs, 3),
                "rss_mib_total": round(rss / 2**20, 1),
                "rss_mib_per_node": round(rss / 2**20 / n, 2),
                "pss_mib_per_node": round(pss / 2**20 / n, 2),
                "connections_per_node": round(mine / n, 2),
                "connections_total_to_apiserver": sum(conns.values()),
                "connections_before_kind": conns0,
                "watches_held_per_node": held,
                "watches_held_per_node_total": round(sum(held.values()), 2),
                # The same as a fidelity profile: `kubemark fidelity OUT.json --profile watches_held_profile`.
                "watches_held_profile": {f"WATCH {resource}": n for resource, n in held.items()},
                "master_cpu_cores": {k: round((mcpu1[k] - mcpu0.get(k, 0.0)) / secs, 3) for k in mcpu1},
                # The whole machine's busy cores, and what neither the nodes nor the master used (neighbours).
                "machine_busy_cores": round((busy1 - busy0) / secs, 3),
                "other_cores": round(
                    (busy1 - busy0 - cpu_window - sum(mcpu1[k] - mcpu0.get(k, 0.0) for k in mcpu1)) / secs, 3
                ),
                "requests_per_node_minute": per_node_profile(rates, baseline, n),
                "requests_per_minute_raw": {row_key(k): round(v, 2) for k, v in sorted(rates.items())},
                "errors_in_window": {k: int(v - errs0.get(k, 0.0)) for k, v in errs1.items() if v - errs0.get(k, 0.0)},
                "audit": audit_profile(audit_log, kind_name, wall0, wall1, n),
                "startup_audit": audit_profile(audit_log, kind_name, wall_start, wall0, n, per_minute=False),
                "lease_age_at_end_s": ages,
                "ready_at_end": ready_count,
                "not_ready_at_end": not_ready[:20],
                "stable": ready_count == n and kind.alive() == len(kind.procs),
                "load_after": uptime_load(),
            }
        )
        result["requests_per_node_minute_nodes_only"] = node_rows(
            result["requests_per_node_minute"], result["audit"], result["startup_audit"]
        )
        if kind_name == "ours":
            marginal = rss - kind.pool_base_rss
            result["rss_mib_per_node_marginal"] = round(marginal / 2**20 / n, 3)
            result["pool_base_rss_mib"] = round(kind.pool_base_rss / 2**20, 1)
        if not result["stable"]:
            result["stopped_because"] = (
                f"{n - ready_count} NotReady at the end of the window, {len(kind.procs) - kind.alive()} exited"
            )
        return result
    finally:
        await kind.stop()
        result["deleted_nodes"] = await delete_nodes(admin, prefix)
        await asyncio.sleep(args.cooldown)
        if not args.keep and kind.work.exists():
            shutil.rmtree(kind.work, ignore_errors=True)


# -- orchestration --------------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(a / b, 4)


def _save_partial(args: argparse.Namespace, params: dict, baseline: dict, runs: list) -> None:
    """The runs so far, to --partial (a long run's figures survive an interruption)."""
    if args.partial:
        doc = {"benchmark": "peer_go_kubemark", "partial": True, "params": params, "runs": runs}
        Path(args.partial).write_text(json.dumps({**doc, "baseline_requests_per_minute": baseline}, indent=1))


async def main_async(args: argparse.Namespace) -> None:
    from kubemark.master.real_master import RealControlPlane, RealControlPlaneConfig, binary_version, find_kube_binaries

    raise_open_files(16 * max([args.nodes, *args.go_steps]) + 4096)
    binaries = find_kube_binaries(args.kube_binaries)
    if args.go_kubemark is None:
        args.go_kubemark = binaries["kube-apiserver"].parent / "kubemark"
    if not os.access(args.go_kubemark, os.X_OK):
        sys.exit(f"Go kubemark not found at {args.go_kubemark}: build it with `bash scripts/kube-binaries.sh`")
    tmp = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        tmp = tempfile.mkdtemp(prefix="peer-go-kubemark-")
        data_dir = Path(tmp)
    data_dir.mkdir(parents=True, exist_ok=True)
    policy = data_dir / "audit-policy.yaml"
    policy.write_text(AUDIT_POLICY)
    audit_log = data_dir / "audit.log"
    extra = [f"--audit-policy-file={policy}", f"--audit-log-path={audit_log}", "--audit-log-maxsize=0"]
    cp = RealControlPlane(
        RealControlPlaneConfig(data_dir=data_dir, binaries=binaries, port=0, extra_args={"kube-apiserver": extra})
    )
    params = {
        "nodes": args.nodes,
        "kinds": args.kinds,
        "go_steps": args.go_steps,
        "ramp_nodes_per_s": args.ramp,
        "step_ramp_nodes_per_s": args.step_ramp or args.ramp,
        "settle_s": args.settle,
        "window_s": args.window,
        "step_window_s": args.step_window,
        "baseline_window_s": args.baseline_window,
        "ready_timeout_s": args.ready_timeout,
        "max_pods": args.max_pods,
        "ours_npd": args.ours_npd,
        "ours_memory": args.ours_memory or "NodeConfig default (3.75Gi)",
        "kube_version": binary_version(binaries["kube-apiserver"]),
        "go_kubemark": str(args.go_kubemark),
        "cpus": os.cpu_count(),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": uptime_load(),
    }
    runs: list[dict[str, Any]] = []
    t_start = time.monotonic()
    step_stop = "no steps asked"
    baseline_rows: dict[str, float] = {}
    interrupted = False
    try:
        await cp.start()
        admin = RestClient(load_kubeconfig(str(cp.kubeconfig_path)), qps=0, burst=1, max_retries=1)
        try:
            await asyncio.sleep(args.settle)
            b0 = request_counts(await admin.get("/metrics"))
            t_b = time.monotonic()
            await asyncio.sleep(args.baseline_window)
            baseline = rate_per_minute(b0, request_counts(await admin.get("/metrics")), time.monotonic() - t_b)
            baseline_rows = {row_key(k): round(v, 2) for k, v in sorted(baseline.items())}
            for kind in args.kinds:
                await run_kind(args, cp, admin, kind, args.nodes, args.window, baseline, audit_log, runs)
                log.info("%s x %d: %s", kind, args.nodes, runs[-1].get("stopped_because", "ok"))
                _save_partial(args, params, baseline_rows, runs)
            last = next((r for r in reversed(runs) if r["kind"] == "go" and r.get("stable")), None)
            for n in args.go_steps:
                if last is not None:
                    # PSS: RSS counts the Go binary's shared pages once per process (5x the real use here).
                    per_node = last.get("pss_mib_per_node", 0) * 2**20
                    need = per_node * n * 1.25
                    if need > mem_available() - args.mem_reserve_gib * 2**30:
                        step_stop = f"{n} nodes would need ~{need / 2**30:.1f} GiB (PSS x 1.25); not started"
                        break
                args.ramp = args.step_ramp or args.ramp
                run = await run_kind(args, cp, admin, "go", n, args.step_window, baseline, audit_log, runs)
                log.info("go x %d: %s", n, run.get("stopped_because", "ok"))
                _save_partial(args, params, baseline_rows, runs)
                if not run.get("stable"):
                    step_stop = f"{n} nodes: {run.get('stopped_because')}"
                    break
                last = run
            else:
                if args.go_steps:
                    step_stop = "all steps stable"
        finally:
            await admin.close()
    except asyncio.CancelledError:  # SIGTERM/SIGINT: everything is stopped; report what was measured
        interrupted = True
        if runs:
            runs[-1]["interrupted"] = True
            runs[-1]["stable"] = runs[-1].get("stable", False)
        step_stop = (
            f"interrupted by a signal during {runs[-1]['kind']} x {runs[-1]['nodes']}" if runs else "interrupted"
        )
    finally:
        await cp.stop()
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    def pick(kind: str) -> dict[str, Any] | None:
        return next((r for r in runs if r["kind"] == kind and r["nodes"] == args.nodes and "window_s" in r), None)

    go, ours = pick("go"), pick("ours")
    ratios: dict[str, Any] = {}
    if go and ours:
        ratios = {
            "cpu_per_node_ours_over_go": _ratio(ours["cpu_s_per_node_minute"], go["cpu_s_per_node_minute"]),
            "rss_per_node_ours_over_go": _ratio(ours["rss_mib_per_node"], go["rss_mib_per_node"]),
            "pss_per_node_ours_over_go": _ratio(ours["pss_mib_per_node"], go["pss_mib_per_node"]),
            "all_ready_s_ours_over_go": _ratio(ours["startup"]["all_ready_s"], go["startup"]["all_ready_s"]),
            "requests_per_node_minute_ours_over_go": _ratio(
                sum(ours["requests_per_node_minute"].values()), sum(go["requests_per_node_minute"].values())
            ),
        }
    go_max = max((r["nodes"] for r in runs if r["kind"] == "go" and r.get("stable")), default=0)
    result = {
        "benchmark": "peer_go_kubemark",
        "params": params,
        "baseline_requests_per_minute": baseline_rows,
        "interrupted": interrupted,
        "runs": runs,
        "ratios": ratios,
        "go_max_nodes_stable": go_max,
        "go_steps_stopped_because": step_stop,
        "wall_s": round(time.monotonic() - t_start, 1),
        "load_after": uptime_load(),
    }
    if go and ours:
        summary = (
            f"peer_go_kubemark: N={args.nodes} on the real v1.37 master: ours vs Go kubemark per node: CPU "
            f"{ours['cpu_s_per_node_minute']:.3f} vs {go['cpu_s_per_node_minute']:.3f} s/node-min "
            f"(x{ratios['cpu_per_node_ours_over_go']}), RSS {ours['rss_mib_per_node']:.2f} vs "
            f"{go['rss_mib_per_node']:.1f} MiB (x{ratios['rss_per_node_ours_over_go']}; PSS x"
            f"{ratios['pss_per_node_ours_over_go']}), all Ready {ours['startup']['all_ready_s']}s vs "
            f"{go['startup']['all_ready_s']}s; Go kubemark held {go_max} nodes ({step_stop})"
        )
    else:
        summary = "peer_go_kubemark: " + "; ".join(
            f"{r['kind']} x {r['nodes']}: "
            + (r.get("stopped_because") or ("interrupted" if r.get("interrupted") else "ok"))
            for r in runs
        )
    emit(result, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    kinds = lambda s: [k for k in s.split(",") if k in KINDS]  # noqa: E731 - "none": only --go-steps
    parser.add_argument("--nodes", type=int, default=50, help="N for the side-by-side runs")
    parser.add_argument("--kinds", type=kinds, default=list(KINDS), help="which kinds, in order (go,ours)")
    parser.add_argument("--go-steps", type=ints, default=[], help="then Go kubemark alone at these N, ascending")
    parser.add_argument("--ramp", type=float, default=10.0, help="nodes started per second (both kinds)")
    parser.add_argument("--step-ramp", type=float, default=0.0, help="ramp of the --go-steps runs (0: --ramp)")
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after all Ready before the window")
    parser.add_argument("--window", type=float, default=300.0, help="steady window of the side-by-side runs, s")
    parser.add_argument("--step-window", type=float, default=90.0, help="steady window of the --go-steps runs, s")
    parser.add_argument("--baseline-window", type=float, default=60.0, help="idle control plane's own rate, s")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--cooldown", type=float, default=15.0, help="seconds after a kind stops, nodes deleted")
    parser.add_argument("--mem-reserve-gib", type=float, default=6.0, help="memory a step must leave free")
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--ours-npd", action="store_true", help="run our hollow NPD too (Go kubemark has none)")
    parser.add_argument(
        "--ours-memory",
        default=None,
        help="our nodes' memory capacity (default the NodeConfig's 3.75Gi, which the real API server stores as 3840Mi)",
    )
    parser.add_argument("--kube-binaries", type=Path, default=None)
    parser.add_argument("--go-kubemark", type=Path, default=None, help="Go kubemark binary (default: beside them)")
    parser.add_argument("--data-dir", default=None, help="keep the master's data here (default: a temp dir)")
    parser.add_argument("--partial", default=None, help="write the runs so far to this file after each run")
    parser.add_argument("--keep", action="store_true", help="keep the data and node dirs (logs)")
    parser.add_argument("--pool", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--server", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default=PREFIX["ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    if args.pool is not None:
        pool_main(args)
        return
    log.setLevel(logging.INFO)
    asyncio.run(_main_until_signal(args))


async def _main_until_signal(args: argparse.Namespace) -> None:
    """SIGTERM/SIGINT cancel the run: nodes and control plane are stopped and the figures so far printed."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    await main_async(args)


if __name__ == "__main__":
    main()
