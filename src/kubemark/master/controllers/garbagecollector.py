"""Garbage collector (pkg/controller/garbagecollector): cascading deletion through ownerReferences.

An owner->dependents graph is kept from the informers of the kinds that carry ownerReferences. Work items
are object UIDs in one queue, prefixed "delete:" (attemptToDeleteItem) or "orphan:" (attemptToOrphan):
- Background: a dependent whose owners are all gone is deleted (with its own propagation policy).
- Foreground: an owner with deletionTimestamp + finalizer foregroundDeletion has its blocking dependents
  deleted first (foreground again when they have dependents), then the finalizer is removed.
- Orphan: an owner with finalizer orphan has its reference removed from every dependent, then the finalizer.
Owners not in the graph are looked up with a GET (404 or another UID means gone).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, resource_path
from kubemark.kube.resources import by_kind
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import is_deleting, meta, uid_of
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

# (group, version, plural) of the collections the collector watches.
MONITORED: tuple[tuple[str, str, str], ...] = (
    ("", "v1", "pods"),
    ("", "v1", "replicationcontrollers"),
    ("", "v1", "services"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "replicasets"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("apps", "v1", "controllerrevisions"),
    ("", "v1", "persistentvolumeclaims"),
    ("batch", "v1", "jobs"),
    ("discovery.k8s.io", "v1", "endpointslices"),
)
_ABSENT_CACHE = 10000


@dataclass(slots=True)
class Node:
    uid: str
    group: str
    version: str
    plural: str
    namespace: str
    name: str
    owners: list[dict[str, Any]] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    deleting: bool = False
    deleting_dependents: bool = False
    finalizers: tuple[str, ...] = ()

    def path(self) -> str:
        return resource_path(self.group, self.version, self.plural, self.namespace or None, self.name)


def _group_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


class GarbageCollector(Controller):
    """Deletes dependents of deleted owners and honours Foreground/Orphan finalizers."""

    name = "garbagecollector"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 20,
        monitored: tuple[tuple[str, str, str], ...] = MONITORED,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics, clock=clock)
        self.graph: dict[str, Node] = {}
        self._absent: OrderedDict[str, None] = OrderedDict()
        self._pending: dict[str, set[str]] = {}  # owner uid not yet observed -> dependents
        for group, version, plural in monitored:
            informer = self.use(group, version, plural)
            informer.add_handler(
                self._observer(group, version, plural),
                self._updater(group, version, plural),
                self._on_delete,
            )

    # -- graph upkeep ---------------------------------------------------------------------------------------

    def _observer(self, group: str, version: str, plural: str) -> Callable[[Obj], None]:
        def on_add(obj: Obj) -> None:
            self._observe(group, version, plural, obj)

        return on_add

    def _updater(self, group: str, version: str, plural: str) -> Callable[[Obj, Obj], None]:
        def on_update(old: Obj, new: Obj) -> None:
            self._observe(group, version, plural, new)

        return on_update

    def _observe(self, group: str, version: str, plural: str, obj: Obj) -> None:
        md = meta(obj)
        uid = uid_of(obj)
        if not uid:
            return
        node = self.graph.get(uid)
        new_owners = list(md.get("ownerReferences") or [])
        if node is None:
            node = Node(uid, group, version, plural, md.get("namespace") or "", md.get("name") or "")
            self.graph[uid] = node
            old_uids: set[Any] = set()  # as the objects hold them: a malformed reference may lack its uid
        else:
            old_uids = {r.get("uid") for r in node.owners}
        new_uids = {r.get("uid") for r in new_owners}
        node.owners = new_owners
        node.finalizers = tuple(md.get("finalizers") or ())
        unseen_owner = False
        joins_foreground = False
        for owner_uid in new_uids - old_uids:
            owner = self.graph.get(str(owner_uid))
            if owner is None:
                unseen_owner = True
                self._pending.setdefault(str(owner_uid), set()).add(uid)
            else:
                owner.dependents.add(uid)
                joins_foreground = joins_foreground or owner.deleting_dependents
        for owner_uid in old_uids - new_uids:
            owner = self.graph.get(str(owner_uid))
            if owner is not None:
                owner.dependents.discard(uid)
                if owner.deleting_dependents:
                    self.queue.add(f"delete:{owner_uid}")
        # Dependents observed before this owner point at it already.
        for dep_uid in self._pending.pop(uid, ()):
            dep = self.graph.get(dep_uid)
            if dep is not None and any(r.get("uid") == uid for r in dep.owners):
                node.dependents.add(dep_uid)
        if unseen_owner or joins_foreground:
            self.queue.add(f"delete:{uid}")  # check whether the owner exists / is being deleted
        was_deleting = node.deleting
        node.deleting = is_deleting(obj)
        node.deleting_dependents = node.deleting and FOREGROUND in node.finalizers
        if node.deleting and ORPHAN in node.finalizers:
            self.queue.add(f"orphan:{uid}")
        if node.deleting_dependents:
            self.queue.add(f"delete:{uid}")
            if not was_deleting:
                for dependent_uid in node.dependents:
                    self.queue.add(f"delete:{dependent_uid}")

    def _on_delete(self, obj: Obj) -> None:
        uid = uid_of(obj)
        node = self.graph.pop(uid, None)
        self._absent[uid] = None
        if len(self._absent) > _ABSENT_CACHE:
            self._absent.popitem(last=False)
        if node is None:
            return
        for dep in node.dependents:
            self.queue.add(f"delete:{dep}")
        for ref in node.owners:
            owner = self.graph.get(str(ref.get("uid")))
            if owner is not None:
                owner.dependents.discard(uid)
                if owner.deleting_dependents:
                    self.queue.add(f"delete:{owner.uid}")

    # -- work -----------------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        action, uid = key.split(":", 1)
        node = self.graph.get(uid)
        if node is None:
            return
        if action == "orphan":
            await self._orphan(node)
        else:
            await self._attempt_to_delete(node)

    async def _owner_state(self, node: Node, ref: dict[str, Any]) -> str:
        """'solid', 'dangling' (gone) or 'waiting' (being deleted in the foreground)."""
        owner_uid = str(ref.get("uid") or "")
        owner = self.graph.get(owner_uid)
        if owner is not None:
            return "waiting" if owner.deleting_dependents else "solid"
        if owner_uid in self._absent:
            return "dangling"
        group, _ = _group_version(str(ref.get("apiVersion") or ""))
        rt = by_kind(group, str(ref.get("kind") or ""))
        if rt is None:
            return "solid"  # a kind we cannot look up: never delete on a guess
        path = resource_path(
            rt.group, rt.version, rt.plural, node.namespace if rt.namespaced else None, ref.get("name")
        )
        try:
            live = await self.client.get(path)
        except APIError as exc:
            if is_not_found(exc):
                self._absent[owner_uid] = None
                return "dangling"
            raise
        if uid_of(live) != owner_uid:
            self._absent[owner_uid] = None
            return "dangling"
        if is_deleting(live) and FOREGROUND in (meta(live).get("finalizers") or ()):
            return "waiting"
        return "solid"

    async def _attempt_to_delete(self, node: Node) -> None:
        if node.deleting and not node.deleting_dependents:
            return
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return
        if not node.owners:
            return
        states = [(ref, await self._owner_state(node, ref)) for ref in node.owners]
        solid = [r for r, s in states if s == "solid"]
        dangling = [r for r, s in states if s == "dangling"]
        waiting = [r for r, s in states if s == "waiting"]
        if solid:
            if not dangling and not waiting:
                return
            patch_refs: list[dict[str, Any]] = [{"$patch": "delete", "uid": r["uid"]} for r in dangling]
            patch_refs += [
                {"uid": r["uid"], "blockOwnerDeletion": False} for r in waiting if r.get("blockOwnerDeletion")
            ]
            if patch_refs:
                await self._patch(node, {"metadata": {"ownerReferences": patch_refs, "uid": node.uid}})
            return
        if waiting and node.dependents:
            policy = "Foreground"
        elif ORPHAN in node.finalizers:
            policy = "Orphan"
        elif FOREGROUND in node.finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        log.debug("garbage collecting %s (%s)", node.path(), policy)
        try:
            await self.client.delete(node.path(), preconditions={"uid": node.uid}, propagation_policy=policy)
        except APIError as exc:
            if not is_not_found(exc) and not is_conflict(exc):
                raise

    async def _process_deleting_dependents(self, node: Node) -> None:
        blocking: list[Node] = []
        for dep_uid in node.dependents:
            dep = self.graph.get(dep_uid)
            if dep is None:
                continue
            if any(r.get("uid") == node.uid and r.get("blockOwnerDeletion") for r in dep.owners):
                blocking.append(dep)
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting or dep.deleting_dependents:
                self.queue.add(f"delete:{dep.uid}")

    async def _orphan(self, node: Node) -> None:
        for dep_uid in list(node.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None:
                continue
            await self._patch(
                dep, {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": node.uid}], "uid": dep.uid}}
            )
        await self._remove_finalizer(node, ORPHAN)

    async def _patch(self, node: Node, patch: dict[str, Any]) -> None:
        try:
            await self.client.patch(node.path(), patch, "strategic")
        except APIError as exc:
            if not is_not_found(exc):
                raise

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        for _ in range(5):
            try:
                obj = await self.client.get(node.path())
            except APIError as exc:
                if is_not_found(exc):
                    return
                raise
            if uid_of(obj) != node.uid:
                return
            finalizers = list(meta(obj).get("finalizers") or [])
            if finalizer not in finalizers:
                return
            obj["metadata"]["finalizers"] = [f for f in finalizers if f != finalizer]
            try:
                await self.client.replace(node.path(), obj)
                return
            except APIError as exc:
                if is_not_found(exc):
                    return
                if not is_conflict(exc):
                    raise
        raise RuntimeError(f"could not remove finalizer {finalizer} from {node.path()}: conflicts")
