"""ConfigMap and Secret rules: valid keys, the 1 MiB size limit, Secret types and their required keys,
`stringData` folded into base64 `data`, and `immutable: true`. ServiceAccounts use the base strategy.

Upstream: ValidateConfigMap / ValidateSecret (+ Update), SetDefaults_Secret, and the v1 Secret conversion
that merges stringData.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj

MAX_SIZE = 1024 * 1024  # MaxSecretSize and MaxConfigMapSize
_IMMUTABLE_DETAIL = "field is immutable when `immutable` is set"
# Keys a typed Secret must carry (kubernetes.io/service-account-token is checked by its annotation).
SECRET_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"


def _validate_keys(path: str, data: Any) -> list[Cause]:
    if data is None:
        return []
    if not isinstance(data, dict):
        return [field.invalid(path, data, "must be an object")]
    causes: list[Cause] = []
    for key in data:
        causes += field.config_key(f"{path}[{key}]", key)
    return causes


def _immutability(new: Obj, old: Obj, keys: tuple[str, ...]) -> list[Cause]:
    if not old.get("immutable"):
        return []
    causes = []
    if not new.get("immutable"):
        causes.append(field.forbidden("immutable", _IMMUTABLE_DETAIL))
    for key in keys:
        if (new.get(key) or {}) != (old.get(key) or {}):
            causes.append(field.forbidden(key, _IMMUTABLE_DETAIL))
    return causes


def validate_config_map(obj: Obj) -> list[Cause]:
    data, binary = obj.get("data"), obj.get("binaryData")
    causes = _validate_keys("data", data) + _validate_keys("binaryData", binary)
    if causes:
        return causes
    data, binary = data or {}, binary or {}
    for key in binary:
        if key in data:
            causes.append(field.invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
    size = sum(len(str(v).encode()) for v in data.values())
    size += sum(len(_decoded(v) or b"") for v in binary.values())
    if size > MAX_SIZE:
        causes.append(field.too_long("", "", MAX_SIZE))
    return causes


def _decoded(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def merge_string_data(obj: Obj) -> None:
    """stringData entries overwrite data entries (base64-encoded); stringData itself is never stored."""
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data") or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def validate_secret(obj: Obj) -> list[Cause]:
    data = obj.get("data")
    causes = _validate_keys("data", data)
    if causes:
        return causes
    data = data or {}
    size = 0
    for key, value in data.items():
        decoded = _decoded(value)
        if decoded is None:
            causes.append(field.invalid(f"data[{key}]", value, "illegal base64 data"))
        else:
            size += len(decoded)
    if size > MAX_SIZE:
        causes.append(field.too_long("data", "", MAX_SIZE))
    secret_type = obj.get("type") or "Opaque"
    for key in SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if key not in data:
            causes.append(field.required(f"data[{key}]"))
    if secret_type == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(SA_NAME_ANNOTATION):
            causes.append(field.required(f"metadata.annotations[{SA_NAME_ANNOTATION}]"))
    return causes


@dataclass
class ConfigMapStrategy(KindStrategy):
    def validate(self, obj: Obj) -> list[Cause]:
        return validate_config_map(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_config_map(new) + _immutability(new, old, ("data", "binaryData"))


@dataclass
class SecretStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        if not obj["type"]:
            obj["type"] = "Opaque"
        merge_string_data(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_secret(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if not new.get("type"):
            new["type"] = "Opaque"
        merge_string_data(new)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = validate_secret(new)
        if new.get("type") != old.get("type"):
            causes.append(field.immutable("type", new.get("type")))
        return causes + _immutability(new, old, ("data",))
