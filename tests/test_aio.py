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


def _limits_after(soft: int, hard: int, wanted: int) -> tuple[int, int, int]:
    """(returned soft, soft, hard) after raise_open_files_limit(wanted), in a child process started at soft/hard."""
    import resource
    import subprocess
    import sys

    code = (
        "import resource; from kubemark.aio import raise_open_files_limit as r; "
        f"n = r({wanted}); print(n, *resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    returned, new_soft, new_hard = (int(x) for x in out)
    return returned, new_soft, new_hard


def test_open_files_soft_limit_is_raised_to_the_hard_limit() -> None:
    assert _limits_after(256, 4096, 0) == (4096, 4096, 4096)


def _has_cap_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        effective = next(line for line in f if line.startswith("CapEff:")).split()[1]
    return bool(int(effective, 16) & (1 << 24))  # CAP_SYS_RESOURCE


def test_open_files_hard_limit_is_raised_only_where_privileged() -> None:
    # Privileged (CAP_SYS_RESOURCE): the hard limit goes up to what was asked; otherwise it is kept and the
    # soft limit still reaches it.
    expected = 8192 if _has_cap_sys_resource() else 4096
    assert _limits_after(256, 4096, 8192) == (expected, expected, expected)
