"""The contract between the generic REST machinery and per-kind rules (kube-apiserver's "strategies").

The generic handlers (get/list/watch/create/update/patch/delete on any resource) call the hooks of the
resource's `Strategy`; kind-specific modules subclass it (pods, nodes, deployments, ...) to add defaulting,
validation, status/spec separation, graceful deletion and custom subresources (binding, eviction, scale).
Objects are plain JSON dicts everywhere; hooks mutate them in place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubemark.kube.resources import ResourceType
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.options import ListOptions
from kubemark.master.apiserver.request_info import UserInfo

Obj = dict[str, Any]


class ObjectStore(Protocol):
    """Typed access to one resource's objects, as the generic machinery provides it to strategies.

    Every method raises `StatusError` (404, 409, 422, ...) exactly as the HTTP verbs would.
    Objects returned carry metadata.resourceVersion.
    """

    rt: ResourceType

    async def get(self, namespace: str, name: str, resource_version: str = "") -> Obj:
        """GET: resourceVersion "" reads storage (consistent), "0" the watch cache."""
        ...

    async def list(self, namespace: str, opts: ListOptions) -> Any:
        """LIST with metav1.ListOptions semantics; the result has `items`."""
        ...

    async def create(self, obj: Obj, user: UserInfo) -> Obj:
        """Full create path: strategy defaulting + validation, then storage."""
        ...

    async def guaranteed_update(
        self,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        status_only: bool = False,
    ) -> Obj:
        """Read-modify-write retried on conflict. `mutate` gets a private copy; returning None means no change.

        With status_only the status strategy applies (spec changes are dropped), as for a /status write.
        """
        ...

    async def delete(self, namespace: str, name: str, options: Obj, user: UserInfo) -> Obj:
        """Full delete path (DeleteOptions: gracePeriodSeconds, preconditions, propagationPolicy)."""
        ...


@dataclass(slots=True)
class SubresourceRequest:
    """A call to a custom subresource such as pods/binding or deployments/scale."""

    verb: str  # get, create, update, patch
    namespace: str
    name: str
    body: Obj | None
    user: UserInfo
    query: dict[str, str]
    stores: Callable[[str, str], ObjectStore]  # (group, plural) -> ObjectStore of any served resource
    patch_type: str = ""  # content type for verb == "patch"
    raw_body: bytes = b""


SubresourceHandler = Callable[[SubresourceRequest], Awaitable[Obj]]


@dataclass
class Strategy:
    """Generic rules, valid for any resource; kinds override what differs.

    The generic machinery already handles: metadata.name/generateName, namespace checks, uid,
    creationTimestamp, resourceVersion, generation bumps on spec changes, finalizers and
    deletionTimestamp, managedFields being dropped. Hooks only add the kind's own rules.
    """

    rt: ResourceType
    # Custom subresources served by this kind: subresource name -> handler (called for any verb).
    subresources: dict[str, SubresourceHandler] = field(default_factory=dict)

    @property
    def has_status(self) -> bool:
        """Whether a /status subresource splits status writes from spec writes."""
        return "status" in self.rt.subresources

    def prepare_for_create(self, obj: Obj) -> None:
        """Defaulting before validation (e.g. pod phase Pending, qosClass, restartPolicy)."""

    def validate(self, obj: Obj) -> list[Cause]:
        """Kind-specific validation of a new object (names and metadata are validated generically)."""
        return []

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Main-resource update: with a status subresource, `new` keeps `old`'s status."""
        if self.has_status and "status" in old:
            new["status"] = old["status"]
        elif self.has_status:
            new.pop("status", None)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Kind-specific update validation, e.g. immutable fields (422 naming the field)."""
        return []

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """Status update: everything but status (and labels/annotations) stays as in `old`."""
        for key in list(new):
            if key not in ("status", "metadata", "apiVersion", "kind"):
                new.pop(key)
        for key, value in old.items():
            if key not in ("status", "metadata"):
                new[key] = value

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []

    def graceful_delete_seconds(self, obj: Obj, requested: int | None) -> int:
        """Grace period for a delete: 0 deletes at once; > 0 sets deletionTimestamp and keeps the object.

        Generic resources delete immediately; pods bound to a node are graceful (kubelet finishes them).
        """
        return 0

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        """Whether metadata.generation must be bumped (spec-bearing kinds)."""
        return new.get("spec") != old.get("spec")
