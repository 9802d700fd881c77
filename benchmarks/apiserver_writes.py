"""API server write throughput and latency: pod create, pod status patch, lease update; and the 5,000-node case.

Sweep (default): for each operation and each client count, N closed-loop clients (each its own RestClient,
hence its own TLS connection) issue the operation back to back for `--duration` seconds:

- create: POST a ~2 KB pod (a realistic pod: labels, annotations, two containers, env, probes, volumes);
- patch:  strategic merge PATCH pods/<name>/status flipping the Ready condition, as a kubelet does;
- lease:  PUT coordination.k8s.io/v1 leases/<name> in kube-node-lease with a new renewTime (kubelet heartbeat).

`--scenario nodes5000`: 5,000 node leases, each renewed every 10 s (x (1 + 0.04 * rand), kubelet's jitter)
so ~500 PUT/s in total, while 5,000 pod watches (fieldSelector=spec.nodeName=<node>, each on its own
connection) are held open, for 60 s. Target: PUT p99 <= 1 s (the Kubernetes mutating-call SLO), every watch
held, no errors.

Latency is measured by the client around one HTTP request (no retries, no client rate limit); percentiles
are clusterloader2's (sorted, element ceil(n*p/100)-1). The master runs in its own process (TLS, etcd by
default); CPU of client, API server and etcd over each measured window comes from /proc.

    .venv/bin/python benchmarks/apiserver_writes.py [--clients 1,100,1000] [--duration 10] [--storage memory]
    .venv/bin/python benchmarks/apiserver_writes.py --scenario nodes5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from _harness import (
    CpuMeter,
    Master,
    bench_pod,
    emit,
    ensure_namespace,
    error_key,
    gather_limited,
    histogram_window_ms,
    latency_ms,
    microtime,
    new_client,
    raise_open_files,
    rss_bytes,
    running_master,
)
from kubemark import aio, codec
from kubemark.client import RestClient, resource_path
from kubemark.client.watch import iter_lines

NAMESPACE = "bench"
LEASE_NAMESPACE = "kube-node-lease"
OPEN_CONCURRENCY = 100  # TLS connections opened at once during setup

Op = Callable[[], Awaitable[None]]


def bench_lease(node: str) -> dict[str, Any]:
    now = microtime()
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "acquireTime": now, "renewTime": now},
    }


def status_patch(ready: bool) -> dict[str, Any]:
    now = microtime()
    flag = "True" if ready else "False"
    return {
        "status": {
            "conditions": [
                {"type": "Ready", "status": flag, "lastProbeTime": None, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastProbeTime": None, "lastTransitionTime": now},
            ]
        }
    }


# -- one sweep point -----------------------------------------------------------------------------------------


async def make_ops(kind: str, clients: list[RestClient], tag: str) -> list[Op]:
    """One operation per client, after a warm-up request that also opens the client's connection."""
    pods = resource_path("", "v1", "pods", NAMESPACE)

    def create_op(i: int, client: RestClient) -> Op:
        seq = iter(range(1 << 30))

        async def op() -> None:
            await client.create(pods, bench_pod(f"{tag}-{i}-{next(seq)}", NAMESPACE))

        return op

    def patch_op(i: int, client: RestClient) -> Op:
        path = resource_path("", "v1", "pods", NAMESPACE, f"{tag}-{i}", "status")
        state = {"ready": False}

        async def op() -> None:
            state["ready"] = not state["ready"]
            await client.patch(path, status_patch(state["ready"]), "strategic")

        return op

    async def lease_op(i: int, client: RestClient) -> Op:
        node = f"{tag}-{i}"
        created = await client.create(
            resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE), bench_lease(node)
        )
        path = resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE, node)
        state = {"lease": created}

        async def op() -> None:
            lease = state["lease"]
            lease["spec"]["renewTime"] = microtime()
            state["lease"] = await client.replace(path, lease)

        return op

    async def build(i: int, client: RestClient) -> Op:
        if kind == "create":
            await client.get("/version")
            return create_op(i, client)
        if kind == "patch":
            await client.create(pods, bench_pod(f"{tag}-{i}", NAMESPACE, node=f"bench-node-{i}"))
            return patch_op(i, client)
        return await lease_op(i, client)

    built = await gather_limited([build(i, c) for i, c in enumerate(clients)], OPEN_CONCURRENCY)
    failures = [b for b in built if isinstance(b, BaseException)]
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(clients)} clients failed to set up: {failures[0]!r}")
    return built


async def run_point(master: Master, kind: str, n_clients: int, duration: float) -> dict[str, Any]:
    clients = [new_client(master.creds) for _ in range(n_clients)]
    try:
        t_setup = time.perf_counter()
        ops = await make_ops(kind, clients, f"{kind[0]}{n_clients}")
        setup_s = time.perf_counter() - t_setup
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        meter = CpuMeter(master.pids())
        rss_before = rss_bytes(master.pid)
        meter.start()
        t_start = time.perf_counter()
        deadline = t_start + duration

        async def loop(op: Op) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    await op()
                except Exception as exc:  # counted, then the client goes on like a real one would
                    errors[error_key(exc)] += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(loop(op) for op in ops))
        wall = time.perf_counter() - t_start
        cpu = meter.stop()
        return {
            "op": kind,
            "clients": n_clients,
            "duration_s": round(wall, 3),
            "setup_s": round(setup_s, 3),
            "ok": len(latencies),
            "errors": dict(errors),
            "writes_per_s": round(len(latencies) / wall, 1),
            "latency": latency_ms(latencies),
            "cpu": cpu,
            "apiserver_rss_mb": round(rss_bytes(master.pid) / 2**20, 1),
            "apiserver_rss_growth_mb": round((rss_bytes(master.pid) - rss_before) / 2**20, 1),
        }
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def sweep(args: argparse.Namespace) -> None:
    raise_open_files(max(2048, 2 * max(args.clients) + 1024))
    points: list[dict[str, Any]] = []
    async with running_master(
        storage=args.storage,
        insecure_http=args.insecure_http,
        unsafe_no_fsync=args.unsafe_no_fsync,
        components=not args.no_components,
        apiserver_workers=args.apiserver_workers,
    ) as master:
        admin = new_client(master.creds)
        await ensure_namespace(admin, NAMESPACE)
        await admin.close()
        for kind in args.ops:
            for n in args.clients:
                points.append(await run_point(master, kind, n, args.duration))
        server = master.describe()
    result = {
        "benchmark": "apiserver_writes",
        "scenario": "sweep",
        "params": {
            "ops": args.ops,
            "clients": args.clients,
            "duration_s": args.duration,
            "client_processes": 1,
            "connection_per_client": True,
            "pod_bytes": len(codec.dumps(bench_pod("x-0-0", NAMESPACE))),
            **server,
            "unsafe_no_fsync": args.unsafe_no_fsync,
        },
        "points": points,
    }
    parts = []
    for kind in args.ops:
        best = max((p for p in points if p["op"] == kind), key=lambda p: p["writes_per_s"])
        parts.append(
            f"{kind} {best['writes_per_s']:.0f}/s (p99 {best['latency'].get('p99_ms', 0):.0f} ms @{best['clients']})"
        )
    emit(
        result,
        "apiserver_writes: " + ", ".join(parts) + f" [{args.storage}, {'http' if args.insecure_http else 'tls'}]",
    )


# -- the 5,000-node scenario ---------------------------------------------------------------------------------


async def nodes_scenario(args: argparse.Namespace) -> None:
    n = args.nodes
    raise_open_files(2 * n + 2048)
    rng = random.Random(1)
    lease_path = resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE)
    pods_path = resource_path("", "v1", "pods")
    async with running_master(
        storage=args.storage,
        insecure_http=args.insecure_http,
        unsafe_no_fsync=args.unsafe_no_fsync,
        components=not args.no_components,
        apiserver_workers=args.apiserver_workers,
    ) as master:
        lease_clients = [new_client(master.creds) for _ in range(n)]
        watch_clients = [new_client(master.creds) for _ in range(n)]
        try:
            listed = await watch_clients[0].list(pods_path, limit=1)
            start_rv = listed["metadata"]["resourceVersion"]
            state = {"open": 0, "ended": 0, "events": 0, "watch_errors": Counter()}

            async def hold_watch(i: int, ready: asyncio.Future[None]) -> None:
                params = {
                    "watch": "true",
                    "resourceVersion": start_rv,
                    "fieldSelector": f"spec.nodeName=node-{i}",
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": 3600,
                }
                try:
                    async with watch_clients[i].stream(pods_path, params=params) as resp:
                        state["open"] += 1
                        ready.set_result(None)
                        async for _line in iter_lines(resp.content):
                            state["events"] += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    state["watch_errors"][error_key(exc)] += 1
                    if not ready.done():
                        ready.set_exception(exc)
                    return
                state["ended"] += 1

            # Watches first: a lease client must not sit idle for minutes (the server closes idle
            # connections after its keep-alive timeout, and no kubelet is ever idle that long).
            t1 = time.perf_counter()
            loop = asyncio.get_running_loop()
            readies = [loop.create_future() for _ in range(n)]
            watch_tasks: list[asyncio.Task[None]] = []
            gate = asyncio.Semaphore(OPEN_CONCURRENCY)

            async def open_watch(i: int) -> None:
                # Gated, so a burst of TLS handshakes does not run into the connect timeout.
                async with gate:
                    watch_tasks.append(asyncio.create_task(hold_watch(i, readies[i])))
                    await asyncio.wait([readies[i]])

            await asyncio.gather(*(open_watch(i) for i in range(n)))
            watches_s = time.perf_counter() - t1

            # Then the nodes: each creates its lease and renews it from then on, like a kubelet. The
            # measured window starts once every lease exists.
            rss_before = rss_bytes(master.pid)
            latencies: list[float] = []
            errors: Counter[str] = Counter()
            setup_errors: Counter[str] = Counter()
            window = {"start": float("inf"), "deadline": float("inf")}
            settled = {"n": 0}
            all_created = asyncio.Event()
            t0_setup = time.perf_counter()

            def one_settled() -> None:
                settled["n"] += 1
                if settled["n"] == n:
                    all_created.set()

            async def node(i: int) -> None:
                client = lease_clients[i]
                try:
                    async with gate:
                        lease = await client.create(lease_path, bench_lease(f"node-{i}"))
                except Exception as exc:
                    setup_errors[error_key(exc)] += 1
                    return
                finally:
                    one_settled()
                path = f"{lease_path}/node-{i}"
                await asyncio.sleep(rng.random() * args.renew_interval)
                while True:
                    t0 = time.perf_counter()
                    if t0 >= window["deadline"]:
                        return
                    measured = t0 >= window["start"]
                    lease["spec"]["renewTime"] = microtime()
                    try:
                        lease = await client.replace(path, lease)
                        if measured:
                            latencies.append(time.perf_counter() - t0)
                    except Exception as exc:
                        (errors if measured else setup_errors)[error_key(exc)] += 1
                        # Kubelet re-reads the lease after a failed update (it may have been applied, or
                        # someone else wrote it): without this a 409 would repeat forever.
                        with contextlib.suppress(Exception):
                            lease = await client.get(path)
                    # Kubelet: wait.JitterUntil(renewInterval, jitter 0.04), sliding (the wait follows the call).
                    await asyncio.sleep(args.renew_interval * (1 + 0.04 * rng.random()))

            nodes = [asyncio.create_task(node(i)) for i in range(n)]
            await all_created.wait()
            leases_s = time.perf_counter() - t0_setup
            scraper = new_client(master.creds)  # its own connection: the others are busy with a node each
            scrapes_before = await _scrape_both(master, scraper)
            meter = CpuMeter(master.pids())
            meter.start()
            t_start = time.perf_counter()
            window["start"], window["deadline"] = t_start, t_start + args.scenario_duration
            await asyncio.gather(*nodes)
            cpu = meter.stop()
            breakdown = _latency_breakdown(scrapes_before, await _scrape_both(master, scraper))
            await scraper.close()
            held = state["open"] - state["ended"]
            for task in watch_tasks:
                task.cancel()
            await asyncio.gather(*watch_tasks, return_exceptions=True)
        finally:
            await gather_limited([c.close() for c in lease_clients + watch_clients], 1000)
        lat = latency_ms(latencies)
        result = {
            "benchmark": "apiserver_writes",
            "scenario": "nodes5000",
            "params": {
                "nodes": n,
                "renew_interval_s": args.renew_interval,
                "duration_s": args.scenario_duration,
                "target_put_per_s": round(n / args.renew_interval, 1),
                "client_processes": 1,
                "connection_per_client": True,
                "credentials": "admin (one shared client certificate/token), not per-node",
                **master.describe(),
                "unsafe_no_fsync": args.unsafe_no_fsync,
            },
            "setup": {
                "watch_open_s": round(watches_s, 2),
                "lease_create_s": round(leases_s, 2),
                "errors_before_window": dict(setup_errors),
            },
            "put_per_s": round(len(latencies) / args.scenario_duration, 1),  # PUTs started in the window
            "latency": lat,
            "errors": dict(errors),
            "watches_opened": state["open"],
            "watches_held": held,
            "watch_errors": dict(state["watch_errors"]),
            "watch_lines_received": state["events"],
            "cpu": cpu,
            "server_side_ms": breakdown,
            "apiserver_rss_mb": round(rss_bytes(master.pid) / 2**20, 1),
            "apiserver_rss_before_puts_mb": round(rss_before / 2**20, 1),
            "target_p99_ms": 1000,
            "master_died": master.died(),
            "meets_target": bool(lat.get("p99_ms", 1e9) <= 1000 and not errors and held == n),
        }
    emit(
        result,
        f"apiserver_writes nodes{n}: {result['put_per_s']:.0f} lease PUT/s, p50 {lat.get('p50_ms', 0):.0f} ms "
        f"p99 {lat.get('p99_ms', 0):.0f} ms max {lat.get('max_ms', 0):.0f} ms, {held}/{n} watches held, "
        f"{sum(errors.values())} errors (target p99 <= 1 s: {'met' if result['meets_target'] else 'MISSED'})",
    )


async def _scrape_both(master: Master, client: RestClient) -> tuple[str, str]:
    """The API server's and (on etcd storage) etcd's own /metrics, as text."""
    apiserver = await client.get("/metrics")
    etcd = ""
    if master.storage == "etcd":
        async with aiohttp.ClientSession() as session, session.get(f"http://{master.etcd_endpoint}/metrics") as r:
            etcd = await r.text()
    return apiserver, etcd


def _latency_breakdown(before: tuple[str, str], after: tuple[str, str]) -> dict[str, dict[str, float]]:
    """Where a lease PUT's time goes over the window: the API server's request histogram, its etcd calls,
    and etcd's own disk and gRPC figures."""
    out = {
        "apiserver PUT leases": histogram_window_ms(
            before[0], after[0], "apiserver_request_duration_seconds", verb="PUT", resource="leases"
        ),
        "apiserver etcd update Lease": histogram_window_ms(
            before[0], after[0], "etcd_request_duration_seconds", operation="update", type="Lease"
        ),
    }
    if after[1]:
        out["etcd wal fsync"] = histogram_window_ms(before[1], after[1], "etcd_disk_wal_fsync_duration_seconds")
        out["etcd backend commit"] = histogram_window_ms(
            before[1], after[1], "etcd_disk_backend_commit_duration_seconds"
        )
        out["etcd grpc Txn"] = histogram_window_ms(
            before[1], after[1], "grpc_server_handling_seconds", grpc_method="Txn"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["sweep", "nodes5000"], default="sweep")
    parser.add_argument("--ops", type=lambda s: s.split(","), default=["create", "patch", "lease"])
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 100, 1000])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per sweep point")
    parser.add_argument("--nodes", type=int, default=5000, help="nodes5000: leases and watches")
    parser.add_argument("--renew-interval", type=float, default=10.0, help="nodes5000: seconds between renewals")
    parser.add_argument("--scenario-duration", type=float, default=60.0, help="nodes5000: measured seconds")
    parser.add_argument("--storage", choices=["etcd", "memory"], default="etcd")
    parser.add_argument("--insecure-http", action="store_true")
    parser.add_argument("--unsafe-no-fsync", action="store_true", help="etcd without fsync")
    parser.add_argument(
        "--apiserver-workers", type=int, default=1, help="API server processes on the one port (etcd only)"
    )
    parser.add_argument(
        "--no-components", action="store_true", help="master without scheduler and controllers (API server alone)"
    )
    args = parser.parse_args()
    bad = set(args.ops) - {"create", "patch", "lease"}
    if bad:
        parser.error(f"unknown ops {sorted(bad)}")
    # kubemark's own entry point: uvloop plus the GC tuning, so the client's collections do not pause it.
    aio.run(sweep(args) if args.scenario == "sweep" else nodes_scenario(args))


if __name__ == "__main__":
    main()
