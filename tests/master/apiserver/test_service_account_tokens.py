"""Service-account tokens end to end: TokenRequest with the official client and kubectl, what a token
authenticates as (SelfSubjectReview, `kubectl auth whoami`), and every way a token stops working."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubemark.master.apiserver.service_account_tokens import DEFAULT_ISSUER, TokenSigner, key_id
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

NS = "default"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
ACCOUNTS = f"/api/v1/namespaces/{NS}/serviceaccounts"
PODS = f"/api/v1/namespaces/{NS}/pods"


class Api:
    """Raw HTTPS calls to the plane, as the admin (client certificate) or with a bearer token."""

    def __init__(self, plane: ControlPlane) -> None:
        assert plane.pki is not None
        self.plane = plane
        self.pki = plane.pki
        self._anon = ssl.create_default_context(cadata=plane.pki.ca_pem.decode())
        self._admin = ssl.create_default_context(cadata=plane.pki.ca_pem.decode())
        self._admin.load_cert_chain(plane.pki.directory / "admin.crt", plane.pki.directory / "admin.key")
        self.session = aiohttp.ClientSession(base_url=plane.url)

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        ctx = self._anon if token is not None else self._admin
        async with self.session.request(method, path, json=body, headers=headers, ssl=ctx) as resp:
            data = await resp.read()
            return resp.status, json.loads(data) if data else None

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        code, obj = await self.call(method, path, body)
        assert code < 300, (method, path, code, obj)
        return obj

    async def whoami(self, token: str) -> tuple[int, Any]:
        return await self.call(
            "POST", REVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=token
        )

    async def account(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await self.ok("POST", ACCOUNTS, {"metadata": {"name": name}})
        return obj

    async def token(self, account: str, spec: dict[str, Any] | None = None) -> str:
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec or {}}
        answer = await self.ok("POST", f"{ACCOUNTS}/{account}/token", request)
        return str(answer["status"]["token"])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0, controllers=False, scheduler=False)
    async with ControlPlane(config) as plane:
        client = Api(plane)
        try:
            yield client
        finally:
            await client.session.close()


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(text: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return decoded

    header, payload, _ = token.split(".")
    return part(header), part(payload)


def official_client(plane: ControlPlane, token: str | None = None) -> kubernetes.client.ApiClient:
    if token is None:
        return kubernetes.config.new_client_from_config(str(plane.kubeconfig_path))
    assert plane.pki is not None
    cfg = kubernetes.client.Configuration()
    cfg.host = plane.url
    cfg.ssl_ca_cert = str(plane.pki.ca_cert_path)
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.ApiClient(cfg)


async def until_unauthorized(api: Api, token: str, timeout: float = 5.0) -> dict[str, Any]:
    """The 401 a revoked token gets once this server's watch caches saw the deletion (milliseconds)."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = await api.whoami(token)
        if code == 401 or time.monotonic() > deadline:
            assert code == 401, body
            assert body == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Unauthorized",
                "reason": "Unauthorized",
                "code": 401,
            }
            return body
        await asyncio.sleep(0.02)


async def test_token_request_round_trip_with_the_official_client(api: Api) -> None:
    plane = api.plane
    account = await api.account("robot")

    def request_token() -> Any:
        with official_client(plane) as client:
            core = kubernetes.client.CoreV1Api(client)
            request = kubernetes.client.AuthenticationV1TokenRequest(
                spec=kubernetes.client.V1TokenRequestSpec(audiences=[])
            )
            return core.create_namespaced_service_account_token("robot", NS, request)

    before = int(time.time())
    answer = await asyncio.to_thread(request_token)
    assert answer.spec.expiration_seconds == 3600 and answer.spec.audiences == [DEFAULT_ISSUER]
    assert abs(answer.status.expiration_timestamp.timestamp() - (before + 3600)) <= 2
    token = answer.status.token
    header, claims = claims_of(token)
    assert header == {"alg": "RS256", "kid": key_id(api.pki.service_account_key.public_key())}
    assert claims["iss"] == DEFAULT_ISSUER and claims["aud"] == [DEFAULT_ISSUER]
    assert claims["sub"] == f"system:serviceaccount:{NS}:robot"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"] and before - 1 <= claims["iat"]
    assert str(uuid.UUID(claims["jti"])) == claims["jti"]
    uid = account["metadata"]["uid"]
    assert claims["kubernetes.io"] == {"namespace": NS, "serviceaccount": {"name": "robot", "uid": uid}}
    # Signed with the PKI's sa.key: sa.pub verifies it (as any OIDC relying party would).
    public = serialization.load_pem_public_key((api.pki.directory / "sa.pub").read_bytes())
    assert isinstance(public, rsa.RSAPublicKey)
    signing_input, _, signature = token.rpartition(".")
    signature_bytes = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    public.verify(signature_bytes, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    def who_am_i() -> Any:
        with official_client(plane, token) as client:
            review = kubernetes.client.V1SelfSubjectReview()
            return kubernetes.client.AuthenticationV1Api(client).create_self_subject_review(review)

    review = await asyncio.to_thread(who_am_i)
    info = review.status.user_info
    assert info.username == f"system:serviceaccount:{NS}:robot" and info.uid == uid
    assert info.groups == ["system:serviceaccounts", f"system:serviceaccounts:{NS}", "system:authenticated"]
    assert info.extra == {"authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"]}

    # Without RoleBindings a service account may read discovery and ask who it is, nothing else.
    code, status = await api.call("GET", PODS, token=token)
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"].startswith(
        f'pods is forbidden: User "system:serviceaccount:{NS}:robot" cannot list resource "pods" in API group "" '
        f'in the namespace "{NS}"'
    )
    assert (await api.call("GET", "/api", token=token))[0] == 200


async def test_kubectl_create_token_and_auth_whoami(api: Api) -> None:
    await api.account("robot")
    kubeconfig = str(api.plane.kubeconfig_path)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, timeout=30, check=False
        )

    # kubectl sends its TokenRequest as protobuf.
    created = await asyncio.to_thread(kubectl, "create", "token", "robot", "--duration", "15m")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    _, claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 900
    whoami = await asyncio.to_thread(kubectl, "--token", token, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    info = json.loads(whoami.stdout)["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{NS}:robot"
    too_short = await asyncio.to_thread(kubectl, "create", "token", "robot", "--duration", "1m")
    assert too_short.returncode == 1
    assert (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not '
        "specify a duration less than 10 minutes" in too_short.stderr
    )


async def test_pod_bound_token_dies_with_the_pod(api: Api) -> None:
    await api.account("runner")
    node = await api.ok("POST", "/api/v1/nodes", {"metadata": {"name": "n1"}})
    pod = {
        "metadata": {"name": "web"},
        "spec": {"serviceAccountName": "runner", "containers": [{"name": "c", "image": "i"}]},
    }
    created = await api.ok("POST", PODS, pod)
    await api.ok("POST", f"{PODS}/web/binding", {"metadata": {"name": "web"}, "target": {"kind": "Node", "name": "n1"}})
    pod_uid = created["metadata"]["uid"]
    token = await api.token(
        "runner", {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": pod_uid}}
    )
    _, claims = claims_of(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "web", "uid": pod_uid}
    assert claims["kubernetes.io"]["node"] == {"name": "n1", "uid": node["metadata"]["uid"]}
    code, review = await api.whoami(token)
    assert code == 201
    assert review["status"]["userInfo"]["extra"] == {
        "authentication.kubernetes.io/credential-id": [f"JTI={claims['jti']}"],
        "authentication.kubernetes.io/node-name": ["n1"],
        "authentication.kubernetes.io/node-uid": [node["metadata"]["uid"]],
        "authentication.kubernetes.io/pod-name": ["web"],
        "authentication.kubernetes.io/pod-uid": [pod_uid],
    }
    await api.ok("DELETE", f"{PODS}/web?gracePeriodSeconds=0")
    await until_unauthorized(api, token)
    # A new pod of the same name is another pod: the token stays dead.
    await api.ok("POST", PODS, pod)
    await until_unauthorized(api, token)


async def test_secret_bound_token_dies_with_the_secret(api: Api) -> None:
    await api.account("robot")
    secret = await api.ok("POST", f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "anchor"}})
    token = await api.token("robot", {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "anchor"}})
    assert claims_of(token)[1]["kubernetes.io"]["secret"] == {"name": "anchor", "uid": secret["metadata"]["uid"]}
    assert (await api.whoami(token))[0] == 201
    await api.ok("DELETE", f"/api/v1/namespaces/{NS}/secrets/anchor")
    await until_unauthorized(api, token)


async def test_deleted_service_account_revokes_its_tokens(api: Api) -> None:
    await api.account("robot")
    token = await api.token("robot")
    assert (await api.whoami(token))[0] == 201  # verified once (and remembered): revocation must still apply
    await api.ok("DELETE", f"{ACCOUNTS}/robot")
    await until_unauthorized(api, token)
    await api.account("robot")  # same name, new uid
    await until_unauthorized(api, token)


async def test_expired_and_forged_tokens_are_401(api: Api) -> None:
    await api.account("robot")
    token = await api.token("robot")
    _, claims = claims_of(token)
    signer = TokenSigner(api.pki.service_account_key)
    now = int(time.time())
    # go-jose's 60 s leeway: a token expired 30 s ago still works, one expired 2 minutes ago does not.
    assert (await api.whoami(signer.sign({**claims, "exp": now - 30})))[0] == 201
    assert (await api.whoami(signer.sign({**claims, "exp": now - 120, "iat": now - 800, "nbf": now - 800})))[0] == 401
    assert (await api.whoami(signer.sign({**claims, "nbf": now + 600})))[0] == 401
    # A key that is not the master's.
    other = TokenSigner(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert (await api.whoami(other.sign(claims)))[0] == 401
    # A payload changed after signing (another account), and an unsigned token.
    header, payload, signature = token.split(".")
    admin_claims = {**claims, "sub": "system:serviceaccount:kube-system:admin"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(admin_claims).encode()).rstrip(b"=").decode()
    assert (await api.whoami(f"{header}.{forged_payload}.{signature}"))[0] == 401
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    assert (await api.whoami(f"{none_header}.{payload}."))[0] == 401
    # Another audience is not the API server's.
    vault = await api.token("robot", {"audiences": ["vault"]})
    assert (await api.whoami(vault))[0] == 401
    both = await api.token("robot", {"audiences": ["vault", DEFAULT_ISSUER]})
    assert (await api.whoami(both))[0] == 201
    assert (await api.whoami(token))[0] == 201


async def test_bad_token_requests_name_the_field(api: Api) -> None:
    account = await api.account("robot")
    path = f"{ACCOUNTS}/robot/token"
    code, status = await api.call("POST", path, {"spec": {"expirationSeconds": 599}})
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"] == (
        'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not '
        "specify a duration less than 10 minutes"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 599: may not specify a duration less than 10 minutes",
            "field": "spec.expirationSeconds",
        }
    ]
    code, status = await api.call("POST", path, {"spec": {"expirationSeconds": (1 << 32) + 1}})
    assert code == 422 and "may not specify a duration larger than 2^32 seconds" in status["message"]
    code, status = await api.call("POST", f"{ACCOUNTS}/ghost/token", {"spec": {}})
    assert (code, status["reason"], status["message"]) == (404, "NotFound", 'serviceaccounts "ghost" not found')
    assert status["details"] == {"name": "ghost", "kind": "serviceaccounts"}
    code, status = await api.call("POST", path, {"metadata": {"name": "other"}, "spec": {}})
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"
    code, status = await api.call("POST", path, {"metadata": {"uid": "not-the-uid"}, "spec": {}})
    assert code == 409 and account["metadata"]["uid"] in status["message"]
    code, status = await api.call("POST", path, {"spec": {"expirationSeconds": "soon"}})
    assert code == 400 and "spec.expirationSeconds of type int64" in status["message"]
    code, status = await api.call(
        "POST", path, {"spec": {"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "d"}}}
    )
    assert (code, status["message"]) == (400, "cannot bind token to object of type apps/v1, Kind=Deployment")
    code, status = await api.call(
        "POST", path, {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "nope"}}}
    )
    assert (code, status["message"]) == (404, 'pods "nope" not found')
    await api.ok(
        "POST", PODS, {"metadata": {"name": "other-sa"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    )
    code, status = await api.call(
        "POST", path, {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "other-sa"}}}
    )
    assert (
        code == 400
        and 'cannot bind token for serviceaccount "robot" to pod running with different' in status["message"]
    )
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "other-sa", "uid": "stale"}
    await api.account("default")
    code, status = await api.call("POST", f"{ACCOUNTS}/default/token", {"spec": {"boundObjectRef": ref}})
    assert (
        code == 409
        and status["reason"] == "Conflict"
        and "the UID in the bound object reference (stale)" in status["message"]
    )
    code, _ = await api.call("GET", f"{ACCOUNTS}/robot/token")
    assert code == 405


async def test_who_may_request_tokens(api: Api) -> None:
    """Superusers and the components may; a service account may not, not even for itself."""
    await api.account("robot")
    token = await api.token("robot")
    code, status = await api.call("POST", f"{ACCOUNTS}/robot/token", {"spec": {}}, token=token)
    assert code == 403
    assert status["message"].startswith(
        f'serviceaccounts "robot" is forbidden: User "system:serviceaccount:{NS}:robot" cannot create resource '
        f'"serviceaccounts/token" in API group "" in the namespace "{NS}"'
    )


@pytest.mark.etcd
async def test_token_survives_a_restart_on_the_same_pki(tmp_path: Path) -> None:
    """The signing key is created once in the PKI directory: tokens outlive the API server process."""
    config = ControlPlaneConfig(
        data_dir=tmp_path, storage="etcd", port=0, controllers=False, scheduler=False, unsafe_no_fsync=True
    )
    async with ControlPlane(config) as plane:
        api = Api(plane)
        try:
            await api.account("robot")
            token = await api.token("robot")
        finally:
            await api.session.close()
    key = (tmp_path / "pki" / "sa.key").read_bytes()
    async with ControlPlane(config) as plane:
        api = Api(plane)
        try:
            code, review = await api.whoami(token)
            assert code == 201 and review["status"]["userInfo"]["username"] == f"system:serviceaccount:{NS}:robot"
        finally:
            await api.session.close()
    assert (tmp_path / "pki" / "sa.key").read_bytes() == key


async def test_discovery_lists_the_token_subresource(api: Api) -> None:
    resources = {r["name"]: r for r in (await api.ok("GET", "/api/v1"))["resources"]}
    token = resources["serviceaccounts/token"]
    assert (token["group"], token["version"], token["kind"], token["verbs"]) == (
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        ["create"],
    )
    key = api.pki.directory / "sa.key"
    assert key.stat().st_mode & 0o777 == 0o600 and api.pki.service_account_key.key_size == 2048
