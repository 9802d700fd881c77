"""kubeconfig loading: data and file forms, contexts, merged KUBECONFIG, errors, in-cluster."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubemark.client.kubeconfig import KubeconfigError, load_in_cluster, load_kubeconfig


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def config(
    clusters: dict[str, dict[str, Any]],
    users: dict[str, dict[str, Any]],
    contexts: dict[str, dict[str, Any]],
    current: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_data_fields_and_current_context(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        config(
            {"c1": {"server": "https://10.0.0.1:6443/", "certificate-authority-data": b64(b"CA")}},
            {"u1": {"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")}},
            {"ctx": {"cluster": "c1", "user": "u1", "namespace": "team"}},
            current="ctx",
        ),
    )
    creds = load_kubeconfig(path)
    assert creds.server == "https://10.0.0.1:6443"
    assert (creds.ca_pem, creds.cert_pem, creds.key_pem) == (b"CA", b"CERT", b"KEY")
    assert creds.namespace == "team"
    assert creds.token is None and creds.exec_config is None and not creds.insecure_skip_tls_verify


def test_file_fields_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    d = tmp_path / "conf"
    (d / "pki").mkdir(parents=True)
    (d / "pki" / "ca.crt").write_bytes(b"CAFILE")
    (d / "pki" / "c.crt").write_bytes(b"CERTFILE")
    (d / "pki" / "c.key").write_bytes(b"KEYFILE")
    (d / "tok").write_text("tok-from-file\n")
    path = write(
        d / "kc.yaml",
        config(
            {"c": {"server": "https://h", "certificate-authority": "pki/ca.crt"}},
            {"u": {"client-certificate": "pki/c.crt", "client-key": "pki/c.key", "tokenFile": "tok"}},
            {"x": {"cluster": "c", "user": "u"}},
            current="x",
        ),
    )
    creds = load_kubeconfig(path)
    assert (creds.ca_pem, creds.cert_pem, creds.key_pem) == (b"CAFILE", b"CERTFILE", b"KEYFILE")
    assert creds.token == "tok-from-file"
    assert creds.token_file == str(d / "tok")
    assert creds.namespace == "default"


def test_explicit_context_overrides_current(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        config(
            {"a": {"server": "https://a"}, "b": {"server": "http://b:8080", "insecure-skip-tls-verify": True}},
            {"ua": {"token": "ta"}, "ub": {"token": "tb"}},
            {"ca": {"cluster": "a", "user": "ua"}, "cb": {"cluster": "b", "user": "ub"}},
            current="ca",
        ),
    )
    assert load_kubeconfig(path).token == "ta"
    other = load_kubeconfig(path, context="cb")
    assert (other.server, other.token, other.insecure_skip_tls_verify) == ("http://b:8080", "tb", True)


def test_merged_kubeconfig_env_first_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write(
        tmp_path / "one" / "config",
        config({"shared": {"server": "https://first"}}, {"u": {"token": "t1"}}, {}, current="ctx2"),
    )
    (tmp_path / "two" / "ca.pem").parent.mkdir(parents=True)
    (tmp_path / "two" / "ca.pem").write_bytes(b"CA2")
    second = write(
        tmp_path / "two" / "config",
        config(
            {
                "shared": {"server": "https://second"},
                "own": {"server": "https://own", "certificate-authority": "ca.pem"},
            },
            {"u": {"token": "t2"}},
            {"ctx2": {"cluster": "shared", "user": "u"}, "ctx3": {"cluster": "own", "user": "u"}},
            current="ctx3",
        ),
    )
    missing = tmp_path / "nope"
    monkeypatch.setenv("KUBECONFIG", f"{first}:{missing}:{second}")
    creds = load_kubeconfig()
    # current-context from the first file that sets it; clusters and users from the first file defining them.
    assert (creds.server, creds.token) == ("https://first", "t1")
    own = load_kubeconfig(context="ctx3")
    # Relative paths resolve against the file that defined the entry.
    assert own.ca_pem == b"CA2"


def test_exec_config_resolution(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        config(
            {"c": {"server": "https://h", "certificate-authority-data": b64(b"CA")}},
            {
                "u": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "./bin/plugin",
                        "args": ["--x", 1],
                        "env": [{"name": "A", "value": "b"}],
                        "provideClusterInfo": True,
                    }
                }
            },
            {"x": {"cluster": "c", "user": "u"}},
            current="x",
        ),
    )
    ex = load_kubeconfig(path).exec_config
    assert ex is not None
    assert ex["command"] == str(tmp_path / "bin" / "plugin")
    assert ex["args"] == ["--x", "1"] and ex["env"] == {"A": "b"}
    assert ex["cluster"]["server"] == "https://h" and ex["cluster"]["certificate-authority-data"] == b64(b"CA")


@pytest.mark.parametrize(
    ("clusters", "users", "contexts", "current", "needle"),
    [
        ({"c": {}}, {}, {"x": {"cluster": "c"}}, "x", "clusters[c].cluster.server"),
        ({"c": {"server": "s"}}, {}, {"x": {"cluster": "c"}}, "y", "context 'y' not found"),
        ({"c": {"server": "s"}}, {}, {"x": {"cluster": "d"}}, "x", "contexts[x].context.cluster"),
        ({"c": {"server": "s"}}, {}, {"x": {"cluster": "c", "user": "u"}}, "x", "user 'u' not found"),
        (
            {"c": {"server": "s", "certificate-authority-data": "!!notbase64"}},
            {},
            {"x": {"cluster": "c"}},
            "x",
            "clusters[c].cluster.certificate-authority-data",
        ),
        (
            {"c": {"server": "s", "certificate-authority": "missing.pem"}},
            {},
            {"x": {"cluster": "c"}},
            "x",
            "clusters[c].cluster.certificate-authority",
        ),
        (
            {"c": {"server": "s"}},
            {"u": {"client-certificate-data": b64(b"C")}},
            {"x": {"cluster": "c", "user": "u"}},
            "x",
            "users[u].user.client-key",
        ),
        (
            {"c": {"server": "s"}},
            {"u": {"exec": {"args": []}}},
            {"x": {"cluster": "c", "user": "u"}},
            "x",
            "users[u].user.exec.command",
        ),
        ({"c": {"server": "s"}}, {}, {"x": {"cluster": "c"}}, None, "current-context"),
    ],
)
def test_errors_name_the_field_and_file(
    tmp_path: Path, clusters: Any, users: Any, contexts: Any, current: str | None, needle: str
) -> None:
    path = write(tmp_path / "bad.yaml", config(clusters, users, contexts, current))
    with pytest.raises(KubeconfigError) as info:
        load_kubeconfig(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="cannot read"):
        load_kubeconfig(tmp_path / "absent")
    bad = tmp_path / "bad"
    bad.write_text("clusters: [unclosed")
    with pytest.raises(KubeconfigError, match="not valid YAML"):
        load_kubeconfig(bad)


def test_in_cluster_with_injected_paths(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_bytes(b"CLUSTERCA")
    (tmp_path / "namespace").write_text("kubemark")
    creds = load_in_cluster(
        env={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
        token_path=tmp_path / "token",
        ca_path=tmp_path / "ca.crt",
        namespace_path=tmp_path / "namespace",
    )
    assert creds.server == "https://[fd00::1]:443"
    assert (creds.token, creds.ca_pem, creds.namespace) == ("sa-token", b"CLUSTERCA", "kubemark")
    assert creds.token_file == str(tmp_path / "token")


def test_in_cluster_errors(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="KUBERNETES_SERVICE_HOST"):
        load_in_cluster(env={})
    with pytest.raises(KubeconfigError, match="token"):
        load_in_cluster(
            env={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
            token_path=tmp_path / "none",
        )
