"""How far the API server's etcd watch (the hub feeding every watch cache) falls behind etcd while writes pour in
and the event loop is busy.

A real etcd (fsync on), `--writes` pod-sized creates from 100 concurrent writers, one watch-cache-like consumer
decoding every event, and optionally a busy event loop (`--busy-ms`: each loop turn also spends that long on other
work, as a loaded API server does). Prints JSON and a one-line summary: write rate, the largest lag (events
written but not yet delivered, sampled every 0.5 s) and how long after the last write the consumer had them all.
A reader paced by loop turns (one gRPC message per turn) falls behind by thousands of events with --busy-ms 20;
the hub's reader thread does not.

    .venv/bin/python benchmarks/etcd_watch_hub.py --writes 5000 --busy-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from kubemark import codec
from kubemark.aio import run as aio_run
from kubemark.master.storage.etcd import EtcdStorage
from kubemark.master.storage.etcd_server import EtcdServer


async def measure(writes: int, busy_ms: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="kubemark-hub-bench-") as data_dir:
        etcd = EtcdServer(Path(data_dir))
        await etcd.start()
        storage = EtcdStorage(etcd.endpoint)
        await storage.start()
        try:
            start = await storage.current_revision() + 1
            seen = 0
            all_seen = asyncio.Event()

            async def consume() -> None:
                nonlocal seen
                async for batch in storage.watch("/registry/pods/", start, progress=lambda rev: None):
                    for event in batch:
                        codec.loads(event.kv.value)  # a watch cache decodes every event
                    seen += len(batch)
                    if seen >= writes:
                        all_seen.set()

            async def busy() -> None:
                while True:
                    time.sleep(busy_ms / 1000)  # noqa: ASYNC251 - deliberately blocking: other work holding the loop
                    await asyncio.sleep(0)

            value = codec.dumps(
                {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i" * 2000}]}}
            )
            todo = list(range(writes))
            lags: list[int] = []

            async def writer() -> None:
                while todo:
                    i = todo.pop()
                    await storage.create(f"/registry/pods/bench/p{i}", value)

            async def monitor() -> None:
                while True:
                    await asyncio.sleep(0.5)
                    lags.append(await storage.current_revision() - start + 1 - seen)

            tasks = [asyncio.create_task(consume()), asyncio.create_task(monitor())]
            if busy_ms > 0:
                tasks.append(asyncio.create_task(busy()))
            t0 = time.perf_counter()
            await asyncio.gather(*(writer() for _ in range(100)))
            written = time.perf_counter() - t0
            await asyncio.wait_for(all_seen.wait(), 600)
            delivered = time.perf_counter() - t0
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await storage.close()
            await etcd.stop()
    return {
        "benchmark": "etcd_watch_hub",
        "writes": writes,
        "busy_ms_per_loop_turn": busy_ms,
        "writes_per_s": round(writes / written, 1),
        "max_lag_events": max(lags, default=0),
        "all_delivered_after_last_write_s": round(delivered - written, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--busy-ms", type=float, default=20.0)
    args = parser.parse_args()
    result = aio_run(measure(args.writes, args.busy_ms))
    print(codec.dumps(result).decode())
    print(
        f"etcd_watch_hub: {result['writes_per_s']} writes/s with {args.busy_ms:g} ms busy loop turns, max lag "
        f"{result['max_lag_events']} events, all delivered {result['all_delivered_after_last_write_s']} s after the "
        "last write"
    )


if __name__ == "__main__":
    main()
