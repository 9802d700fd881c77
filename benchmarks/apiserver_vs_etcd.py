"""What the API server adds on top of etcd: one lease update through the API server vs one raw etcd txn.

Both paths write into the same etcd (the master's own, started by `kubemark master start` in its own
process), from this one client process, closed loop, for `--duration` seconds per point, at each
concurrency in `--concurrency`:

- apiserver: PUT coordination.k8s.io/v1 leases/<name> (renewTime changed, resourceVersion of the last
  answer), one RestClient and TLS connection per concurrent client, as kubelets do;
- etcd: `EtcdStorage.update(key, value, expected_mod_revision)` -- the very txn the API server issues for
  that PUT (compare version > 0 and mod_revision, put with prev_kv, else get) -- with a value the size of the
  stored lease, over one gRPC channel (as the API server's own client), one key per concurrent task.

Reported per point: both throughputs and latency percentiles, the ratios (apiserver / etcd latency, etcd /
apiserver throughput), CPU of client, API server and etcd. Target: the API server adds < 5x to etcd's
latency at concurrency 1 (kube-apiserver's own overhead on a lease PUT is roughly 2x).

    .venv/bin/python benchmarks/apiserver_vs_etcd.py [--concurrency 1,100] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from _harness import (
    CpuMeter,
    Master,
    emit,
    error_key,
    gather_limited,
    latency_ms,
    microtime,
    new_client,
    raise_open_files,
    running_master,
)
from kubemark import codec
from kubemark.client import resource_path
from kubemark.master.storage.etcd import EtcdStorage

LEASE_NAMESPACE = "kube-node-lease"
ETCD_PREFIX = "/kubemark-bench"

Op = Callable[[], Awaitable[None]]


def lease(name: str) -> dict[str, Any]:
    now = microtime()
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "acquireTime": now, "renewTime": now},
    }


async def closed_loop(ops: list[Op], duration: float, meter: CpuMeter) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    meter.start()
    t_start = time.perf_counter()
    deadline = t_start + duration

    async def loop(op: Op) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await op()
            except Exception as exc:
                errors[error_key(exc)] += 1
                continue
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(loop(op) for op in ops))
    wall = time.perf_counter() - t_start
    return {
        "ok": len(latencies),
        "errors": dict(errors),
        "per_s": round(len(latencies) / wall, 1),
        "latency": latency_ms(latencies),
        "cpu": meter.stop(),
    }


async def apiserver_point(master: Master, concurrency: int, duration: float, tag: str) -> dict[str, Any]:
    leases = resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE)
    clients = [new_client(master.creds) for _ in range(concurrency)]
    try:

        async def build(i: int) -> Op:
            client = clients[i]
            name = f"{tag}-{i}"
            state = {"lease": await client.create(leases, lease(name))}
            path = f"{leases}/{name}"

            async def op() -> None:
                body = state["lease"]
                body["spec"]["renewTime"] = microtime()
                state["lease"] = await client.replace(path, body)

            return op

        ops = await gather_limited([build(i) for i in range(concurrency)], 100)
        bad = [o for o in ops if isinstance(o, BaseException)]
        if bad:
            raise RuntimeError(f"{len(bad)} lease clients failed to start: {bad[0]!r}")
        return await closed_loop(ops, duration, CpuMeter(master.pids()))
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def etcd_point(
    master: Master, storage: EtcdStorage, concurrency: int, duration: float, value: bytes, tag: str
) -> dict[str, Any]:
    async def build(i: int) -> Op:
        key = f"/leases/{tag}-{i}"
        state = {"rev": (await storage.create(key, value)).mod_revision}

        async def op() -> None:
            state["rev"] = (await storage.update(key, value, state["rev"])).mod_revision

        return op

    ops = [await build(i) for i in range(concurrency)]
    return await closed_loop(ops, duration, CpuMeter(master.pids()))


async def main_async(args: argparse.Namespace) -> None:
    raise_open_files(max(args.concurrency) * 2 + 1024)
    points: list[dict[str, Any]] = []
    async with running_master(storage="etcd", insecure_http=args.insecure_http) as master:
        # Size the raw value like the stored lease (metadata filled in by the server).
        probe = new_client(master.creds)
        stored = await probe.create(
            resource_path("coordination.k8s.io", "v1", "leases", LEASE_NAMESPACE), lease("probe")
        )
        await probe.close()
        value = codec.dumps(stored)
        storage = EtcdStorage(master.etcd_endpoint, prefix=ETCD_PREFIX)
        await storage.start()
        try:
            for c in args.concurrency:
                etcd = await etcd_point(master, storage, c, args.duration, value, f"c{c}")
                api = await apiserver_point(master, c, args.duration, f"c{c}")
                api_p50, etcd_p50 = api["latency"].get("p50_ms", 0), etcd["latency"].get("p50_ms", 0)
                api_p99, etcd_p99 = api["latency"].get("p99_ms", 0), etcd["latency"].get("p99_ms", 0)
                points.append(
                    {
                        "concurrency": c,
                        "apiserver": api,
                        "etcd": etcd,
                        "latency_ratio_p50": round(api_p50 / etcd_p50, 2) if etcd_p50 else None,
                        "latency_ratio_p99": round(api_p99 / etcd_p99, 2) if etcd_p99 else None,
                        "throughput_ratio": round(etcd["per_s"] / api["per_s"], 2) if api["per_s"] else None,
                    }
                )
        finally:
            await storage.close()
    result = {
        "benchmark": "apiserver_vs_etcd",
        "params": {
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "value_bytes": len(value),
            "etcd": "the master's own (fsync on), shared by both paths",
            "etcd_client": "EtcdStorage (grpc.aio), one channel",
            "apiserver_client": "RestClient, one connection per concurrent client",
            "tls": not args.insecure_http,
            "client_processes": 1,
        },
        "points": points,
    }
    parts = [
        f"c={p['concurrency']}: apiserver {p['apiserver']['per_s']:.0f}/s p50 {p['apiserver']['latency'].get('p50_ms', 0):.1f} ms"
        f" vs etcd {p['etcd']['per_s']:.0f}/s p50 {p['etcd']['latency'].get('p50_ms', 0):.1f} ms"
        f" (x{p['latency_ratio_p50']} latency, x{p['throughput_ratio']} throughput)"
        for p in points
    ]
    emit(result, "apiserver_vs_etcd lease update: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 100])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--insecure-http", action="store_true")
    uvloop.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
