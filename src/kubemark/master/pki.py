"""The cluster's PKI: a CA, the apiserver serving certificate, client certificates and kubeconfigs.

Keys are EC P-256: minting a node certificate costs well under a millisecond, so thousands of hollow nodes
can each get their own `system:node:<name>` identity. Files are created once in a directory and reused on
restart, like kubeadm's /etc/kubernetes/pki. The service-account signing key is RSA 2048 (`sa.key`, public
half `sa.pub`), as kubeadm makes it: service-account tokens are RS256 JWTs.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
# The in-cluster names of the kubernetes Service, which kubeadm always puts in the serving certificate.
_SERVICE_DNS_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_CA_VALIDITY = datetime.timedelta(days=3650)
_LEAF_VALIDITY = datetime.timedelta(days=365)
# Tolerate clock skew between this host and clients, as kubeadm backdates by a few minutes.
_BACKDATE = datetime.timedelta(minutes=5)

# kubeadm's names for the service-account token signing key pair.
SERVICE_ACCOUNT_KEY = "sa.key"
SERVICE_ACCOUNT_PUB = "sa.pub"

ADMIN_USER = "kubernetes-admin"
MASTERS_GROUP = "system:masters"
NODES_GROUP = "system:nodes"


@dataclass(frozen=True, slots=True)
class _KeyPair:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _subject_alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, *_SERVICE_DNS_NAMES]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 from the start (never world-readable, even briefly)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _issued_by(cert: x509.Certificate, ca: _KeyPair) -> bool:
    try:
        cert.verify_directly_issued_by(ca.cert)
    except Exception:  # InvalidSignature, ValueError, TypeError: any failure means "not ours"
        return False
    return True


def _issue(
    ca: _KeyPair,
    common_name: str,
    organizations: tuple[str, ...],
    *,
    server: bool,
    client: bool,
    hosts: Iterable[str] = (),
) -> _KeyPair:
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
    return _KeyPair(builder.sign(ca.key, hashes.SHA256()), key)


class ClusterPKI:
    """The CA plus the apiserver and admin credentials; issues more client certificates on demand."""

    def __init__(self, directory: Path, ca: _KeyPair, apiserver: _KeyPair, admin: _KeyPair) -> None:
        self.directory = directory
        self._ca = ca
        self._apiserver = apiserver
        self._admin = admin
        self._ca_pem = ca.cert_pem
        self._service_account_key: rsa.RSAPrivateKey | None = None

    # -- creation and reload ---------------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, directory: Path, *, hosts: Iterable[str] = DEFAULT_HOSTS) -> ClusterPKI:
        """Load the PKI from `directory`, creating whatever is missing.

        An existing CA is always kept. The apiserver certificate is re-issued when it does not cover every
        host in `hosts` (e.g. the server now listens on a new address).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        hosts = tuple(hosts)

        ca = cls._load_pair(directory, "ca")
        if ca is None:
            log.info("creating cluster CA in %s", directory)
            ca = cls._create_ca()
            cls._store_pair(directory, "ca", ca)

        apiserver = cls._load_pair(directory, "apiserver")
        if apiserver is None or not _covers(apiserver.cert, hosts) or not _issued_by(apiserver.cert, ca):
            log.info("issuing apiserver serving certificate for %s", ", ".join(hosts))
            apiserver = _issue(ca, "kube-apiserver", (), server=True, client=False, hosts=hosts)
            cls._store_pair(directory, "apiserver", apiserver)

        admin = cls._load_pair(directory, "admin")
        if admin is None or not _issued_by(admin.cert, ca):
            admin = _issue(ca, ADMIN_USER, (MASTERS_GROUP,), server=False, client=True)
            cls._store_pair(directory, "admin", admin)
        return cls(directory, ca, apiserver, admin)

    @staticmethod
    def _load_pair(directory: Path, stem: str) -> _KeyPair | None:
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        if not (cert_path.exists() and key_path.exists()):
            return None
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: expected an EC private key")
        return _KeyPair(cert, key)

    @staticmethod
    def _store_pair(directory: Path, stem: str, pair: _KeyPair) -> None:
        _write_private(directory / f"{stem}.key", pair.key_pem)
        _write_public(directory / f"{stem}.crt", pair.cert_pem)

    @staticmethod
    def _create_ca() -> _KeyPair:
        key = _new_key()
        now = datetime.datetime.now(datetime.UTC)
        name = _name("kubemark-ca")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return _KeyPair(cert, key)

    # -- public API ------------------------------------------------------------------------------------

    @property
    def ca_pem(self) -> bytes:
        return self._ca_pem

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def admin_cert_pem(self) -> bytes:
        return self._admin.cert_pem

    @property
    def admin_key_pem(self) -> bytes:
        return self._admin.key_pem

    @property
    def apiserver_cert(self) -> x509.Certificate:
        return self._apiserver.cert

    @property
    def service_account_key(self) -> rsa.RSAPrivateKey:
        """The key that signs service-account tokens: `sa.key` in the PKI directory, created on first use and
        kept from then on (every API server process of one master signs and verifies with the same key)."""
        if self._service_account_key is None:
            self._service_account_key = _load_or_create_service_account_key(self.directory)
        return self._service_account_key

    def issue_client_cert(self, common_name: str, organizations: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
        """A fresh client certificate (EKU clientAuth) and its key, both PEM: (cert_pem, key_pem)."""
        pair = _issue(self._ca, common_name, tuple(organizations), server=False, client=True)
        return pair.cert_pem, pair.key_pem

    def node_credentials(self, node_name: str) -> tuple[bytes, bytes]:
        """The kubelet identity of a node: CN=system:node:<name>, O=system:nodes."""
        return self.issue_client_cert(f"system:node:{node_name}", (NODES_GROUP,))

    def node_kubeconfig(self, node_name: str, *, server: str) -> dict[str, Any]:
        """An in-memory kubeconfig (embedded data) for a hollow node's `system:node:<name>` identity."""
        cert_pem, key_pem = self.node_credentials(node_name)
        return kubeconfig_dict(
            server=server, ca_pem=self._ca_pem, cert_pem=cert_pem, key_pem=key_pem, user=f"system:node:{node_name}"
        )

    def write_admin_kubeconfig(self, path: Path, *, server: str) -> None:
        """kubeadm's admin.conf: the kubernetes-admin (system:masters) client certificate."""
        write_kubeconfig(
            path, server=server, ca_pem=self._ca_pem, cert_pem=self.admin_cert_pem, key_pem=self.admin_key_pem
        )

    def server_ssl_context(self) -> ssl.SSLContext:
        """TLS 1.2+ serving the apiserver certificate; client certificates are verified when presented."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.directory / "apiserver.crt", self.directory / "apiserver.key")
        ctx.load_verify_locations(cadata=self._ca_pem.decode("ascii"))
        # Optional, not required: bearer-token and anonymous clients must still be able to connect.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def _load_or_create_service_account_key(directory: Path) -> rsa.RSAPrivateKey:
    key_path = directory / SERVICE_ACCOUNT_KEY
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path}: expected an RSA private key")
        return key
    log.info("creating service-account signing key in %s", directory)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_public(directory / SERVICE_ACCOUNT_PUB, public)
    _write_private(key_path, pem)
    return key


def _covers(cert: x509.Certificate, hosts: Iterable[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    dns = set(san.get_values_for_type(x509.DNSName))
    for host in hosts:
        try:
            if str(ipaddress.ip_address(host)) not in ips:
                return False
        except ValueError:
            if host not in dns:
                return False
    return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kubeconfig_dict(
    *,
    server: str,
    ca_pem: bytes | None,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    user: str = ADMIN_USER,
    cluster: str = "kubemark",
    context: str = "kubemark",
    namespace: str | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """A v1 Config with one cluster, user and context; credentials embedded as *-data (base64)."""
    cluster_body: dict[str, Any] = {"server": server}
    if ca_pem is not None and not insecure:
        cluster_body["certificate-authority-data"] = _b64(ca_pem)
    if insecure:
        cluster_body["insecure-skip-tls-verify"] = True
    user_body: dict[str, Any] = {}
    if cert_pem is not None:
        user_body["client-certificate-data"] = _b64(cert_pem)
    if key_pem is not None:
        user_body["client-key-data"] = _b64(key_pem)
    if token is not None:
        user_body["token"] = token
    context_body: dict[str, Any] = {"cluster": cluster, "user": user}
    if namespace:
        context_body["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": cluster_body}],
        "users": [{"name": user, "user": user_body}],
        "contexts": [{"name": context, "context": context_body}],
        "current-context": context,
    }


class KubeconfigOptions(TypedDict, total=False):
    """`kubeconfig_dict`'s keyword arguments (defaults there), which `write_kubeconfig` takes too."""

    server: Required[str]
    ca_pem: Required[bytes | None]
    cert_pem: bytes | None
    key_pem: bytes | None
    token: str | None
    user: str
    cluster: str
    context: str
    namespace: str | None
    insecure: bool


def write_kubeconfig(path: Path, **options: Unpack[KubeconfigOptions]) -> None:
    """Write a kubeconfig YAML (mode 0600) that kubectl and the official Python client can read: the Config
    `kubeconfig_dict(**options)` builds."""
    config = kubeconfig_dict(**options)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode("utf-8"))
