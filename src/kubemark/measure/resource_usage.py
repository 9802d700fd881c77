"""ResourceUsageSummary for local components: CPU (cores) and resident memory sampled from /proc.

Each component is a PID on this machine (the embedded master's own process, etcd's child process), or several
(an API server run as several processes: their CPU and memory add up). CPU is the delta of utime+stime over the
delta of wall time between samples; memory is VmRSS. Only Linux /proc is read; a component whose processes all
vanished stops being sampled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kubemark.measure.results import UsageSample

log = logging.getLogger(__name__)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def read_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """utime + stime of `pid` in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    text = (proc / str(pid) / "stat").read_text()
    # The command name (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def read_rss_bytes(pid: int, proc: Path = Path("/proc")) -> float:
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) * 1024.0
    return 0.0


class ProcessSampler:
    """Samples `components` ({name: pid or pids}) every `interval` seconds until stopped."""

    def __init__(
        self,
        components: Mapping[str, int | Sequence[int]],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        proc: Path = Path("/proc"),
    ) -> None:
        self.components = {name: (pid,) if isinstance(pid, int) else tuple(pid) for name, pid in components.items()}
        self.interval = interval
        self._clock = clock
        self._proc = proc
        self.samples: list[UsageSample] = []
        self._last: dict[str, tuple[float, float]] = {}  # name -> (wall, cpu seconds)
        self._task: asyncio.Task[None] | None = None

    def sample_once(self) -> None:
        now = self._clock()
        for name, pids in list(self.components.items()):
            cpu = rss = 0.0
            alive = []
            for pid in pids:
                try:
                    cpu += read_cpu_seconds(pid, self._proc)
                    rss += read_rss_bytes(pid, self._proc)
                except (OSError, ValueError, IndexError):
                    log.debug("resource usage: %s (pid %d) is gone", name, pid)
                    continue
                alive.append(pid)
            if len(alive) < len(pids):
                # One of several is gone: restart the CPU delta from the survivors (no negative jump).
                self._last.pop(name, None)
                if not alive:
                    del self.components[name]
                    continue
                self.components[name] = tuple(alive)
            last = self._last.get(name)
            self._last[name] = (now, cpu)
            if last is not None and now > last[0]:
                self.samples.append(UsageSample(now, name, max(0.0, (cpu - last[1]) / (now - last[0])), rss))

    def start(self) -> None:
        self.sample_once()  # the baseline for the first CPU delta
        self._task = asyncio.create_task(self._loop(), name="resource usage sampler")

    async def _loop(self) -> None:
        while self.components:
            await asyncio.sleep(self.interval)
            self.sample_once()

    async def stop(self) -> list[UsageSample]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self.sample_once()
        return list(self.samples)
