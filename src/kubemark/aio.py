"""Running kubemark's async entry points: uvloop event loops, process limits and shutdown on SIGINT/SIGTERM; and
ending a background task."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


# Collect the young generation far less often: a server holding hundreds of MB of live JSON objects otherwise
# spends its time (and seconds-long pauses) re-scanning them. Measured on the 5,000-node heartbeat benchmark:
# 371 -> 439 lease PUT/s, p99 6.8 s -> 2.9 s (benchmarks/apiserver_writes.py --scenario nodes5000).
GC_THRESHOLDS = (50_000, 20, 100)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task (None: nothing) and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def raise_open_files_limit(wanted: int = 0) -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit (as the Go runtime does for kube-apiserver and
    kubelet); with `wanted` above the hard limit, also raise the hard limit where privileged (up to
    fs.nr_open). Thousands of hollow nodes hold several connections each. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and wanted > hard:
        ceiling = wanted
        with contextlib.suppress(OSError, ValueError), open("/proc/sys/fs/nr_open") as f:
            ceiling = min(wanted, int(f.read()))
        with contextlib.suppress(OSError, ValueError):  # unprivileged: keep the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, ceiling))
            soft = hard = ceiling
    if soft != hard:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on a uvloop event loop (the stdlib loop where uvloop is unavailable), with GC tuned for
    long-running servers and the open-files limit raised."""
    gc.set_threshold(*GC_THRESHOLDS)
    raise_open_files_limit()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a hard dependency on Linux
        return asyncio.run(main)
    return uvloop.run(main)


async def wait_for_shutdown_signal() -> signal.Signals:
    """Block until SIGINT or SIGTERM arrives; returns which one. Handlers are removed afterwards."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()
    watched = (signal.SIGINT, signal.SIGTERM)
    for sig in watched:
        loop.add_signal_handler(sig, _resolve_once, received, sig)
    try:
        return await received
    finally:
        for sig in watched:
            loop.remove_signal_handler(sig)


def _resolve_once(received: asyncio.Future[signal.Signals], sig: signal.Signals) -> None:
    if not received.done():  # a second signal before the waiter resumes must not raise InvalidStateError
        received.set_result(sig)
