"""Pod rules: defaulting plus the admission defaults every real cluster applies, validation, the narrow set
of mutable spec fields, graceful deletion, and the `binding` and `eviction` subresources.

Upstream: pkg/registry/core/pod/strategy.go and storage/storage.go, pkg/apis/core/v1/defaults.go,
ValidatePodUpdate, and the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins.

Quantities (containers' and init containers' resources, pod-level resources, overhead, and the resources in
container statuses) are rewritten canonical on every write, as kube-apiserver's decoding into
resource.Quantity does: "0.5" cpu is stored and returned as "500m".
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as field_
from typing import Any

from kubemark.kube.meta import now_rfc3339
from kubemark.kube.quantity import canonicalize_quantities
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import disruption, field, podspec, scheduling
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj, ObjectStore, SubresourceRequest

DEFAULT_TOLERATION_SECONDS = 300
_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def success_status(code: int = 201) -> Obj:
    """The metav1.Status a successful binding or eviction answers with."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}


def add_default_tolerations(spec: Obj) -> None:
    """DefaultTolerationSeconds admission: tolerate not-ready/unreachable NoExecute taints for 300 s."""
    tolerations = spec.get("tolerations") or []
    for key in (_NOT_READY, _UNREACHABLE):
        covered = any(
            t.get("effect", "") in ("", "NoExecute")
            and (t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"))
            for t in tolerations
            if isinstance(t, dict)
        )
        if not covered:
            tolerations.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }
            )
    spec["tolerations"] = tolerations


def set_condition(status: Obj, condition_type: str, value: str, now: str) -> None:
    """Add or update a pod condition; lastTransitionTime moves only when the status value changes."""
    conditions = status.setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == condition_type:
            if condition.get("status") != value:
                condition["status"] = value
                condition["lastTransitionTime"] = now
            return
    conditions.append({"type": condition_type, "status": value, "lastProbeTime": None, "lastTransitionTime": now})


_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def _canonicalize_requirements(resources: Any) -> None:
    if isinstance(resources, dict):
        canonicalize_quantities(resources.get("requests"))
        canonicalize_quantities(resources.get("limits"))


def canonicalize_pod_spec(spec: Any) -> None:
    """Canonical quantities in a PodSpec: every container's resources, spec.resources and spec.overhead."""
    if not isinstance(spec, dict):
        return
    for key in _CONTAINER_LISTS:
        containers = spec.get(key)
        if isinstance(containers, list):
            for container in containers:
                if isinstance(container, dict):
                    _canonicalize_requirements(container.get("resources"))
    _canonicalize_requirements(spec.get("resources"))
    canonicalize_quantities(spec.get("overhead"))


def canonicalize_pod_status(status: Any) -> None:
    """Canonical quantities in a PodStatus: container statuses' allocatedResources and resources."""
    if not isinstance(status, dict):
        return
    for key in _STATUS_LISTS:
        statuses = status.get(key)
        if isinstance(statuses, list):
            for cs in statuses:
                if isinstance(cs, dict):
                    canonicalize_quantities(cs.get("allocatedResources"))
                    _canonicalize_requirements(cs.get("resources"))


def _mutable_view(spec: Obj, reference: Obj) -> Obj:
    """`spec` with the fields a pod update may change replaced by `reference`'s, for comparison."""
    view = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        new_list, ref_list = view.get(key) or [], reference.get(key) or []
        if len(new_list) == len(ref_list):
            for new_c, ref_c in zip(new_list, ref_list, strict=True):
                if isinstance(new_c, dict) and isinstance(ref_c, dict):
                    if "image" in ref_c:
                        new_c["image"] = ref_c["image"]
                    else:
                        new_c.pop("image", None)
    for key in ("activeDeadlineSeconds", "tolerations"):
        if key in reference:
            view[key] = reference[key]
        else:
            view.pop(key, None)
    old_grace, new_grace = reference.get("terminationGracePeriodSeconds"), view.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new_grace == 1:
        view["terminationGracePeriodSeconds"] = old_grace
    return view


@dataclass
class PodStrategy(KindStrategy):
    # The PriorityClasses Priority admission reads (None when the server does not serve them).
    priority_classes: scheduling.PriorityClassLister | None = field_(default=None, repr=False)

    def __post_init__(self) -> None:
        self.subresources.setdefault("binding", self.bind)
        self.subresources.setdefault("eviction", self.evict)

    def bind_stores(self, lookup: Callable[[str, str], ObjectStore | None]) -> None:
        store = lookup("scheduling.k8s.io", "priorityclasses")
        self.priority_classes = scheduling.PriorityClassLister(store) if store is not None else None

    async def admit_create(self, obj: Obj) -> None:
        """Priority admission: priorityClassName -> spec.priority and spec.preemptionPolicy (403 if unknown)."""
        if self.priority_classes is not None:
            lister = self.priority_classes
            await scheduling.admit_pod_priority(obj, lister.get, lister.list)

    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            canonicalize_pod_spec(spec)
            podspec.default_pod_spec(spec)
            podspec.default_requests_from_limits(spec)
            spec.setdefault("enableServiceLinks", True)
            # ServiceAccount admission (serviceAccount is the deprecated alias kept in sync by conversion).
            account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            spec["serviceAccountName"] = account
            spec["serviceAccount"] = account
            # Priority admission (admit_create) has resolved any class; without PriorityClasses, priority 0.
            if not spec.get("priorityClassName"):
                spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            add_default_tolerations(spec)
        obj["status"] = {"phase": "Pending", "qosClass": podspec.qos_class(spec if isinstance(spec, dict) else {})}

    def validate(self, obj: Obj) -> list[Cause]:
        return podspec.validate_pod_spec(obj.get("spec"), "spec", require_image=True)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        if self.is_direct_write(new):
            return
        super().prepare_for_update(new, old)
        spec = new.get("spec")
        if isinstance(spec, dict):
            # Updates are decoded with defaulting upstream, so a PUT of the user's manifest compares equal.
            canonicalize_pod_spec(spec)
            podspec.default_pod_spec(spec)
            podspec.default_requests_from_limits(spec)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if self.is_direct_write(new):
            return []
        new_spec, old_spec = new.get("spec"), old.get("spec") or {}
        causes = podspec.validate_pod_spec(new_spec, "spec", require_image=True)
        if causes or not isinstance(new_spec, dict):
            return causes
        old_deadline, new_deadline = old_spec.get("activeDeadlineSeconds"), new_spec.get("activeDeadlineSeconds")
        if old_deadline is not None and (new_deadline is None or new_deadline > old_deadline):
            causes.append(
                field.invalid(
                    "spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"
                )
            )
        old_tolerations = old_spec.get("tolerations") or []
        new_tolerations = new_spec.get("tolerations") or []
        if any(t not in new_tolerations for t in old_tolerations):
            causes.append(
                field.forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            )
        if _mutable_view(new_spec, old_spec) != old_spec:
            causes.append(field.forbidden("spec", POD_UPDATE_FORBIDDEN))
        return causes

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        canonicalize_pod_status(new.get("status"))

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        phase = (new.get("status") or {}).get("phase")
        valid = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
        if phase is not None and phase not in valid:
            return [field.not_supported("status.phase", phase, valid)]
        return []

    def graceful_delete_seconds(self, obj: Obj, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        if requested is not None:
            period = requested
        else:
            grace = spec.get("terminationGracePeriodSeconds")
            period = grace if isinstance(grace, int) else 30
        if period < 0:
            period = 1  # upstream turns a negative grace period into the minimum positive one
        if not spec.get("nodeName"):
            return 0
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        return period

    async def bind(self, req: SubresourceRequest) -> Obj:
        """POST pods/{name}/binding: assign the pod to a node once (the scheduler's write)."""
        if req.verb != "create":
            raise errors.method_not_allowed()
        binding = req.body or {}
        meta = binding.get("metadata") or {}
        if meta.get("name") and meta["name"] != req.name:
            raise errors.bad_request("name in URL does not match name in Binding object")
        if meta.get("namespace") and meta["namespace"] != req.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        target = binding.get("target") or {}
        causes = []
        if target.get("kind") not in (None, "", "Node"):
            causes.append(field.not_supported("target.kind", target.get("kind"), ("Node", "<empty>")))
        if not target.get("name"):
            causes.append(field.required("target.name"))
        if causes:
            raise errors.invalid("", "Binding", req.name, causes)
        node = target["name"]
        annotations: dict[str, Any] = meta.get("annotations") or {}

        def assign(pod: Obj) -> Obj:
            pod_meta = pod.setdefault("metadata", {})
            spec = pod.setdefault("spec", {})
            if pod_meta.get("deletionTimestamp"):
                raise errors.conflict(
                    "", "pods", req.name, f"pod {req.name} is being deleted, cannot be assigned to a host"
                )
            if spec.get("nodeName"):
                raise errors.conflict(
                    "", "pods", req.name, f'pod {req.name} is already assigned to node "{spec["nodeName"]}"'
                )
            spec["nodeName"] = node
            if annotations:
                pod_meta.setdefault("annotations", {}).update(annotations)
            set_condition(pod.setdefault("status", {}), "PodScheduled", "True", now_rfc3339())
            return pod

        with self.direct_write(req.namespace, req.name):
            await req.stores("", "pods").guaranteed_update(req.namespace, req.name, assign)
        return success_status()

    async def evict(self, req: SubresourceRequest) -> Obj:
        """POST pods/{name}/eviction: a graceful delete that PodDisruptionBudgets may refuse (disruption.py)."""
        if req.verb != "create":
            raise errors.method_not_allowed()
        eviction = req.body or {}
        meta = eviction.get("metadata") or {}
        if meta.get("name") and meta["name"] != req.name:
            raise errors.bad_request("name in URL does not match name in Eviction object")
        options = dict(eviction.get("deleteOptions") or {})
        await disruption.evict(req, options)
        return success_status()
