"""Namespace rules: phase Active and the `kubernetes` finalizer at create, the metadata.name label, and
two-phase deletion (Terminating until spec.finalizers is emptied through the `finalize` subresource).

Upstream: pkg/registry/core/namespace/strategy.go and storage/storage.go (Delete, FinalizeREST,
ShouldDeleteNamespaceDuringUpdate), SetDefaults_Namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj, SubresourceRequest

FINALIZER_KUBERNETES = "kubernetes"
NAME_LABEL = "kubernetes.io/metadata.name"
# NamespaceLifecycle admission refuses to delete these.
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
# Grace period reported for a namespace with finalizers left: any positive value keeps it stored.
TERMINATING_GRACE_SECONDS = 1


def _set_name_label(obj: Obj) -> None:
    meta = obj.setdefault("metadata", {})
    name = meta.get("name")
    if name:
        labels = meta.get("labels") or {}
        labels[NAME_LABEL] = name
        meta["labels"] = labels


def finalization_done(obj: Obj) -> bool:
    """A namespace marked for deletion whose spec and metadata finalizers are all gone."""
    meta = obj.get("metadata") or {}
    return (
        bool(meta.get("deletionTimestamp"))
        and not meta.get("finalizers")
        and not ((obj.get("spec") or {}).get("finalizers"))
    )


@dataclass
class NamespaceStrategy(KindStrategy):
    def __post_init__(self) -> None:
        self.subresources.setdefault("finalize", self.finalize)

    def prepare_for_create(self, obj: Obj) -> None:
        _set_name_label(obj)
        spec = obj.get("spec") or {}
        finalizers = list(spec.get("finalizers") or [])
        if FINALIZER_KUBERNETES not in finalizers:
            finalizers.append(FINALIZER_KUBERNETES)
        spec["finalizers"] = finalizers
        obj["spec"] = spec
        obj["status"] = {"phase": "Active"}

    def validate(self, obj: Obj) -> list[Cause]:
        return field.dns1123_label("metadata.name", (obj.get("metadata") or {}).get("name"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        if self.is_direct_write(new):
            return  # /finalize: its mutation changed spec.finalizers only
        super().prepare_for_update(new, old)
        spec = new.get("spec")
        if not isinstance(spec, dict):
            spec = new["spec"] = {}
        # spec.finalizers change only through /finalize.
        spec["finalizers"] = list((old.get("spec") or {}).get("finalizers") or [])
        _set_name_label(new)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        _set_name_label(new)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        phase = (new.get("status") or {}).get("phase")
        if phase is not None and phase not in ("Active", "Terminating"):
            return [field.not_supported("status.phase", phase, ("Active", "Terminating"))]
        if (old.get("metadata") or {}).get("deletionTimestamp") and phase != "Terminating":
            return [field.invalid("status.phase", phase, "A namespace may not be reverted from Terminating")]
        return []

    def admit_delete(self, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        if name in IMMORTAL_NAMESPACES:
            raise errors.StatusError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": "namespaces"},
            )

    def graceful_delete_seconds(self, obj: Obj, requested: int | None) -> int:
        """Positive (keep, mark Terminating) until finalization is done; then 0 (remove)."""
        # Even a namespace without finalizers goes through Terminating first, as upstream.
        return 0 if finalization_done(obj) else TERMINATING_GRACE_SECONDS

    def prepare_for_delete(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"

    def should_delete_during_update(self, obj: Obj) -> bool:
        return finalization_done(obj)

    async def finalize(self, req: SubresourceRequest) -> Obj:
        """PUT namespaces/{name}/finalize: replace spec.finalizers only; remove the namespace when done."""
        if req.verb != "update":
            raise errors.method_not_allowed()
        body = req.body or {}
        body_meta = body.get("metadata") or {}
        if body_meta.get("name") and body_meta["name"] != req.name:
            raise errors.bad_request("name in URL does not match name in Namespace object")
        finalizers = (body.get("spec") or {}).get("finalizers") or []
        causes = []
        for i, name in enumerate(finalizers):
            if not isinstance(name, str) or not name:
                causes.append(field.required(f"spec.finalizers[{i}]"))
        if causes:
            raise errors.invalid("", "Namespace", req.name, causes)
        expected_rv = body_meta.get("resourceVersion")

        def set_finalizers(ns: Obj) -> Obj:
            current_rv = (ns.get("metadata") or {}).get("resourceVersion")
            if expected_rv and current_rv and expected_rv != current_rv:
                raise errors.conflict(
                    "",
                    "namespaces",
                    req.name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            ns.setdefault("spec", {})["finalizers"] = list(finalizers)
            return ns

        store = req.stores("", "namespaces")
        with self.direct_write("", req.name):
            updated = await store.guaranteed_update("", req.name, set_finalizers)
        if finalization_done(updated):
            try:
                await store.delete("", req.name, {"gracePeriodSeconds": 0}, req.user)
            except errors.StatusError as err:
                if err.code != 404:  # the generic update path may have removed it already
                    raise
        return updated
