"""Watch streaming: a chunked `application/json` response with one JSON watch event per line.

Semantics follow kube-apiserver's cacher-backed watch:
- resourceVersion unset: synthetic ADDED events for the current (consistent) state, then changes;
  "0": the same from the cache as it is; N: changes after N only (410 Expired when N is too old).
- sendInitialEvents=true (watch-list): the initial ADDED events end with a BOOKMARK annotated
  `k8s.io/initial-events-end: "true"`.
- BOOKMARK events only with allowWatchBookmarks=true.
- timeoutSeconds (default: random in [1800 s, 3600 s]) ends the stream cleanly, as does server shutdown.
Failures after the headers are sent become an ERROR event carrying a metav1.Status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kubemark import codec
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.object_store import ResourceStore, Selection
from kubemark.master.apiserver.options import ListOptions
from kubemark.master.storage.base import CompactedError

log = logging.getLogger(__name__)

INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"
# Initial events are coalesced into writes of about this many bytes.
_WRITE_BATCH_BYTES = 64 * 1024
# How often an idle watch checks whether its client went away (aiohttp does not cancel handlers).
_DISCONNECT_POLL_SECONDS = 15.0

EventEncoder = Callable[[str, Any], bytes]


def encode_event(event_type: str, obj: Any) -> bytes:
    """One watch event line: {"type": ..., "object": ...}\\n."""
    return b'{"type":"' + event_type.encode() + b'","object":' + codec.dumps(obj) + b"}\n"


def error_event(err: StatusError) -> bytes:
    return encode_event("ERROR", err.to_status())


def expired_error(requested: int, compacted: int) -> StatusError:
    return errors.gone(f"too old resource version: {requested} ({compacted})")


class WatchStreams:
    """The open watch streams of one app: ends them on shutdown, and notices clients that went away.

    aiohttp does not cancel a handler whose client disconnected, and an idle watch writes nothing that could
    fail; so one sweeper task checks every open stream's transport each `poll_interval` seconds. One task for
    all streams, rather than a timer per stream, keeps thousands of idle watches cheap.
    """

    def __init__(self, poll_interval: float = _DISCONNECT_POLL_SECONDS) -> None:
        self.closing = asyncio.Event()
        self.active = 0
        self.poll_interval = poll_interval
        self._open: dict[asyncio.Future[None], web.Request] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def close_all(self) -> None:
        self.closing.set()
        for ended in self._open:
            if not ended.done():
                ended.set_result(None)
        self._open.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def register(self, request: web.Request) -> asyncio.Future[None]:
        """A future done when the server shuts down or `request`'s client has gone away."""
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closing.is_set():
            ended.set_result(None)
            return ended
        self._open[ended] = request
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="watch disconnect sweeper")
        return ended

    def unregister(self, ended: asyncio.Future[None]) -> None:
        self._open.pop(ended, None)

    async def _sweep(self) -> None:
        try:
            while self._open:
                await asyncio.sleep(self.poll_interval)
                for ended, request in list(self._open.items()):
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        del self._open[ended]
                        if not ended.done():
                            ended.set_result(None)
        finally:
            if self._sweeper is asyncio.current_task():
                self._sweeper = None


def _bookmark(rt_kind: str, api_version: str, revision: int, initial_end: bool) -> dict[str, Any]:
    md: dict[str, Any] = {"resourceVersion": str(revision)}
    if initial_end:
        md["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
    return {"kind": rt_kind, "apiVersion": api_version, "metadata": md}


async def _start_revision(store: ResourceStore, opts: ListOptions) -> tuple[int, bool]:
    """(revision to start from, whether to send the initial state first) for the watch options."""
    rv = opts.resource_version
    if opts.send_initial_events is not None:
        initial = opts.send_initial_events
    else:
        initial = rv in ("", "0")
    if rv == "":
        # A consistent start: the cache must have caught up with storage before the initial state is read.
        fresh = await store.storage.current_revision()
        await store._wait_fresh(fresh)
        return 0, initial
    if rv == "0":
        return 0, initial
    try:
        revision = int(rv)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"') from None
    if initial:
        await store._wait_fresh(revision)
        return 0, True
    return revision, False


class _Writer:
    """Coalesces event lines into few writes."""

    __slots__ = ("buf", "on_sent", "resp", "sent")

    def __init__(self, resp: web.StreamResponse, on_sent: Callable[[int], None] | None = None) -> None:
        self.resp = resp
        self.buf: list[bytes] = []
        self.sent = 0
        self.on_sent = on_sent

    def add(self, line: bytes) -> None:
        self.buf.append(line)

    async def flush(self) -> None:
        if self.buf:
            data = b"".join(self.buf) if len(self.buf) > 1 else self.buf[0]
            n = len(self.buf)
            self.sent += n
            self.buf.clear()
            await self.resp.write(data)
            if self.on_sent is not None:
                self.on_sent(n)

    async def add_and_maybe_flush(self, line: bytes, pending: int) -> None:
        self.buf.append(line)
        if pending <= 0 or sum(len(b) for b in self.buf) >= _WRITE_BATCH_BYTES:
            await self.flush()


async def _pump(
    store: ResourceStore,
    opts: ListOptions,
    sel: Selection,
    prefix: str,
    writer: _Writer,
    encode: EventEncoder,
    start: int,
    initial: bool,
) -> None:
    rt = store.rt
    cache = store.cache
    if initial:
        items, revision = store._cache_list(prefix, sel)
        size = 0
        for item in items:
            line = encode("ADDED", item.obj)
            writer.add(line)
            size += len(line)
            if size >= _WRITE_BATCH_BYTES:
                await writer.flush()
                size = 0
        if opts.send_initial_events:
            writer.add(encode_event("BOOKMARK", _bookmark(rt.kind, rt.group_version, revision, True)))
        await writer.flush()
        start = revision
    watcher = cache.watch(
        prefix,
        start,
        sel.predicate,
        initial_events=False,
        bookmarks=opts.allow_watch_bookmarks,
        index=store.cache_index(sel),
    )
    try:
        pending_of = getattr(watcher, "pending", None)
        async for event in watcher:
            if event.type == "BOOKMARK":
                if not opts.allow_watch_bookmarks:
                    continue
                line = encode_event("BOOKMARK", event.obj) if encode is not encode_event else event.encoded()
            elif encode is encode_event:
                line = event.encoded()
            else:
                line = encode(event.type, event.obj)
            pending = pending_of() if callable(pending_of) else 0
            await writer.add_and_maybe_flush(line, pending)
        if getattr(watcher, "terminated", False) and store.metrics is not None:
            store.metrics.watcher_terminated(rt.group_resource)
    finally:
        close = getattr(watcher, "close", None) or getattr(watcher, "aclose", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result


async def serve_watch(
    request: web.Request,
    store: ResourceStore,
    opts: ListOptions,
    namespace: str,
    name: str,
    streams: WatchStreams,
    encode: EventEncoder = encode_event,
) -> web.StreamResponse:
    """Stream watch events for a list (or one named object) until timeout, shutdown or disconnect."""
    sel = store.selection(opts, name)
    prefix = store.watch_prefix(namespace)
    start, initial = await _start_revision(store, opts)
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if request.method == "HEAD":
        await resp.write_eof()
        return resp
    rt = store.rt
    metrics = store.metrics
    on_sent = None
    if metrics is not None:
        metrics.watcher_registered(rt.group, rt.version, rt.kind)

        def on_sent(n: int) -> None:
            metrics.watch_event_sent(rt.group, rt.version, rt.kind, n)

    writer = _Writer(resp, on_sent)
    streams.active += 1
    pump = asyncio.create_task(_pump(store, opts, sel, prefix, writer, encode, start, initial))
    ended = streams.register(request)
    try:
        await asyncio.wait({pump, ended}, timeout=opts.watch_timeout(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        streams.active -= 1
        streams.unregister(ended)
        if metrics is not None:
            metrics.watcher_unregistered(rt.group, rt.version, rt.kind)
        if not pump.done():
            pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pump, return_exceptions=True)
    exc = pump.exception() if pump.done() and not pump.cancelled() else None
    try:
        if isinstance(exc, CompactedError):
            writer.buf.clear()
            await resp.write(error_event(expired_error(exc.requested, exc.compacted)))
        elif isinstance(exc, StatusError):
            writer.buf.clear()
            await resp.write(error_event(exc))
        elif exc is not None and not isinstance(exc, ConnectionError):
            log.warning("watch on %s failed: %r", store.rt.group_resource, exc)
            await resp.write(error_event(errors.internal_error(str(exc))))
        else:
            await writer.flush()
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client is gone; nothing left to tell it
    return resp
