"""In-process `Storage` backend with etcd v3 semantics (revisions, history, compaction, prefix watch).

Used for fast tests and for runs that do not need a real etcd. State:

- `_data` maps key -> current KV; `_keys` is the same key set kept sorted (bisect), so prefix ranges with
  `start_key`/`limit` cost O(log n + page).
- `_log` is the event log: one Event per revision, contiguous, from `_log_first` up to the current revision.
  It serves watches from past revisions and reads at past revisions (replayed backward from the current
  state; those reads are rare: paginated LIST continuations). `compact(rev)` drops events below `rev`.

Watchers have no private buffer: each one reads the shared log from its own next revision, like etcd's
"unsynced" watchers catching up from history. A slow watcher therefore never blocks writers and costs no
memory of its own; if it falls behind a compaction it gets CompactedError, exactly as with etcd.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import logging
from collections.abc import AsyncIterator, Callable

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
)

log = logging.getLogger(__name__)

# Upper bound of events a watcher scans per batch, so one batch never grows without limit.
_MAX_BATCH_SCAN = 10_000


class MemoryStorage(Storage):
    """A revisioned key-value store in memory. Every write is atomic (no await inside a write)."""

    def __init__(self) -> None:
        self._data: dict[str, KV] = {}
        self._keys: builtins.list[str] = []
        self._revision = 1  # etcd's empty store is at revision 1; the first write gets 2
        self._compacted = 0
        self._log: builtins.list[Event] = []
        self._log_first = 2  # revision of _log[0]
        self._waiters: set[asyncio.Future[None]] = set()
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        self._wake()

    # --- reads ---------------------------------------------------------------------------------------------

    async def get(self, key: str) -> KV | None:
        return self._data.get(key)

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> ListResult:
        if revision <= 0 or revision == self._revision:
            return self._list_current(prefix, limit, start_key)
        self._check_readable(revision)
        return self._list_past(prefix, revision, limit, start_key)

    def _check_readable(self, revision: int) -> None:
        if revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        if revision > self._revision:
            raise StorageError(f"required revision {revision} is a future revision (current {self._revision})")

    def _list_current(self, prefix: str, limit: int, start_key: str) -> ListResult:
        keys = self._keys
        lo = bisect.bisect_left(keys, max(prefix, start_key))
        hi = bisect.bisect_left(keys, _prefix_end(prefix)) if prefix else len(keys)
        more = False
        if limit > 0 and hi - lo > limit:
            hi, more = lo + limit, True
        data = self._data
        return ListResult(kvs=[data[k] for k in keys[lo:hi]], revision=self._revision, more=more)

    def _list_past(self, prefix: str, revision: int, limit: int, start_key: str) -> ListResult:
        # Undo events newer than `revision`, newest first, so the last assignment per key is its state then.
        state: dict[str, KV | None] = {}
        first = max(revision + 1, self._log_first)
        for ev in reversed(self._log[first - self._log_first :]):
            if ev.kv.key.startswith(prefix):
                state[ev.kv.key] = ev.prev
        current = self._list_current(prefix, 0, start_key).kvs
        merged: dict[str, KV | None] = {kv.key: kv for kv in current}
        for key, kv in state.items():
            if key >= start_key:
                merged[key] = kv
        kvs = [kv for _, kv in sorted(merged.items()) if kv is not None]
        more = False
        if limit > 0 and len(kvs) > limit:
            kvs, more = kvs[:limit], True
        return ListResult(kvs=kvs, revision=revision, more=more)

    async def current_revision(self) -> int:
        return self._revision

    # --- writes --------------------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KV:
        if key in self._data:
            raise KeyExistsError(key)
        rev = self._revision + 1
        kv = KV(key, bytes(value), rev, rev)
        bisect.insort(self._keys, key)
        self._commit(rev, kv, Event("PUT", kv, None))
        return kv

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KV:
        prev = self._data.get(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if prev.mod_revision != expected_mod_revision:
            raise ConflictError(key, prev)
        rev = self._revision + 1
        kv = KV(key, bytes(value), prev.create_revision, rev)
        self._commit(rev, kv, Event("PUT", kv, prev))
        return kv

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KV:
        prev = self._data.get(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if expected_mod_revision > 0 and prev.mod_revision != expected_mod_revision:
            raise ConflictError(key, prev)
        rev = self._revision + 1
        del self._data[key]
        del self._keys[bisect.bisect_left(self._keys, key)]
        self._revision = rev
        self._log.append(Event("DELETE", KV(key, b"", 0, rev), prev))
        self._wake()
        return prev

    def _commit(self, rev: int, kv: KV, event: Event) -> None:
        self._data[kv.key] = kv
        self._revision = rev
        self._log.append(event)
        self._wake()

    async def compact(self, revision: int) -> None:
        if revision <= self._compacted:
            raise CompactedError(revision, self._compacted)
        if revision > self._revision:
            raise StorageError(f"cannot compact to future revision {revision} (current {self._revision})")
        self._compacted = revision
        drop = revision - self._log_first
        if drop > 0:
            del self._log[:drop]
            self._log_first = revision
        self._wake()  # watchers behind the new compacted revision must notice

    # --- watch ---------------------------------------------------------------------------------------------

    def _wake(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def request_progress(self) -> None:
        """Progress is reported after every write already (see `watch(progress=...)`); nothing to do."""

    async def watch(
        self, prefix: str, start_revision: int, *, progress: Callable[[int], None] | None = None
    ) -> AsyncIterator[builtins.list[Event]]:
        """See Storage.watch. `progress(rev)` (an extension used by the watch cache) is called whenever every
        event under `prefix` up to `rev` has been yielded, so a consumer knows how fresh it is."""
        next_rev = start_revision if start_revision > 0 else self._revision + 1
        while not self._closed:
            if next_rev < self._compacted:
                raise CompactedError(next_rev, self._compacted)
            next_rev = max(next_rev, self._log_first)  # revisions below the first write have no events
            if next_rev <= self._revision:
                start = next_rev - self._log_first
                stop = min(len(self._log), start + _MAX_BATCH_SCAN)
                batch = [ev for ev in self._log[start:stop] if ev.kv.key.startswith(prefix)]
                next_rev = self._log_first + stop
                if batch:
                    yield batch
                if progress is not None:
                    progress(next_rev - 1)
                continue
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)

    def __repr__(self) -> str:
        return f"MemoryStorage(keys={len(self._keys)}, revision={self._revision})"


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (etcd's range_end = prefix+1)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
