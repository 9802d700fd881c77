"""resolve_controller_ref: the controllerRef -> owner-key resolution shared by the deployment, replicaset and job
controllers."""

from __future__ import annotations

from typing import Any

from kubemark.master.controllers.ownership import controller_ref, owner_reference, resolve_controller_ref

Obj = dict[str, Any]


def _obj(kind: str, name: str, uid: str, namespace: str = "ns", refs: list[Obj] | None = None) -> Obj:
    md: Obj = {"name": name, "namespace": namespace, "uid": uid}
    if refs is not None:
        md["ownerReferences"] = refs
    return {"kind": kind, "metadata": md}


class _Cache:
    """A lister keyed like an Informer's cache."""

    def __init__(self, *objs: Obj) -> None:
        self._by_key = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in objs}

    def get(self, key: str) -> Obj | None:
        return self._by_key.get(key)


OWNER = _obj("ReplicaSet", "web", "uid-1")
OWNERS = _Cache(OWNER)


def _resolve(pod: Obj, kind: str = "ReplicaSet") -> str | None:
    return resolve_controller_ref(pod["metadata"]["namespace"], controller_ref(pod), kind, OWNERS)


def test_controller_ref_of_the_kind_with_the_owners_uid_resolves_to_its_key() -> None:
    pod = _obj("Pod", "web-1", "p1", refs=[owner_reference(OWNER, "apps/v1", "ReplicaSet")])
    assert _resolve(pod) == "ns/web"


def test_the_controller_ref_is_found_among_other_refs() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "cm-1"}
    pod = _obj("Pod", "web-1", "p1", refs=[other, owner_reference(OWNER, "apps/v1", "ReplicaSet")])
    assert _resolve(pod) == "ns/web"


def test_wrong_uid_is_not_the_owner() -> None:
    """A same-named owner recreated after the original was deleted does not control the old pods."""
    ref = {**owner_reference(OWNER, "apps/v1", "ReplicaSet"), "uid": "uid-old"}
    assert _resolve(_obj("Pod", "web-1", "p1", refs=[ref])) is None


def test_wrong_kind_unknown_owner_or_other_namespace_resolve_to_none() -> None:
    ref = owner_reference(OWNER, "apps/v1", "ReplicaSet")
    assert _resolve(_obj("Pod", "web-1", "p1", refs=[ref]), kind="Job") is None
    assert _resolve(_obj("Pod", "web-1", "p1", refs=[{**ref, "name": "gone"}])) is None
    assert _resolve(_obj("Pod", "web-1", "p1", namespace="other", refs=[ref])) is None


def test_non_controller_ref_is_ignored() -> None:
    ref = {**owner_reference(OWNER, "apps/v1", "ReplicaSet"), "controller": False}
    pod = _obj("Pod", "web-1", "p1", refs=[ref])
    assert controller_ref(pod) is None
    assert _resolve(pod) is None
    # Passed directly, a non-controller reference does not resolve either.
    assert resolve_controller_ref("ns", ref, "ReplicaSet", OWNERS) is None


def test_no_refs() -> None:
    assert _resolve(_obj("Pod", "web-1", "p1")) is None
    assert _resolve(_obj("Pod", "web-1", "p1", refs=[])) is None
    assert resolve_controller_ref("ns", None, "ReplicaSet", OWNERS) is None
