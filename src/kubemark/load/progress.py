"""Live progress of a run: a rich panel on a terminal, plain periodic lines otherwise (CI logs).

The display pulls a snapshot from a callable (nodes Ready, pods created/scheduled/running, current QPS) on its own
schedule, so the run never blocks on rendering.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass(frozen=True)
class Snapshot:
    stage: str
    nodes_ready: int
    nodes_total: int
    pods_created: int
    pods_scheduled: int
    pods_running: int
    qps: float


class PodCounts:
    """Pods created / scheduled / Running per namespace, kept from the pods watch (a WatchSubscriber), so a
    progress refresh costs a sum over namespaces instead of a pass over tens of thousands of pods."""

    def __init__(self) -> None:
        self._by_ns: dict[str, list[int]] = {}

    @staticmethod
    def _state(pod: dict[str, Any]) -> tuple[str, int, int]:
        namespace = str((pod.get("metadata") or {}).get("namespace", ""))
        scheduled = int(bool((pod.get("spec") or {}).get("nodeName")))
        running = int((pod.get("status") or {}).get("phase") == "Running")
        return namespace, scheduled, running

    def _add(self, pod: dict[str, Any], sign: int) -> None:
        namespace, scheduled, running = self._state(pod)
        counts = self._by_ns.setdefault(namespace, [0, 0, 0])
        counts[0] += sign
        counts[1] += sign * scheduled
        counts[2] += sign * running

    def on_event(self, kind: str, old: dict[str, Any] | None, new: dict[str, Any], received: float) -> None:
        if old is not None:
            self._add(old, -1)
        if kind != "DELETED":
            self._add(new, +1)

    def totals(self, namespace_prefix: str = "") -> tuple[int, int, int]:
        created = scheduled = running = 0
        for namespace, (c, s, r) in self._by_ns.items():
            if namespace.startswith(namespace_prefix):
                created, scheduled, running = created + c, scheduled + s, running + r
        return created, scheduled, running


class RunProgress:
    """`start()` / `stop()` around a run; `stage` is set by the run as it goes."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        console: Console | None = None,
        live: bool | None = None,
        plain_interval: float = 5.0,
    ) -> None:
        self._snapshot = snapshot
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal if live is None else live
        self.plain_interval = plain_interval
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    def render(self, snap: Snapshot) -> Table:
        table = Table(title=f"kubemark run: {snap.stage}", show_header=False, expand=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        table.add_row("elapsed", f"{time.monotonic() - self._started:.0f}s")
        table.add_row("nodes Ready", f"{snap.nodes_ready}/{snap.nodes_total}")
        table.add_row("pods created", str(snap.pods_created))
        table.add_row("pods scheduled", str(snap.pods_scheduled))
        table.add_row("pods running", str(snap.pods_running))
        table.add_row("load QPS", f"{snap.qps:.1f}")
        return table

    def line(self, snap: Snapshot) -> str:
        return (
            f"[{time.monotonic() - self._started:5.0f}s] {snap.stage}: nodes {snap.nodes_ready}/{snap.nodes_total} "
            f"Ready; pods {snap.pods_created} created, {snap.pods_scheduled} scheduled, {snap.pods_running} running; "
            f"{snap.qps:.1f} QPS"
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="run progress")

    async def _run(self) -> None:
        if self.live:
            with Live(self.render(self._snapshot()), console=self.console, refresh_per_second=4) as live:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(self.render(self._snapshot()))
        else:
            last = ""
            while True:
                await asyncio.sleep(self.plain_interval)
                text = self.line(self._snapshot())
                if text != last:
                    self.console.print(text, highlight=False, markup=False, soft_wrap=True)
                    last = text

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self.live:
            self.console.print(self.line(self._snapshot()), highlight=False, markup=False, soft_wrap=True)
