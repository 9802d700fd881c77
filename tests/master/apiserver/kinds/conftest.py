"""A dict-backed ObjectStore double for testing per-kind strategies and their subresources in isolation.

It runs the strategy hooks in the order the generic machinery does (prepare, validate, store; graceful
delete via `graceful_delete_seconds`), but it is only a stand-in: the real end-to-end path (HTTP, storage,
watch) is tested by the generic machinery's own tests.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import pytest

from kubemark.kube.meta import new_uid, now_rfc3339
from kubemark.kube.resources import RESOURCES, ResourceType
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.kinds import KindStrategy, strategy_for
from kubemark.master.apiserver.request_info import UserInfo
from kubemark.master.apiserver.strategy import Obj, SubresourceRequest

ADMIN = UserInfo("admin", ("system:masters",))


class FakeObjectStore:
    """One resource's objects in a dict, keyed by (namespace, name)."""

    def __init__(self, rt: ResourceType, strategy: KindStrategy, revisions: itertools.count) -> None:
        self.rt = rt
        self.strategy = strategy
        self.objects: dict[tuple[str, str], Obj] = {}
        self._revisions = revisions
        self.deleted: list[Obj] = []

    def _missing(self, name: str) -> errors.StatusError:
        return errors.not_found(self.rt.group, self.rt.plural, name)

    def _check(self, obj: Obj, causes: list[errors.Cause]) -> None:
        if causes:
            name = obj.get("metadata", {}).get("name", "")
            raise errors.invalid(self.rt.group, self.rt.kind, name, causes)

    def _store(self, namespace: str, name: str, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self._revisions))
        self.objects[(namespace, name)] = obj
        return copy.deepcopy(obj)

    async def get(self, namespace: str, name: str) -> Obj:
        if (namespace, name) not in self.objects:
            raise self._missing(name)
        return copy.deepcopy(self.objects[(namespace, name)])

    async def create(self, obj: Obj, user: UserInfo) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if self.rt.namespaced else ""
        meta.setdefault("uid", new_uid())
        meta.setdefault("creationTimestamp", now_rfc3339())
        self.strategy.prepare_for_create(obj)
        self._check(obj, self.strategy.validate(obj))
        if (namespace, meta["name"]) in self.objects:
            self.strategy.on_deleted(obj)
            raise errors.already_exists(self.rt.group, self.rt.plural, meta["name"])
        return self._store(namespace, meta["name"], obj)

    async def guaranteed_update(
        self,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        status_only: bool = False,
    ) -> Obj:
        current = await self.get(namespace, name)
        new = mutate(copy.deepcopy(current))
        if new is None:
            return current
        if status_only:
            self.strategy.prepare_for_status_update(new, current)
            self._check(new, self.strategy.validate_status_update(new, current))
        else:
            self.strategy.prepare_for_update(new, current)
            self._check(new, self.strategy.validate_update(new, current))
        if self.strategy.should_delete_during_update(new):
            self._remove(namespace, name)
            return new
        return self._store(namespace, name, new)

    def _remove(self, namespace: str, name: str) -> Obj:
        obj = self.objects.pop((namespace, name))
        self.strategy.on_deleted(obj)
        self.deleted.append(obj)
        return obj

    async def delete(self, namespace: str, name: str, options: Obj, user: UserInfo) -> Obj:
        current = await self.get(namespace, name)
        grace = self.strategy.graceful_delete_seconds(current, options.get("gracePeriodSeconds"))
        if grace == 0:
            return self._remove(namespace, name)
        if not current["metadata"].get("deletionTimestamp"):
            current["metadata"]["deletionTimestamp"] = now_rfc3339()
            current["metadata"]["deletionGracePeriodSeconds"] = grace
            self.strategy.prepare_for_delete(current)
        return self._store(namespace, name, current)


class FakeCluster:
    """A FakeObjectStore per served resource, sharing one revision counter (like etcd)."""

    def __init__(self) -> None:
        revisions = itertools.count(1)
        self.stores = {(rt.group, rt.plural): FakeObjectStore(rt, strategy_for(rt), revisions) for rt in RESOURCES}

    def store(self, group: str, plural: str) -> FakeObjectStore:
        return self.stores[(group, plural)]

    async def call(
        self,
        group: str,
        plural: str,
        subresource: str,
        verb: str,
        namespace: str,
        name: str,
        body: Obj | None = None,
        *,
        patch_type: str = "",
        raw_body: bytes = b"",
    ) -> Obj:
        """Invoke a custom subresource the way the generic router would."""
        handler = self.store(group, plural).strategy.subresources[subresource]
        request = SubresourceRequest(
            verb=verb,
            namespace=namespace,
            name=name,
            body=body,
            user=ADMIN,
            query={},
            stores=self.store,
            patch_type=patch_type,
            raw_body=raw_body,
        )
        return await handler(request)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def make_strategy() -> Callable[[str, str], KindStrategy]:
    """Build a fresh strategy for (group, plural)."""

    def build(group: str, plural: str) -> KindStrategy:
        for rt in RESOURCES:
            if (rt.group, rt.plural) == (group, plural):
                return strategy_for(rt)
        raise KeyError(plural)

    return build
