"""The storage contract of the API server: a revisioned key-value store with watch, shaped like etcd v3.

Both backends (etcd via etcd3aio, and memory) implement `Storage` with identical semantics, so one test suite
runs against both. Values are opaque bytes (the API server stores JSON without metadata.resourceVersion; the
resourceVersion of an object is the `mod_revision` of its key).

Revisions are cluster-wide and strictly increasing: every successful write (create, update, delete) gets a
new revision, exactly as etcd's main revision.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal


class StorageError(Exception):
    """Base class of storage failures."""


class KeyExistsError(StorageError):
    """create() on a key that already exists (the API server turns it into 409 AlreadyExists)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    """update()/delete() on a key that does not exist (404 NotFound)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """A guarded write whose expected mod_revision did not match (409 Conflict).

    `current` is the key's current value when the backend read it in the same transaction, else None.
    """

    def __init__(self, key: str, current: KV | None = None) -> None:
        super().__init__(f"revision mismatch on {key}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    """A read or watch at a revision older than the compacted revision (410 Gone / Expired)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class UnavailableError(StorageError):
    """The backend cannot be reached right now (the API server answers 503/504 and clients retry)."""


@dataclass(frozen=True, slots=True)
class KV:
    """One key as stored: value bytes plus etcd-style revisions."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change observed by watch.

    type "PUT" covers create and update (`prev` is None on create); type "DELETE" has `kv.value == b""`
    and `kv.mod_revision` = the deletion's revision, with `prev` holding the last stored value.
    """

    type: Literal["PUT", "DELETE"]
    kv: KV
    prev: KV | None


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of a range read, consistent at `revision`."""

    kvs: list[KV]
    revision: int
    more: bool  # True when `limit` cut the page short


class Storage(abc.ABC):
    """A revisioned key-value store with prefix watch (etcd v3 semantics)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect / initialise. Must be called before any other method."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and stop background tasks; idempotent."""

    @abc.abstractmethod
    async def get(self, key: str) -> KV | None:
        """The current value of `key`, or None."""

    @abc.abstractmethod
    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str = "") -> ListResult:
        """Keys with `prefix`, sorted by key, starting at `start_key` (inclusive) when given.

        `revision=0` reads the latest state; a positive revision reads the state as of that revision
        (raises CompactedError when it is older than the compacted revision). `limit=0` means no limit.
        """

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KV:
        """Write `key` only if it does not exist (txn on create_revision == 0); raises KeyExistsError."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KV:
        """Write `key` only if its mod_revision equals `expected_mod_revision`.

        Raises KeyNotFoundError when the key is gone and ConflictError on a revision mismatch.
        """

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int = 0) -> KV:
        """Delete `key` (guarded when `expected_mod_revision` > 0); returns the deleted KV as it was.

        Raises KeyNotFoundError or ConflictError.
        """

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The store's current revision (a fresh read, not a cached value)."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history older than `revision`; later reads/watches below it raise CompactedError."""

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[builtins.list[Event]]:
        """Changes under `prefix` with revision >= `start_revision`, in revision order, batched.

        Raises CompactedError (when iterated) if `start_revision` is compacted; never silently skips events.
        The iterator ends only when the storage is closed or the consumer stops iterating.
        """
