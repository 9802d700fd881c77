"""EventRecorder: transport failures are retried as client-go's broadcaster does; answers from the server end it."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp

from kubemark.client.errors import APIError
from kubemark.hollow.events import MAX_TRIES, EventRecorder

POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "default", "uid": "u1"}}


class FlakySink:
    """A client whose create() fails as scripted (an exception per call, None = stored), then stores."""

    def __init__(self, script: list[BaseException | None]) -> None:
        self.script = list(script)
        self.calls: list[str] = []
        self.stored: dict[str, dict[str, Any]] = {}

    async def create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        self.calls.append(name)
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.stored[name] = obj
        return obj


def recorder(sink: FlakySink, **kw: Any) -> EventRecorder:
    return EventRecorder(sink, component="kubelet", host="n1", retry_interval=0.0, rng=random.Random(1), **kw)  # type: ignore[arg-type]


async def test_dropped_connection_is_retried_until_stored() -> None:
    sink = FlakySink([aiohttp.ServerDisconnectedError(), ConnectionResetError()])
    rec = recorder(sink)
    rec.record(POD, "Normal", "Started", "Started container c")
    await rec.flush()
    assert len(sink.calls) == 3 and len(set(sink.calls)) == 1, "the same event (same name) is sent again"
    assert list(sink.stored) == sink.calls[:1]
    assert (rec.posted, rec.retried, rec.dropped) == (1, 2, 0)


async def test_already_exists_after_a_lost_answer_counts_as_posted() -> None:
    # The first POST landed but its answer was lost; the retry finds the event there: done, not duplicated.
    sink = FlakySink([aiohttp.ServerDisconnectedError(), APIError(409, "AlreadyExists", "exists")])
    rec = recorder(sink)
    rec.record(POD, "Normal", "Pulled", "Image pulled")
    await rec.flush()
    assert len(sink.calls) == 2
    assert (rec.posted, rec.dropped) == (1, 0)


async def test_a_rejection_is_not_retried() -> None:
    sink = FlakySink([APIError(422, "Invalid", "bad event")])
    rec = recorder(sink)
    rec.record(POD, "Warning", "Failed", "x")
    await rec.flush()
    assert len(sink.calls) == 1
    assert (rec.posted, rec.dropped) == (0, 1)


async def test_gives_up_after_max_tries() -> None:
    sink = FlakySink([aiohttp.ServerDisconnectedError()] * (MAX_TRIES + 5))
    rec = recorder(sink)
    rec.record(POD, "Normal", "Killing", "Stopping container c")
    await rec.flush()
    assert len(sink.calls) == MAX_TRIES
    assert (rec.posted, rec.dropped) == (0, 1)


async def test_flush_drops_events_waiting_to_retry() -> None:
    sink = FlakySink([aiohttp.ServerDisconnectedError()])
    rec = EventRecorder(sink, component="kubelet", host="n1", retry_interval=3600.0, rng=random.Random(1))  # type: ignore[arg-type]
    rec.record(POD, "Normal", "Started", "Started container c")
    while not rec._waiting:  # the first try has failed and the post is waiting to retry
        await asyncio.sleep(0)
    await asyncio.wait_for(rec.flush(), 5)
    assert (rec.posted, rec.dropped) == (0, 1)
    assert len(sink.calls) == 1
