"""ClusterPKI: creation, reload, certificate contents, TLS contexts and kubeconfigs real clients read."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubemark.master.pki import ClusterPKI, kubeconfig_dict, write_kubeconfig

KUBECTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl"


def _subject(cert: x509.Certificate) -> tuple[str, list[str]]:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cn), [str(o) for o in orgs]


def _eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_creates_files_with_private_key_modes(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    ClusterPKI.load_or_create(pki_dir)
    for stem in ("ca", "apiserver", "admin"):
        assert (pki_dir / f"{stem}.crt").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        key_mode = stat.S_IMODE((pki_dir / f"{stem}.key").stat().st_mode)
        assert key_mode == 0o600, (stem, oct(key_mode))
    assert stat.S_IMODE(pki_dir.stat().st_mode) == 0o700


def test_reload_reuses_everything(tmp_path: Path) -> None:
    first = ClusterPKI.load_or_create(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    second = ClusterPKI.load_or_create(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert before == after
    assert first.ca_pem == second.ca_pem
    assert first.admin_cert_pem == second.admin_cert_pem


def test_new_host_reissues_serving_cert_but_keeps_ca(tmp_path: Path) -> None:
    first = ClusterPKI.load_or_create(tmp_path)
    second = ClusterPKI.load_or_create(tmp_path, hosts=("127.0.0.1", "10.1.2.3", "master.example"))
    assert second.ca_pem == first.ca_pem
    san = second.apiserver_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.1.2.3") in san.get_values_for_type(x509.IPAddress)
    assert "master.example" in san.get_values_for_type(x509.DNSName)
    assert second.apiserver_cert.serial_number != first.apiserver_cert.serial_number


def test_apiserver_cert_contents(tmp_path: Path) -> None:
    pki = ClusterPKI.load_or_create(tmp_path)
    cert = pki.apiserver_cert
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = set(san.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= ips
    assert {"localhost", "kubernetes.default.svc"} <= set(san.get_values_for_type(x509.DNSName))
    assert _eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_admin_and_node_client_certs(tmp_path: Path) -> None:
    pki = ClusterPKI.load_or_create(tmp_path)
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    admin = x509.load_pem_x509_certificate(pki.admin_cert_pem)
    assert _subject(admin) == ("kubernetes-admin", ["system:masters"])
    assert _eku(admin) == {ExtendedKeyUsageOID.CLIENT_AUTH}

    cert_pem, key_pem = pki.node_credentials("n1")
    node = x509.load_pem_x509_certificate(cert_pem)
    node.verify_directly_issued_by(ca)
    assert _subject(node) == ("system:node:n1", ["system:nodes"])
    assert _eku(node) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")

    other_pem, _ = pki.issue_client_cert("alice", ("team-a", "team-b"))
    assert _subject(x509.load_pem_x509_certificate(other_pem)) == ("alice", ["team-a", "team-b"])


def test_server_ssl_context(tmp_path: Path) -> None:
    ctx = ClusterPKI.load_or_create(tmp_path).server_ssl_context()
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert len(ctx.get_ca_certs()) == 1


def test_node_kubeconfig_embeds_node_identity(tmp_path: Path) -> None:
    import base64

    pki = ClusterPKI.load_or_create(tmp_path)
    config = pki.node_kubeconfig("n7", server="https://127.0.0.1:6443")
    user = config["users"][0]
    assert user["name"] == "system:node:n7"
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["user"]["client-certificate-data"]))
    assert _subject(cert) == ("system:node:n7", ["system:nodes"])
    cluster = config["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_pem
    assert config["current-context"] == config["contexts"][0]["name"]


def test_kubeconfig_token_and_insecure_forms() -> None:
    config = kubeconfig_dict(server="https://h:1", ca_pem=b"x", token="t0k", insecure=True, namespace="ns")
    assert config["users"][0]["user"] == {"token": "t0k"}
    assert config["clusters"][0]["cluster"] == {"server": "https://h:1", "insecure-skip-tls-verify": True}
    assert config["contexts"][0]["context"]["namespace"] == "ns"


def test_kubeconfig_file_read_by_official_python_client(tmp_path: Path) -> None:
    from kubernetes import client, config

    pki = ClusterPKI.load_or_create(tmp_path / "pki")
    path = tmp_path / "admin.conf"
    pki.write_admin_kubeconfig(path, server="https://127.0.0.1:6443")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == "https://127.0.0.1:6443"
    assert Path(configuration.ssl_ca_cert).read_bytes() == pki.ca_pem
    assert Path(configuration.cert_file).read_bytes() == pki.admin_cert_pem
    assert Path(configuration.key_file).read_bytes() == pki.admin_key_pem


@pytest.mark.kubectl
def test_kubeconfig_file_read_by_kubectl(tmp_path: Path) -> None:
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    pki = ClusterPKI.load_or_create(tmp_path / "pki")
    path = tmp_path / "node.conf"
    write_kubeconfig(path, server="https://127.0.0.1:6443", ca_pem=pki.ca_pem, token="abc", namespace="kube-system")
    out = subprocess.run(
        [kubectl, "--kubeconfig", str(path), "config", "view", "--raw", "-o", "yaml"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    seen = yaml.safe_load(out)
    assert seen["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert seen["users"][0]["user"]["token"] == "abc"
    assert seen["contexts"][0]["context"]["namespace"] == "kube-system"
