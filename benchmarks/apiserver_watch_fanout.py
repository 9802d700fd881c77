"""Watch fan-out: delivery lag and API server memory with 1k / 5k / 10k pod watchers.

Per point a fresh master (own process, TLS, etcd by default) gets W watchers, each its own RestClient and
connection, then one writer creates pods at `--rate` per second for `--duration` seconds:

- `--mode node` (default, like kubelets): watcher i watches pods with fieldSelector=spec.nodeName=node-i;
  pods are bound to the first `--active-nodes` nodes in turn, so each event goes to one watcher and the
  others hold an idle stream (the cache indexes pods by node: the cost should not grow with W);
- `--mode namespace`: every watcher watches the whole namespace, so each event goes to all W watchers.

Delivery lag = the watcher's receive time - the writer's POST-ack time, matched by pod name (negative when
the event beat the response). Reported: p50/p99/max lag, missing deliveries, server RSS before/after the
watchers (per-watcher KiB), watch setup time, CPU per process over the write window. Target: lag p99 <=
1 s at 10k idle watchers (it is what a kubelet waits for a pod it was given), <= 10 KiB RSS per watcher.

    .venv/bin/python benchmarks/apiserver_watch_fanout.py [--watchers 1000,5000,10000] [--rate 50] [--mode node]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import uvloop

from _harness import (
    CpuMeter,
    Master,
    bench_pod,
    emit,
    ensure_namespace,
    error_key,
    gather_limited,
    latency_ms,
    new_client,
    raise_open_files,
    rss_bytes,
    running_master,
)
from kubemark import codec
from kubemark.client import RestClient, resource_path
from kubemark.client.watch import iter_lines

NAMESPACE = "fanout"
OPEN_CONCURRENCY = 200
WRITERS = 8  # writer connections, so one slow POST does not hold back the schedule
DRAIN_SECONDS = 15.0


class Deliveries:
    """Receive times per pod name, and the watch streams' state."""

    def __init__(self) -> None:
        self.received: dict[str, list[float]] = {}
        self.open = 0
        self.ended = 0
        self.lines = 0
        self.errors: Counter[str] = Counter()
        self.count = 0
        self.target = 0
        self.all_in = asyncio.Event()

    def note(self, name: str, when: float) -> None:
        self.received.setdefault(name, []).append(when)
        self.count += 1
        if self.target and self.count >= self.target:
            self.all_in.set()


async def hold_watch(
    client: RestClient, path: str, params: dict[str, Any], ready: asyncio.Future[None], out: Deliveries
) -> None:
    try:
        async with client.stream(path, params=params) as resp:
            out.open += 1
            ready.set_result(None)
            async for line in iter_lines(resp.content):
                now = time.perf_counter()
                out.lines += 1
                event = codec.loads(line)
                if event.get("type") == "ADDED":
                    out.note(event["object"]["metadata"]["name"], now)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        out.errors[error_key(exc)] += 1
        if not ready.done():
            ready.set_exception(exc)
        return
    out.ended += 1


async def run_point(args: argparse.Namespace, n_watchers: int) -> dict[str, Any]:
    async with running_master(
        storage=args.storage, insecure_http=args.insecure_http, unsafe_no_fsync=args.unsafe_no_fsync
    ) as master:
        return await measure(args, master, n_watchers)


async def measure(args: argparse.Namespace, master: Master, n_watchers: int) -> dict[str, Any]:
    pods_path = resource_path("", "v1", "pods", NAMESPACE)
    writers = [new_client(master.creds) for _ in range(WRITERS)]
    watchers = [new_client(master.creds) for _ in range(n_watchers)]
    out = Deliveries()
    tasks: list[asyncio.Task[None]] = []
    try:
        await ensure_namespace(writers[0], NAMESPACE)
        for w in writers:  # open the writers' connections before the clock starts
            await w.get("/version")
        start_rv = (await writers[0].list(pods_path, limit=1))["metadata"]["resourceVersion"]
        await asyncio.sleep(1.0)  # let the master settle after start-up before its baseline RSS
        rss_idle = rss_bytes(master.pid)

        t_open = time.perf_counter()
        loop = asyncio.get_running_loop()
        readies = [loop.create_future() for _ in range(n_watchers)]
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def open_one(i: int) -> None:
            params: dict[str, Any] = {
                "watch": "true",
                "resourceVersion": start_rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": 3600,
            }
            if args.mode == "node":
                params["fieldSelector"] = f"spec.nodeName=node-{i}"
            async with gate:
                task = asyncio.create_task(hold_watch(watchers[i], pods_path, params, readies[i], out))
                tasks.append(task)
                await asyncio.wait([readies[i]])

        await asyncio.gather(*(open_one(i) for i in range(n_watchers)))
        open_s = time.perf_counter() - t_open
        await asyncio.sleep(2.0)
        rss_watching = rss_bytes(master.pid)

        n_pods = int(args.rate * args.duration)
        active = min(args.active_nodes, n_watchers)
        out.target = n_pods if args.mode == "node" else n_pods * out.open
        acks: dict[str, float] = {}
        write_errors: Counter[str] = Counter()
        write_lat: list[float] = []
        meter = CpuMeter(master.pids())
        meter.start()
        t_start = time.perf_counter()

        async def write(k: int) -> None:
            name = f"pod-{k}"
            node = f"node-{k % active}" if args.mode == "node" else None
            t0 = time.perf_counter()
            try:
                await writers[k % WRITERS].create(pods_path, bench_pod(name, NAMESPACE, node=node))
            except Exception as exc:
                write_errors[error_key(exc)] += 1
                return
            acks[name] = time.perf_counter()
            write_lat.append(acks[name] - t0)

        # Open loop: pod k is written at t_start + k / rate whatever the previous writes are doing.
        pending: list[asyncio.Task[None]] = []
        for k in range(n_pods):
            delay = t_start + k / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(write(k)))
        await asyncio.gather(*pending)
        write_wall = time.perf_counter() - t_start
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(out.all_in.wait(), DRAIN_SECONDS)
        cpu = meter.stop()
        rss_after = rss_bytes(master.pid)

        lags = [when - acks[name] for name, times in out.received.items() if name in acks for when in times]
        lag = latency_ms(lags)
        expected = len(acks) if args.mode == "node" else len(acks) * out.open
        return {
            "watchers": n_watchers,
            "watch_open_s": round(open_s, 2),
            "watches_opened": out.open,
            "watches_held": out.open - out.ended,
            "watch_errors": dict(out.errors),
            "pods_written": len(acks),
            "write_errors": dict(write_errors),
            "achieved_rate_per_s": round(len(acks) / write_wall, 1),
            "write_latency": latency_ms(write_lat),
            "deliveries_expected": expected,
            "deliveries_received": len(lags),
            "deliveries_missing": expected - len(lags),
            "deliveries_per_s": round(len(lags) / write_wall, 1),
            "lag": lag,
            "cpu": cpu,
            "apiserver_rss_idle_mb": round(rss_idle / 2**20, 1),
            "apiserver_rss_watching_mb": round(rss_watching / 2**20, 1),
            "apiserver_rss_after_mb": round(rss_after / 2**20, 1),
            "apiserver_rss_per_watcher_kib": round((rss_watching - rss_idle) / 1024 / max(1, out.open), 2),
            "client_rss_mb": round(rss_bytes(master.pids()["client"]) / 2**20, 1),
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await gather_limited([c.close() for c in writers + watchers], 1000)


async def main_async(args: argparse.Namespace) -> None:
    raise_open_files(2 * max(args.watchers) + 1024)
    points = [await run_point(args, n) for n in args.watchers]
    result = {
        "benchmark": "apiserver_watch_fanout",
        "params": {
            "watchers": args.watchers,
            "mode": args.mode,
            "active_nodes": args.active_nodes if args.mode == "node" else None,
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "writer_connections": WRITERS,
            "client_processes": 1,
            "connection_per_watcher": True,
            "storage": args.storage,
            "tls": not args.insecure_http,
            "unsafe_no_fsync": args.unsafe_no_fsync,
            "fresh_master_per_point": True,
        },
        "points": points,
    }
    parts = [
        f"{p['watchers']} watchers: lag p50 {p['lag'].get('p50_ms', 0):.0f} ms p99 {p['lag'].get('p99_ms', 0):.0f} ms "
        f"max {p['lag'].get('max_ms', 0):.0f} ms, {p['apiserver_rss_per_watcher_kib']:.0f} KiB/watcher"
        + (f", {p['deliveries_missing']} missing" if p["deliveries_missing"] else "")
        for p in points
    ]
    emit(result, f"apiserver_watch_fanout ({args.mode}, {args.rate:g} pods/s): " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000, 10000])
    parser.add_argument("--mode", choices=["node", "namespace"], default="node")
    parser.add_argument("--active-nodes", type=int, default=100, help="node mode: nodes that get pods")
    parser.add_argument("--rate", type=float, default=50.0, help="pods created per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of writing per point")
    parser.add_argument("--storage", choices=["etcd", "memory"], default="etcd")
    parser.add_argument("--insecure-http", action="store_true")
    parser.add_argument("--unsafe-no-fsync", action="store_true", help="etcd without fsync")
    uvloop.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
