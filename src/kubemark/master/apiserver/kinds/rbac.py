"""Roles, ClusterRoles, RoleBindings and ClusterRoleBindings (rbac.authorization.k8s.io/v1): their validation
and defaults.

Upstream: pkg/apis/rbac/validation (ValidatePolicyRule, ValidateRoleBinding[Subject], the immutable roleRef),
pkg/apis/rbac/v1/defaults.go (a User or Group subject's apiGroup defaults to rbac.authorization.k8s.io; a
binding's roleRef apiGroup too) and pkg/registry/rbac/*/strategy.go (no status; create-on-update allowed).
Who may write them without holding what they grant is the API server's escalation check (apiserver/rbac.py,
applied by the REST handler, which knows the user).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.rbac import GROUP
from kubemark.master.apiserver.strategy import Obj
from kubemark.master.apiserver.validation import path_segment_name_errors

__all__ = ["ClusterRoleBindingStrategy", "ClusterRoleStrategy", "RoleBindingStrategy", "RoleStrategy"]

_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def validate_rule(rule: Any, namespaced: bool, path: str) -> list[Cause]:
    if not isinstance(rule, dict):
        return [field.invalid(path, rule, "must be an object")]
    causes: list[Cause] = []
    if not _list(rule.get("verbs")):
        causes.append(field.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = _list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            causes.append(
                field.invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
            )
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(
                field.invalid(
                    f"{path}.nonResourceURLs",
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return causes
    if not _list(rule.get("apiGroups")):
        causes.append(field.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not _list(rule.get("resources")):
        causes.append(field.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


def _validate_role(obj: Obj, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    rules = obj.get("rules")
    if rules is not None and not isinstance(rules, list):
        return [field.invalid("rules", rules, "must be a list")]
    for i, rule in enumerate(rules or ()):
        causes += validate_rule(rule, namespaced, f"rules[{i}]")
    aggregation = obj.get("aggregationRule")
    if not namespaced and aggregation is not None:
        selectors = _list((aggregation or {}).get("clusterRoleSelectors"))
        if not selectors:
            causes.append(
                field.required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
    return causes


def _validate_binding(obj: Obj, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        ref = {}
    if ref.get("apiGroup") != GROUP:
        causes.append(field.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        causes.append(field.not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    name = ref.get("name") or ""
    if not name:
        causes.append(field.required("roleRef.name"))
    else:
        causes += [field.invalid("roleRef.name", name, m) for m in path_segment_name_errors(str(name))]
    for i, subject in enumerate(_list(obj.get("subjects"))):
        causes += validate_subject(subject, namespaced, f"subjects[{i}]")
    return causes


def validate_subject(subject: Any, namespaced: bool, path: str) -> list[Cause]:
    if not isinstance(subject, dict):
        return [field.invalid(path, subject, "must be an object")]
    causes: list[Cause] = []
    name = subject.get("name") or ""
    if not name:
        causes.append(field.required(f"{path}.name"))
    kind, group = subject.get("kind"), subject.get("apiGroup") or ""
    if kind == "ServiceAccount":
        if name:
            causes += field.dns1123_subdomain(f"{path}.name", name)
        if group:
            causes.append(field.not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            causes.append(field.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(field.not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        causes.append(field.not_supported(f"{path}.kind", kind or "", _SUBJECT_KINDS))
    return causes


def _default_binding(obj: Obj) -> None:
    """SetDefaults_Subject / SetDefaults_RoleBinding (v1)."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in _list(obj.get("subjects")):
        if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = GROUP


@dataclass
class _RBACStrategy(KindStrategy):
    namespaced_rules: bool = False
    binding: bool = False

    def prepare_for_create(self, obj: Obj) -> None:
        if self.binding:
            _default_binding(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if self.binding:
            _default_binding(new)

    def validate(self, obj: Obj) -> list[Cause]:
        if self.binding:
            return _validate_binding(obj, self.namespaced_rules)
        return _validate_role(obj, self.namespaced_rules)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if self.binding and new.get("roleRef") != old.get("roleRef"):
            causes.append(field.invalid("roleRef", new.get("roleRef"), "cannot change roleRef"))
        return causes

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return False


@dataclass
class RoleStrategy(_RBACStrategy):
    def __post_init__(self) -> None:
        self.namespaced_rules = True


@dataclass
class ClusterRoleStrategy(_RBACStrategy):
    pass


@dataclass
class RoleBindingStrategy(_RBACStrategy):
    def __post_init__(self) -> None:
        self.namespaced_rules, self.binding = True, True


@dataclass
class ClusterRoleBindingStrategy(_RBACStrategy):
    def __post_init__(self) -> None:
        self.binding = True
