"""Who is calling (authentication) and may they (authorization), like kube-apiserver's authn/authz chain.

Authentication: static bearer tokens (kube-apiserver's --token-auth-file), verified x509 client
certificates (CN is the user, O the groups) and further token authenticators such as service-account JWTs
(service_account_tokens.py). Authorization: system:masters may do anything; node
identities get what kube-apiserver 1.34-1.37 with --authorization-mode=Node,RBAC and NodeRestriction gives them
(the Node authorizer with AuthorizeNodeWithSelectors: their own Node, pods bound to them, Secrets, ConfigMaps,
PVCs, PVs, ServiceAccounts and their tokens only along the `NodeGraph` of those pods, their own
PodCertificateRequests; see `_node`); system:kube-proxy what the ClusterRole system:node-proxier grants; everyone
authenticated gets discovery and health paths; anonymous callers only the public-info paths. Denials where
upstream's RBAC gives no reason give none either (""), so the 403 reads as kube-apiserver's.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from kubemark.kube import fields as kfields
from kubemark.kube.fields import selected_name
from kubemark.master.apiserver.node_graph import (
    CONFIGMAP,
    POD_CERTIFICATE_REQUEST,
    PV,
    PVC,
    SECRET,
    SERVICE_ACCOUNT,
    VOLUME_ATTACHMENT,
    NodeGraph,
)
from kubemark.master.apiserver.rbac import GROUP as RBAC_GROUP
from kubemark.master.apiserver.rbac import RBACPolicy, escalation_denial
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
KUBE_PROXY_USER = "system:kube-proxy"  # the subject of the bootstrap ClusterRoleBinding system:node-proxier


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
    (user.node_name set) follow the Node authorizer and NodeRestriction: see `_node`. system:kube-proxy gets
    the bootstrap ClusterRole system:node-proxier. Everyone authenticated gets discovery, health and self-review.
    What these deny, RBAC may still allow (`rbac`, an `RBACPolicy` the API server keeps from its watch caches:
    kube-apiserver's --authorization-mode=Node,RBAC); a request neither allows keeps the first denial's reason,
    none ("") where upstream's RBAC gives none.

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
        rbac: RBACPolicy | None = None,
    ) -> None:
        self._superuser_groups = frozenset(superuser_groups)
        self._superuser_names = frozenset(superuser_names)
        self.node_graph = node_graph if node_graph is not None else NodeGraph()
        self.rbac = rbac if rbac is not None else RBACPolicy()

    def is_superuser(self, user: UserInfo) -> bool:
        return user.name in self._superuser_names or not self._superuser_groups.isdisjoint(user.groups)

    def authorize(self, user: UserInfo, info: RequestInfo) -> str | None:
        if self.is_superuser(user):
            return None
        reason = self._static(user, info)
        if reason is None or not self.rbac.allows(user, info):
            return reason
        return None

    def _static(self, user: UserInfo, info: RequestInfo) -> str | None:
        """The rules that need no policy objects: the Node authorizer, kube-proxy's and everyone's."""
        if not info.is_resource_request:
            return _non_resource(user, info)
        if _self_review(info):
            return None
        node = user.node_name
        if node is not None:
            return _node(node, info, self.node_graph)
        if user.name == KUBE_PROXY_USER:
            return _node_proxier(info)
        return ""  # as RBAC denies: kube-apiserver's 403 message carries no reason

    def authorize_rbac_write(self, user: UserInfo, info: RequestInfo, obj: Mapping[str, Any]) -> str | None:
        """RBAC's escalation check for a create or update of a role or binding (`obj` as it would be stored):
        None when allowed; KeyError when the binding's role does not exist and the user may not bind it."""
        if info.group != RBAC_GROUP or self.is_superuser(user) or MASTERS_GROUP in user.groups:
            return None
        return escalation_denial(self.rbac, user, info, dict(obj), lambda u, i: self.authorize(u, i) is None)

    def authorize_object(self, user: UserInfo, info: RequestInfo, obj: Mapping[str, Any] | None) -> str | None:
        """Object-level checks the request line alone cannot decide (the NodeRestriction admission part).

        The REST handler calls this for writes by node identities, with the object being written (for
        create, and TokenRequests) or the stored object (update/patch/delete). Always None for other users.
        """
        node = user.node_name
        if node is None or self.is_superuser(user) or obj is None or info.verb in _READ_VERBS:
            return None
        metadata = obj.get("metadata") or {}
        if info.group == "" and info.resource == "pods":
            bound = (obj.get("spec") or {}).get("nodeName") or ""
            if bound == node:
                return None
            if info.subresource == "status":
                return f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
            if info.subresource == "eviction":
                return f"node {node} can only evict pods with spec.nodeName set to itself"
            if info.verb == "delete":
                return f'node "{node}" can only delete pods with spec.nodeName set to itself'
            return f'node "{node}" can only modify pods bound to itself, not to "{bound}"'
        if info.group == "" and info.resource == "nodes" and info.verb == "create":
            if metadata.get("name") != node:
                return f'node "{node}" is not allowed to modify node "{metadata.get("name", "")}"'
            return None
        if info.verb == "create" and (info.group, info.resource) in _OWN_NAMED:
            if metadata.get("name") != node:
                return _OWN_NAMED[(info.group, info.resource)]
            return None
        if info.resource == "serviceaccounts" and info.subresource == "token" and obj.get("kind") == "TokenRequest":
            return self._token_request(node, info, obj)
        if info.group == "certificates.k8s.io" and info.resource == "podcertificaterequests" and info.verb == "create":
            return self._pod_certificate_request(node, info, obj)
        return None

    def _pod_certificate_request(self, node: str, info: RequestInfo, request: Mapping[str, Any]) -> str | None:
        """NodeRestriction's admitPodCertificateRequest, its Forbidden parts that need no other reads: the
        request names this node and a pod bound to it (by uid when given), as upstream words them."""
        spec = request.get("spec") or {}
        named = str(spec.get("nodeName") or "")
        if named != node:
            requester = _go_quote(node)
            return (
                f"PodCertificateRequest.Spec.NodeName={_go_quote(named)}, which is not the requesting node {requester}"
            )
        pod_name = str(spec.get("podName") or "")
        bound = self.node_graph.pod_binding(info.namespace, pod_name)
        if bound is None or bound[0] != node:
            pod = _go_quote(f"{info.namespace}/{pod_name}")
            return f"pod {pod} is not running on node {_go_quote(node)} named in the PodCertificateRequest"
        return None

    def _token_request(self, node: str, info: RequestInfo, request: Mapping[str, Any]) -> str | None:
        """NodeRestriction's admitServiceAccount for a TokenRequest body, in its words: bound (apiVersion v1,
        kind Pod, name and uid) to a pod of this node, which runs as that account."""
        ref = (request.get("spec") or {}).get("boundObjectRef") or {}
        if ref.get("kind") != "Pod" or ref.get("apiVersion") != "v1" or not ref.get("name"):
            return "node requested token not bound to a pod"
        if not ref.get("uid"):
            return "node requested token with a pod binding without a uid"
        bound = self.node_graph.pod_binding(info.namespace, ref["name"])
        if bound is None or bound[0] != node:
            return "node requested token bound to a pod scheduled on a different node"
        if ref["uid"] != bound[1]:
            return (
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated"
            )
        if not self.node_graph.pod_uses(info.namespace, ref["name"], SERVICE_ACCOUNT, info.name):
            # Upstream's TokenRequest storage refuses this for everyone (400); kubemark's node check does.
            return f'node "{node}" requested a token for a service account pod "{ref["name"]}" does not run as'
        return None


def _non_resource(user: UserInfo, info: RequestInfo) -> str | None:
    if info.path in PUBLIC_PATHS:
        return None
    if AUTHENTICATED_GROUP not in user.groups:
        return "anonymous access is limited to public paths"
    if info.verb in ("get", "head") and (info.path in _DISCOVERY_PATHS or info.path.startswith(_DISCOVERY_PREFIXES)):
        return None
    return ""


def _self_review(info: RequestInfo) -> bool:
    """system:basic-user: anyone may ask what they themselves may do, or who they are."""
    if info.verb != "create":
        return False
    if info.group == "authorization.k8s.io":
        return info.resource in ("selfsubjectaccessreviews", "selfsubjectrulesreviews")
    return info.group == "authentication.k8s.io" and info.resource == "selfsubjectreviews"


# Requests the Node authorizer does not subdivide, allowed by its static rules (bootstrappolicy.NodeRules(),
# Kubernetes 1.34-1.36 defaults) as (group, resource[/subresource], verb). The RBAC ClusterRole system:node holds
# the same rules, but its bootstrap ClusterRoleBinding has no subjects (since 1.8, with --authorization-mode=
# Node,RBAC), so RBAC grants nodes nothing beyond system:discovery, system:basic-user and
# system:public-info-viewer: a request neither allows is denied without a reason (""), as upstream words it.
_NODE_RULES = frozenset(
    [("authentication.k8s.io", "tokenreviews", "create")]
    + [("authorization.k8s.io", r, "create") for r in ("subjectaccessreviews", "localsubjectaccessreviews")]
    + [("", "services", v) for v in ("get", "list", "watch")]  # the kubelet's service env vars
    + [("", "events", v) for v in ("create", "update", "patch")]  # core events only, not events.k8s.io
    + [("", "endpoints", "get")]  # glusterfs volumes; no list or watch
    + [("certificates.k8s.io", "certificatesigningrequests", v) for v in ("create", "get", "list", "watch")]
    + [("storage.k8s.io", "csidrivers", v) for v in ("get", "list", "watch")]  # kubelet's CSI volume plugin
    + [("node.k8s.io", "runtimeclasses", v) for v in ("get", "list", "watch")]  # kubelet's RuntimeClass manager
    # Not upstream: the hollow kube-proxy reads EndpointSlices and ServiceCIDRs as its node when the launcher
    # gives it no identity of its own (the embedded master); upstream's kube-proxy is system:kube-proxy
    # (ClusterRole system:node-proxier, `_NODE_PROXIER_RULES`), and a node identity may not list them.
    + [("discovery.k8s.io", "endpointslices", v) for v in ("list", "watch")]
    + [("networking.k8s.io", "servicecidrs", v) for v in ("list", "watch")]
)
# The bootstrap ClusterRole system:node-proxier (bound to the user system:kube-proxy), Kubernetes 1.37 defaults.
_NODE_PROXIER_RULES = frozenset(
    [("", r, v) for r in ("services", "endpoints") for v in ("list", "watch")]
    + [("", "nodes", v) for v in ("get", "list", "watch")]
    + [(g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "update", "patch")]
    + [("networking.k8s.io", "servicecidrs", v) for v in ("list", "watch")]  # MultiCIDRServiceAllocator, GA
    + [("discovery.k8s.io", "endpointslices", v) for v in ("list", "watch")]
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
# What authorizeLease / authorizeCSINode let a node do to its own object.
_OWN_OBJECT_VERBS = frozenset({"get", "create", "update", "patch", "delete"})
_NODE_WRITES = frozenset({"update", "patch"})
_LIST_VERBS = frozenset({"list", "watch"})
# NodeRestriction's name check on create of a node's own object, with its reason.
_OWN_NAMED = {
    ("coordination.k8s.io", "leases"): "can only access node lease with the same name as the requesting node",
    ("storage.k8s.io", "csinodes"): "can only access CSINode with the same name as the requesting node",
}


def _node(node: str, info: RequestInfo, graph: NodeGraph) -> str | None:
    """Upstream's Node authorizer (AuthorizeNodeWithSelectors, locked on since 1.34) with the request-line parts
    of NodeRestriction; the object-level parts are in Authorizer.authorize_object. "" denies without a reason
    (the Node authorizer's NoOpinion that no other authorizer overrules). Constant time: a few dict and set
    lookups, and for list/watch of pods and nodes one look at the field selector."""
    group, resource = info.group, info.resource
    if group == "coordination.k8s.io":
        if resource == "leases":  # first: every node renews its lease every 10 s
            return _node_lease(node, info)
    elif group == "":
        if resource == "pods":
            return _node_pod(node, info, graph)
        if resource == "nodes":
            return _node_node(node, info)
    kind = _GRAPH_RESOURCES.get((group, resource))
    if kind is not None:
        return _node_graph_access(node, kind, info, graph)
    if group == "storage.k8s.io" and resource == "csinodes":
        return _node_csinode(node, info)
    if group == "certificates.k8s.io" and resource == "podcertificaterequests":
        return _node_pod_certificate_request(node, info, graph)
    full = f"{resource}/{info.subresource}" if info.subresource else resource
    return None if (group, full, info.verb) in _NODE_RULES else ""


def _node_lease(node: str, info: RequestInfo) -> str | None:
    """authorizeLease: get/create/update/patch/delete of its own Lease in kube-node-lease; no list or watch."""
    verb = info.verb
    if verb not in _OWN_OBJECT_VERBS:
        return "can only get, create, update, patch, or delete a node lease"
    if info.namespace != NODE_LEASE_NAMESPACE:
        return f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
    if verb != "create" and info.name != node:  # create: the name is checked in authorize_object
        return "can only access node lease with the same name as the requesting node"
    return None


def _node_csinode(node: str, info: RequestInfo) -> str | None:
    """authorizeCSINode: like the lease, its own CSINode only."""
    verb = info.verb
    if verb not in _OWN_OBJECT_VERBS:
        return "can only get, create, update, patch, or delete a CSINode"
    if info.subresource:
        return "cannot authorize CSINode subresources"
    if verb != "create" and info.name != node:  # create: the name is checked in authorize_object
        return "can only access CSINode with the same name as the requesting node"
    return None


def _node_pod_certificate_request(node: str, info: RequestInfo, graph: NodeGraph) -> str | None:
    """authorizePodCertificateRequest: create (NodeRestriction checks the object, see authorize_object), get
    along the graph (the request names this node), list/watch only with fieldSelector=spec.nodeName=<node>."""
    verb = info.verb
    if info.subresource:
        return "nodes may not access the status subresource of PodCertificateRequests"
    if verb == "create":
        return None
    if verb == "get":
        return _related(node, POD_CERTIFICATE_REQUEST, info.namespace, info.name, graph)
    if verb in _LIST_VERBS:
        if field_selects(info.field_selector, "spec.nodeName", node):
            return None
        return "can only list/watch podcertificaterequests with nodeName field selector"
    return f"nodes may not {verb} podcertificaterequests"


def _node_proxier(info: RequestInfo) -> str | None:
    """RBAC with system:node-proxier: its rules, no subresources; denied without a reason otherwise."""
    if info.subresource:
        return ""
    return None if (info.group, info.resource, info.verb) in _NODE_PROXIER_RULES else ""


def _go_quote(text: str) -> str:
    """Go's %q for the plain strings a Kubernetes name or node name is made of."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node_node(node: str, info: RequestInfo) -> str | None:
    """authorizeNode: read only its own Node (by name, or list/watch with fieldSelector=metadata.name=<node>);
    create, update and patch it and its status. No delete, no other subresource."""
    verb, sub = info.verb, info.subresource
    if not sub:
        if verb == "create":
            return None  # the name is checked in authorize_object
        if verb in _NODE_WRITES:
            return _own_node(node, info.name)
        if verb in _READ_VERBS:
            name = info.name or selected_name(info.field_selector)  # list/watch: upstream's RequestInfo name
            if name == node:
                return None
            if not name:
                return f"node '{node}' cannot read all nodes, only its own Node object"
            return f"node '{node}' cannot read '{name}', only its own Node object"
    elif sub == "status" and verb in _NODE_WRITES:
        return _own_node(node, info.name)
    return ""


def _own_node(node: str, name: str) -> str | None:
    # NodeRestriction's check (admitNode compares the request's name), made on the request line: it needs no
    # stored object, so it also holds where authorize_object is not wired in. The 403 reads as the authorizer's.
    return None if name == node else f'node "{node}" is not allowed to modify node "{name}"'


def _node_pod(node: str, info: RequestInfo, graph: NodeGraph) -> str | None:
    """authorizePod: get only pods bound to this node; list/watch only with fieldSelector=spec.nodeName=<node>
    (or one bound pod by fieldSelector=metadata.name); status updates, deletes and evictions, which
    authorize_object holds to the node's own pods."""
    verb, sub = info.verb, info.subresource
    if not sub:
        if verb == "get":
            return _pod_related(node, info.namespace, info.name, graph)
        if verb in _LIST_VERBS:
            if field_selects(info.field_selector, "spec.nodeName", node):
                return None
            name = selected_name(info.field_selector)
            if name:
                return _pod_related(node, info.namespace, name, graph)
            return "can only list/watch pods with spec.nodeName field selector"
        if verb == "delete":
            return None  # bound-to-this-node is checked in authorize_object
        if verb == "create":
            # Upstream allows the request and NodeRestriction admits mirror pods only; kubemark has none.
            return f'node "{node}" can only create mirror pods, which kubemark does not support'
    elif sub == "status":
        if verb in _NODE_WRITES:
            return None  # bound-to-this-node is checked in authorize_object
    elif sub == "eviction" and verb == "create":
        return None
    return ""


def _pod_related(node: str, namespace: str, name: str, graph: NodeGraph) -> str | None:
    if not name:
        return "No Object name found"
    bound = graph.pod_binding(namespace, name)
    if bound is not None and bound[0] == node:
        return None
    return f"no relationship found between node '{node}' and this object"


def field_selects(field_selector: str, field: str, value: str) -> bool:
    """Whether the field selector requires `field` to equal `value` (one of its terms is `field=value` or
    `field==value`), as upstream's authorizer reads the request's parsed field selector requirements."""
    if not field_selector or field not in field_selector:
        return False
    if field_selector == f"{field}={value}":  # the kubelet's form
        return True
    try:
        requirements = kfields.parse_field_selector(field_selector).requirements
    except kfields.FieldSelectorError:
        return False
    return (field, "=", value) in requirements


def _node_graph_access(node: str, kind: str, info: RequestInfo, graph: NodeGraph) -> str | None:
    """Upstream NodeAuthorizer's authorizeReadNamespacedObject / authorizeGet / authorizeStatusUpdate /
    authorizeCreateToken, with its reasons."""
    verb, sub = info.verb, info.subresource
    if kind in (SECRET, CONFIGMAP) or (kind == SERVICE_ACCOUNT and verb == "get" and not sub):
        # get, and list/watch of a single object by `fieldSelector=metadata.name=<name>` (kubelet's
        # watch-based secret and configmap managers); never a whole collection. The ServiceAccount a pod of
        # the node runs as may be read too (KubeletServiceAccountTokenForCredentialProviders, on since 1.34).
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
