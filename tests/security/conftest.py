"""The cluster the access table runs against: `kubemark master start` on etcd, its identities and seed objects.

`access_cluster` (one per package) starts the master as a user runs it (tests/master/kubectl's MasterProcess, on
etcd and without scheduler and controllers, so the objects stay as seeded), mints one credential per identity of
the table from the master's own PKI (client certificates, as kubeadm issues them, and a service-account token
from the TokenRequest API), and seeds the objects the rows name. Requests go out over plain HTTPS from this
process (http.client), so every status code and body is the server's own.

Against another server (the real kube-apiserver), build a `Cluster` with that server's URL, CA and the same
identities; `seed` only uses the admin identity and the public API.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.master.kubectl.conftest import MasterProcess

from kubemark.master.pki import ClusterPKI

NAMESPACE = "sec"
NODE_LEASES = "kube-node-lease"
TIMEOUT = 30.0


@dataclass(frozen=True)
class Identity:
    """Who a row calls as: the name the server must report, and how to present it (client cert or token)."""

    key: str  # the table's name for it: admin, node, scheduler, ...
    user: str  # the user name the server sees ("" for anonymous)
    cert: Path | None = None
    key_file: Path | None = None
    token: str | None = None


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Cluster:
    """One API server and the identities of the table."""

    def __init__(self, url: str, ca_pem: bytes, identities: dict[str, Identity], name: str) -> None:
        self.url = url
        self.name = name  # "kubemark" or e.g. "kube-apiserver": which expectations apply
        self.identities = identities
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self._ca = ca_pem.decode("ascii")
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _context(self, identity: Identity) -> ssl.SSLContext:
        ctx = self._contexts.get(identity.key)
        if ctx is None:
            ctx = ssl.create_default_context(cadata=self._ca)
            if identity.cert is not None:
                ctx.load_cert_chain(identity.cert, identity.key_file)
            self._contexts[identity.key] = ctx
        return ctx

    def call(
        self,
        who: str,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Response:
        identity = self.identities[who]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = content_type
        if identity.token is not None:
            sent["Authorization"] = f"Bearer {identity.token}"
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._context(identity), timeout=TIMEOUT)
        try:
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            return Response(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        except (BrokenPipeError, ConnectionResetError):
            # A server refusing a huge body (413) may close before the whole body was sent: read its answer.
            resp = conn.getresponse()
            return Response(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def ok(self, who: str, method: str, path: str, body: Any = None, *, allow: tuple[int, ...] = ()) -> Any:
        """A call that must succeed (or answer one of `allow`, e.g. 409 for a seed object that exists)."""
        resp = self.call(who, method, path, body)
        assert resp.status < 300 or resp.status in allow, f"{who} {method} {path} -> {resp.status}: {resp.body!r}"
        return resp.json()


def _pod(name: str, account: str, volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"serviceAccountName": account, "containers": [{"name": "c", "image": "pause"}]}
    if volumes:
        spec["volumes"] = volumes
        spec["containers"][0]["volumeMounts"] = [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in volumes]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def seed(cluster: Cluster) -> None:
    """The objects the rows name, created as the admin (409s tolerated, so a reused cluster is fine):
    nodes n1 and n2 with their leases; in namespace `sec` the service accounts robot (no pod uses it), runner
    (p1's) and default, secrets and configmaps `mounted` (p1 mounts them) and `unmounted`, pod p1 bound to n1,
    p2 bound to n2, and p3, p4 pending (for binding rows)."""
    c, ns, allow = cluster, NAMESPACE, (409,)
    c.ok("admin", "POST", "/api/v1/namespaces", {"metadata": {"name": ns}}, allow=allow)
    for node in ("n1", "n2"):
        c.ok("admin", "POST", "/api/v1/nodes", {"metadata": {"name": node}}, allow=allow)
        lease = {"metadata": {"name": node}, "spec": {"holderIdentity": node, "leaseDurationSeconds": 40}}
        c.ok("admin", "POST", f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASES}/leases", lease, allow=allow)
    for account in ("default", "robot", "runner"):
        c.ok("admin", "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": account}}, allow=allow)
    for name in ("mounted", "unmounted"):
        secret = {"metadata": {"name": name}, "data": {"k": "c2VjcmV0"}}
        c.ok("admin", "POST", f"/api/v1/namespaces/{ns}/secrets", secret, allow=allow)
        c.ok("admin", "POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": name}}, allow=allow)
    volumes = [
        {"name": "s", "secret": {"secretName": "mounted"}},
        {"name": "cm", "configMap": {"name": "mounted"}},
    ]
    pods = {
        "p1": ("runner", volumes, "n1"),
        "p2": ("robot", None, "n2"),
        "p3": ("robot", None, ""),
        "p4": ("robot", None, ""),
    }
    for name, (account, vols, node) in pods.items():
        c.ok("admin", "POST", f"/api/v1/namespaces/{ns}/pods", _pod(name, account, vols), allow=allow)
        if node:
            binding = {"metadata": {"name": name}, "target": {"kind": "Node", "name": node}}
            c.ok("admin", "POST", f"/api/v1/namespaces/{ns}/pods/{name}/binding", binding, allow=allow)
    event = {
        "metadata": {"name": "seed"},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": "p1"},
        "reason": "Seeded",
        "message": "seed",
        "type": "Normal",
    }
    c.ok("admin", "POST", f"/api/v1/namespaces/{ns}/events", event, allow=allow)


def wait_for_graph(cluster: Cluster, timeout: float = 10.0) -> None:
    """Until the node authorizer knows p1's edges (it follows the watch caches, a few milliseconds behind)."""
    deadline = time.monotonic() + timeout
    while cluster.call("node", "GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/mounted").status != 200:
        if time.monotonic() > deadline:
            return  # the rows will report what the node is refused
        time.sleep(0.05)


def _client_identity(tmp: Path, pki: ClusterPKI, key: str, user: str, groups: tuple[str, ...] = ()) -> Identity:
    cert_pem, key_pem = pki.issue_client_cert(user, groups)
    cert, key_file = tmp / f"{key}.crt", tmp / f"{key}.key"
    cert.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    key_file.chmod(0o600)
    return Identity(key, user, cert, key_file)


@pytest.fixture(scope="package")
def access_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("access-master")
    master = MasterProcess(data_dir, "--storage", "etcd", "--unsafe-no-fsync", "--no-controllers", "--no-scheduler")
    try:
        creds = tmp_path_factory.mktemp("access-creds")
        pki = ClusterPKI.load_or_create(data_dir / "pki")
        admin_cert, admin_key = creds / "admin.crt", creds / "admin.key"
        admin_cert.write_bytes(pki.admin_cert_pem)
        admin_key.write_bytes(pki.admin_key_pem)
        identities = {
            "admin": Identity("admin", "kubernetes-admin", admin_cert, admin_key),
            "node": _client_identity(creds, pki, "node", "system:node:n1", ("system:nodes",)),
            "scheduler": _client_identity(creds, pki, "scheduler", "system:kube-scheduler"),
            "controller-manager": _client_identity(creds, pki, "controller-manager", "system:kube-controller-manager"),
            "kube-proxy": _client_identity(creds, pki, "kube-proxy", "system:kube-proxy"),
            "anonymous": Identity("anonymous", "system:anonymous"),
            "bad-token": Identity("bad-token", "", token="not-a-token"),
        }
        cluster = Cluster(master.url, pki.ca_pem, identities, "kubemark")
        seed(cluster)
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
        token = cluster.ok("admin", "POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/robot/token", request)
        user = f"system:serviceaccount:{NAMESPACE}:robot"
        identities["serviceaccount"] = Identity("serviceaccount", user, token=token["status"]["token"])
        wait_for_graph(cluster)
        yield cluster
    finally:
        code = master.stop()
        assert code == 0, f"master exited with {code}:\n" + "".join(master.output)
