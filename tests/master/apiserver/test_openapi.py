"""OpenAPI v2/v3 documents: schemas with GVKs and merge keys, operations kubectl checks, and kubectl explain/apply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kubemark import codec
from kubemark.kube.resources import RESOURCES
from kubemark.master.apiserver.discovery import discovery_routes
from kubemark.master.apiserver.openapi import OpenAPIDocuments, load_definitions, openapi_routes

KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"
CORE = "io.k8s.api.core.v1"


@pytest.fixture(scope="module")
def docs() -> OpenAPIDocuments:
    return OpenAPIDocuments(RESOURCES)


def test_definitions_carry_merge_keys_and_gvks() -> None:
    defs = load_definitions()
    containers = defs[f"{CORE}.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": f"#/definitions/{CORE}.Container"}
    assert defs[f"{CORE}.PodSpec"]["properties"]["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    assert defs[f"{CORE}.Container"]["properties"]["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert defs[f"{CORE}.NodeStatus"]["properties"]["conditions"]["x-kubernetes-patch-merge-key"] == "type"
    assert defs[f"{CORE}.Pod"]["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert defs["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["group"] == "apps"
    assert defs["io.k8s.api.events.v1.Event"]["x-kubernetes-group-version-kind"][0]["group"] == "events.k8s.io"
    # Shared types live in core/v1 like upstream, not in the first group that reached them.
    assert f"{CORE}.PodTemplateSpec" in defs and "io.k8s.api.apps.v1.PodTemplateSpec" not in defs
    meta = defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["creationTimestamp"]["$ref"].endswith("meta.v1.Time")
    ports = defs[f"{CORE}.ServicePort"]["properties"]["targetPort"]
    assert ports["$ref"].endswith("intstr.IntOrString")
    limits = defs[f"{CORE}.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"]["$ref"].endswith("resource.Quantity")
    assert defs[f"{CORE}.Pod"]["properties"]["spec"]["description"].startswith("Specification of the desired")
    assert defs["io.k8s.api.coordination.v1.LeaseSpec"]["properties"]["renewTime"]["$ref"].endswith("MicroTime")


def test_every_ref_resolves(docs: OpenAPIDocuments) -> None:
    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    v2 = codec.loads(docs.v2.body)
    for ref in refs(v2):
        assert ref.removeprefix("#/definitions/") in v2["definitions"], ref
    for key, doc in docs.v3.items():
        v3 = codec.loads(doc.body)
        for ref in refs(v3):
            assert ref.removeprefix("#/components/schemas/") in v3["components"]["schemas"], (key, ref)


def test_v3_patch_operations_advertise_field_validation_and_smp(docs: OpenAPIDocuments) -> None:
    v3 = codec.loads(docs.v3["apis/apps/v1"].body)
    item = v3["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert {p["name"] for p in patch["parameters"]} >= {"fieldValidation", "dryRun", "fieldManager", "force"}
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    scale = v3["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"]
    assert scale["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert "io.k8s.api.autoscaling.v1.Scale" in v3["components"]["schemas"]
    # Only what the group-version reaches: no Node schema in apps/v1.
    assert f"{CORE}.Node" not in v3["components"]["schemas"]
    # A described $ref is wrapped in allOf, as upstream's v3 documents do.
    spec = v3["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]


def test_documents_are_small_and_fast() -> None:
    start = time.perf_counter()
    docs = OpenAPIDocuments(RESOURCES)
    assert time.perf_counter() - start < 2.0
    assert len(docs.v2.body) < 5_000_000


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application()
    app.add_routes(openapi_routes(RESOURCES))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_v3_index_hash_etag_and_redirect(client: TestClient) -> None:
    index = codec.loads(await (await client.get("/openapi/v3")).read())
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    assert set(index["paths"]) >= {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1"}
    resp = await client.get(url)
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, immutable"
    doc = codec.loads(await resp.read())
    assert doc["openapi"].startswith("3.0")
    again = await client.get(url, headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304
    stale = await client.get("/openapi/v3/api/v1?hash=OLD", allow_redirects=False)
    assert stale.status == 301
    assert stale.headers["Location"] == url
    assert (await client.get("/openapi/v3/apis/nope/v1")).status == 404


async def test_v2_json_and_protobuf_refused(client: TestClient) -> None:
    resp = await client.get("/openapi/v2", headers={"Accept": "application/json"})
    assert resp.status == 200
    doc = codec.loads(await resp.read())
    assert doc["swagger"] == "2.0"
    assert "/api/v1/namespaces/{namespace}/pods/{name}" in doc["paths"]
    proto = await client.get(
        "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
    )
    assert proto.status == 406


# --- the real kubectl -----------------------------------------------------------------------------


@pytest.fixture
async def kubeconfig(fake_apiserver: Any) -> Path:
    """discovery + openapi routes, plus a fake configmaps collection so kubectl apply can create."""

    async def get_configmap(request: web.Request) -> web.Response:
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        return web.Response(status=404, body=codec.dumps(status), content_type="application/json")

    async def create_configmap(request: web.Request) -> web.Response:
        obj = codec.loads(await request.read())
        obj["metadata"]["query"] = dict(request.query)  # echo what kubectl sent, for the assertion
        return web.Response(status=201, body=codec.dumps(obj), content_type="application/json")

    return await fake_apiserver.serve(
        [
            *discovery_routes(RESOURCES),
            *openapi_routes(RESOURCES),
            web.get("/api/v1/namespaces/{ns}/configmaps/{name}", get_configmap),
            web.post("/api/v1/namespaces/{ns}/configmaps", create_configmap),
        ]
    )


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


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="no kubectl")
async def test_kubectl_explain(kubeconfig: Path) -> None:
    code, out, err = await run_kubectl(kubeconfig, "explain", "pod.spec.containers")
    assert code == 0, err
    assert "KIND:       Pod" in out
    assert "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert "image\t<string>" in out
    code, out, err = await run_kubectl(kubeconfig, "explain", "deployments.spec.replicas")
    assert code == 0, err
    assert "GROUP:      apps" in out
    assert "<integer>" in out
    code, out, err = await run_kubectl(kubeconfig, "explain", "leases.spec", "--recursive")
    assert code == 0, err
    assert "holderIdentity\t<string>" in out


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="no kubectl")
async def test_kubectl_apply_uses_server_side_field_validation(kubeconfig: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm1, namespace: default}\ndata: {a: b}\n")
    code, out, err = await run_kubectl(kubeconfig, "apply", "-f", str(manifest), "-o", "json")
    assert code == 0, err
    created = codec.loads(out)
    # fieldValidation=Strict is only sent when the OpenAPI v3 PATCH operation advertises the parameter.
    assert created["metadata"]["query"]["fieldValidation"] == "Strict"
    assert created["metadata"]["query"]["fieldManager"] == "kubectl-client-side-apply"
    assert "kubectl.kubernetes.io/last-applied-configuration" in created["metadata"]["annotations"]
