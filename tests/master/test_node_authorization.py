"""Node credentials against the secure control plane: a node writes only its own Node, Lease and pods, and reads
Secrets and ConfigMaps only while a pod bound to it uses them (the node authorizer's graph), as seen by the real
kubectl with a kubeconfig from `kubemark master node-kubeconfig`."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubemark.client import APIError, ClusterCredentials, Forbidden, RestClient, load_kubeconfig
from kubemark.client.paths import resource_path
from kubemark.client.watch import watch_stream
from kubemark.master.apiserver.auth import Authorizer
from kubemark.master.apiserver.node_graph import NodeGraph
from kubemark.master.apiserver.request_info import UserInfo, parse_request_info
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig
from kubemark.master.pki import ClusterPKI

from .test_master_cli import Master

PODS = resource_path("", "v1", "pods", "default")
NODES = resource_path("", "v1", "nodes")
LEASES = resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease")
NAMESPACES = resource_path("", "v1", "namespaces")
KUBEMARK = [sys.executable, "-m", "kubemark"]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
TIMEOUT = 60.0
SECRET_VALUE = "c2VrcmV0"  # base64 of "sekret"


def node_client(plane: ControlPlane, name: str) -> RestClient:
    cert, key = plane.pki.node_credentials(name)  # type: ignore[union-attr]
    creds = ClusterCredentials(server=plane.url, ca_pem=plane.pki.ca_pem, cert_pem=cert, key_pem=key)  # type: ignore[union-attr]
    return RestClient(creds, qps=0, max_retries=0)


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0)) as cp:
        yield cp


def pod(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


async def test_node_writes_are_limited_to_its_own_objects(plane: ControlPlane) -> None:
    async with RestClient(load_kubeconfig(plane.kubeconfig_path), qps=0) as admin:
        for name, node in (("mine", "n1"), ("theirs", "n2")):
            await admin.create(PODS, pod(name))
            await admin.request(
                "POST",
                f"{PODS}/{name}/binding",
                body={"metadata": {"name": name}, "target": {"kind": "Node", "name": node}},
            )
    async with node_client(plane, "n1") as n1:
        await n1.create(NODES, {"metadata": {"name": "n1"}})
        with pytest.raises(Forbidden) as denied:
            await n1.create(NODES, {"metadata": {"name": "n2"}})
        assert "n2" in denied.value.message

        await n1.create(LEASES, {"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}})
        with pytest.raises(Forbidden):
            await n1.create(LEASES, {"metadata": {"name": "n2"}, "spec": {"holderIdentity": "n2"}})

        patch = {"status": {"phase": "Running"}}
        updated = await n1.patch(f"{PODS}/mine/status", patch, patch_type="merge")
        assert updated["status"]["phase"] == "Running"
        with pytest.raises(Forbidden) as denied:
            await n1.patch(f"{PODS}/theirs/status", patch, patch_type="merge")
        assert "can only update pod status for pods with spec.nodeName set to itself" in denied.value.message
        with pytest.raises(Forbidden):
            await n1.delete(f"{PODS}/theirs", grace_period_seconds=0)
        # Reads too are held to its own pods and its own Node (the Node authorizer's AuthorizeNodeWithSelectors).
        assert (await n1.get(f"{PODS}/mine"))["status"]["phase"] == "Running"
        own = await n1.list("/api/v1/pods", field_selector="spec.nodeName=n1")
        assert [p["metadata"]["name"] for p in own["items"]] == ["mine"]
        with pytest.raises(Forbidden) as denied:
            await n1.get(f"{PODS}/theirs")
        assert "no relationship found between node 'n1' and this object" in denied.value.message
        for selector in (None, "spec.nodeName=n2"):
            with pytest.raises(Forbidden) as denied:
                await n1.list("/api/v1/pods", field_selector=selector)
            assert "can only list/watch pods with spec.nodeName field selector" in denied.value.message
        assert (await n1.list(NODES, field_selector="metadata.name=n1"))["items"][0]["metadata"]["name"] == "n1"
        with pytest.raises(Forbidden):
            await n1.list(NODES)
        with pytest.raises(Forbidden):
            await n1.delete(f"{NODES}/n1")  # not even its own Node
        await n1.delete(f"{PODS}/mine", grace_period_seconds=0)
        async with RestClient(load_kubeconfig(plane.kubeconfig_path), qps=0) as admin:
            assert (await admin.get(f"{PODS}/theirs"))["status"].get("phase") != "Running"


# --- the node graph, through kubectl ------------------------------------------------------------------------


async def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    """A child process, awaited without blocking the in-process API server it talks to."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Kubectl:
    """The real kubectl as one node: its kubeconfig minted by `kubemark master node-kubeconfig <node>`."""

    def __init__(self, kubeconfig: Path, cache_dir: Path) -> None:
        self.kubeconfig, self.cache_dir = kubeconfig, cache_dir

    @classmethod
    async def for_node(cls, data_dir: Path, url: str, node: str, workdir: Path) -> Kubectl:
        path = workdir / f"{node}.kubeconfig"
        argv = ["master", "node-kubeconfig", node, "--server", url, "--data-dir", str(data_dir), "--output", str(path)]
        code, out, err = await run(*KUBEMARK, *argv)
        assert code == 0, out + err
        return cls(path, workdir / f"{node}-cache")

    def argv(self, *args: str) -> list[str]:
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        code, out, err = await run(*self.argv(*args), stdin=stdin)
        assert code == 0, f"kubectl {' '.join(args)} -> {code}\n{out}\n{err}"
        return out

    async def forbidden(self, *args: str, stdin: str | None = None) -> str:
        """Run and demand failure with a Forbidden error and no secret data on stdout; returns stderr."""
        code, out, err = await run(*self.argv(*args), stdin=stdin)
        assert code != 0, f"kubectl {' '.join(args)} succeeded:\n{out}"
        assert "forbidden" in err.lower(), err
        assert SECRET_VALUE not in out and "sekret" not in out
        return err

    async def watch_two_lines(self, *args: str, between: Callable[[], Awaitable[object]]) -> list[str]:
        """`kubectl get NAME --watch`: the line it prints for its initial GET, then (after `between` changed the
        object) the line its single-object watch (fieldSelector=metadata.name=NAME) prints; then stop it.

        kubectl starts that watch only after printing the first line, from resourceVersion=0, and drops the
        watch's first event (the object as the watch found it): `between` must wait until that event was sent
        (see `watch_events_sent`), or a change made before the watch started is never printed."""
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        lines: list[str] = []
        try:
            for _ in range(2):
                line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
                if not line:
                    raise AssertionError(f"kubectl ended after {lines}: {(await proc.stderr.read()).decode()}")
                lines.append(line.decode().strip())
                if len(lines) == 1:
                    await between()
            return lines
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


@pytest.fixture
async def secure_plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    config = ControlPlaneConfig(
        data_dir=tmp_path / "master", storage="memory", port=0, scheduler=False, controllers=False
    )
    async with ControlPlane(config) as cp:
        yield cp


async def watch_events_sent(admin: RestClient, kind: str) -> float:
    """How many watch events of `kind` the API server has sent its watchers (apiserver_watch_events_total)."""
    text = await admin.request("GET", "/metrics", rate_limited=False)
    text = text.decode() if isinstance(text, bytes) else str(text)
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "apiserver_watch_events"
        for s in family.samples
        if s.name.endswith("_total") and s.labels.get("kind") == kind
    )


NS = "p"
SECRETS = resource_path("", "v1", "secrets", NS)
CONFIGMAPS = resource_path("", "v1", "configmaps", NS)
NS_PODS = resource_path("", "v1", "pods", NS)


def pod_using(name: str, secret: str, configmap: str, account: str = "default") -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": account,
            "containers": [{"name": "c", "image": "i", "envFrom": [{"configMapRef": {"name": configmap}}]}],
            "volumes": [{"name": "creds", "secret": {"secretName": secret}}],
        },
    }


async def bind(admin: RestClient, name: str, node: str) -> None:
    binding = {"metadata": {"name": name}, "target": {"kind": "Node", "name": node}}
    await admin.request("POST", f"{NS_PODS}/{name}/binding", body=binding)


async def seed(admin: RestClient) -> None:
    await admin.create(NAMESPACES, {"metadata": {"name": NS}})
    for name in ("s1", "s2"):
        await admin.create(SECRETS, {"metadata": {"name": name}, "data": {"pw": SECRET_VALUE}})
    for name in ("c1", "c2"):
        await admin.create(CONFIGMAPS, {"metadata": {"name": name}, "data": {"pw": "sekret"}})
    for name in ("n1", "n2"):
        await admin.create(NODES, {"metadata": {"name": name}})


async def test_kubectl_node_reads_only_what_its_pods_use(secure_plane: ControlPlane, tmp_path: Path) -> None:
    n1 = await Kubectl.for_node(secure_plane.data_dir, secure_plane.url, "n1", tmp_path)
    n2 = await Kubectl.for_node(secure_plane.data_dir, secure_plane.url, "n2", tmp_path)
    async with RestClient(load_kubeconfig(secure_plane.kubeconfig_path), qps=0) as admin:
        await seed(admin)
        # s1/c1 are used, but by a pod on n2 only; s2/c2 by nobody.
        await admin.create(NS_PODS, pod_using("theirs", "s1", "c1"))
        await bind(admin, "theirs", "n2")
        async with node_client(secure_plane, "n2") as n2_client:
            # Wait (as a kubelet would) until n2 sees its pod bound; from then on its reads are authorized.
            pods = watch_stream(n2_client, "/api/v1/pods", resource_version=None, field_selector="spec.nodeName=n2")
            async for event in pods:
                if event["object"]["metadata"]["name"] == "theirs":
                    break

        for resource in ("secrets", "configmaps"):
            err = await n1.forbidden("-n", NS, "get", resource)
            assert 'User "system:node:n1" cannot list resource' in err
            await n2.forbidden("-n", NS, "get", resource)  # no node may list a whole collection
            await n1.forbidden("get", resource, "--all-namespaces")
        for resource, used, unused in (("secret", "s1", "s2"), ("configmap", "c1", "c2")):
            err = await n1.forbidden("-n", NS, "get", resource, used, "-o", "jsonpath={.data.pw}")
            assert "no relationship found between node 'n1' and this object" in err
            await n1.forbidden("-n", NS, "get", resource, unused, "-o", "jsonpath={.data.pw}")
            await n2.forbidden("-n", NS, "get", resource, unused, "-o", "jsonpath={.data.pw}")
            await n1.forbidden("-n", NS, "delete", resource, used)
            await n2.forbidden("-n", NS, "delete", resource, used)  # reads only, even along the graph
            # The node whose pod uses it reads it, by name and by a single-object watch (the kubelet's way).
            expected = SECRET_VALUE if resource == "secret" else "sekret"
            assert await n2.ok("-n", NS, "get", resource, used, "-o", "jsonpath={.data.pw}") == expected
            path = f"{SECRETS if resource == 'secret' else CONFIGMAPS}/{used}"
            kind = "Secret" if resource == "secret" else "ConfigMap"
            sent = await watch_events_sent(admin, kind)  # no other watch of this kind is open

            async def touch(path: str = path, kind: str = kind, sent: float = sent) -> object:
                # Only once kubectl's watch has its first event (the one it drops): the change must come after.
                async def watch_started() -> None:
                    while await watch_events_sent(admin, kind) <= sent:
                        await asyncio.sleep(0.01)  # polling the server's counter, bounded by wait_for

                await asyncio.wait_for(watch_started(), TIMEOUT)
                return await admin.patch(path, {"metadata": {"labels": {"touched": "yes"}}}, patch_type="merge")

            watched = await n2.watch_two_lines("-n", NS, "get", resource, used, "--watch", "-o", "name", between=touch)
            assert watched == [f"{resource}/{used}"] * 2
            await n1.forbidden("-n", NS, "get", resource, used, "--watch", "-o", "name")


async def test_secret_readable_exactly_while_a_pod_on_the_node_uses_it(
    secure_plane: ControlPlane, tmp_path: Path
) -> None:
    n1 = await Kubectl.for_node(secure_plane.data_dir, secure_plane.url, "n1", tmp_path)
    async with (
        RestClient(load_kubeconfig(secure_plane.kubeconfig_path), qps=0) as admin,
        node_client(secure_plane, "n1") as kubelet,
    ):
        await seed(admin)
        await admin.create(NS_PODS, pod_using("web", "s1", "c1"))
        await n1.forbidden("-n", NS, "get", "secret", "s1")  # created, not yet bound to n1
        events = watch_stream(kubelet, "/api/v1/pods", resource_version=None, field_selector="spec.nodeName=n1")
        try:
            first = asyncio.ensure_future(anext(events))
            await bind(admin, "web", "n1")
            event = await asyncio.wait_for(first, TIMEOUT)
            assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "web")
            # The kubelet has just seen its pod: its first read of the pod's secret must already be allowed.
            assert await n1.ok("-n", NS, "get", "secret", "s1", "-o", "jsonpath={.data.pw}") == SECRET_VALUE
            assert await n1.ok("-n", NS, "get", "configmap", "c1", "-o", "jsonpath={.data.pw}") == "sekret"
            got = await kubelet.list(SECRETS, field_selector="metadata.name=s1")
            assert [o["metadata"]["name"] for o in got["items"]] == ["s1"]
            rv = got["metadata"]["resourceVersion"]
            await admin.patch(f"{SECRETS}/s1", {"data": {"pw": "bmV3"}}, patch_type="merge")
            secret_events = watch_stream(kubelet, SECRETS, resource_version=rv, field_selector="metadata.name=s1")
            changed = await asyncio.wait_for(anext(secret_events), TIMEOUT)
            await secret_events.aclose()
            assert (changed["type"], changed["object"]["data"]["pw"]) == ("MODIFIED", "bmV3")
            await admin.patch(f"{SECRETS}/s1", {"data": {"pw": SECRET_VALUE}}, patch_type="merge")
            await n1.forbidden("-n", NS, "get", "secret", "s2")
            with pytest.raises(Forbidden):  # a name selector must name something the node may read
                await kubelet.list(SECRETS, field_selector="metadata.name=s2")
            with pytest.raises(Forbidden):
                await kubelet.list(SECRETS, field_selector="metadata.name!=s2")

            await admin.delete(f"{NS_PODS}/web", grace_period_seconds=0)
            while (event := await asyncio.wait_for(anext(events), TIMEOUT))["type"] != "DELETED":
                pass
            await n1.forbidden("-n", NS, "get", "secret", "s1", "-o", "jsonpath={.data.pw}")
            await n1.forbidden("-n", NS, "get", "configmap", "c1")
        finally:
            await events.aclose()


async def test_service_account_tokens_only_for_accounts_of_the_nodes_pods(secure_plane: ControlPlane) -> None:
    token_request = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "spec": {"audiences": []}}
    async with RestClient(load_kubeconfig(secure_plane.kubeconfig_path), qps=0) as admin:
        await seed(admin)
        for account in ("robot", "other"):
            await admin.create(resource_path("", "v1", "serviceaccounts", NS), {"metadata": {"name": account}})
        await admin.create(NS_PODS, pod_using("web", "s1", "c1", account="robot"))
        await bind(admin, "web", "n1")
        pods = await admin.get(f"{NS_PODS}/web")
    async with node_client(secure_plane, "n1") as n1:
        async for event in watch_stream(n1, "/api/v1/pods", resource_version=None, field_selector="spec.nodeName=n1"):
            if event["object"]["metadata"]["name"] == "web":
                break
        accounts = resource_path("", "v1", "serviceaccounts", NS)
        with pytest.raises(Forbidden) as denied:
            await n1.create(f"{accounts}/other/token", token_request)
        assert "no relationship found" in denied.value.message
        # The account of a pod on the node may be read (KubeletServiceAccountTokenForCredentialProviders, on
        # since 1.34), no other.
        assert (await n1.get(f"{accounts}/robot"))["metadata"]["name"] == "robot"
        with pytest.raises(Forbidden) as denied:
            await n1.get(f"{accounts}/other")
        assert "no relationship found" in denied.value.message
        bound = {
            **token_request,
            "spec": {
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": pods["metadata"]["uid"]}
            },
        }
        try:
            await n1.create(f"{accounts}/robot/token", bound)
        except APIError as exc:  # the endpoint itself may not be served; it must not be a denial
            assert exc.status != 403, exc.message


@pytest.mark.etcd
async def test_every_api_server_process_keeps_its_own_graph(tmp_path: Path) -> None:
    """With --apiserver-workers 2 each process has its own caches and graph: every connection, whichever process
    the kernel hands it to, authorizes n1's read of its pod's secret and denies the unused one."""
    master = await asyncio.to_thread(
        Master, tmp_path / "master", "--apiserver-workers", "2", "--no-scheduler", "--no-controllers"
    )
    try:
        creds = load_kubeconfig(master.kubeconfig)
        async with RestClient(creds, qps=0) as admin:
            await seed(admin)
            await admin.create(NS_PODS, pod_using("web", "s1", "c1"))
            await bind(admin, "web", "n1")
        ca = ClusterPKI.load_or_create(tmp_path / "master" / "pki")
        cert, key = ca.node_credentials("n1")
        node_creds = ClusterCredentials(server=master.url, ca_pem=ca.ca_pem, cert_pem=cert, key_pem=key)
        loop = asyncio.get_running_loop()
        for _ in range(16):
            # A client per round: its own connection, which SO_REUSEPORT gives to either process. That process's
            # graph may trail the binding by its etcd watch delay, so wait for the grant, then demand it holds.
            deadline = loop.time() + TIMEOUT
            async with RestClient(node_creds, qps=0, max_retries=0) as n1:
                while True:
                    try:
                        assert (await n1.get(f"{SECRETS}/s1"))["data"]["pw"] == SECRET_VALUE
                        break
                    except Forbidden:
                        assert loop.time() < deadline, "n1 never got its pod's secret from this process"
                        await asyncio.sleep(0.05)
                with pytest.raises(Forbidden):
                    await n1.get(f"{SECRETS}/s2")
                with pytest.raises(Forbidden):
                    await n1.list(SECRETS)
    finally:
        assert await asyncio.to_thread(master.stop) == 0, "".join(master.output)


async def test_kubectl_node_write_limits_still_hold(secure_plane: ControlPlane, tmp_path: Path) -> None:
    async with RestClient(load_kubeconfig(secure_plane.kubeconfig_path), qps=0) as admin:
        await seed(admin)
    n1 = await Kubectl.for_node(secure_plane.data_dir, secure_plane.url, "n1", tmp_path)
    label = ["-p", json.dumps({"metadata": {"labels": {"touched": "yes"}}})]
    assert "patched" in await n1.ok("patch", "node", "n1", *label)
    err = await n1.forbidden("patch", "node", "n2", *label)
    assert "node 'n1' cannot read 'n2', only its own Node object" in err  # kubectl reads the Node first
    async with node_client(secure_plane, "n1") as n1_client:
        with pytest.raises(Forbidden) as denied:
            await n1_client.patch(f"{NODES}/n2", {"metadata": {"labels": {"touched": "yes"}}}, patch_type="merge")
        assert 'node "n1" is not allowed to modify node "n2"' in denied.value.message
    bound_elsewhere = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sneaky", "namespace": NS},
        "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "i"}]},
    }
    await n1.forbidden("create", "-f", "-", stdin=json.dumps(bound_elsewhere))
    await n1.forbidden("delete", "namespace", NS)
    await n1.forbidden("create", "namespace", "mine")


def test_token_request_body_must_bind_a_pod_of_the_node_running_as_the_account() -> None:
    """NodeRestriction's TokenRequest check, for when the token endpoint hands authorize_object the request body."""
    graph = NodeGraph()
    graph.add_pod(
        {
            "metadata": {"name": "web", "namespace": NS, "uid": "u1"},
            "spec": {"nodeName": "n1", "serviceAccountName": "robot"},
        }
    )
    graph.add_pod(
        {
            "metadata": {"name": "db", "namespace": NS, "uid": "u2"},
            "spec": {"nodeName": "n2", "serviceAccountName": "robot"},
        }
    )
    graph.add_pod(
        {
            "metadata": {"name": "side", "namespace": NS, "uid": "u3"},
            "spec": {"nodeName": "n1", "serviceAccountName": "other"},
        }
    )
    authz = Authorizer(node_graph=graph)
    user = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))

    def check(account: str, ref: dict | None) -> str | None:
        info = parse_request_info("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/{account}/token")
        if authz.authorize(user, info) is not None:
            return "request line denied"
        body = {"kind": "TokenRequest", "spec": {"boundObjectRef": ref} if ref is not None else {}}
        return authz.authorize_object(user, info, body)

    def pod_ref(name: str, uid: str | None = None, **extra: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "name": name, **({"uid": uid} if uid else {}), **extra}

    # NodeRestriction's words (plugin/pkg/admission/noderestriction admitServiceAccount).
    assert check("robot", pod_ref("web", "u1")) is None
    assert check("robot", pod_ref("web")) == "node requested token with a pod binding without a uid"
    assert check("robot", None) == "node requested token not bound to a pod"
    assert check("robot", pod_ref("web", "u1", kind="Secret")) == "node requested token not bound to a pod"
    assert check("robot", pod_ref("web", "u1", apiVersion="v2")) == "node requested token not bound to a pod"
    assert check("robot", {"kind": "Pod", "name": "web", "uid": "u1"}) == "node requested token not bound to a pod"
    # robot is used on n1 too (by web), so the request line passes; db is n2's.
    assert check("robot", pod_ref("db", "u2")) == "node requested token bound to a pod scheduled on a different node"
    assert check("robot", pod_ref("web", "old")) == (
        "the UID in the bound object reference (old) does not match the UID in record. "
        "The object might have been deleted and then recreated"
    )
    assert "does not run as" in (check("other", pod_ref("web", "u1")) or "")  # side runs as other, on n1 too
    assert check("default", pod_ref("web", "u1")) == "request line denied"
    info = parse_request_info("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/robot/token")
    assert authz.authorize_object(user, info, {"kind": "ServiceAccount", "metadata": {"name": "robot"}}) is None
