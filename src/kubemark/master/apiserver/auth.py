"""Who is calling (authentication) and may they (authorization), like kube-apiserver's authn/authz chain.

Authentication: static bearer tokens (kube-apiserver's --token-auth-file) and verified x509 client
certificates (CN is the user, O the groups). Authorization: system:masters may do anything; node
identities get the Node authorizer + NodeRestriction rules, approximately; everyone authenticated gets
discovery and health paths; anonymous callers only the public-info paths.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from kubemark.master.apiserver.request_info import RequestInfo, UserInfo

log = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
MASTERS_GROUP = "system:masters"
ANONYMOUS = UserInfo("system:anonymous", (UNAUTHENTICATED_GROUP,))

# system:public-info-viewer: readable without credentials.
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})
# system:discovery (+ health): readable by every authenticated user. /metrics is deliberately absent.
_DISCOVERY_PREFIXES = ("/api", "/apis", "/openapi/", "/healthz/", "/livez/", "/readyz/")
_DISCOVERY_PATHS = frozenset({"/api", "/api/", "/apis", "/apis/", "/openapi/v2", "/openapi/v3"})

_READ_VERBS = frozenset({"get", "list", "watch"})
NODE_LEASE_NAMESPACE = "kube-node-lease"


def user_from_peercert(peercert: Mapping[str, Any] | None) -> UserInfo | None:
    """Map a verified certificate (ssl.getpeercert() form) to a user: CN → name, every O → a group."""
    if not peercert:
        return None
    name = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    if not name:
        return None
    groups.append(AUTHENTICATED_GROUP)
    return UserInfo(name, tuple(groups))


def load_token_file(path: Path) -> dict[str, UserInfo]:
    """Read kube-apiserver's static token CSV: token,user,uid[,"group1,group2"] (uid is not kept)."""
    tokens: dict[str, UserInfo] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 3:
                raise ValueError(f"{path}:{lineno}: expected token,user,uid[,groups], got {len(row)} fields")
            token, user = row[0].strip(), row[1].strip()
            groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
            groups.append(AUTHENTICATED_GROUP)
            tokens[token] = UserInfo(user, tuple(dict.fromkeys(groups)))
    return tokens


class Authenticator:
    """Resolve a request to a user from its bearer token or its verified client certificate."""

    def __init__(self, tokens: Mapping[str, UserInfo], *, allow_x509: bool = True) -> None:
        # Token users always carry system:authenticated, however the mapping was built.
        self._tokens = {
            token: user
            if AUTHENTICATED_GROUP in user.groups
            else UserInfo(user.name, (*user.groups, AUTHENTICATED_GROUP))
            for token, user in tokens.items()
        }
        self._allow_x509 = allow_x509

    def has_credentials(self, request: web.Request) -> bool:
        """Whether the request presents any credential (a bad one must give 401, never anonymous access)."""
        if "Authorization" in request.headers:
            return True
        return self._allow_x509 and bool(_peercert(request))

    def authenticate(self, request: web.Request) -> UserInfo | None:
        """The caller, or None if it presented no valid credential."""
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer":
                return None
            return self._lookup_token(token.strip())
        if self._allow_x509:
            return user_from_peercert(_peercert(request))
        return None

    def _lookup_token(self, token: str) -> UserInfo | None:
        return self._tokens.get(token) if token else None


def _peercert(request: web.Request) -> Mapping[str, Any] | None:
    transport = request.transport
    if transport is None:
        return None
    return transport.get_extra_info("peercert")


def is_public_path(info: RequestInfo) -> bool:
    return not info.is_resource_request and info.path in PUBLIC_PATHS


class Authorizer:
    """Decide whether a user may perform a request: None means allowed, a string is the denial reason.

    `superuser_groups` / `superuser_names` may do anything (system:masters by default). Node identities
    (user.node_name set) follow the Node authorizer and NodeRestriction, approximately: see `_node`.
    Other users get discovery, health and self-review access only (there is no RBAC).
    """

    def __init__(
        self,
        *,
        superuser_groups: Iterable[str] = (MASTERS_GROUP,),
        superuser_names: Iterable[str] = (),
    ) -> None:
        self._superuser_groups = frozenset(superuser_groups)
        self._superuser_names = frozenset(superuser_names)

    def is_superuser(self, user: UserInfo) -> bool:
        return user.name in self._superuser_names or not self._superuser_groups.isdisjoint(user.groups)

    def authorize(self, user: UserInfo, info: RequestInfo) -> str | None:
        if self.is_superuser(user):
            return None
        if not info.is_resource_request:
            return _non_resource(user, info)
        if _self_review(info):
            return None
        node = user.node_name
        if node is not None:
            return _node(node, info)
        return "no RBAC policy matched"

    def authorize_object(self, user: UserInfo, info: RequestInfo, obj: Mapping[str, Any] | None) -> str | None:
        """Object-level checks the request line alone cannot decide (the NodeRestriction admission part).

        The REST handler calls this for writes by node identities, with the object being written (for
        create) or the stored object (for update/patch/delete of pods). Always None for other users.
        """
        node = user.node_name
        if node is None or self.is_superuser(user) or obj is None or info.verb in _READ_VERBS:
            return None
        metadata = obj.get("metadata") or {}
        if info.group == "" and info.resource == "pods":
            bound = (obj.get("spec") or {}).get("nodeName") or ""
            if bound != node:
                return f'node "{node}" can only modify pods bound to itself, not to "{bound}"'
            return None
        if info.group == "" and info.resource == "nodes" and info.verb == "create":
            if metadata.get("name") != node:
                return f'node "{node}" is not allowed to modify node "{metadata.get("name", "")}"'
            return None
        if info.group == "coordination.k8s.io" and info.resource == "leases" and info.verb == "create":
            if metadata.get("name") != node:
                return f'node "{node}" is not allowed to modify lease "{metadata.get("name", "")}"'
            return None
        return None


def _non_resource(user: UserInfo, info: RequestInfo) -> str | None:
    if info.path in PUBLIC_PATHS:
        return None
    if AUTHENTICATED_GROUP not in user.groups:
        return "anonymous access is limited to public paths"
    if info.verb in ("get", "head") and (info.path in _DISCOVERY_PATHS or info.path.startswith(_DISCOVERY_PREFIXES)):
        return None
    return "no RBAC policy matched"


def _self_review(info: RequestInfo) -> bool:
    """system:basic-user: anyone may ask what they themselves may do, or who they are."""
    if info.verb != "create":
        return False
    if info.group == "authorization.k8s.io":
        return info.resource in ("selfsubjectaccessreviews", "selfsubjectrulesreviews")
    return info.group == "authentication.k8s.io" and info.resource == "selfsubjectreviews"


# What every node may read. Upstream limits secrets/configmaps/PVCs to those its pods reference (a graph
# of pod → object edges); we allow all reads of them, which is looser but shape-compatible.
_NODE_READ = frozenset(
    {
        ("", "nodes"),
        ("", "pods"),
        ("", "services"),
        ("", "endpoints"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "persistentvolumes"),
        ("", "persistentvolumeclaims"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "csidrivers"),
        ("storage.k8s.io", "volumeattachments"),
        ("node.k8s.io", "runtimeclasses"),
        ("certificates.k8s.io", "certificatesigningrequests"),
    }
)
_EVENT_GROUPS = frozenset({"", "events.k8s.io"})
_WRITE_OWN = frozenset({"update", "patch", "delete"})


def _node(node: str, info: RequestInfo) -> str | None:
    """The Node authorizer with NodeRestriction folded in (object-level parts are in authorize_object)."""
    group, resource, sub, verb = info.group, info.resource, info.subresource, info.verb
    if group == "coordination.k8s.io" and resource == "leases":
        if info.namespace != NODE_LEASE_NAMESPACE:
            return f'node "{node}" can only access leases in namespace "{NODE_LEASE_NAMESPACE}"'
        if verb in ("create", "list", "watch") or info.name == node:
            return None  # create is checked by name in authorize_object
        return f'node "{node}" can only access its own lease'
    if verb in _READ_VERBS and not sub and (group, resource) in _NODE_READ:
        return None
    if group == "" and resource == "nodes":
        if verb == "create" and not sub:
            return None  # the name is checked in authorize_object
        if info.name == node and (verb in _WRITE_OWN or (sub == "status" and verb in ("get", "update", "patch"))):
            return None
        return f'node "{node}" is not allowed to modify node "{info.name}"'
    if group == "" and resource == "pods":
        if sub == "status" and verb in ("get", "update", "patch"):
            return None  # bound-to-this-node is checked in authorize_object
        if not sub and verb == "delete":
            return None
        if verb == "create" and sub == "eviction":
            return None
        if verb == "create" and not sub:
            return f'node "{node}" can only create mirror pods, which kubemark does not support'
        return f'node "{node}" cannot {verb} pods'
    if resource == "events" and group in _EVENT_GROUPS and verb in ("create", "update", "patch"):
        return None
    if group == "certificates.k8s.io" and resource == "certificatesigningrequests" and verb == "create":
        return None
    if group == "authentication.k8s.io" and resource == "tokenreviews" and verb == "create":
        return None
    if group == "authorization.k8s.io" and resource == "subjectaccessreviews" and verb == "create":
        return None
    return f'node "{node}" cannot {verb} {resource}'
