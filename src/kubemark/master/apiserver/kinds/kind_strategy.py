"""`KindStrategy`: the `Strategy` contract plus the few lifecycle hooks some kinds need beyond it.

The generic machinery may call these optional hooks (all no-ops here):
- `prepare_for_delete(obj)` on the copy written when a graceful delete sets deletionTimestamp
  (namespaces switch to phase Terminating);
- `should_delete_during_update(obj)` after an update, to remove an object whose last finalizer went away
  (namespaces once the `finalize` subresource empties spec.finalizers);
- `on_deleted(obj)` once an object is gone from storage, and on a create that failed after defaulting and
  validation (services release their cluster IP and node ports);
- `warm_up(storage)` once at start-up, before serving (services seed their allocators);
- `bind_stores(lookup)` once at start-up with `(group, plural) -> ObjectStore | None` over the server's
  resources, for rules that read other kinds (Priority admission of pods reads PriorityClasses);
- `admit_create(obj)` (async, optional, not defined here) before a create's defaulting: admission that needs
  other objects, raising a StatusError to refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from kubemark.master.apiserver.strategy import Obj, ObjectStore, Strategy
from kubemark.master.storage.base import Storage


@dataclass
class KindStrategy(Strategy):
    """Base of every strategy returned by `kinds.strategy_for`."""

    # Objects being written by one of this kind's own subresources right now (pods/binding,
    # namespaces/finalize): their update skips the user-facing update rules, as upstream's subresource
    # REST writes storage directly. Safe without locks: hooks run on the event loop, and the entry only
    # lives for the duration of the subresource's guaranteed_update call.
    _direct: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    @contextmanager
    def direct_write(self, namespace: str, name: str) -> Iterator[None]:
        """Within this block, updates of (namespace, name) bypass prepare_for_update/validate_update."""
        key = (namespace, name)
        self._direct[key] = self._direct.get(key, 0) + 1
        try:
            yield
        finally:
            self._direct[key] -= 1
            if not self._direct[key]:
                del self._direct[key]

    def is_direct_write(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        return bool(self._direct) and (meta.get("namespace", ""), meta.get("name", "")) in self._direct

    def prepare_for_delete(self, obj: Obj) -> None:
        """Mutate the object being marked for graceful deletion (deletionTimestamp already set)."""

    def should_delete_during_update(self, obj: Obj) -> bool:
        """Whether an updated object must now be removed from storage (finalization complete)."""
        return False

    def on_deleted(self, obj: Obj) -> None:
        """The object left storage (or its create failed): release what prepare/validate reserved."""

    async def warm_up(self, storage: Storage) -> None:
        """Seed in-memory state (allocators) from what storage already holds."""

    def bind_stores(self, lookup: Callable[[str, str], ObjectStore | None]) -> None:
        """Receive access to the server's other resources (group, plural) -> store; most kinds need none."""
