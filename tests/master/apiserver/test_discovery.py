"""Discovery documents, content negotiation for aggregated discovery, health checks, and the real kubectl."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kubemark import codec
from kubemark.kube.resources import RESOURCES, find
from kubemark.master.apiserver.discovery import (
    DEFAULT_VERSION_INFO,
    aggregated_version_wanted,
    api_resource_list,
    discovery_routes,
    storage_version_hash,
)

KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"
KUBECTL_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


def _by_name(resource_list: dict) -> dict[str, dict]:
    return {r["name"]: r for r in resource_list["resources"]}


def test_core_resource_list_has_subresources_with_their_kinds() -> None:
    core = [rt for rt in RESOURCES if rt.group == ""]
    entries = _by_name(api_resource_list("v1", core))
    assert entries["pods"]["shortNames"] == ["po"]
    assert entries["pods"]["categories"] == ["all"]
    assert entries["pods"]["namespaced"] is True
    assert entries["nodes"]["namespaced"] is False
    assert entries["pods/eviction"] == {
        "name": "pods/eviction",
        "singularName": "",
        "namespaced": True,
        "group": "policy",
        "version": "v1",
        "kind": "Eviction",
        "verbs": ["create"],
    }
    assert entries["pods/binding"]["kind"] == "Binding"
    assert "group" not in entries["pods/binding"]
    assert entries["pods/status"]["kind"] == "Pod"
    assert entries["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert "deletecollection" not in entries["namespaces"]["verbs"]
    names = [r["name"] for r in api_resource_list("v1", core)["resources"]]
    assert names == sorted(names)


def test_scale_subresource_is_autoscaling_v1() -> None:
    deployments = find("apps", "v1", "deployments")
    assert deployments is not None
    entries = _by_name(api_resource_list("apps/v1", [deployments]))
    assert entries["deployments/scale"]["group"] == "autoscaling"
    assert entries["deployments/scale"]["version"] == "v1"
    assert entries["deployments/scale"]["kind"] == "Scale"


def test_storage_version_hash_is_stable_and_short() -> None:
    pods = find("", "v1", "pods")
    assert pods is not None
    h = storage_version_hash(pods)
    assert h == storage_version_hash(pods)
    assert len(h) == 12  # base64 of 8 bytes


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        (KUBECTL_ACCEPT, "v2"),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", "v2beta1"),
        ("application/json", None),
        ("application/json, */*", None),
        ("", None),
        (
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            None,
        ),
    ],
)
def test_aggregated_negotiation(accept: str, wanted: str | None) -> None:
    assert aggregated_version_wanted(accept) == wanted


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    async def etcd_down() -> bool:
        return False

    app = web.Application()
    app.add_routes(discovery_routes(RESOURCES))
    failing = web.Application()
    failing.add_routes(discovery_routes(RESOURCES, health_checks={"etcd": etcd_down}))
    app.add_subapp("/failing", failing)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_api_plain_and_aggregated(client: TestClient) -> None:
    plain = await client.get("/api", headers={"Accept": "application/json"})
    assert plain.headers["Content-Type"] == "application/json"
    assert codec.loads(await plain.read())["versions"] == ["v1"]

    agg = await client.get("/api", headers={"Accept": KUBECTL_ACCEPT})
    assert agg.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    doc = codec.loads(await agg.read())
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    (core,) = doc["items"]
    resources = {r["resource"]: r for r in core["versions"][0]["resources"]}
    subs = {s["subresource"]: s for s in resources["pods"]["subresources"]}
    assert subs["eviction"]["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert resources["nodes"]["scope"] == "Cluster"


async def test_apis_group_list_and_group_version(client: TestClient) -> None:
    groups = codec.loads(await (await client.get("/apis")).read())
    names = [g["name"] for g in groups["groups"]]
    assert "apps" in names and "coordination.k8s.io" in names and "" not in names
    apps = codec.loads(await (await client.get("/apis/apps")).read())
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    rl = codec.loads(await (await client.get("/apis/apps/v1")).read())
    assert {"deployments", "deployments/scale", "replicasets"} <= {r["name"] for r in rl["resources"]}
    missing = await client.get("/apis/nope/v1")
    assert missing.status == 404
    assert codec.loads(await missing.read())["reason"] == "NotFound"

    agg = codec.loads(await (await client.get("/apis", headers={"Accept": KUBECTL_ACCEPT})).read())
    assert {i["metadata"]["name"] for i in agg["items"]} == set(names)


async def test_version(client: TestClient) -> None:
    doc = codec.loads(await (await client.get("/version")).read())
    assert doc == DEFAULT_VERSION_INFO


async def test_health_endpoints(client: TestClient) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        resp = await client.get(path)
        assert resp.status == 200
        assert await resp.text() == "ok"
    verbose = await client.get("/readyz?verbose")
    assert (await verbose.text()).splitlines() == ["[+]ping ok", "[+]log ok", "readyz check passed"]
    failing = await client.get("/failing/livez")
    assert failing.status == 500
    assert "[-]etcd failed" in await failing.text()
    excluded = await client.get("/failing/livez?exclude=etcd")
    assert excluded.status == 200
    assert (await client.get("/failing/healthz/ping")).status == 200
    assert (await client.get("/healthz/nothing")).status == 404


# --- the real kubectl -----------------------------------------------------------------------------


async def run_kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "--kubeconfig",
        str(kubeconfig),
        "--cache-dir",
        str(kubeconfig.parent / "cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def kubeconfig(fake_apiserver: Any) -> Path:
    return await fake_apiserver.serve(discovery_routes(RESOURCES))


needs_kubectl = pytest.mark.skipif(not KUBECTL.exists() and not shutil.which("kubectl"), reason="no kubectl")


@pytest.mark.kubectl
@needs_kubectl
async def test_kubectl_version(kubeconfig: Path) -> None:
    code, out, err = await run_kubectl(kubeconfig, "version", "-o", "json")
    assert code == 0, err
    server = codec.loads(out)["serverVersion"]
    assert server["gitVersion"] == DEFAULT_VERSION_INFO["gitVersion"]
    assert "WARNING" not in err  # inside the supported version skew


@pytest.mark.kubectl
@needs_kubectl
async def test_kubectl_api_resources(kubeconfig: Path) -> None:
    code, out, err = await run_kubectl(kubeconfig, "api-resources", "-o", "wide")
    assert code == 0, err
    rows = {tuple(line.split()[:2]) for line in out.splitlines()[1:]}
    assert ("pods", "po") in rows
    assert ("deployments", "deploy") in rows
    assert ("leases", "coordination.k8s.io/v1") in rows
    assert ("endpointslices", "discovery.k8s.io/v1") in rows
    code, out, err = await run_kubectl(kubeconfig, "api-resources", "--api-group=apps", "-o", "name")
    assert code == 0, err
    assert out.split() == [
        "controllerrevisions.apps",
        "daemonsets.apps",
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
    ]
