"""The `scale` subresource of Deployments, ReplicaSets and ReplicationControllers (autoscaling/v1 Scale).

GET answers a Scale built from the object; PUT and PATCH (merge, strategic-merge or JSON patch of the
Scale) change only spec.replicas, through guaranteed_update, honouring a resourceVersion precondition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark import codec
from kubemark.kube.patch import PatchError, apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from kubemark.kube.resources import ResourceType
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.strategy import Obj, SubresourceRequest

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def format_label_selector(selector: Any) -> str:
    """metav1.LabelSelector (or an RC's map selector) in the label selector string syntax, keys sorted."""
    if not selector:
        return ""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    parts: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or ():
        key, operator = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or ()))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
            operator, f"!{key}"
        )
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment, ReplicaSet or ReplicationController."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0), "selector": format_label_selector(spec.get("selector"))},
    }


def _apply_patch(scale: Obj, patch_type: str, raw: bytes) -> Obj:
    try:
        patch = codec.loads(raw)
    except codec.JSONDecodeError as err:
        raise errors.bad_request(f"error decoding patch: {err}") from err
    try:
        if patch_type == MERGE_PATCH:
            return apply_merge_patch(scale, patch)
        if patch_type == STRATEGIC_PATCH:
            return apply_strategic_merge_patch(scale, patch, "Scale")
        if patch_type == JSON_PATCH:
            return apply_json_patch(scale, patch)
    except PatchError as err:
        raise errors.StatusError(422, "Invalid", str(err)) from err
    raise errors.unsupported_media_type(patch_type)


@dataclass(frozen=True)
class ScaleSubresource:
    """Handler of <rt>/scale for one of deployments, replicasets, replicationcontrollers."""

    rt: ResourceType

    async def handle(self, req: SubresourceRequest) -> Obj:
        group, plural = self.rt.group, self.rt.plural
        store = req.stores(group, plural)
        if req.verb == "get":
            return scale_of(await store.get(req.namespace, req.name))
        if req.verb not in ("update", "patch"):
            raise errors.method_not_allowed()

        def set_replicas(obj: Obj) -> Obj:
            current = scale_of(obj)
            if req.verb == "patch":
                desired = _apply_patch(current, req.patch_type, req.raw_body)
            else:
                desired = req.body or {}
            _check(desired, current, req.name, group, plural)
            obj.setdefault("spec", {})["replicas"] = desired["spec"]["replicas"]
            return obj

        updated = await store.guaranteed_update(req.namespace, req.name, set_replicas)
        return scale_of(updated)


def _check(desired: Any, current: Obj, name: str, group: str, plural: str) -> None:
    if not isinstance(desired, dict):
        raise errors.bad_request("the body of the request must be a Scale object")
    meta = desired.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
    expected = meta.get("resourceVersion")
    if expected and expected != current["metadata"].get("resourceVersion"):
        raise errors.conflict(group, plural, name, _MODIFIED)
    replicas = (desired.get("spec") or {}).get("replicas")
    if replicas is None:
        replicas = 0  # an omitted spec.replicas decodes as 0 in Go
        desired.setdefault("spec", {})["replicas"] = 0
    causes = field.non_negative("spec.replicas", replicas)
    if causes:
        raise errors.invalid("autoscaling", "Scale", name, causes)
