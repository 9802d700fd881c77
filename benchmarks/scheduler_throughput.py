"""Scheduler throughput: pods bound per second at N nodes.

An in-process API server (memory storage, plain HTTP) runs in its own process, the pod creator in another, and
the scheduler in this one, so the three share the machine's cores like separate components would. N Ready
nodes are created through the API (one POST each, status included), then P pods (100m CPU each, owned by
one ReplicaSet-like owner per 1,000 pods) are created as fast as the server takes them while the scheduler
binds them. Bindings confirmed by the API server are counted in 1 s windows.

Target: >= 100 pods/s overall at 5,000 nodes (clusterloader2's scheduler throughput threshold).
The scheduler's client is not rate limited here (kube-scheduler's default QPS 50 would cap binds at 50/s).

    .venv/bin/python benchmarks/scheduler_throughput.py [--nodes 5000] [--pods 10000] [--no-events]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import sys
import time
from typing import Any

from kubemark import codec
from kubemark.client import ClusterCredentials, RestClient, resource_path
from kubemark.master.scheduler import Scheduler, num_feasible_nodes_to_find

NODES = resource_path("", "v1", "nodes")


def _node(i: int) -> dict[str, Any]:
    name = f"hollow-{i:05d}"
    resources = {"cpu": "4", "memory": "16Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def _pod(i: int) -> dict[str, Any]:
    owner = f"owner-{i // 1000}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pod-{i:06d}",
            "labels": {"app": owner},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}
            ],
        },
        "spec": {
            "containers": [
                {"name": "c", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": {"cpu": "100m"}}}
            ]
        },
    }


def _serve(port_out: Any, stop: Any) -> None:
    from kubemark.master.apiserver.server import APIServer, APIServerConfig

    async def main() -> None:
        server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
        await server.start()
        port_out.put(server.url)
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await server.stop()

    _run(main())


def _create_pods(url: str, count: int, concurrency: int, done: Any) -> None:
    async def main() -> None:
        async with RestClient(ClusterCredentials(server=url), qps=0, burst=1, connection_limit=concurrency) as c:
            path = resource_path("", "v1", "pods", "default")
            await _bounded(concurrency, (c.create(path, _pod(i)) for i in range(count)))
        done.put(time.time())

    _run(main())


def _run(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


async def _bounded(concurrency: int, coros: Any) -> None:
    it = iter(coros)

    async def worker() -> None:
        for coro in it:
            await coro

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


async def _bench(url: str, args: argparse.Namespace, ctx: Any) -> dict[str, Any]:
    async with RestClient(ClusterCredentials(server=url), qps=0, burst=1, connection_limit=128) as client:
        t0 = time.perf_counter()
        await _bounded(64, (client.create(NODES, _node(i)) for i in range(args.nodes)))
        node_seconds = time.perf_counter() - t0
        scheduler = Scheduler(
            client,
            bind_concurrency=args.bind_concurrency,
            percentage_of_nodes_to_score=args.percentage or None,
            post_events=not args.no_events,
        )
        await scheduler.start()
        try:
            assert await scheduler.wait_synced(120), "scheduler caches did not sync"
            created = ctx.Queue()
            creator = ctx.Process(target=_create_pods, args=(url, args.pods, args.create_concurrency, created))
            start, start_wall = time.perf_counter(), time.time()
            creator.start()
            windows: list[int] = []
            last = 0
            first_bind: float | None = None
            deadline = start + args.timeout
            while scheduler.scheduled < args.pods and time.perf_counter() < deadline:
                await asyncio.sleep(1.0)
                now_count = scheduler.scheduled
                if first_bind is None and now_count > 0:
                    first_bind = time.perf_counter()
                if first_bind is not None:
                    windows.append(now_count - last)
                last = now_count
            end = time.perf_counter()
            creator.join(timeout=60)
            created_at = created.get(timeout=5) if not created.empty() else None
            bound = scheduler.scheduled
            attempts = scheduler.metrics.attempts
            unschedulable = attempts.labels("unschedulable", scheduler.name)._value.get()
            errors = attempts.labels("error", scheduler.name)._value.get()
        finally:
            await scheduler.stop()
    elapsed = end - start
    # The last window is partial when the run ends mid-second; report full windows only.
    full = windows[:-1] if len(windows) > 1 else windows
    return {
        "benchmark": "scheduler_throughput",
        "params": {
            "nodes": args.nodes,
            "pods": args.pods,
            "bind_concurrency": args.bind_concurrency,
            "percentage_of_nodes_to_score": args.percentage or None,
            "nodes_to_find_per_pod": num_feasible_nodes_to_find(args.percentage or None, args.nodes),
            "events": not args.no_events,
            "create_concurrency": args.create_concurrency,
            "python": sys.version.split()[0],
        },
        "node_create_seconds": round(node_seconds, 2),
        "pods_bound": bound,
        "unschedulable_attempts": unschedulable,
        "error_attempts": errors,
        "seconds": round(elapsed, 2),
        "pods_created_after_s": None if created_at is None else round(created_at - start_wall, 2),
        "throughput_overall_pods_per_s": round(bound / elapsed, 1) if elapsed else 0.0,
        "throughput_windows_pods_per_s": {
            "p50": _percentile(full, 50),
            "p90": _percentile(full, 90),
            "p99": _percentile(full, 99),
            "max": max(full) if full else 0,
            "min": min(full) if full else 0,
            "count": len(full),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--bind-concurrency", type=int, default=32)
    parser.add_argument("--create-concurrency", type=int, default=32)
    parser.add_argument("--percentage", type=int, default=0, help="percentageOfNodesToScore (0: adaptive)")
    parser.add_argument("--no-events", action="store_true", help="do not post Scheduled events")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    url_q, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(url_q, stop))
    server.start()
    try:
        url = url_q.get(timeout=60)
        result: dict[str, Any] = {}

        async def run() -> None:
            result.update(await _bench(url, args, ctx))

        _run(run())
    finally:
        stop.set()
        server.join(timeout=30)
        if server.is_alive():
            server.terminate()
    sys.stdout.write(codec.dumps(result).decode() + "\n")
    w = result["throughput_windows_pods_per_s"]
    sys.stdout.write(
        f"scheduler_throughput: {result['throughput_overall_pods_per_s']} pods/s overall "
        f"(1 s windows p50 {w['p50']}, p90 {w['p90']}, max {w['max']}) binding {result['pods_bound']}/{args.pods} pods "
        f"on {args.nodes} nodes\n"
    )


if __name__ == "__main__":
    main()
