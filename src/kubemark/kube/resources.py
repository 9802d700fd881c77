"""The resource types the embedded API server serves: names, scope, verbs and subresources.

This table is the one place that says what exists; discovery, OpenAPI, routing, storage keys and Tables all
read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource (e.g. apps/v1 deployments)."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # e.g. ("status", "scale")
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    list_kind: str = field(default="")

    @property
    def group_version(self) -> str:
        """apiVersion as written in objects: "v1" or "apps/v1"."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """ "pods" or "deployments.apps" (the registry key segment and the name in error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    def storage_prefix(self) -> str:
        """Key prefix in storage: /registry/<group-resource>/ (then <namespace>/<name> or <name>)."""
        return f"/registry/{self.group_resource}/"

    def storage_key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.group_resource}/{namespace}/{name}"
        return f"/registry/{self.group_resource}/{name}"


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, short, sub, categories, verbs)


_NS_VERBS = (
    "create",
    "delete",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)  # no deletecollection, as upstream

RESOURCES: tuple[ResourceType, ...] = (
    _r("", "v1", "Namespace", "namespaces", False, ("ns",), ("status", "finalize"), verbs=_NS_VERBS),
    _r("", "v1", "Node", "nodes", False, ("no",), ("status", "proxy")),
    _r(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        ("po",),
        ("status", "binding", "eviction", "log", "proxy"),
        ("all",),
    ),
    _r("", "v1", "Service", "services", True, ("svc",), ("status", "proxy"), ("all",)),
    _r("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _r("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",)),
    _r("", "v1", "Event", "events", True, ("ev",)),
    _r(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        True,
        ("rc",),
        ("status", "scale"),
        ("all",),
    ),
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    _r("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale"), ("all",)),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale"), ("all",)),
    _r("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale"), ("all",)),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), ("all",)),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    _r("batch", "v1", "Job", "jobs", True, (), ("status",), ("all",)),
    _r("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
    # What clusterloader2's load test creates besides the above: a PriorityClass for its DaemonSet, PVCs from
    # StatefulSet volumeClaimTemplates, NetworkPolicies (CL2_ENABLE_NETWORKPOLICIES) and PodDisruptionBudgets.
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ("status",)),
    _r("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ("status",)),
    # The claims' classes: the master's default class and its hollow provisioner bind the load test's claims.
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), ("status",)),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    # RBAC: the authorizer's policy (apiserver/rbac.py); clusterloader2's access-tokens test and the load test's
    # informer module create Roles and RoleBindings.
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    # What a v1.37 kubelet and kube-proxy watch besides the above (no short names or categories upstream):
    # kubelet's CSI volume plugin (CSIDrivers), RuntimeClass manager and PodCertificateRequest manager (its
    # node's requests), kube-proxy's ServiceCIDR config.
    _r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
    _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
    _r("certificates.k8s.io", "v1", "PodCertificateRequest", "podcertificaterequests", True, (), ("status",)),
    _r("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", False, (), ("status",)),
)

# Group -> preferred version, in the order discovery lists groups ("" is the legacy core group at /api).
GROUP_VERSIONS: dict[str, str] = {}
for _rt in RESOURCES:
    GROUP_VERSIONS.setdefault(_rt.group, _rt.version)


_BY_GVR: dict[tuple[str, str, str], ResourceType] = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCES}


def find(group: str, version: str, plural: str) -> ResourceType | None:
    """The served resource for a URL's group/version/plural, or None."""
    return _BY_GVR.get((group, version, plural))


def by_kind(group: str, kind: str) -> ResourceType | None:
    """The served resource for an object's apiVersion group and kind, or None."""
    for rt in RESOURCES:
        if rt.kind == kind and rt.group == group:
            return rt
    return None
