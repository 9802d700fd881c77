"""The filter chain over real TLS: x509 and token authentication, node authorization, 429s and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from kubemark import codec
from kubemark.master.apiserver.auth import Authenticator, Authorizer
from kubemark.master.apiserver.errors import not_found
from kubemark.master.apiserver.filters import build_filters, metrics_route
from kubemark.master.apiserver.flowcontrol import PriorityAndFairness
from kubemark.master.apiserver.inflight import InflightLimiter
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.request_info import REQUEST_INFO, REQUEST_USER, UserInfo
from kubemark.master.pki import ClusterPKI, write_kubeconfig

KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"
TOKEN = "t0ken-for-bob"


def client_context(ca_pem: bytes, cert_pem: bytes | None = None, key_pem: bytes | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=ca_pem.decode())
    if cert_pem is not None and key_pem is not None:
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = os.path.join(tmp, "c.crt"), os.path.join(tmp, "c.key")
            Path(cert_file).write_bytes(cert_pem)
            Path(key_file).write_bytes(key_pem)
            ctx.load_cert_chain(cert_file, key_file)
    return ctx


@dataclass
class Server:
    url: str
    pki: ClusterPKI
    metrics: APIServerMetrics
    limiter: InflightLimiter | PriorityAndFairness
    hold: asyncio.Event
    held: asyncio.Condition
    held_count: list[int]

    def ctx(self, cert: tuple[bytes, bytes] | None = None) -> ssl.SSLContext:
        return client_context(self.pki.ca_pem, *(cert or (None, None)))


async def _echo(request: web.Request) -> web.Response:
    if request.match_info["tail"].endswith("/missing"):
        raise not_found("", "pods", "missing")
    info, user = request[REQUEST_INFO], request[REQUEST_USER]
    body = {"user": user.name, "groups": list(user.groups), "verb": info.verb, "resource": info.resource}
    return web.json_response(body, dumps=lambda o: codec.dumps(o).decode())


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with _serve(tmp_path, lambda metrics: InflightLimiter(max_read_only=2, max_mutating=1, metrics=metrics)) as s:
        yield s


@pytest.fixture
async def apf_server(tmp_path: Path) -> AsyncIterator[Server]:
    # A server limit of 1 leaves every priority level one seat.
    async with _serve(tmp_path, lambda metrics: PriorityAndFairness(1, metrics=metrics)) as s:
        yield s


@contextlib.asynccontextmanager
async def _serve(
    tmp_path: Path, make_limiter: Callable[[APIServerMetrics], InflightLimiter | PriorityAndFairness]
) -> AsyncIterator[Server]:
    pki = ClusterPKI.load_or_create(tmp_path / "pki")
    metrics = APIServerMetrics()
    limiter = make_limiter(metrics)
    hold = asyncio.Event()
    held = asyncio.Condition()
    held_count = [0]

    async def handler(request: web.Request) -> web.Response:
        if "hold" in request.query:
            async with held:
                held_count[0] += 1
                held.notify_all()
            await hold.wait()
        return await _echo(request)

    app = web.Application(
        middlewares=build_filters(
            authenticator=Authenticator({TOKEN: UserInfo("bob", ("system:masters",))}),
            authorizer=Authorizer(),
            metrics=metrics,
            limiter=limiter,
        )
    )
    app.router.add_routes([metrics_route(metrics)])
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ssl_context())
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(f"https://127.0.0.1:{port}", pki, metrics, limiter, hold, held, held_count)
    finally:
        hold.set()
        await runner.cleanup()


async def _call(
    server: Server,
    method: str,
    path: str,
    ctx: ssl.SSLContext,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, ssl=ctx, headers=headers, json={}) as resp,
    ):
        raw = await resp.read()
        body = codec.loads(raw) if resp.content_type == "application/json" else raw
        return resp.status, dict(resp.headers), body


async def test_admin_certificate_is_allowed(server: Server) -> None:
    ctx = server.ctx((server.pki.admin_cert_pem, server.pki.admin_key_pem))
    status, _, body = await _call(server, "DELETE", "/apis/apps/v1/namespaces/ns/deployments/d", ctx)
    assert status == 200
    assert body["user"] == "kubernetes-admin"
    assert "system:masters" in body["groups"] and "system:authenticated" in body["groups"]
    assert body["verb"] == "delete"


async def test_node_certificate_follows_node_rules(server: Server) -> None:
    ctx = server.ctx(server.pki.node_credentials("n1"))
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
    assert (await _call(server, "PUT", lease, ctx))[0] == 200
    status, _, body = await _call(server, "PUT", "/api/v1/nodes/n1", ctx)
    assert (status, body["user"]) == (200, "system:node:n1")
    assert (await _call(server, "PATCH", "/api/v1/nodes/n1/status", ctx))[0] == 200

    status, _, body = await _call(server, "PUT", "/api/v1/nodes/n2", ctx)
    assert status == 403
    assert body["kind"] == "Status" and body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"].startswith(
        'nodes "n2" is forbidden: User "system:node:n1" cannot update resource "nodes" in API group "" '
        "at the cluster scope"
    )
    assert body["details"] == {"name": "n2", "kind": "nodes"}

    status, _, body = await _call(server, "POST", "/apis/apps/v1/namespaces/ns/deployments", ctx)
    assert status == 403
    assert 'in API group "apps" in the namespace "ns"' in body["message"]


async def test_bearer_token(server: Server) -> None:
    status, _, body = await _call(server, "GET", "/api/v1/pods", server.ctx(), {"Authorization": f"Bearer {TOKEN}"})
    assert (status, body["user"], body["verb"]) == (200, "bob", "list")
    status, _, body = await _call(server, "GET", "/healthz", server.ctx(), {"Authorization": "Bearer nope"})
    assert status == 401 and body["reason"] == "Unauthorized"


async def test_anonymous_gets_public_paths_only(server: Server) -> None:
    status, _, body = await _call(server, "GET", "/api/v1/pods", server.ctx())
    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    status, _, body = await _call(server, "GET", "/healthz", server.ctx())
    assert (status, body["user"]) == (200, "system:anonymous")
    assert (await _call(server, "GET", "/metrics", server.ctx()))[0] == 401


async def test_certificate_from_another_ca_is_refused(server: Server, tmp_path: Path) -> None:
    rogue = ClusterPKI.load_or_create(tmp_path / "rogue")
    ctx = server.ctx((rogue.admin_cert_pem, rogue.admin_key_pem))
    try:
        status, _, _ = await _call(server, "GET", "/api/v1/pods", ctx)
    except (aiohttp.ClientError, ssl.SSLError, ConnectionError):
        return  # the TLS handshake failed: refused
    assert status == 401


async def test_handler_status_error_is_rendered(server: Server) -> None:
    ctx = server.ctx((server.pki.admin_cert_pem, server.pki.admin_key_pem))
    status, _, body = await _call(server, "GET", "/api/v1/namespaces/ns/pods/missing", ctx)
    assert status == 404
    assert body["reason"] == "NotFound" and body["message"] == 'pods "missing" not found'


async def _wait_held(server: Server, n: int) -> None:
    async with server.held:
        await asyncio.wait_for(server.held.wait_for(lambda: server.held_count[0] >= n), 10)


async def test_max_in_flight_returns_429(server: Server) -> None:
    node_ctx = server.ctx(server.pki.node_credentials("n1"))
    admin_ctx = server.ctx((server.pki.admin_cert_pem, server.pki.admin_key_pem))
    # Two read-only requests fill the read-only limit (2); a watch is long-running and exempt.
    holders = [
        # (reads a node may make: its own Node, its own pods)
        asyncio.create_task(_call(server, "GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dn1&hold=1", node_ctx)),
        asyncio.create_task(_call(server, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&hold=1", node_ctx)),
        asyncio.create_task(
            _call(server, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&watch=true&hold=1", node_ctx)
        ),
    ]
    await _wait_held(server, 3)
    assert isinstance(server.limiter, InflightLimiter)
    assert server.limiter.in_flight("readOnly") == 2

    status, headers, body = await _call(server, "GET", "/api/v1/services", node_ctx)
    assert status == 429
    assert headers["Retry-After"] == "1"
    assert body["reason"] == "TooManyRequests" and body["details"] == {"retryAfterSeconds": 1}
    # Mutating requests have their own budget; system:masters are never turned away.
    assert (await _call(server, "PUT", "/api/v1/nodes/n1", node_ctx))[0] == 200
    assert (await _call(server, "GET", "/api/v1/services", admin_ctx))[0] == 200

    server.hold.set()
    assert [(await t)[0] for t in holders] == [200, 200, 200]
    assert server.limiter.in_flight("readOnly") == 0
    assert (await _call(server, "GET", "/api/v1/services", node_ctx))[0] == 200

    families = {f.name: f for f in text_string_to_metric_families(server.metrics.render()[0].decode())}
    dropped = {s.labels["request_kind"]: s.value for s in families["apiserver_dropped_requests"].samples}
    assert dropped["readOnly"] == 1
    inflight = {s.labels["request_kind"]: s.value for s in families["apiserver_current_inflight_requests"].samples}
    assert inflight["readOnly"] >= 2


async def test_priority_and_fairness_queues_where_max_in_flight_rejects(apf_server: Server) -> None:
    server = apf_server
    assert isinstance(server.limiter, PriorityAndFairness)
    node_ctx = server.ctx(server.pki.node_credentials("n1"))
    # The node's pod-status PATCH takes the one seat of level "system"; the next one waits instead of a 429.
    holder = asyncio.create_task(_call(server, "PATCH", "/api/v1/namespaces/ns/pods/p/status?hold=1", node_ctx))
    await _wait_held(server, 1)
    queued = asyncio.create_task(_call(server, "PATCH", "/api/v1/namespaces/ns/pods/q/status", node_ctx))
    while server.limiter.waiting("system") < 1:
        await asyncio.sleep(0.01)
    # Lease renewals are on level node-high: served while "system" is full.
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
    assert (await _call(server, "PUT", lease, node_ctx))[0] == 200
    assert not queued.done()
    server.hold.set()
    assert (await holder)[0] == 200 and (await queued)[0] == 200

    families = {f.name: f for f in text_string_to_metric_families(server.metrics.render()[0].decode())}
    waits = {
        (s.labels["priority_level"], s.labels["execute"]): s.value
        for s in families["apiserver_flowcontrol_request_wait_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert waits[("system", "true")] == 2 and waits[("node-high", "true")] == 1
    codes = {s.labels["code"] for s in families["apiserver_request"].samples if s.labels["resource"] == "pods"}
    assert codes == {"200"}

    def pods_status(name: str) -> float:
        return next(
            s.value
            for s in families[name].samples
            if s.name == f"{name}_sum" and s.labels["resource"] == "pods" and s.labels["subresource"] == "status"
        )

    # The queued PATCH's wait counts in the request latency but not in the SLI.
    queue_wait = next(
        s.value
        for s in families["apiserver_flowcontrol_request_wait_duration_seconds"].samples
        if s.name.endswith("_sum") and s.labels["priority_level"] == "system"
    )
    assert queue_wait > 0
    total, sli = (
        pods_status("apiserver_request_duration_seconds"),
        pods_status("apiserver_request_sli_duration_seconds"),
    )
    assert total - sli == pytest.approx(queue_wait, rel=1e-6)


async def test_a_request_whose_client_gave_up_in_the_queue_is_not_served(apf_server: Server) -> None:
    server = apf_server
    assert isinstance(server.limiter, PriorityAndFairness)
    node_ctx = server.ctx(server.pki.node_credentials("n1"))
    holder = asyncio.create_task(_call(server, "PATCH", "/api/v1/namespaces/ns/pods/p/status?hold=1", node_ctx))
    await _wait_held(server, 1)
    # This one queues behind the holder; its client hangs up before a seat frees.
    async with aiohttp.ClientSession() as session:
        gone = asyncio.create_task(
            session.patch(server.url + "/api/v1/namespaces/ns/pods/q/status?hold=1", ssl=node_ctx, json={})
        )
        while server.limiter.waiting("system") < 1:
            await asyncio.sleep(0.01)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
    server.hold.set()
    assert (await holder)[0] == 200

    def rejected() -> dict[str, float]:
        families = {f.name: f for f in text_string_to_metric_families(server.metrics.render()[0].decode())}
        return {
            s.labels["reason"]: s.value
            for s in families["apiserver_flowcontrol_rejected_requests"].samples
            if s.name.endswith("_total")
        }

    # Dispatched to a closed connection: answered 429 without reaching the handler (which would hold it).
    while server.limiter.waiting("system") or not rejected():
        await asyncio.sleep(0.01)  # polling the server's state for the outcome (the test timeout bounds it)
    assert rejected() == {"cancelled": 1}
    assert server.held_count[0] == 1
    assert server.limiter.executing("system") == 0


async def test_metrics_endpoint_counts_every_request(server: Server) -> None:
    admin_ctx = server.ctx((server.pki.admin_cert_pem, server.pki.admin_key_pem))
    node_ctx = server.ctx(server.pki.node_credentials("n1"))
    await _call(server, "GET", "/api/v1/namespaces/ns/pods/p", admin_ctx)
    await _call(server, "GET", "/api/v1/namespaces/ns/pods", admin_ctx)
    await _call(server, "PUT", "/api/v1/nodes/n2", node_ctx)  # 403
    await _call(server, "GET", "/api/v1/namespaces/ns/pods", server.ctx())  # 401
    assert (await _call(server, "GET", "/metrics", node_ctx))[0] == 403

    status, headers, raw = await _call(server, "GET", "/metrics", admin_ctx)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = [s for f in text_string_to_metric_families(raw.decode()) for s in f.samples]

    def value(name: str, **labels: str) -> float:
        found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(found) == 1, (name, labels)
        return found[0]

    ok_get = {"verb": "GET", "resource": "pods", "scope": "resource", "component": "apiserver", "version": "v1"}
    assert value("apiserver_request_total", **ok_get, code="200") == 1
    assert value("apiserver_request_duration_seconds_count", **ok_get) == 1
    assert value("apiserver_request_sli_duration_seconds_count", **ok_get) == 1
    assert value("apiserver_request_total", verb="LIST", scope="namespace", code="200") == 1
    assert value("apiserver_request_total", verb="LIST", scope="namespace", code="401") == 1
    assert value("apiserver_request_total", verb="PUT", resource="nodes", code="403") == 1
    # Rejections are counted but not timed, as upstream: only the successful LIST was timed.
    assert value("apiserver_request_duration_seconds_count", verb="LIST", scope="namespace") == 1
    assert value("apiserver_request_total", verb="GET", resource="", code="403") == 1  # the node's /metrics
    assert any(s.name == "process_resident_memory_bytes" for s in samples)


@pytest.mark.kubectl
async def test_kubectl_speaks_to_the_tls_server(server: Server, tmp_path: Path) -> None:
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")

    async def run(config: Path, *args: str) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            kubectl, "--kubeconfig", str(config), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out, err

    admin = tmp_path / "admin.conf"
    server.pki.write_admin_kubeconfig(admin, server=server.url)
    code, out, err = await run(admin, "get", "--raw", "/api/v1/namespaces/default/pods/p")
    assert code == 0, err
    assert codec.loads(out)["user"] == "kubernetes-admin"

    node = tmp_path / "node.conf"
    cert_pem, key_pem = server.pki.node_credentials("n1")
    write_kubeconfig(node, server=server.url, ca_pem=server.pki.ca_pem, cert_pem=cert_pem, key_pem=key_pem)
    code, out, err = await run(node, "get", "--raw", "/apis/apps/v1/deployments")
    assert code != 0
    assert b"forbidden" in err.lower()

    token = tmp_path / "token.conf"
    write_kubeconfig(token, server=server.url, ca_pem=server.pki.ca_pem, token=TOKEN, user="bob")
    code, out, err = await run(token, "get", "--raw", "/api/v1/nodes")
    assert code == 0, err
    assert codec.loads(out)["user"] == "bob"


def test_build_filters_without_components() -> None:
    chain: list[Callable[..., Any]] = build_filters(authenticator=None, authorizer=None, metrics=None, limiter=None)
    assert len(chain) == 2
