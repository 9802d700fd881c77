"""kubemark's event-loop entry point: uvloop, GC tuning, shutdown signals."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

from kubemark import aio


def test_run_uses_uvloop_and_tunes_gc() -> None:
    before = gc.get_threshold()

    async def probe() -> tuple[str, tuple[int, int, int]]:
        return type(asyncio.get_running_loop()).__module__, gc.get_threshold()

    try:
        module, thresholds = aio.run(probe())
    finally:
        gc.set_threshold(*before)
    assert module.startswith("uvloop")
    assert thresholds == aio.GC_THRESHOLDS


def test_wait_for_shutdown_signal_returns_the_signal_and_removes_its_handler() -> None:
    async def main() -> signal.Signals:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        return await aio.wait_for_shutdown_signal()

    before = gc.get_threshold()
    try:
        assert aio.run(main()) is signal.SIGTERM
    finally:
        gc.set_threshold(*before)
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
