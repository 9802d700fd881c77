"""Exec credential plugins (a tiny script written by the test), token files, and re-auth on 401."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubemark.client.auth import Authenticator, ExecCredentialPlugin, ExecPluginError
from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.rest import RestClient

from .conftest import FakeAPI, SleepRecorder, reply, status_body

PLUGIN = """#!{python}
import json, os, pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
pathlib.Path(sys.argv[1] + ".info").write_text(json.dumps(info))
mode = os.environ.get("PLUGIN_MODE", "ok")
if mode == "fail":
    print("no credentials for you", file=sys.stderr)
    sys.exit(3)
status = {{"token": os.environ["TOKEN_PREFIX"] + "-" + str(n)}}
if mode == "expiring":
    status["expirationTimestamp"] = "2030-01-01T00:00:00Z"
if mode == "cert":
    status = {{"clientCertificateData": "CERT", "clientKeyData": "KEY"}}
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}}))
"""


def plugin(tmp_path: Path, mode: str = "ok", api_version: str = "client.authentication.k8s.io/v1") -> dict[str, Any]:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN.format(python=sys.executable))
    script.chmod(0o755)
    return {
        "apiVersion": api_version,
        "command": str(script),
        "args": [str(tmp_path / "count")],
        "env": {"TOKEN_PREFIX": "tok", "PLUGIN_MODE": mode},
        "provideClusterInfo": True,
        "cluster": {"server": "https://example", "insecure-skip-tls-verify": False},
    }


def runs(tmp_path: Path) -> int:
    counter = tmp_path / "count"
    return int(counter.read_text()) if counter.exists() else 0


@pytest.mark.parametrize("version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
async def test_exec_plugin_runs_once_and_caches(tmp_path: Path, version: str) -> None:
    p = ExecCredentialPlugin(plugin(tmp_path, api_version=version))
    first = await p.get()
    second = await p.get()
    assert first.token == "tok-1" and second is first and runs(tmp_path) == 1
    info = (tmp_path / "count.info").read_text()
    assert '"interactive":false' in info.replace(" ", "") and "https://example" in info
    p.invalidate()
    assert (await p.get()).token == "tok-2"


async def test_exec_plugin_rerun_after_expiry(tmp_path: Path) -> None:
    now = [0.0]
    p = ExecCredentialPlugin(plugin(tmp_path, "expiring"), clock=lambda: now[0])
    got = await p.get()
    assert got.expires_at == pytest.approx(1893456000.0)
    now[0] = 1893455999.0
    assert (await p.get()).token == "tok-1"
    now[0] = 1893456000.0
    assert (await p.get()).token == "tok-2"


async def test_exec_plugin_errors(tmp_path: Path) -> None:
    with pytest.raises(ExecPluginError, match="exited with 3: no credentials"):
        await ExecCredentialPlugin(plugin(tmp_path, "fail")).get()
    missing = plugin(tmp_path)
    missing["command"] = str(tmp_path / "nope")
    with pytest.raises(ExecPluginError, match="cannot run"):
        await ExecCredentialPlugin(missing).get()
    with pytest.raises(ExecPluginError, match="apiVersion"):
        ExecCredentialPlugin({**plugin(tmp_path), "apiVersion": "client.authentication.k8s.io/v1alpha1"})


async def test_exec_cert_credential(tmp_path: Path) -> None:
    got = await ExecCredentialPlugin(plugin(tmp_path, "cert")).get()
    assert (got.token, got.cert_pem, got.key_pem) == (None, b"CERT", b"KEY")


async def test_rest_client_reexecs_on_401(tmp_path: Path, api: FakeAPI, sleeps: SleepRecorder) -> None:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != "Bearer tok-2":
            return web.json_response(status_body(401, "Unauthorized"), status=401)
        return web.json_response({"ok": True})

    api.on("GET", "/api/v1/nodes", guarded)
    creds = ClusterCredentials(server=api.url, exec_config=plugin(tmp_path))
    async with RestClient(creds, qps=0, sleep=sleeps) as c:
        assert await c.get("/api/v1/nodes") == {"ok": True}
        assert await c.get("/api/v1/nodes") == {"ok": True}
    assert runs(tmp_path) == 2 and api.count("GET") == 3
    assert sleeps.delays == []


async def test_token_file_reread_after_401(tmp_path: Path, api: FakeAPI) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old\n")
    auth = Authenticator(ClusterCredentials(server=api.url, token_file=str(token_file)))
    assert (await auth.prepare())[0] == "Bearer old"
    token_file.write_text("new\n")
    assert (await auth.prepare())[0] == "Bearer old"  # cached between periodic reloads
    assert auth.unauthorized()
    assert (await auth.prepare())[0] == "Bearer new"
    assert not Authenticator(ClusterCredentials(server=api.url, token="t")).unauthorized()


async def test_unauthorized_without_refresh_raises(api: FakeAPI, client: RestClient) -> None:
    api.on("GET", "/x", reply(status_body(401, "Unauthorized"), 401))
    with pytest.raises(Exception) as info:
        await client.get("/x")
    assert getattr(info.value, "status", None) == 401 and api.count("GET") == 1
