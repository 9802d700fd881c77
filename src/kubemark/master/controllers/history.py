"""ControllerRevisions of StatefulSets and DaemonSets (pkg/controller/history and the two controllers' use of it).

A revision snapshots a parent's pod template as `data` = {"spec": {"template": {..., "$patch": "replace"}}}
(the controllers' getPatch), named `<parent>-<hash>` where the hash is controller.ComputeHash of that data
(+ the parent's collisionCount), labelled with the template's labels plus `controller-revision-hash`, and
controlled by the parent (so the garbage collector deletes it with the parent). `sync_revisions` finds or
creates the revision of the current template, moves it to the highest revision number when an older one
matches again (a rollback), and deletes revisions beyond revisionHistoryLimit that no live pod uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kubemark.client import APIError, RestClient, is_not_found, resource_path
from kubemark.master.controllers.base import Index, Obj
from kubemark.master.controllers.ownership import meta, owner_reference, uid_of
from kubemark.master.controllers.rollout import pod_template_hash

log = logging.getLogger(__name__)

CONTROLLER_REVISION_HASH = "controller-revision-hash"
_NAME_PREFIX_LIMIT = 223  # ControllerRevisionName keeps the whole name within 253 characters


def revision_data(parent: Obj) -> Obj:
    """The parent's pod template as a revision stores it (a strategic patch replacing spec.template)."""
    template = dict((parent.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_of(revision: Obj) -> Obj:
    """The pod template a revision recorded (without the patch directive)."""
    template = dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def revision_name(parent_name: str, hash_: str) -> str:
    return f"{parent_name[:_NAME_PREFIX_LIMIT]}-{hash_}"


def _equal_data(a: Any, b: Any) -> bool:
    """Semantic equality of two revisions' data (JSON objects compare regardless of key order)."""
    return bool(a == b)


@dataclass
class Revisions:
    """What a sync knows about a parent's history after `sync_revisions`."""

    current: Obj  # the revision status.currentRevision names (the update revision when none does)
    update: Obj  # the revision of the current template
    collision_count: int
    hash: str  # the update revision's hash (a DaemonSet pod's controller-revision-hash label)


class RevisionHistory:
    """Reads a parent's ControllerRevisions from a shared index and writes them through the API."""

    def __init__(self, client: RestClient, by_controller: Index, api_version: str, kind: str) -> None:
        self.client = client
        self.by_controller = by_controller
        self.api_version = api_version
        self.kind = kind

    def owned(self, parent: Obj) -> list[Obj]:
        """The parent's revisions, oldest revision number first."""
        return sorted(self.by_controller.get(uid_of(parent)), key=lambda r: int(r.get("revision") or 0))

    def _path(self, namespace: str, name: str | None = None) -> str:
        return resource_path("apps", "v1", "controllerrevisions", namespace, name)

    async def sync_revisions(self, parent: Obj) -> Revisions:
        namespace = meta(parent).get("namespace") or ""
        status = parent.get("status") or {}
        collision_count = int(status.get("collisionCount") or 0)
        revisions = self.owned(parent)
        data = revision_data(parent)
        highest = max((int(r.get("revision") or 0) for r in revisions), default=0)
        update: Obj | None = None
        for revision in reversed(revisions):
            if _equal_data(revision.get("data"), data):
                update = revision
                break
        hash_ = ""
        if update is None:
            update, hash_, collision_count = await self._create(parent, data, highest + 1, collision_count)
        elif int(update.get("revision") or 0) < highest:
            update = await self.client.patch(
                self._path(namespace, meta(update).get("name")), {"revision": highest + 1}, "merge"
            )
        if not hash_:
            hash_ = (meta(update).get("labels") or {}).get(CONTROLLER_REVISION_HASH) or ""
        current_name = status.get("currentRevision")
        current = next((r for r in revisions if meta(r).get("name") == current_name), update)
        return Revisions(current=current, update=update, collision_count=collision_count, hash=hash_)

    async def _create(self, parent: Obj, data: Obj, number: int, collision_count: int) -> tuple[Obj, str, int]:
        """Create the revision; a same-named revision with other data is a hash collision: count it, retry."""
        md = meta(parent)
        namespace = md.get("namespace") or ""
        template_labels = (((parent.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
        for _ in range(5):
            hash_ = pod_template_hash(data, collision_count or None)
            name = revision_name(md.get("name") or "", hash_)
            body = {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**(template_labels or {}), CONTROLLER_REVISION_HASH: hash_},
                    "ownerReferences": [owner_reference(parent, self.api_version, self.kind)],
                },
                "data": data,
                "revision": number,
            }
            try:
                return await self.client.create(self._path(namespace), body), hash_, collision_count
            except APIError as exc:
                if exc.status != 409:
                    raise
            existing = await self.client.get(self._path(namespace, name))
            if _equal_data(existing.get("data"), data) and uid_of(parent) in {
                r.get("uid") for r in meta(existing).get("ownerReferences") or ()
            }:
                return existing, hash_, collision_count
            collision_count += 1
        raise RuntimeError(f"{self.kind} {namespace}/{md.get('name')}: too many revision name collisions")

    async def truncate(self, parent: Obj, live: set[str]) -> None:
        """Delete the oldest revisions beyond spec.revisionHistoryLimit that neither a pod nor status uses."""
        limit = int((parent.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        namespace = meta(parent).get("namespace") or ""
        unused = [r for r in self.owned(parent) if meta(r).get("name") not in live]
        for revision in unused[: max(0, len(unused) - limit)]:
            try:
                await self.client.delete(self._path(namespace, meta(revision).get("name")))
            except APIError as exc:
                if not is_not_found(exc):
                    raise
