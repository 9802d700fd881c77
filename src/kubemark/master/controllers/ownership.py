"""ownerReferences, pod state predicates and adoption/release (pkg/controller ControllerRefManager).

`controller_ref` finds an object's controller reference and `resolve_controller_ref` turns one into the
owner's cache key (the deployment, replicaset and job controllers' resolveControllerRef).

A controller claims the objects its selector matches: it keeps those it already controls, adopts matching
orphans (strategic-merge PATCH adding a controller ownerReference) and releases controlled objects whose labels
no longer match (PATCH `$patch: delete` of its reference).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from kubemark.client import APIError, RestClient, is_not_found
from kubemark.client.informer import namespaced_key_from
from kubemark.kube.labels import Selector
from kubemark.kube.meta import parse_time

log = logging.getLogger(__name__)

Obj = dict[str, Any]

TERMINAL_PHASES = ("Succeeded", "Failed")


def meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def labels_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


class Lister(Protocol):
    """What `resolve_controller_ref` reads: a cache by `namespaced_key` (an Informer)."""

    def get(self, key: str) -> Obj | None: ...


def resolve_controller_ref(namespace: str | None, ref: dict[str, Any] | None, kind: str, owners: Lister) -> str | None:
    """The cache key of the owner a controller reference names, or None (upstream's resolveControllerRef).

    `ref` is an owned object's controller reference (`controller_ref`), `namespace` the owned object's: an
    owner is always in its dependents' namespace. None unless `ref` is a controller reference of `kind`
    (the kind alone, like upstream: apiVersion is not compared) and `owners` holds an object of that name
    whose UID is the reference's — a same-named owner created after the original was deleted is not it.
    """
    if ref is None or ref.get("kind") != kind or not ref.get("controller"):
        return None
    key = namespaced_key_from(namespace, str(ref.get("name") or ""))
    owner = owners.get(key)
    if owner is None or uid_of(owner) != ref.get("uid"):
        return None
    return key


def owner_reference(owner: Obj, api_version: str, kind: str) -> dict[str, Any]:
    """A controller reference that blocks the owner's foreground deletion (metav1.NewControllerRef)."""
    md = meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_active_pod(pod: Obj) -> bool:
    """controller.IsPodActive: not terminal and not being deleted."""
    return pod_phase(pod) not in TERMINAL_PHASES and not is_deleting(pod)


def pod_condition(pod: Obj, kind: str) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Obj) -> float | None:
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    stamp = cond.get("lastTransitionTime")
    try:
        return parse_time(stamp) if stamp else None
    except ValueError:
        return None


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """podutil.IsPodAvailable: Ready, and Ready for at least minReadySeconds."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + min_ready_seconds <= now


def pod_from_template(template: Obj, namespace: str, generate_name: str, owner_ref: dict[str, Any]) -> Obj:
    """controller.GetPodFromTemplate."""
    tmeta = template.get("metadata") or {}
    md: dict[str, Any] = {
        "generateName": generate_name,
        "namespace": namespace,
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_ref],
    }
    if tmeta.get("annotations"):
        md["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        md["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": template.get("spec") or {}}


def recheck_deletion(client: RestClient, path: str, owner: Obj) -> Callable[[], Awaitable[bool]]:
    """RecheckDeletionTimestamp: before adopting, a live GET of the owner — still the same object (uid) and not
    being deleted."""

    async def can_adopt() -> bool:
        try:
            fresh = await client.get(path)
        except APIError as exc:
            if is_not_found(exc):
                return False
            raise
        return uid_of(fresh) == uid_of(owner) and not is_deleting(fresh)

    return can_adopt


async def claim(
    client: RestClient,
    owner: Obj,
    owner_ref: dict[str, Any],
    selector: Selector,
    candidates: Iterable[Obj],
    path_of: Callable[[Obj], str],
    can_adopt: Callable[[], Awaitable[bool]],
) -> list[Obj]:
    """The candidates this owner controls after adopting matching orphans and releasing non-matching ones."""
    owner_uid = uid_of(owner)
    owner_deleting = is_deleting(owner)
    claimed: list[Obj] = []
    adopt_ok: bool | None = None
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(labels_of(obj))
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                claimed.append(obj)
            elif not owner_deleting and not is_deleting(obj):
                await _patch_refs(client, path_of(obj), obj, [{"$patch": "delete", "uid": owner_uid}])
            continue
        if not matches or owner_deleting or is_deleting(obj):
            continue
        if adopt_ok is None:
            adopt_ok = await can_adopt()
        if not adopt_ok:
            continue
        adopted = await _patch_refs(client, path_of(obj), obj, [owner_ref])
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _patch_refs(client: RestClient, path: str, obj: Obj, refs: list[dict[str, Any]]) -> Obj | None:
    patch = {"metadata": {"ownerReferences": refs, "uid": uid_of(obj)}}
    try:
        return await client.patch(path, patch, "strategic")
    except APIError as exc:
        if exc.status in (404, 409, 422):
            log.debug("ownerReferences patch of %s skipped: %s", path, exc)
            return None
        raise
