"""Load cluster credentials from kubeconfig files (merged like kubectl) or from the in-cluster service account.

Only the fields a client needs are kept. `*-data` fields are base64; file fields are read at load time,
resolved relative to the kubeconfig that named them. Exec plugins are resolved here but run by `auth.py`.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ClusterCredentials", "KubeconfigError", "load_in_cluster", "load_kubeconfig"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KubeconfigError(ValueError):
    """A kubeconfig is missing, unreadable or invalid; the message names the field and file."""


@dataclass(frozen=True)
class ClusterCredentials:
    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    insecure_skip_tls_verify: bool = False
    namespace: str = "default"
    exec_config: dict[str, Any] | None = None
    tls_server_name: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    """One named cluster/user/context and the file that defined it."""

    body: dict[str, Any]
    source: Path


def _default_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG", "")
    if env:
        # kubectl skips missing files in the KUBECONFIG list.
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p and Path(p).expanduser().exists()]
    return [Path.home() / ".kube" / "config"]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: cannot read file: {exc.strerror or exc}") from exc
    try:
        doc = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {path}: not valid YAML: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {path}: top level must be a mapping")
    return doc


def _merge(paths: list[Path]) -> tuple[dict[str, dict[str, _Entry]], str]:
    """Merge files with kubectl's rule: the first file to define a name (or current-context) wins."""
    maps: dict[str, dict[str, _Entry]] = {"clusters": {}, "users": {}, "contexts": {}}
    inner = {"clusters": "cluster", "users": "user", "contexts": "context"}
    current = ""
    for path in paths:
        doc = _read_yaml(path)
        if not current and doc.get("current-context"):
            current = str(doc["current-context"])
        for section, key in inner.items():
            items = doc.get(section) or []
            if not isinstance(items, list):
                raise KubeconfigError(f"kubeconfig {path}: field {section} must be a list")
            for i, item in enumerate(items):
                if not isinstance(item, dict) or not item.get("name"):
                    raise KubeconfigError(f"kubeconfig {path}: field {section}[{i}].name is required")
                body = item.get(key) or {}
                if not isinstance(body, dict):
                    raise KubeconfigError(f"kubeconfig {path}: field {section}[{i}].{key} must be a mapping")
                maps[section].setdefault(str(item["name"]), _Entry(body, path))
    return maps, current


def _bytes_field(body: Mapping[str, Any], field: str, where: str, source: Path) -> bytes | None:
    """Read `<field>-data` (base64) or `<field>` (a path relative to the kubeconfig's directory)."""
    data = body.get(f"{field}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubeconfigError(f"kubeconfig {source}: field {where}.{field}-data is not valid base64") from exc
    ref = body.get(field)
    if ref:
        file = _resolve(str(ref), source)
        try:
            return file.read_bytes()
        except OSError as exc:
            raise KubeconfigError(
                f"kubeconfig {source}: field {where}.{field}: cannot read {file}: {exc.strerror or exc}"
            ) from exc
    return None


def _resolve(ref: str, source: Path) -> Path:
    path = Path(ref).expanduser()
    return path if path.is_absolute() else source.parent / path


def _exec_config(body: Mapping[str, Any], where: str, source: Path, cluster: Mapping[str, Any]) -> dict[str, Any]:
    command = body.get("command")
    if not command:
        raise KubeconfigError(f"kubeconfig {source}: field {where}.exec.command is required")
    command = str(command)
    # client-go resolves a relative command with a path separator against the kubeconfig's directory.
    if os.sep in command and not os.path.isabs(command):
        command = str(source.parent / command)
    env = body.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, dict) and "name" in e for e in env):
        raise KubeconfigError(f"kubeconfig {source}: field {where}.exec.env must be a list of {{name, value}}")
    config: dict[str, Any] = {
        "apiVersion": str(body.get("apiVersion") or "client.authentication.k8s.io/v1"),
        "command": command,
        "args": [str(a) for a in body.get("args") or []],
        "env": {str(e["name"]): str(e.get("value", "")) for e in env},
        "provideClusterInfo": bool(body.get("provideClusterInfo", False)),
    }
    if config["provideClusterInfo"]:
        config["cluster"] = dict(cluster)
    return config


def load_kubeconfig(path: str | Path | None = None, context: str | None = None) -> ClusterCredentials:
    """Credentials for `context` (default: current-context) from `path`, $KUBECONFIG or ~/.kube/config."""
    if path is not None:
        paths = [Path(path).expanduser()]
    else:
        paths = _default_paths()
    if not paths:
        raise KubeconfigError("kubeconfig: none of the files in KUBECONFIG exist")
    maps, current = _merge(paths)
    shown = ":".join(str(p) for p in paths)
    name = context or current
    if not name:
        raise KubeconfigError(f"kubeconfig {shown}: field current-context is empty and no context was given")
    ctx_entry = maps["contexts"].get(name)
    if ctx_entry is None:
        raise KubeconfigError(f"kubeconfig {shown}: context {name!r} not found (field contexts)")
    ctx = ctx_entry.body
    cluster_name = ctx.get("cluster")
    cluster_entry = maps["clusters"].get(str(cluster_name)) if cluster_name else None
    if cluster_entry is None:
        raise KubeconfigError(
            f"kubeconfig {ctx_entry.source}: field contexts[{name}].context.cluster: cluster {cluster_name!r} not found"
        )
    cluster, csrc = cluster_entry.body, cluster_entry.source
    where_c = f"clusters[{cluster_name}].cluster"
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"kubeconfig {csrc}: field {where_c}.server is required")
    ca_pem = _bytes_field(cluster, "certificate-authority", where_c, csrc)
    insecure = bool(cluster.get("insecure-skip-tls-verify", False))

    user_name = ctx.get("user")
    user: dict[str, Any] = {}
    usrc = ctx_entry.source
    if user_name:
        user_entry = maps["users"].get(str(user_name))
        if user_entry is None:
            raise KubeconfigError(
                f"kubeconfig {ctx_entry.source}: field contexts[{name}].context.user: user {user_name!r} not found"
            )
        user, usrc = user_entry.body, user_entry.source
    where_u = f"users[{user_name}].user"
    cert_pem = _bytes_field(user, "client-certificate", where_u, usrc)
    key_pem = _bytes_field(user, "client-key", where_u, usrc)
    if (cert_pem is None) != (key_pem is None):
        missing = "client-key" if key_pem is None else "client-certificate"
        raise KubeconfigError(f"kubeconfig {usrc}: field {where_u}.{missing} is required with its pair")
    token = user.get("token")
    token_file = user.get("tokenFile")
    if token_file:
        resolved = _resolve(str(token_file), usrc)
        if token is None:
            try:
                token = resolved.read_text().strip()
            except OSError as exc:
                raise KubeconfigError(
                    f"kubeconfig {usrc}: field {where_u}.tokenFile: cannot read {resolved}: {exc.strerror or exc}"
                ) from exc
        token_file = str(resolved)
    exec_body = user.get("exec")
    exec_config = None
    if exec_body:
        if not isinstance(exec_body, dict):
            raise KubeconfigError(f"kubeconfig {usrc}: field {where_u}.exec must be a mapping")
        cluster_info = {
            "server": str(server),
            "certificate-authority-data": base64.b64encode(ca_pem).decode() if ca_pem else None,
            "insecure-skip-tls-verify": insecure,
        }
        exec_config = _exec_config(exec_body, where_u, usrc, cluster_info)
    return ClusterCredentials(
        server=str(server).rstrip("/"),
        ca_pem=ca_pem,
        cert_pem=cert_pem,
        key_pem=key_pem,
        token=str(token) if token else None,
        token_file=str(token_file) if token_file else None,
        insecure_skip_tls_verify=insecure,
        namespace=str(ctx.get("namespace") or "default"),
        exec_config=exec_config,
        tls_server_name=str(cluster["tls-server-name"]) if cluster.get("tls-server-name") else None,
    )


def load_in_cluster(
    *,
    env: Mapping[str, str] | None = None,
    token_path: str | Path = SERVICE_ACCOUNT_DIR / "token",
    ca_path: str | Path = SERVICE_ACCOUNT_DIR / "ca.crt",
    namespace_path: str | Path = SERVICE_ACCOUNT_DIR / "namespace",
) -> ClusterCredentials:
    """Credentials of the pod's service account (what client-go's InClusterConfig does)."""
    environ = os.environ if env is None else env
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeconfigError(
            "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (not running in a pod?)"
        )
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        token = Path(token_path).read_text().strip()
    except OSError as exc:
        raise KubeconfigError(f"in-cluster: cannot read token file {token_path}: {exc.strerror or exc}") from exc
    try:
        ca_pem: bytes | None = Path(ca_path).read_bytes()
    except OSError as exc:
        raise KubeconfigError(f"in-cluster: cannot read CA file {ca_path}: {exc.strerror or exc}") from exc
    try:
        namespace = Path(namespace_path).read_text().strip() or "default"
    except OSError:
        namespace = "default"
    return ClusterCredentials(
        server=f"https://{host}:{port}",
        ca_pem=ca_pem,
        token=token,
        token_file=str(token_path),
        namespace=namespace,
    )
