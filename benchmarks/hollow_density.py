"""Hollow-node density: how many faithful hollow nodes ONE core carries.

Per step N a fresh master runs as its own process (`kubemark master start`, TLS, memory storage by default)
pinned to one core; a fresh pool process (this script with `--pool-step`) pinned to the other core runs N
hollow nodes (kubelet + kube-proxy + NPD each, default NodeConfig: lease every 10 s, status every 10 s /
PATCH every 5 min, per-node client certificate `system:node:<name>`, own connections and watches per node).
Steps go up until lease-renewal lateness p99 > `--max-lateness` (1 s), a node fails to become Ready within
the timeout, or RSS per node exceeds `--rss-budget-kib` (1 MiB).

Per step: RSS per node (pool RSS delta / N, the delta taken from the pool process before its certificates
were issued), idle CPU per node (pool CPU seconds over the steady window / window / N), lease lateness
p50/p99 (renewal completion versus schedule; the wake-up lateness is reported beside it), node Ready time
(p50/p99/max from each node's start, and all N from the first start), the pool's worst event-loop lag, the
master's CPU and RSS, and the per-node request profile: requests/min by verb+resource from the master's
`apiserver_request_total` deltas over the steady window, / N, beside the real kubelet defaults.

Target: >= 2,000 faithful hollow nodes per core at <= 1 MiB RSS per node.

    .venv/bin/python benchmarks/hollow_density.py [--steps 250,500,1000,2000,3000] [--ramp 100] [--window 60]
    .venv/bin/python benchmarks/hollow_density.py --steps 200 --ramp 200 --window 20   # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import uvloop
from prometheus_client.parser import text_string_to_metric_families

from _harness import cpu_seconds, emit, percentile, raise_open_files, rss_bytes, running_master
from kubemark import codec
from kubemark.aio import run as run_async
from kubemark.client import ClusterCredentials, RestClient, load_kubeconfig, resource_path

RESULT_PREFIX = "RESULT "
# Per node and minute, a real kubelet + kube-proxy + NPD with default settings when nothing changes.
REFERENCE_PER_NODE_PER_MIN = {
    "PUT leases": 6.0,  # renew every 10 s (0.25 x 40 s lease)
    "PATCH nodes/status": 0.4,  # kubelet every 5 min (nodeStatusReportFrequency) + NPD every 5 min
    "WATCH (all)": 6 / 7.5,  # ~6 watches re-opened every 5-10 min (client-go's timeout; mean 7.5 min)
}


# -- the pool process ---------------------------------------------------------------------------------------


def _pool_main(args: argparse.Namespace) -> None:
    run_async(_pool_step(args))  # as `kubemark nodes start`: uvloop + the product's GC thresholds


async def _pool_step(args: argparse.Namespace) -> None:
    from kubemark.hollow.config import load_node_config
    from kubemark.hollow.metrics import PoolMetrics
    from kubemark.hollow.pool import NodePool
    from kubemark.master.pki import ClusterPKI

    class SampledMetrics(PoolMetrics):
        """PoolMetrics that also keep raw lateness samples (exact percentiles)."""

        def __init__(self) -> None:
            super().__init__()
            self.wake: list[float] = []
            self.renewal: list[float] = []

        def observe_lease_lateness(self, seconds: float) -> None:
            super().observe_lease_lateness(seconds)
            self.wake.append(seconds)

        def observe_renewal_lateness(self, seconds: float) -> None:
            super().observe_renewal_lateness(seconds)
            self.renewal.append(seconds)

    pid = os.getpid()
    n = args.pool_step
    data_dir = Path(args.data_dir)
    config = load_node_config(args.node_config)
    admin_creds = load_kubeconfig(str(data_dir / "admin.kubeconfig"))
    admin = RestClient(admin_creds, qps=0, burst=1, max_retries=1)
    await admin.get("/version")
    rss_base = rss_bytes(pid)

    t_certs = time.perf_counter()
    pki = ClusterPKI.load_or_create(data_dir / "pki", hosts=("127.0.0.1", "localhost", "::1"))
    creds: dict[str, ClusterCredentials] = {}
    for i in range(n):
        name = f"hollow-node-{i}"
        cert, key = pki.node_credentials(name)
        creds[name] = ClusterCredentials(server=admin_creds.server, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key)
    certs_s = time.perf_counter() - t_certs

    metrics = SampledMetrics()
    pool = NodePool(
        n,
        config,
        creds.__getitem__,
        ramp=args.ramp,
        metrics=metrics,
        shared_connection=args.shared_connection,
        max_starting=args.max_starting,
    )
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    cpu0 = cpu_seconds(pid)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    await pool.start()
    all_ready = await pool.wait_ready(args.ready_timeout)
    ready_wall = time.monotonic() - t0
    kubelets = [node.kubelet for node in pool.nodes.values()]
    per_node_ready = sorted(
        k.ready_at - k.started_at for k in kubelets if k.ready_at is not None and k.started_at is not None
    )
    result: dict[str, Any] = {
        "nodes": n,
        "ready": sum(1 for k in kubelets if k.ready.is_set()),
        "all_ready": all_ready,
        "cert_issue_s": round(certs_s, 2),
        "all_ready_s": round(ready_wall, 2),
        "node_ready_s": _quantiles(per_node_ready),
    }
    synced = all_ready and await pool.wait_synced(args.ready_timeout)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    result["all_synced_s"] = round(time.monotonic() - t0, 2)
    result["startup_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
    result["startup_loop_lag_max_s"] = round(pool._probe.max_lag, 3)
    result["all_synced"] = synced
    if synced:
        # Settle: watches opened, first renewals done; then the steady window.
        await asyncio.sleep(args.settle)
        before = await _scrape(admin)
        pool._probe.max_lag = 0.0
        metrics.wake.clear()
        metrics.renewal.clear()
        t_w, cpu_w = loop.time(), cpu_seconds(pid)
        await asyncio.sleep(args.window)
        window = loop.time() - t_w
        idle_cpu = cpu_seconds(pid) - cpu_w
        after = await _scrape(admin)
        rss = rss_bytes(pid)
        result.update(
            {
                "window_s": round(window, 1),
                "rss_mb": round(rss / 2**20, 1),
                "rss_per_node_kib": round((rss - rss_base) / 1024 / n, 1),
                "idle_cpu_cores": round(idle_cpu / window, 4),
                "idle_cpu_per_node_ms_per_s": round(idle_cpu / window / n * 1000, 4),
                "lease_renewal_lateness_s": _quantiles(sorted(metrics.renewal)),
                "lease_wake_lateness_s": _quantiles(sorted(metrics.wake)),
                "loop_lag_max_s": round(pool._probe.max_lag, 3),
                "requests_per_node_per_min": _profile(before, after, n, window),
                "errors_in_window": _error_counts(before, after),
            }
        )
    await pool.stop()
    await admin.close()
    sys.stdout.write(RESULT_PREFIX + codec.dumps(result).decode() + "\n")
    sys.stdout.flush()


def _quantiles(ordered: list[float]) -> dict[str, float | int]:
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 50), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }


async def _scrape(admin: RestClient) -> dict[tuple[str, str, str], float]:
    """apiserver_request_total by (verb, resource[/subresource], code)."""
    text = await admin.get("/metrics")
    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name != "apiserver_request_total":
                continue
            res = s.labels.get("resource", "")
            if s.labels.get("subresource"):
                res += "/" + s.labels["subresource"]
            key = (s.labels.get("verb", ""), res, s.labels.get("code", ""))
            out[key] = out.get(key, 0.0) + s.value
    return out


def _profile(before: dict, after: dict, n: int, window: float) -> dict[str, float]:
    by: Counter[str] = Counter()
    for (verb, res, _code), value in after.items():
        delta = value - before.get((verb, res, _code), 0.0)
        if delta and res:  # non-resource requests (our own /metrics scrape) are not node load
            by[f"{verb} {res}"] += delta
    return {k: round(v / n / (window / 60), 3) for k, v in sorted(by.items())}


def _error_counts(before: dict, after: dict) -> dict[str, int]:
    by: Counter[str] = Counter()
    for key, value in after.items():
        if not key[2].startswith("2") and key[1]:
            delta = int(value - before.get(key, 0.0))
            if delta:
                by[f"{key[0]} {key[1]} {key[2]}"] += delta
    return dict(by)


# -- the orchestrator ---------------------------------------------------------------------------------------


async def create_services(creds: ClusterCredentials, count: int, endpoints: int) -> None:
    """`count` Services (namespace `bench-services`), each with one EndpointSlice of `endpoints` ready endpoints:
    what every node's kube-proxy follows (the load test at 1,000 nodes has ~1,650)."""
    async with RestClient(creds, qps=0, burst=1) as admin:
        ns = "bench-services"
        await admin.create(resource_path("", "v1", "namespaces"), {"metadata": {"name": ns}})
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                name = f"svc-{i}"
                svc = {"metadata": {"name": name}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}
                await admin.create(resource_path("", "v1", "services", ns), svc)
                eps = {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"name": f"{name}-abcde", "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4",
                    "endpoints": [
                        {"addresses": [f"10.{i // 250 % 250}.{i % 250}.{e + 1}"], "conditions": {"ready": True}}
                        for e in range(endpoints)
                    ],
                    "ports": [{"port": 8080, "protocol": "TCP"}],
                }
                await admin.create(resource_path("discovery.k8s.io", "v1", "endpointslices", ns), eps)

        await asyncio.gather(*(one(i) for i in range(count)))


async def run_step(args: argparse.Namespace, n: int, cores: tuple[int, int] | None) -> dict[str, Any]:
    if cores is not None:
        os.sched_setaffinity(0, {cores[1]})  # the master (and its etcd) inherit the master's core
    async with running_master(storage=args.storage) as master:
        if args.services:
            await create_services(master.creds, args.services, args.endpoints)
        rss_master_idle = rss_bytes(master.pid)
        cmd = [sys.executable, __file__, "--pool-step", str(n), "--data-dir", str(master.data_dir)]
        cmd += ["--ramp", str(args.ramp), "--settle", str(args.settle), "--window", str(args.window)]
        cmd += ["--ready-timeout", str(args.ready_timeout), "--max-starting", str(args.max_starting)]
        if args.node_config:
            cmd += ["--node-config", args.node_config]
        if args.shared_connection:
            cmd.append("--shared-connection")
        if args.profile:
            cmd += ["--profile", args.profile]
        pool_core = None if cores is None else cores[0]
        master_cpu0 = cpu_seconds(master.pid)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=(lambda: os.sched_setaffinity(0, {pool_core})) if pool_core is not None else None,
        )
        assert proc.stdout is not None
        result: dict[str, Any] = {"nodes": n, "error": "pool process gave no result"}
        master_rss_peak = 0
        async for line in proc.stdout:
            if line.startswith(RESULT_PREFIX.encode()):
                result = codec.loads(line[len(RESULT_PREFIX) :])
                master_rss_peak = rss_bytes(master.pid)
        await proc.wait()
        result["master_cpu_s"] = round(cpu_seconds(master.pid) - master_cpu0, 1)
        result["master_rss_mb"] = round(master_rss_peak / 2**20, 1)
        result["master_rss_per_node_kib"] = round((master_rss_peak - rss_master_idle) / 1024 / n, 1)
        return result


def _verdict(step: dict[str, Any], args: argparse.Namespace) -> str | None:
    """Why this step is over budget, or None."""
    if not step.get("all_ready"):
        return f"only {step.get('ready', 0)}/{step['nodes']} nodes Ready within {args.ready_timeout:g}s"
    if not step.get("all_synced"):
        return f"informers not all synced within {args.ready_timeout:g}s"
    p99 = step["lease_renewal_lateness_s"].get("p99", 0.0)
    if p99 > args.max_lateness:
        return f"lease renewal lateness p99 {p99:.2f}s > {args.max_lateness:g}s"
    if step["rss_per_node_kib"] > args.rss_budget_kib:
        return f"RSS {step['rss_per_node_kib']:.0f} KiB/node > {args.rss_budget_kib:g} KiB"
    return None


async def main_async(args: argparse.Namespace) -> None:
    open_files = raise_open_files(16 * max(args.steps) + 4096)
    cpus = sorted(os.sched_getaffinity(0))
    cores = (cpus[0], cpus[1]) if len(cpus) >= 2 else None
    steps: list[dict[str, Any]] = []
    stop_reason = "all steps within budget"
    carried = 0
    for n in args.steps:
        step = await run_step(args, n, cores)
        step["over_budget"] = _verdict(step, args)
        steps.append(step)
        logging.info("step %d: %s", n, step.get("over_budget") or "ok")
        if step["over_budget"]:
            stop_reason = f"{n} nodes: {step['over_budget']}"
            break
        carried = n
    result = {
        "benchmark": "hollow_density",
        "params": {
            "steps": args.steps,
            "ramp_nodes_per_s": args.ramp,
            "max_starting": args.max_starting,
            "settle_s": args.settle,
            "window_s": args.window,
            "max_lateness_s": args.max_lateness,
            "rss_budget_kib": args.rss_budget_kib,
            "storage": args.storage,
            "services": args.services,
            "endpoints_per_slice": args.endpoints,
            "tls": True,
            "credentials": "per-node client certificate (system:node:<name>)",
            "connections": "shared connector" if args.shared_connection else "own connections per node",
            "node_config": args.node_config or "defaults (lease 10 s, status 10 s / 5 min, NPD 5 min)",
            "pinning": (
                f"pool pinned to CPU {cores[0]}, master (own process) pinned to CPU {cores[1]}"
                if cores
                else "not pinned (fewer than 2 CPUs available)"
            ),
            "load_before": os.getloadavg(),
            # Each node holds ~7 connections (HTTP/1.1: one per watch), so the master's and the pool's file
            # limits cap the step size: 3,000 nodes need more than 20,000 descriptors per process.
            "open_files_limit": open_files,
        },
        "reference_per_node_per_min": REFERENCE_PER_NODE_PER_MIN,
        "steps": steps,
        "nodes_per_core": carried,
        "stopped_because": stop_reason,
    }
    best = next((s for s in steps if s["nodes"] == carried), None)
    if best is not None:
        summary = (
            f"hollow_density: {carried} nodes on one core "
            f"({f'pool CPU {cores[0]}, master CPU {cores[1]}' if cores else 'unpinned'}): "
            f"{best['rss_per_node_kib']:.0f} KiB RSS/node, {best['idle_cpu_per_node_ms_per_s']:.3f} ms CPU/s/node idle, "
            f"lease lateness p99 {best['lease_renewal_lateness_s'].get('p99', 0):.2f}s, "
            f"all Ready in {best['all_ready_s']:.1f}s; stopped: {stop_reason}"
        )
    else:
        summary = f"hollow_density: no step within budget; {stop_reason}"
    emit(result, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--steps", type=ints, default=[250, 500, 1000, 2000, 3000], help="node counts, ascending")
    parser.add_argument("--ramp", type=float, default=100.0, help="nodes started per second")
    parser.add_argument("--max-starting", type=int, default=64, help="nodes starting at once (0: no limit)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after all Ready before the window")
    parser.add_argument("--window", type=float, default=60.0, help="steady window, seconds")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--max-lateness", type=float, default=1.0, help="lease renewal lateness p99 budget, s")
    parser.add_argument("--rss-budget-kib", type=float, default=1024.0)
    parser.add_argument("--storage", choices=["etcd", "memory"], default="memory")
    parser.add_argument("--services", type=int, default=0, help="Services (+1 EndpointSlice each) to create first")
    parser.add_argument("--endpoints", type=int, default=5, help="ready endpoints per EndpointSlice")
    parser.add_argument("--node-config", default=None, help="NodeConfig YAML (default: kubelet defaults)")
    parser.add_argument("--shared-connection", action="store_true", help="KWOK-like: one connector for the pool")
    parser.add_argument("--profile", default=None, help="cProfile the pool's start-up into this file")
    parser.add_argument("--pool-step", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    if args.pool_step is not None:
        _pool_main(args)
        return
    logging.getLogger().setLevel(logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main_async(args))


if __name__ == "__main__":
    main()
