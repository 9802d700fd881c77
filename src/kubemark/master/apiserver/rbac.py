"""RBAC: kube-apiserver's RBAC authorizer over Roles, ClusterRoles and their bindings, kept from the API server's
own watch caches, plus its escalation rules and bootstrap policy.

Upstream: plugin/pkg/auth/authorizer/rbac (rbac.go: VisitRulesFor, RuleAllows, appliesTo), pkg/registry/rbac
(validation/rule.go: the ConfirmNoEscalation "covers" test; escalation_check.go) and
plugin/pkg/auth/authorizer/rbac/bootstrappolicy (the roles and bindings every cluster starts with).

`RBACPolicy.allows(user, info)` visits the rules of the ClusterRoleBindings whose subjects name the user (its
name, one of its groups, or a ServiceAccount that is the user), then of the RoleBindings of the request's
namespace, and allows on the first rule that matches: verbs, API groups and resources (`*`, `pods/log`,
`*/scale`), resourceNames (the object's name, or a list/watch's exact metadata.name field selector), and for
non-resource requests nonResourceURLs (`/healthz`, `/api/*`). A binding to a role that does not exist grants
nothing. ClusterRole aggregation is followed as the aggregation controller would have written it: an
aggregated role's rules are the union of the ClusterRoles its selectors match.

`uncovered(owner_rules, rules)`: the rules a user asking to create a role or binding does not hold
themselves, each broken into one verb / group / resource / name, as upstream reports an escalation attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubemark.kube.fields import selected_name
from kubemark.kube.labels import selector_from_label_selector
from kubemark.master.apiserver.node_graph import GraphSource
from kubemark.master.apiserver.request_info import RequestInfo, UserInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"
ROLES, ROLE_BINDINGS = "roles", "rolebindings"
CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS = "clusterroles", "clusterrolebindings"
SA_PREFIX = "system:serviceaccount:"
AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


# -- rules ------------------------------------------------------------------------------------------------------


def _has(values: Iterable[str], wanted: str) -> bool:
    return any(v == "*" or v == wanted for v in values)


def _resource_matches(resources: Iterable[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in resources:
        if r == "*" or r == combined:
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _url_matches(urls: Iterable[str], path: str) -> bool:
    for url in urls:
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def request_name(info: RequestInfo) -> str:
    """The name authorization sees: the URL's, or a list/watch's exact `metadata.name` field selector."""
    if info.name:
        return info.name
    if info.verb in ("list", "watch") and info.field_selector:
        return selected_name(info.field_selector) or ""
    return ""


def rule_allows(rule: Obj, info: RequestInfo) -> bool:
    """RuleAllows."""
    verbs = rule.get("verbs") or ()
    if info.is_resource_request:
        if not _has(verbs, info.verb) or not _has(rule.get("apiGroups") or (), info.group):
            return False
        if not _resource_matches(rule.get("resources") or (), info.resource, info.subresource):
            return False
        names = rule.get("resourceNames") or ()
        return not names or request_name(info) in names
    return _has(verbs, info.verb) and _url_matches(rule.get("nonResourceURLs") or (), info.path)


# -- who a binding applies to -----------------------------------------------------------------------------------


def subject_applies(subject: Obj, user: UserInfo, binding_namespace: str) -> bool:
    """appliesToUser."""
    kind = subject.get("kind")
    name = str(subject.get("name") or "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = str(subject.get("namespace") or binding_namespace)
        return bool(namespace) and user.name == service_account_user(namespace, name)
    return False


# -- the policy -------------------------------------------------------------------------------------------------


@dataclass
class RBACPolicy:
    """The four RBAC collections as this API server's watch caches hold them."""

    roles: dict[tuple[str, str], Obj] = field(default_factory=dict)
    cluster_roles: dict[str, Obj] = field(default_factory=dict)
    role_bindings: dict[str, dict[str, Obj]] = field(default_factory=dict)  # namespace -> name -> binding
    cluster_role_bindings: dict[str, Obj] = field(default_factory=dict)

    # -- feeding (node_graph.CacheFeed) --

    def event(self, resource: str) -> Callable[[str, Obj], None]:
        def on_event(kind: str, obj: Obj) -> None:
            self._apply(resource, obj, kind != "DELETED")

        return on_event

    def replace(self, resource: str) -> Callable[[Iterable[Obj]], None]:
        def on_replace(items: Iterable[Obj]) -> None:
            if resource == ROLES:
                self.roles.clear()
            elif resource == CLUSTER_ROLES:
                self.cluster_roles.clear()
            elif resource == ROLE_BINDINGS:
                self.role_bindings.clear()
            else:
                self.cluster_role_bindings.clear()
            for obj in items:
                self._apply(resource, obj, True)

        return on_replace

    def _apply(self, resource: str, obj: Obj, present: bool) -> None:
        md = _meta(obj)
        name, namespace = str(md.get("name") or ""), str(md.get("namespace") or "")
        if resource == ROLES:
            table: dict[Any, Obj] = self.roles
            key: Any = (namespace, name)
        elif resource == CLUSTER_ROLES:
            table, key = self.cluster_roles, name
        elif resource == ROLE_BINDINGS:
            table, key = self.role_bindings.setdefault(namespace, {}), name
        else:
            table, key = self.cluster_role_bindings, name
        if present:
            table[key] = obj
        else:
            table.pop(key, None)
            if resource == ROLE_BINDINGS and not table:
                self.role_bindings.pop(namespace, None)

    # -- reading --

    def cluster_role_rules(self, name: str) -> list[Obj]:
        role = self.cluster_roles.get(name)
        if role is None:
            return []
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return list(role.get("rules") or ())
        # The aggregation controller's result: the union of the matching roles' rules (and the role's own).
        rules = list(role.get("rules") or ())
        selectors = [selector_from_label_selector(s) for s in aggregation.get("clusterRoleSelectors") or ()]
        for other_name in sorted(self.cluster_roles):
            other = self.cluster_roles[other_name]
            if other_name == name or other.get("aggregationRule"):
                continue
            labels = _meta(other).get("labels") or {}
            if any(s.matches(labels) for s in selectors):
                rules.extend(r for r in other.get("rules") or () if r not in rules)
        return rules

    def role_ref_rules(self, ref: Obj, namespace: str) -> list[Obj]:
        """GetRoleReferenceRules: a missing role grants nothing."""
        name = str(ref.get("name") or "")
        if ref.get("kind") == "ClusterRole":
            return self.cluster_role_rules(name)
        role = self.roles.get((namespace, name))
        return list(role.get("rules") or ()) if role is not None else []

    def rules_for(self, user: UserInfo, namespace: str) -> Iterator[Obj]:
        """VisitRulesFor: cluster-wide bindings first, then the namespace's."""
        for binding in self.cluster_role_bindings.values():
            if any(subject_applies(s, user, "") for s in binding.get("subjects") or ()):
                yield from self.role_ref_rules(binding.get("roleRef") or {}, "")
        if namespace:
            for binding in self.role_bindings.get(namespace, {}).values():
                if any(subject_applies(s, user, namespace) for s in binding.get("subjects") or ()):
                    yield from self.role_ref_rules(binding.get("roleRef") or {}, namespace)

    def allows(self, user: UserInfo, info: RequestInfo) -> bool:
        namespace = info.namespace if info.is_resource_request else ""
        return any(rule_allows(rule, info) for rule in self.rules_for(user, namespace))


def _source(plural: str) -> GraphSource:
    return GraphSource(GROUP, plural, lambda p: p.event(plural), lambda p: p.replace(plural))


# What feeds an RBACPolicy from the API server's watch caches (node_graph.CacheFeed).
RBAC_SOURCES = tuple(_source(p) for p in (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS))


# -- escalation -------------------------------------------------------------------------------------------------


def _atomic(rule: Obj) -> Iterator[Obj]:
    """BreakdownRule: one verb, group, resource and name (or one URL) per rule."""
    verbs = rule.get("verbs") or ()
    for group in rule.get("apiGroups") or ():
        for resource in rule.get("resources") or ():
            names = rule.get("resourceNames") or [None]
            for verb in verbs:
                for name in names:
                    atom: Obj = {"verbs": [verb], "apiGroups": [group], "resources": [resource]}
                    if name is not None:
                        atom["resourceNames"] = [name]
                    yield atom
    for url in rule.get("nonResourceURLs") or ():
        for verb in verbs:
            yield {"verbs": [verb], "nonResourceURLs": [url]}


def _covers_one(owner: Obj, atom: Obj) -> bool:
    """ruleCovers for an atomic servant rule."""
    verbs = owner.get("verbs") or ()
    if not _has(verbs, atom["verbs"][0]):
        return False
    if "nonResourceURLs" in atom:
        url = atom["nonResourceURLs"][0]
        return any(
            o == "*" or o == url or (o.endswith("*") and url.startswith(o[:-1]))
            for o in owner.get("nonResourceURLs") or ()
        )
    if not _has(owner.get("apiGroups") or (), atom["apiGroups"][0]):
        return False
    resource = atom["resources"][0]
    owned = owner.get("resources") or ()
    if not any(
        o == "*" or o == resource or (o.startswith("*/") and "/" in resource and resource.split("/", 1)[1] == o[2:])
        for o in owned
    ):
        return False
    names = owner.get("resourceNames") or ()
    return not names or (bool(atom.get("resourceNames")) and atom["resourceNames"][0] in names)


def uncovered(owner_rules: Iterable[Obj], rules: Iterable[Obj]) -> list[Obj]:
    """The atomic rules of `rules` that no rule of the owner covers (empty: no escalation)."""
    owners = list(owner_rules)
    missing: list[Obj] = []
    for rule in rules:
        for atom in _atomic(rule):
            if not any(_covers_one(o, atom) for o in owners) and atom not in missing:
                missing.append(atom)
    return missing


def _go_list(values: Iterable[str]) -> str:
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def describe_rule(rule: Obj) -> str:
    """PolicyRule's CompactString, as the escalation message lists them."""
    parts = []
    for key, label in (
        ("apiGroups", "APIGroups"),
        ("resources", "Resources"),
        ("resourceNames", "ResourceNames"),
        ("nonResourceURLs", "NonResourceURLs"),
        ("verbs", "Verbs"),
    ):
        if rule.get(key):
            parts.append(f"{label}:{_go_list(rule[key])}")
    return "{" + ", ".join(parts) + "}"


def _compact(missing: list[Obj]) -> list[Obj]:
    """CompactRules: atomic rules of one group, resource and name merged into one rule of all their verbs."""
    merged: dict[tuple[Any, ...], Obj] = {}
    for rule in missing:
        key = (
            tuple(rule.get("apiGroups") or ()),
            tuple(rule.get("resources") or ()),
            tuple(rule.get("resourceNames") or ()),
            tuple(rule.get("nonResourceURLs") or ()),
        )
        if key in merged:
            merged[key]["verbs"] = [*merged[key]["verbs"], *(v for v in rule["verbs"] if v not in merged[key]["verbs"])]
        else:
            merged[key] = {**rule, "verbs": list(rule["verbs"])}
    return list(merged.values())


def escalation_message(user: UserInfo, missing: list[Obj]) -> str:
    groups = _go_list(user.groups)
    listed = "\n".join(sorted({describe_rule(r) for r in _compact(missing)}))
    return f'user "{user.name}" (groups={groups}) is attempting to grant RBAC permissions not currently held:\n{listed}'


FULL_AUTHORITY: list[Obj] = [
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
    {"nonResourceURLs": ["*"], "verbs": ["*"]},
]

Authorize = Callable[[UserInfo, RequestInfo], bool]


def escalation_denial(
    policy: RBACPolicy, user: UserInfo, info: RequestInfo, obj: Obj, authorized: Authorize
) -> str | None:
    """The escalation check of a create or update of an RBAC object by a user who is not system:masters
    (policybased storage): None when allowed, else the reason of the 403. Roles: the user holds every rule, or may
    `escalate` roles; a ClusterRole's aggregationRule needs full authority. Bindings: the user may `bind` the
    referenced role, or holds all of its rules (KeyError when that role does not exist: 404 upstream)."""
    namespace = info.namespace
    owner = list(policy.rules_for(user, namespace))
    if info.resource in (ROLES, CLUSTER_ROLES):
        escalate = RequestInfo(
            True, info.path, "escalate", group=GROUP, namespace=namespace, resource=info.resource, name=info.name
        )
        if authorized(user, escalate):
            return None
        missing = uncovered(owner, obj.get("rules") or ())
        if missing:
            return escalation_message(user, missing)
        if info.resource == CLUSTER_ROLES and obj.get("aggregationRule") and uncovered(owner, FULL_AUTHORITY):
            return "must have cluster-admin privileges to use the aggregationRule"
        return None
    ref = obj.get("roleRef") or {}
    kind = ref.get("kind")
    plural = CLUSTER_ROLES if kind == "ClusterRole" else ROLES
    bind = RequestInfo(
        True, info.path, "bind", group=GROUP, namespace=namespace, resource=plural, name=str(ref.get("name") or "")
    )
    if authorized(user, bind):
        return None
    exists = (
        str(ref.get("name")) in policy.cluster_roles
        if kind == "ClusterRole"
        else (namespace, str(ref.get("name"))) in policy.roles
    )
    if not exists:
        raise KeyError(plural)
    missing = uncovered(owner, policy.role_ref_rules(ref, namespace))
    return escalation_message(user, missing) if missing else None


# -- bootstrap policy -------------------------------------------------------------------------------------------


def _bootstrap_meta(name: str) -> Obj:
    return {
        "name": name,
        "labels": {BOOTSTRAP_LABEL: "rbac-defaults"},
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    }


def _cluster_role(name: str, rules: list[Obj], aggregate_to: str = "") -> Obj:
    role: Obj = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": _bootstrap_meta(name), "rules": rules}
    if aggregate_to:
        role["metadata"]["labels"][f"{GROUP}/aggregate-to-{aggregate_to}"] = "true"
    return role


def _aggregated(name: str, into: str) -> Obj:
    role = _cluster_role(name, [])
    role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {f"{GROUP}/aggregate-to-{into}": "true"}}]}
    return role


def _binding(name: str, role: str, groups: Iterable[str] = (), users: Iterable[str] = ()) -> Obj:
    subjects = [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups]
    subjects += [{"apiGroup": GROUP, "kind": "User", "name": u} for u in users]
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _bootstrap_meta(name),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
# What the bootstrap `view` role reads (bootstrappolicy.ClusterRoles, aggregate-to-view), in upstream's groups.
_VIEW_RULES: list[Obj] = [
    {
        "apiGroups": [""],
        "resources": [
            "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
            "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
            "services/status", "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
            "replicationcontrollers/status", "resourcequotas", "resourcequotas/status", "namespaces",
        ],
        "verbs": _READ,
    },
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
    {
        "apiGroups": ["apps"],
        "resources": [
            "controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
            "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
            "statefulsets/scale", "statefulsets/status",
        ],
        "verbs": _READ,
    },
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], "verbs": _READ},
    {"apiGroups": ["batch"], "resources": ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], "verbs": _READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets", "poddisruptionbudgets/status"], "verbs": _READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "ingresses/status", "networkpolicies"], "verbs": _READ},
]  # fmt: skip
_EDIT_RULES: list[Obj] = [
    {"apiGroups": [""], "resources": ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], "verbs": _WRITE},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": [
            "configmaps", "events", "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale",
            "secrets", "serviceaccounts", "services", "services/proxy",
        ],
        "verbs": _WRITE,
    },
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {
        "apiGroups": ["apps"],
        "resources": [
            "daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
            "replicasets/scale", "statefulsets", "statefulsets/scale",
        ],
        "verbs": _WRITE,
    },
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _WRITE},
    {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": _WRITE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": _WRITE},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _WRITE},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": [*_READ, *_WRITE]},
]  # fmt: skip
_ADMIN_RULES: list[Obj] = [
    {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]},
    {"apiGroups": [GROUP], "resources": ["rolebindings", "roles"], "verbs": [*_READ, *_WRITE]},
]


def bootstrap_policy() -> list[tuple[str, Obj]]:
    """(resource, object) of the bootstrap ClusterRoles and ClusterRoleBindings kubemark's master serves."""
    roles = [
        _cluster_role("cluster-admin", [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ]),
        _cluster_role("system:discovery", [{
            "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
                                "/readyz", "/version", "/version/"],
            "verbs": ["get"],
        }]),
        _cluster_role("system:basic-user", [
            {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
             "verbs": ["create"]},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
        ]),
        _cluster_role("system:public-info-viewer", [
            {"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]},
        ]),
        _aggregated("admin", "admin"),
        _aggregated("edit", "edit"),
        _aggregated("view", "view"),
        _cluster_role("system:aggregate-to-admin", _ADMIN_RULES, aggregate_to="admin"),
        _cluster_role("system:aggregate-to-edit", _EDIT_RULES, aggregate_to="edit"),
        _cluster_role("system:aggregate-to-view", _VIEW_RULES, aggregate_to="view"),
    ]  # fmt: skip
    # edit holds view's rules and admin edit's (upstream: aggregate-to-edit also carries aggregate-to-admin, ...).
    roles[-2]["metadata"]["labels"][f"{GROUP}/aggregate-to-admin"] = "true"
    roles[-1]["metadata"]["labels"][f"{GROUP}/aggregate-to-edit"] = "true"
    roles[-1]["metadata"]["labels"][f"{GROUP}/aggregate-to-admin"] = "true"
    bindings = [
        _binding("cluster-admin", "cluster-admin", groups=["system:masters"]),
        _binding("system:discovery", "system:discovery", groups=["system:authenticated"]),
        _binding("system:basic-user", "system:basic-user", groups=["system:authenticated"]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            groups=["system:authenticated", "system:unauthenticated"],
        ),
    ]
    return [(CLUSTER_ROLES, r) for r in roles] + [(CLUSTER_ROLE_BINDINGS, b) for b in bindings]
