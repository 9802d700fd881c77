"""Per-kind API rules (kube-apiserver's registry strategies and admission defaults).

`strategy_for(rt)` builds the Strategy of one served resource type. Call it once per resource and keep
the instance: some strategies hold state (the Service IP and node port allocators).
"""

from __future__ import annotations

from kubemark.kube.resources import ResourceType
from kubemark.master.apiserver.kinds.apps import ControllerRevisionStrategy, DaemonSetStrategy, StatefulSetStrategy
from kubemark.master.apiserver.kinds.configs import ConfigMapStrategy, SecretStrategy
from kubemark.master.apiserver.kinds.coordination import LeaseStrategy
from kubemark.master.apiserver.kinds.events import CoreEventStrategy, EventStrategy
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.kinds.namespaces import NamespaceStrategy
from kubemark.master.apiserver.kinds.networking import NetworkPolicyStrategy
from kubemark.master.apiserver.kinds.nodes import NodeStrategy
from kubemark.master.apiserver.kinds.pods import PodStrategy
from kubemark.master.apiserver.kinds.policy import PodDisruptionBudgetStrategy
from kubemark.master.apiserver.kinds.rbac import (
    ClusterRoleBindingStrategy,
    ClusterRoleStrategy,
    RoleBindingStrategy,
    RoleStrategy,
)
from kubemark.master.apiserver.kinds.scheduling import PriorityClassStrategy
from kubemark.master.apiserver.kinds.services import EndpointsStrategy, ServiceStrategy
from kubemark.master.apiserver.kinds.storage import (
    PersistentVolumeClaimStrategy,
    PersistentVolumeStrategy,
    StorageClassStrategy,
)
from kubemark.master.apiserver.kinds.workloads import (
    DeploymentStrategy,
    JobStrategy,
    ReplicaSetStrategy,
    ReplicationControllerStrategy,
)

_BY_RESOURCE: dict[tuple[str, str], type[KindStrategy]] = {
    ("", "namespaces"): NamespaceStrategy,
    ("", "nodes"): NodeStrategy,
    ("", "pods"): PodStrategy,
    ("", "services"): ServiceStrategy,
    ("", "endpoints"): EndpointsStrategy,
    ("", "configmaps"): ConfigMapStrategy,
    ("", "secrets"): SecretStrategy,
    ("", "events"): CoreEventStrategy,
    ("", "replicationcontrollers"): ReplicationControllerStrategy,
    ("apps", "deployments"): DeploymentStrategy,
    ("apps", "replicasets"): ReplicaSetStrategy,
    ("batch", "jobs"): JobStrategy,
    ("apps", "statefulsets"): StatefulSetStrategy,
    ("apps", "daemonsets"): DaemonSetStrategy,
    ("apps", "controllerrevisions"): ControllerRevisionStrategy,
    ("", "persistentvolumeclaims"): PersistentVolumeClaimStrategy,
    ("", "persistentvolumes"): PersistentVolumeStrategy,
    ("storage.k8s.io", "storageclasses"): StorageClassStrategy,
    ("scheduling.k8s.io", "priorityclasses"): PriorityClassStrategy,
    ("policy", "poddisruptionbudgets"): PodDisruptionBudgetStrategy,
    ("networking.k8s.io", "networkpolicies"): NetworkPolicyStrategy,
    ("coordination.k8s.io", "leases"): LeaseStrategy,
    ("rbac.authorization.k8s.io", "roles"): RoleStrategy,
    ("rbac.authorization.k8s.io", "rolebindings"): RoleBindingStrategy,
    ("rbac.authorization.k8s.io", "clusterroles"): ClusterRoleStrategy,
    ("rbac.authorization.k8s.io", "clusterrolebindings"): ClusterRoleBindingStrategy,
    ("events.k8s.io", "events"): EventStrategy,
}


def strategy_for(rt: ResourceType) -> KindStrategy:
    """A new Strategy for `rt`: the kind's own rules, or the generic ones (KindStrategy) when it has none."""
    return _BY_RESOURCE.get((rt.group, rt.plural), KindStrategy)(rt)


__all__ = ["KindStrategy", "strategy_for"]
