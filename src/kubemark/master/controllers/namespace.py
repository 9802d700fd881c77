"""Namespace lifecycle controller (pkg/controller/namespace): empty a Terminating namespace, then finalize it.

For a namespace with a deletionTimestamp, every namespaced resource that supports deletecollection is
deleted collection-wise; while anything remains (pods terminating gracefully, objects with finalizers) the
namespace is re-checked later; once empty, its `kubernetes` finalizer is removed via PUT .../finalize.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kubemark.client import APIError, RestClient, is_conflict, is_not_found, resource_path
from kubemark.kube.resources import RESOURCES, ResourceType
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import is_deleting
from kubemark.master.controllers.workqueue import QueueMetrics

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"


def deletable_resources(resources: Sequence[ResourceType] = RESOURCES) -> list[ResourceType]:
    return [rt for rt in resources if rt.namespaced and "deletecollection" in rt.verbs and "list" in rt.verbs]


class NamespaceController(Controller):
    """Deletes the content of terminating namespaces and finalizes them."""

    name = "namespace"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 10,
        resources: Sequence[ResourceType] = RESOURCES,
        recheck_seconds: float = 1.0,
        metrics: QueueMetrics | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics)
        self.resources = deletable_resources(resources)
        self.recheck_seconds = recheck_seconds
        self.namespaces = self.use("", "v1", "namespaces")
        self.namespaces.add_handler(self._changed, lambda old, new: self._changed(new))

    def _changed(self, ns: Obj) -> None:
        if is_deleting(ns):
            self.enqueue(ns)

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not is_deleting(ns):
            return
        remaining = 0
        for rt in self.resources:
            path = resource_path(rt.group, rt.version, rt.plural, key)
            try:
                await self.client.request("DELETE", path)
                page = await self.client.list(path)
            except APIError as exc:
                if is_not_found(exc):
                    continue
                raise
            remaining += len(page.get("items") or [])
        if remaining:
            log.debug("namespace %s: %d objects remaining", key, remaining)
            self.queue.add_after(key, self.recheck_seconds)
            return
        await self._finalize(key)

    async def _finalize(self, name: str) -> None:
        path = resource_path("", "v1", "namespaces", None, name)
        for _ in range(5):
            try:
                live = await self.client.get(path)
            except APIError as exc:
                if is_not_found(exc):
                    return
                raise
            finalizers = list((live.get("spec") or {}).get("finalizers") or [])
            if FINALIZER not in finalizers:
                return
            body: dict[str, Any] = dict(live)
            body["spec"] = {**(live.get("spec") or {}), "finalizers": [f for f in finalizers if f != FINALIZER]}
            try:
                await self.client.replace(f"{path}/finalize", body)
                return
            except APIError as exc:
                if is_not_found(exc):
                    return
                if not is_conflict(exc):
                    raise
        raise RuntimeError(f"could not finalize namespace {name}: conflicts")
