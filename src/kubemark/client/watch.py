"""Watch streams and the Reflector (LIST then WATCH, resuming from the last resourceVersion).

Events arrive as newline-delimited JSON on a chunked response. Lines may exceed aiohttp's 64 KiB readline
limit (big Nodes), so chunks are split on b"\\n" with our own buffer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from kubemark import codec
from kubemark.client.errors import APIError, Gone, error_from_status
from kubemark.client.retry import Backoff

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

log = logging.getLogger(__name__)

EventHandler = Callable[[str, dict[str, Any]], Awaitable[None] | None]
SyncHandler = Callable[[list[dict[str, Any]], str], Awaitable[None] | None]

# client-go's reflector asks for a server-side timeout between 5 and 10 minutes so watches spread out.
MIN_WATCH_TIMEOUT = 300


class WatchDecodeError(ValueError):
    """The stream carried a line that is not a JSON watch event."""


async def iter_lines(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Complete non-empty lines of a byte stream, however the chunks fall and however long a line is."""
    pending: list[bytes] = []
    async for chunk in content.iter_any():
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        if pending:
            pending.append(chunk)
            chunk = b"".join(pending)
            pending = []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.strip():
                yield line
        if tail:
            pending.append(tail)
    if pending:
        rest = b"".join(pending)
        if rest.strip():
            yield rest


def _decode_event(line: bytes) -> dict[str, Any]:
    try:
        event = codec.loads(line)
    except codec.JSONDecodeError as exc:
        raise WatchDecodeError(f"watch: undecodable line of {len(line)} bytes") from exc
    if not isinstance(event, dict) or "type" not in event:
        raise WatchDecodeError("watch: line is not a watch event")
    return event


async def watch_stream(
    client: RestClient,
    path: str,
    *,
    resource_version: str | None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_seconds: int | None = None,
    allow_bookmarks: bool = True,
    read_timeout: float | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield decoded watch events ({"type", "object"}); an ERROR event raises APIError (410 -> Gone)."""
    params = {
        "watch": True,
        "resourceVersion": resource_version or None,
        "labelSelector": label_selector or None,
        "fieldSelector": field_selector or None,
        "timeoutSeconds": timeout_seconds,
        "allowWatchBookmarks": True if allow_bookmarks else None,
    }
    async with client.stream(path, params=params, read_timeout=read_timeout) as resp:
        async for line in iter_lines(resp.content):
            event = _decode_event(line)
            if event["type"] == "ERROR":
                status = event.get("object") or {}
                raise error_from_status(int(status.get("code") or 500), status)
            yield event


async def _call(handler: Callable[..., Any], *args: Any) -> None:
    # A failing consumer must not kill the reflector (its stream and RV would be lost): log and go on.
    try:
        result = handler(*args)
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("reflector handler %r failed", handler)


def _resource_version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Reflector:
    """Keeps a consumer in step with a collection: LIST -> on_sync, WATCH -> on_event, relist on 410.

    Connection errors back off with jitter and re-watch from the last seen resourceVersion; a clean end of
    the stream (server timeout) re-watches at once. Bookmarks only advance the resourceVersion.
    """

    def __init__(
        self,
        client: RestClient,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_event: EventHandler,
        on_sync: SyncHandler,
        page_size: int = 500,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        watch_timeout: int | None = None,
        initial_resource_version: str | None = "0",
    ) -> None:
        self.client = client
        self.path = path
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._on_event = on_event
        self._on_sync = on_sync
        self._page_size = page_size
        self._backoff = backoff or Backoff(initial=0.8, factor=2.0, jitter=1.0, cap=30.0, rng=rng)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._watch_timeout = watch_timeout
        # client-go lists first from the watch cache (resourceVersion "0") and, after a 410, consistently ("").
        self._initial_rv = initial_resource_version
        self.last_resource_version = ""
        self.lists = 0  # LISTs completed, for observability and tests
        self.watches = 0  # WATCH streams opened
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name=f"reflector {self.path}")
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Re-raise only if we ourselves are being cancelled, not the task we just stopped.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def _list(self, resource_version: str | None) -> None:
        items, rv = await self.client.list_all(
            self.path,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            page_size=self._page_size,
            resource_version=resource_version,
        )
        self.last_resource_version = rv
        self.lists += 1
        await _call(self._on_sync, items, rv)

    async def _watch(self) -> bool:
        """One WATCH stream; True if it delivered at least one event."""
        timeout = self._watch_timeout
        if timeout is None:
            timeout = int(MIN_WATCH_TIMEOUT * (1 + self._rng.random()))
        self.watches += 1
        progressed = False
        async for event in watch_stream(
            self.client,
            self.path,
            resource_version=self.last_resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=timeout,
        ):
            kind = event["type"]
            obj = event.get("object") or {}
            rv = _resource_version(obj)
            if kind != "BOOKMARK":
                await _call(self._on_event, kind, obj)
            if rv:
                self.last_resource_version = rv
            progressed = True
            self._backoff.reset()
        return progressed

    async def run(self) -> None:
        need_list = True
        list_rv: str | None = self._initial_rv
        while not self._stopping:
            try:
                if need_list:
                    await self._list(list_rv)
                    need_list = False
                    self._backoff.reset()
                opened = asyncio.get_running_loop().time()
                progressed = await self._watch()
                if not progressed and asyncio.get_running_loop().time() - opened < 1.0:
                    # A stream that ends at once without events would otherwise spin (client-go: "very short watch").
                    await self._sleep(self._backoff.next_delay())
                log.debug("watch %s ended at rv %s; re-watching", self.path, self.last_resource_version)
            except Gone as exc:
                log.debug("watch %s: %s; relisting", self.path, exc)
                need_list = True
                list_rv = None  # a consistent LIST: the cached RV is exactly what is too old
            except APIError as exc:
                delay = exc.retry_after if exc.retry_after is not None else self._backoff.next_delay()
                log.debug("reflector %s: %s; retrying in %.2fs", self.path, exc, delay)
                await self._sleep(delay)
            except (aiohttp.ClientError, TimeoutError, OSError, WatchDecodeError) as exc:
                delay = self._backoff.next_delay()
                log.debug("reflector %s: %r; retrying in %.2fs", self.path, exc, delay)
                await self._sleep(delay)
