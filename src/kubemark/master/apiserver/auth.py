"""Who is calling (authentication) and may they (authorization), like kube-apiserver's authn/authz chain.

Authentication: static bearer tokens (kube-apiserver's --token-auth-file), verified x509 client
certificates (CN is the user, O the groups) and further token authenticators such as service-account JWTs
(service_account_tokens.py). Authorization: system:masters may do anything; node
identities get the Node authorizer + NodeRestriction rules (Secrets, ConfigMaps, PVCs, PVs and service
account tokens only along the `NodeGraph` of pods bound to the node); everyone authenticated gets
discovery and health paths; anonymous callers only the public-info paths.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from kubemark.kube import fields as kfields
from kubemark.master.apiserver.node_graph import (
    CONFIGMAP,
    PV,
    PVC,
    SECRET,
    SERVICE_ACCOUNT,
    VOLUME_ATTACHMENT,
    NodeGraph,
)
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


# A bearer-token authenticator beyond the static tokens (e.g. ServiceAccountTokens.authenticate): the user,
# or None when the token is not its own or not valid.
TokenAuthenticator = Callable[[str], UserInfo | None]


class Authenticator:
    """Resolve a request to a user from its bearer token or its verified client certificate.

    Bearer tokens are looked up among the static tokens first, then given to each `token_authenticators`
    entry in turn (service-account JWTs); the first user found wins.
    """

    def __init__(
        self,
        tokens: Mapping[str, UserInfo],
        *,
        allow_x509: bool = True,
        token_authenticators: Sequence[TokenAuthenticator] = (),
    ) -> None:
        # Token users always carry system:authenticated, however the mapping was built.
        self._tokens = {
            token: user
            if AUTHENTICATED_GROUP in user.groups
            else UserInfo(user.name, (*user.groups, AUTHENTICATED_GROUP))
            for token, user in tokens.items()
        }
        self._allow_x509 = allow_x509
        self._token_authenticators = tuple(token_authenticators)

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
        if not token:
            return None
        user = self._tokens.get(token)
        for authenticate in self._token_authenticators:
            if user is not None:
                break
            user = authenticate(token)
        return user


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
    (user.node_name set) follow the Node authorizer and NodeRestriction: see `_node`. Other users get
    discovery, health and self-review access only (there is no RBAC).

    `node_graph` says which Secrets, ConfigMaps, PVCs, PVs and ServiceAccounts each node's pods use. The API
    server keeps it current from its watch caches when given it (APIServerConfig.node_graph); a graph nobody
    feeds stays empty and denies every such access.
    """

    def __init__(
        self,
        *,
        superuser_groups: Iterable[str] = (MASTERS_GROUP,),
        superuser_names: Iterable[str] = (),
        node_graph: NodeGraph | None = None,
    ) -> None:
        self._superuser_groups = frozenset(superuser_groups)
        self._superuser_names = frozenset(superuser_names)
        self.node_graph = node_graph if node_graph is not None else NodeGraph()

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
            return _node(node, info, self.node_graph)
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
        if info.resource == "serviceaccounts" and info.subresource == "token" and obj.get("kind") == "TokenRequest":
            return self._token_request(node, info, obj)
        return None

    def _token_request(self, node: str, info: RequestInfo, request: Mapping[str, Any]) -> str | None:
        """NodeRestriction for a TokenRequest body: bound to a pod of this node that runs as that account."""
        ref = (request.get("spec") or {}).get("boundObjectRef") or {}
        if ref.get("kind") != "Pod" or not ref.get("name"):
            return f'node "{node}" requested a token not bound to a pod'
        bound = self.node_graph.pod_binding(info.namespace, ref["name"])
        if bound is None or bound[0] != node:
            return f'node "{node}" can only request tokens for pods bound to itself'
        if ref.get("uid") and ref["uid"] != bound[1]:
            return f'node "{node}" requested a token for pod "{ref["name"]}" with a stale uid'
        if not self.node_graph.pod_uses(info.namespace, ref["name"], SERVICE_ACCOUNT, info.name):
            return f'node "{node}" requested a token for a service account pod "{ref["name"]}" does not run as'
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


# What every node may read (get, list, watch) whatever its pods. Secrets, ConfigMaps, PVCs, PVs and
# VolumeAttachments are not here: the graph decides them (`_GRAPH_RESOURCES`).
_NODE_READ = frozenset(
    {
        ("", "nodes"),
        ("", "pods"),
        ("", "services"),
        ("", "endpoints"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "csidrivers"),
        ("node.k8s.io", "runtimeclasses"),
        ("certificates.k8s.io", "certificatesigningrequests"),
    }
)
# Resources a node may touch only along the graph, as the graph's vertex kind.
_GRAPH_RESOURCES = {
    ("", "secrets"): SECRET,
    ("", "configmaps"): CONFIGMAP,
    ("", "persistentvolumeclaims"): PVC,
    ("", "persistentvolumes"): PV,
    ("", "serviceaccounts"): SERVICE_ACCOUNT,
    ("storage.k8s.io", "volumeattachments"): VOLUME_ATTACHMENT,
}
_EVENT_GROUPS = frozenset({"", "events.k8s.io"})
_WRITE_OWN = frozenset({"update", "patch", "delete"})


def _node(node: str, info: RequestInfo, graph: NodeGraph) -> str | None:
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
    kind = _GRAPH_RESOURCES.get((group, resource))
    if kind is not None:
        return _node_graph_access(node, kind, info, graph)
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


def _node_graph_access(node: str, kind: str, info: RequestInfo, graph: NodeGraph) -> str | None:
    """Upstream NodeAuthorizer's authorizeReadNamespacedObject / authorizeGet / authorizeStatusUpdate /
    authorizeCreateToken, with its reasons."""
    verb, sub = info.verb, info.subresource
    if kind in (SECRET, CONFIGMAP):
        # get, and list/watch of a single object by `fieldSelector=metadata.name=<name>` (kubelet's
        # watch-based secret and configmap managers); never a whole collection.
        if verb not in _READ_VERBS:
            return "can only read resources of this type"
        if sub:
            return "cannot read subresource"
        if not info.namespace:
            return "can only read namespaced object of this type"
        return _related(node, kind, info.namespace, info.name or selected_name(info.field_selector), graph)
    if kind == SERVICE_ACCOUNT:
        if verb != "create" or not info.name:
            return "can only create tokens for individual service accounts"
        if sub != "token":
            return "can only create token subresource of serviceaccount"
        return _related(node, kind, info.namespace, info.name, graph)
    if kind == PVC and sub == "status":
        if verb not in ("update", "patch"):
            return "can only get/update/patch this type"
        return _related(node, kind, info.namespace, info.name, graph)
    if verb != "get":
        return "can only get individual resources of this type"
    if sub:
        return "cannot get subresource"
    return _related(node, kind, info.namespace, info.name, graph)


def _related(node: str, kind: str, namespace: str, name: str, graph: NodeGraph) -> str | None:
    if not name:
        return "No Object name found"
    if graph.allows(node, kind, namespace, name):
        return None
    return f"no relationship found between node '{node}' and this object"


def selected_name(field_selector: str) -> str:
    """The name an exact `metadata.name=<name>` term of a field selector requires, else "" (as upstream's
    RequestInfoFactory takes a list/watch's name from it, when it is a valid path segment)."""
    if "metadata.name" not in field_selector:
        return ""
    if field_selector.startswith("metadata.name=") and not ("," in field_selector or "\\" in field_selector):
        name: str | None = field_selector[len("metadata.name=") :].removeprefix("=")  # the kubelet's form
    else:
        try:
            name = kfields.parse_field_selector(field_selector).value_for("metadata.name")
        except kfields.FieldSelectorError:
            return ""
    if not name or name in (".", "..") or "/" in name or "%" in name:
        return ""
    return name
