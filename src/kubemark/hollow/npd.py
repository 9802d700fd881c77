"""HollowNodeProblemDetector: node-problem-detector's condition updates on its Node.

At start and every `npd_period` (5 min, NPD's heartbeat) it PATCHes (strategic merge by condition type) its
configured conditions onto node status, with a fresh lastHeartbeatTime. Scheduled flips (chaos) set a condition
to another status for a while; a flip PATCHes at once, as NPD does when a problem appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from kubemark.client.errors import APIError, is_conflict
from kubemark.client.paths import resource_path
from kubemark.hollow.config import ConditionFlip, NodeConfig
from kubemark.kube.meta import format_rfc3339

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)

_UPDATE_ATTEMPTS = 5


def flip_applies(flip: ConditionFlip, node_name: str) -> bool:
    """Whether a node is in the flip's share of nodes (a stable hash of the name, so runs are repeatable)."""
    bucket = int(hashlib.sha256(f"{flip.type}/{node_name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < flip.node_fraction


class HollowNodeProblemDetector:
    """Conditions as type -> (status, reason, message); `patches` counts PATCHes sent."""

    def __init__(
        self,
        node_name: str,
        client: RestClient,
        config: NodeConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_name = node_name
        self.client = client
        self.period = config.heartbeat.npd_period
        self._flips = [f for f in config.npd.flips if flip_applies(f, node_name)]
        self._clock = clock
        self.conditions: dict[str, tuple[str, str, str]] = {
            c.type: ("False", c.reason, c.message) for c in config.npd.conditions
        }
        self._transitions: dict[str, float] = {}
        self.patches = 0
        self.patched = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._pending: set[asyncio.Future[None]] = set()
        self._path = resource_path("", "v1", "nodes", name=node_name, subresource="status")

    def build_patch(self) -> dict[str, Any]:
        now = self._clock()
        stamp = format_rfc3339(now)
        conditions = []
        for ctype, (status, reason, message) in self.conditions.items():
            since = self._transitions.setdefault(ctype, now)
            conditions.append(
                {
                    "type": ctype,
                    "status": status,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": format_rfc3339(since),
                    "reason": reason,
                    "message": message,
                }
            )
        return {"status": {"conditions": conditions}}

    async def update(self) -> None:
        if not self.conditions:
            return
        for attempt in range(_UPDATE_ATTEMPTS):
            try:
                await self.client.patch(self._path, self.build_patch())
            except APIError as exc:
                if is_conflict(exc) and attempt + 1 < _UPDATE_ATTEMPTS:
                    continue  # another writer (the kubelet) got in first; the patch is not RV-bound, so resend
                log.debug("npd %s: condition update failed: %s", self.node_name, exc)
                return
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # unreachable master: next period
                log.debug("npd %s: condition update failed: %r", self.node_name, exc)
                return
            self.patches += 1
            self.patched.set()
            return

    def set_condition(self, ctype: str, status: str, reason: str, message: str) -> None:
        old = self.conditions.get(ctype)
        if old is None or old[0] != status:
            self._transitions[ctype] = self._clock()
        self.conditions[ctype] = (status, reason, message)

    def _flip(self, flip: ConditionFlip, restore: tuple[str, str, str] | None) -> None:
        if restore is None:
            previous = self.conditions.get(flip.type, ("False", "NoProblem", "no problem detected"))
            self.set_condition(flip.type, flip.status, flip.reason, flip.message)
            if flip.duration is not None:
                loop = asyncio.get_running_loop()
                self._timers.append(loop.call_later(flip.duration, self._flip, flip, previous))
        else:
            self.set_condition(flip.type, *restore)
        task = asyncio.ensure_future(self.update())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def run(self, *, updated: bool = False) -> None:
        """PATCH every period; `updated` means one was just sent, so the first waits a period."""
        while True:
            if not updated:
                await self.update()
            updated = False
            await asyncio.sleep(self.period)

    def start(self, *, updated: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._timers = [loop.call_later(f.after, self._flip, f, None) for f in self._flips]
        self._task = asyncio.create_task(self.run(updated=updated), name=f"npd {self.node_name}")

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for pending in list(self._pending):
            pending.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
