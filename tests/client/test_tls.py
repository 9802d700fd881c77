"""TLS with a test-generated CA, server certificate and client certificate (mutual TLS)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.rest import RestClient
from kubemark.client.tls import ssl_context_for


@dataclass
class Pair:
    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def issue(
    cn: str, *, org: str | None = None, ca: Pair | None = None, server: bool = False, is_ca: bool = False
) -> Pair:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    name = x509.Name(attrs)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject if ca else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        assert ca is not None
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    cert = builder.sign(ca.key if ca else key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), key_pem, cert, key)


@pytest.fixture(scope="module")
def pki() -> dict[str, Pair]:
    ca = issue("kubemark-ca", is_ca=True)
    return {
        "ca": ca,
        "server": issue("kube-apiserver", ca=ca, server=True),
        "node": issue("system:node:hollow-1", org="system:nodes", ca=ca),
    }


@pytest.fixture
async def tls_server(pki: dict[str, Pair], tmp_path):
    (tmp_path / "s.crt").write_bytes(pki["server"].cert_pem)
    (tmp_path / "s.key").write_bytes(pki["server"].key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "s.crt", tmp_path / "s.key")
    ctx.load_verify_locations(cadata=pki["ca"].cert_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED

    async def whoami(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peer = request.transport.get_extra_info("peercert")
        subject = dict(item[0] for item in peer["subject"])
        return web.json_response({"user": subject["commonName"], "group": subject.get("organizationName")})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=ctx)
    yield f"https://127.0.0.1:{server.port}"
    await server.close()


async def test_mutual_tls_with_small_context(tls_server: str, pki: dict[str, Pair]) -> None:
    creds = ClusterCredentials(
        server=tls_server, ca_pem=pki["ca"].cert_pem, cert_pem=pki["node"].cert_pem, key_pem=pki["node"].key_pem
    )
    ctx = ssl_context_for(creds)
    assert isinstance(ctx, ssl.SSLContext)
    # Only the cluster CA is trusted: no system bundle.
    assert ctx.cert_store_stats()["x509_ca"] == 1
    async with RestClient(creds, qps=0) as c:
        assert await c.get("/whoami") == {"user": "system:node:hollow-1", "group": "system:nodes"}


async def test_without_client_cert_the_handshake_fails(tls_server: str, pki: dict[str, Pair]) -> None:
    async with RestClient(ClusterCredentials(server=tls_server, ca_pem=pki["ca"].cert_pem), qps=0) as c:
        with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
            await c.get("/whoami", retry=False)


async def test_wrong_ca_is_rejected(tls_server: str, pki: dict[str, Pair]) -> None:
    other = issue("other-ca", is_ca=True)
    creds = ClusterCredentials(
        server=tls_server, ca_pem=other.cert_pem, cert_pem=pki["node"].cert_pem, key_pem=pki["node"].key_pem
    )
    async with RestClient(creds, qps=0) as c:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await c.get("/whoami", retry=False)


def test_contexts_are_shared_by_identical_credentials(pki: dict[str, Pair]) -> None:
    def creds(server: str) -> ClusterCredentials:
        return ClusterCredentials(
            server=server,
            ca_pem=bytes(pki["ca"].cert_pem),  # equal bytes, different objects
            cert_pem=bytes(pki["node"].cert_pem),
            key_pem=bytes(pki["node"].key_pem),
        )

    assert ssl_context_for(creds("https://a")) is ssl_context_for(creds("https://b"))
    other = ClusterCredentials(server="https://a", ca_pem=pki["ca"].cert_pem)
    assert ssl_context_for(other) is not ssl_context_for(creds("https://a"))
    assert ssl_context_for(ClusterCredentials(server="http://a")) is False
    assert ssl_context_for(ClusterCredentials(server="https://a", insecure_skip_tls_verify=True)) is False
