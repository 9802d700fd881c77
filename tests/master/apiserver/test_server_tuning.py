"""APIServer's serving settings: TLS without session tickets still serves clients; idle timeout as upstream."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp

from kubemark.master.apiserver import server as server_module
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.pki import ClusterPKI


async def test_tls_server_sends_no_session_tickets_and_serves(tmp_path: Path) -> None:
    pki = ClusterPKI.load_or_create(tmp_path / "pki")
    ctx = pki.server_ssl_context()
    assert ctx.num_tickets == 2  # OpenSSL's default, which the server turns off
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0, ssl_context=ctx, tls=True))
    await server.start()
    try:
        assert ctx.num_tickets == 0
        client_ctx = ssl.create_default_context(cadata=pki.ca_pem.decode())
        url = f"{server.url}/api/v1/namespaces/default"
        async with aiohttp.ClientSession() as session, session.get(url, ssl=client_ctx) as resp:
            assert resp.status == 200
            assert (await resp.json())["metadata"]["name"] == "default"
    finally:
        await server.stop()


def test_idle_timeout_matches_kube_apiserver() -> None:
    # k8s.io/apiserver secure_serving.go: http.Server{IdleTimeout: 90 * time.Second}.
    assert server_module.IDLE_TIMEOUT_SECONDS == 90.0
