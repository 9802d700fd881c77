"""NetworkPolicy rules (networking.k8s.io/v1).

Upstream: SetDefaults_NetworkPolicy (policyTypes [Ingress], plus Egress when egress rules exist) and
SetDefaults_NetworkPolicyPort (protocol TCP), ValidateNetworkPolicy (pkg/apis/networking/validation): selectors,
ports (number or name, endPort), peers (selectors or an ipBlock with valid CIDRs) and policy types. Nothing
enforces a policy here (no network plugin runs on hollow nodes); they are stored and watched like upstream.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from kubemark.kube import meta
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field, podspec
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.kinds.policy import validate_selector
from kubemark.master.apiserver.strategy import Obj

POLICY_TYPES = ("Egress", "Ingress")
_RULES = (("ingress", "from"), ("egress", "to"))


def default_network_policy(spec: Obj) -> None:
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for rules_key, _ in _RULES:
        for rule in spec.get(rules_key) or ():
            if isinstance(rule, dict):
                for port in rule.get("ports") or ():
                    if isinstance(port, dict):
                        port.setdefault("protocol", "TCP")


def _validate_port(port: Any, path: str) -> list[Cause]:
    if not isinstance(port, dict):
        return [field.invalid(path, port, "must be an object")]
    causes: list[Cause] = []
    protocol = port.get("protocol")
    if protocol not in podspec.PROTOCOLS:
        causes.append(field.not_supported(f"{path}.protocol", protocol, podspec.PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if isinstance(number, int) and not isinstance(number, bool):
        if not 1 <= number <= 65535:
            causes.append(field.invalid(f"{path}.port", number, "must be between 1 and 65535, inclusive"))
        if end is not None:
            if not isinstance(end, int) or not 1 <= end <= 65535:
                causes.append(field.invalid(f"{path}.endPort", end, "must be between 1 and 65535, inclusive"))
            elif end < number:
                causes.append(field.invalid(f"{path}.endPort", end, "must be greater than or equal to `port`"))
    elif isinstance(number, str):
        causes += [field.invalid(f"{path}.port", number, m) for m in meta.validate_dns1123_label(number.lower())]
        if end is not None:
            causes.append(field.forbidden(f"{path}.endPort", "may not be specified when `port` is non-numeric"))
    elif number is None and end is not None:
        causes.append(field.required(f"{path}.port", "must specify `port` when `endPort` is set"))
    elif number is not None:
        causes.append(field.invalid(f"{path}.port", number, "must be an integer or a port name"))
    return causes


def _validate_cidr(value: Any, path: str) -> list[Cause]:
    if not isinstance(value, str) or not value:
        return [field.required(path)]
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [field.invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


def _validate_peer(peer: Any, path: str) -> list[Cause]:
    if not isinstance(peer, dict):
        return [field.invalid(path, peer, "must be an object")]
    causes: list[Cause] = []
    selectors = [k for k in ("podSelector", "namespaceSelector") if peer.get(k) is not None]
    block = peer.get("ipBlock")
    if block is not None and selectors:
        causes.append(field.forbidden(path, "may not specify both ipBlock and another peer"))
    elif block is None and not selectors:
        causes.append(field.required(path, "must specify a peer"))
    for key in selectors:
        causes += validate_selector(peer[key], f"{path}.{key}")
    if isinstance(block, dict):
        causes += _validate_cidr(block.get("cidr"), f"{path}.ipBlock.cidr")
        if not causes:
            outer = ipaddress.ip_network(block["cidr"], strict=False)
            for i, item in enumerate(block.get("except") or ()):
                sub = f"{path}.ipBlock.except[{i}]"
                bad = _validate_cidr(item, sub)
                if bad:
                    causes += bad
                    continue
                inner = ipaddress.ip_network(item, strict=False)
                if inner.version != outer.version or not inner.subnet_of(outer) or inner == outer:  # type: ignore[arg-type]
                    causes.append(field.invalid(sub, item, "must be a strict subset of `cidr`"))
    elif block is not None:
        causes.append(field.invalid(f"{path}.ipBlock", block, "must be an object"))
    return causes


def validate_network_policy(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes = validate_selector(spec.get("podSelector"), "spec.podSelector")
    for rules_key, peers_key in _RULES:
        rules = spec.get(rules_key) or []
        if not isinstance(rules, list):
            causes.append(field.invalid(f"spec.{rules_key}", rules, "must be a list of rules"))
            continue
        for i, rule in enumerate(rules):
            path = f"spec.{rules_key}[{i}]"
            if not isinstance(rule, dict):
                causes.append(field.invalid(path, rule, "must be an object"))
                continue
            for j, port in enumerate(rule.get("ports") or ()):
                causes += _validate_port(port, f"{path}.ports[{j}]")
            for j, peer in enumerate(rule.get(peers_key) or ()):
                causes += _validate_peer(peer, f"{path}.{peers_key}[{j}]")
    types = spec.get("policyTypes") or []
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            causes.append(field.not_supported(f"spec.policyTypes[{i}]", kind, POLICY_TYPES))
    if len(types) > len(POLICY_TYPES):
        causes.append(field.invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
    return causes


@dataclass
class NetworkPolicyStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_network_policy(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_network_policy(obj.get("spec"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            default_network_policy(new["spec"])

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_network_policy(new.get("spec"))
