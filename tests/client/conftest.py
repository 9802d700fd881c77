"""A controllable double of the API server for client tests (aiohttp.web on 127.0.0.1, free port)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubemark import codec
from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.rest import RestClient

Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


def status_body(code: int, reason: str, message: str = "boom") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Responder:
    async def respond(request: web.Request) -> web.StreamResponse:
        return web.Response(body=codec.dumps(obj), status=status, headers=headers, content_type="application/json")

    return respond


def fail(code: int, reason: str, headers: dict[str, str] | None = None, message: str = "boom") -> Responder:
    return reply(status_body(code, reason, message), code, headers)


def drop() -> Responder:
    """Close the connection without answering."""

    async def respond(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError  # aiohttp treats this as a dropped client; nothing is sent

    return respond


@dataclass
class WatchPlan:
    """A watch response: these events (dicts, or raw bytes pieces), then end | drop | hold."""

    events: list[Any]
    then: str = "end"
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for ev in self.events:
            await resp.write(ev if isinstance(ev, bytes) else codec.dumps(ev) + b"\n")
        if self.then == "drop":
            assert request.transport is not None
            request.transport.close()
            return resp
        if self.then == "hold":
            await self.release.wait()
        await resp.write_eof()
        return resp


class FakeAPI:
    """Routes (method, path) or ("WATCH", path) to a queue of responders; the last one is reused."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Responder]] = {}
        self.seen: list[Seen] = []
        self.url = ""
        self._changed = asyncio.Condition()
        self.holds: list[WatchPlan] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def on(self, method: str, path: str, *responders: Responder) -> None:
        self.routes.setdefault((method, path), []).extend(responders)

    def on_watch(self, path: str, *plans: WatchPlan) -> None:
        self.holds.extend(p for p in plans if p.then == "hold")
        self.on("WATCH", path, *plans)

    def count(self, method: str, path: str | None = None) -> int:
        return len(self.requests(method, path))

    def requests(self, method: str, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.method == method and (path is None or s.path == path)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        if method == "GET" and request.query.get("watch") in ("true", "1"):
            method = "WATCH"
        body = await request.read()
        self.seen.append(Seen(method, request.path, dict(request.query), dict(request.headers), body))
        async with self._changed:
            self._changed.notify_all()
        queue = self.routes.get((method, request.path))
        if not queue:
            return web.Response(
                body=codec.dumps(status_body(404, "NotFound", "no route")), status=404, content_type="application/json"
            )
        responder = queue.pop(0) if len(queue) > 1 else queue[0]
        return await responder(request)

    async def close(self) -> None:
        for plan in self.holds:
            plan.release.set()


class SleepRecorder:
    """Stands in for asyncio.sleep: records the delay and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def api():
    fake = FakeAPI()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await fake.close()
    await server.close()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def client(api: FakeAPI, sleeps: SleepRecorder):
    c = RestClient(ClusterCredentials(server=api.url, token="secret"), qps=0, sleep=sleeps)
    yield c
    await c.close()
