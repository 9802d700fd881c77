"""The Secrets and ConfigMaps a pod references, and kubelet's verdicts on them, as pure functions.

`pod_sources(pod)` collects what a kubelet's secret and configmap managers register for a pod (podutil's
VisitPodSecretNames / VisitPodConfigmapNames, restricted to what a hollow node consumes): `secret`,
`configMap` and `projected` (secret / configMap sources) volumes; `envFrom` and `env[].valueFrom`
(`secretKeyRef` / `configMapKeyRef`) of init, regular and ephemeral containers; `imagePullSecrets`. A pod
without any of them gets None, so it costs the kubelet nothing.

Left out: projected `serviceAccountToken` sources (a TokenRequest, not served by the API server yet),
`downwardAPI` / `clusterTrustBundle` sources, and the secrets of CSI / flex / iSCSI ... volumes, which a
hollow node does not mount. Ephemeral containers' references are registered (fetched and watched as kubelet
does) but not resolved, since a hollow node never starts an ephemeral container.

The checks below turn a fetched object (or the fetch's error) into the message kubelet reports: the volume
plugins' SetUp errors (FailedMount events), makeEnvironmentVariables' errors (CreateContainerConfigError)
and getPullSecretsForPod's FailedToRetrieveImagePullSecret event.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

SECRETS = "secrets"
CONFIGMAPS = "configmaps"
_KIND = {SECRETS: "Secret", CONFIGMAPS: "ConfigMap"}
# The watch-based managers' group resources (corev1.Resource("secret") / ("configmap")): their NotFound and
# sync errors say `secret "x" not found`, where a GET's error from the API server says `secrets "x" not found`.
_SINGULAR = {SECRETS: "secret", CONFIGMAPS: "configmap"}

ObjectKey = tuple[str, str]  # (resource, name), within the pod's namespace


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a kubelet keeps of a fetched Secret / ConfigMap: enough to check keys, nothing of the values."""

    resource_version: int
    keys: tuple[str, ...]  # a tuple: a few keys each, and a third of a frozenset's size
    immutable: bool


class FetchError(Exception):
    """A Secret / ConfigMap could not be read; `message` is the error text kubelet reports."""

    def __init__(self, message: str, *, not_found: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.not_found = not_found
        self.status = status


def summarize(resource: str, obj: dict[str, Any]) -> Fetched:
    """The Fetched summary of a Secret / ConfigMap object."""
    meta = obj.get("metadata") or {}
    try:
        rv = int(meta.get("resourceVersion") or 0)
    except ValueError:
        rv = 0
    if resource == SECRETS:
        names = [*(obj.get("data") or {}), *(obj.get("stringData") or {})]
    else:
        names = [*(obj.get("data") or {}), *(obj.get("binaryData") or {})]
    return Fetched(rv, tuple(sorted({sys.intern(k) for k in names})), bool(obj.get("immutable")))


def not_found_message(resource: str, name: str) -> str:
    """The watch-based manager's NotFound text (a GET's NotFound carries the API server's own text)."""
    return f'{_SINGULAR.get(resource, resource)} "{name}" not found'


def sync_timeout_message(resource: str) -> str:
    """The watch-based manager's error when its reflector has not listed within a second."""
    return f"failed to sync {_SINGULAR.get(resource, resource)} cache: timed out waiting for the condition"


# --- what a pod references ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VolumeSource:
    """One Secret / ConfigMap a volume projects; `keys` are its items' keys (empty: all of them)."""

    resource: str
    name: str
    optional: bool
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Volume:
    name: str
    sources: tuple[VolumeSource, ...]


@dataclass(frozen=True, slots=True)
class EnvSource:
    """An envFrom source (`key` None) or one env var's secretKeyRef / configMapKeyRef."""

    resource: str
    name: str
    optional: bool
    key: str | None = None


ContainerEnv = tuple[str, tuple[EnvSource, ...]]  # (container name, its sources in kubelet's order)


@dataclass(frozen=True, slots=True)
class PodSources:
    volumes: tuple[Volume, ...] = ()
    init_env: tuple[ContainerEnv, ...] = ()
    env: tuple[ContainerEnv, ...] = ()
    pull_secrets: tuple[str, ...] = ()
    ephemeral: tuple[ObjectKey, ...] = ()  # registered only

    def objects(self) -> frozenset[ObjectKey]:
        """Every object the managers register for the pod (kubelet's getSecretNames / getConfigMapNames)."""
        keys: set[ObjectKey] = {(SECRETS, n) for n in self.pull_secrets}
        for volume in self.volumes:
            keys.update((s.resource, s.name) for s in volume.sources)
        for _, sources in (*self.init_env, *self.env):
            keys.update((s.resource, s.name) for s in sources)
        keys.update(self.ephemeral)
        return frozenset(keys)

    def env_of(self, container: str) -> tuple[EnvSource, ...]:
        for name, sources in self.env:
            if name == container:
                return sources
        return ()


def _optional(ref: dict[str, Any]) -> bool:
    return bool(ref.get("optional"))


def _items(ref: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(i.get("key", "")) for i in ref.get("items") or [] if isinstance(i, dict))


def _volume(vol: dict[str, Any]) -> Volume | None:
    sources: list[VolumeSource] = []
    secret = vol.get("secret")
    config_map = vol.get("configMap")
    projected = vol.get("projected")
    if isinstance(secret, dict) and secret.get("secretName"):
        sources.append(VolumeSource(SECRETS, str(secret["secretName"]), _optional(secret), _items(secret)))
    elif isinstance(config_map, dict) and config_map.get("name"):
        sources.append(VolumeSource(CONFIGMAPS, str(config_map["name"]), _optional(config_map), _items(config_map)))
    elif isinstance(projected, dict):
        for proj in projected.get("sources") or []:
            if not isinstance(proj, dict):
                continue
            for field, resource in (("secret", SECRETS), ("configMap", CONFIGMAPS)):
                ref = proj.get(field)
                if isinstance(ref, dict) and ref.get("name"):
                    sources.append(VolumeSource(resource, str(ref["name"]), _optional(ref), _items(ref)))
            # serviceAccountToken needs a TokenRequest (not served yet); downwardAPI reads the pod itself.
    return Volume(str(vol.get("name", "")), tuple(sources)) if sources else None


def _container_env(container: dict[str, Any]) -> tuple[EnvSource, ...]:
    """kubelet's makeEnvironmentVariables order: envFrom first, then env."""
    out: list[EnvSource] = []
    for src in container.get("envFrom") or []:
        if not isinstance(src, dict):
            continue
        for field, resource in (("configMapRef", CONFIGMAPS), ("secretRef", SECRETS)):
            ref = src.get(field)
            if isinstance(ref, dict) and ref.get("name"):
                out.append(EnvSource(resource, str(ref["name"]), _optional(ref)))
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") if isinstance(var, dict) else None
        if not isinstance(value_from, dict):
            continue
        for field, resource in (("configMapKeyRef", CONFIGMAPS), ("secretKeyRef", SECRETS)):
            ref = value_from.get(field)
            if isinstance(ref, dict) and ref.get("name"):
                out.append(EnvSource(resource, str(ref["name"]), _optional(ref), str(ref.get("key", ""))))
    return tuple(out)


def _containers_env(containers: Any) -> tuple[ContainerEnv, ...]:
    out = []
    for c in containers or []:
        if isinstance(c, dict) and (c.get("env") or c.get("envFrom")):
            sources = _container_env(c)
            if sources:
                out.append((str(c.get("name", "")), sources))
    return tuple(out)


def pod_sources(pod: dict[str, Any]) -> PodSources | None:
    """The Secrets / ConfigMaps the pod references, or None if it references none."""
    spec = pod.get("spec") or {}
    volumes = tuple(v for v in (_volume(vol) for vol in spec.get("volumes") or [] if isinstance(vol, dict)) if v)
    pull = tuple(
        str(ref["name"]) for ref in spec.get("imagePullSecrets") or [] if isinstance(ref, dict) and ref.get("name")
    )
    init_env = _containers_env(spec.get("initContainers"))
    env = _containers_env(spec.get("containers"))
    ephemeral = tuple(
        (s.resource, s.name) for _, sources in _containers_env(spec.get("ephemeralContainers")) for s in sources
    )
    if not (volumes or pull or init_env or env or ephemeral):
        return None
    return PodSources(volumes, init_env, env, pull, ephemeral)


# --- kubelet's verdicts ------------------------------------------------------------------------------------

Result = Fetched | FetchError


def volume_source_error(source: VolumeSource, result: Result) -> str | None:
    """The secret / configmap volume plugin's SetUp error for one source, or None if it mounts."""
    if isinstance(result, FetchError):
        if result.not_found and source.optional:
            return None  # an optional missing object mounts as an empty volume
        return result.message
    if not source.optional:
        for key in source.keys:
            if key not in result.keys:
                if source.resource == SECRETS:
                    return f"references non-existent secret key: {key}"
                return f"configmap references non-existent config key: {key}"
    return None


def mount_failed_message(volume: str, errors: list[str]) -> str:
    """The FailedMount event of a volume whose SetUp failed (a projected volume aggregates its sources')."""
    text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return f'MountVolume.SetUp failed for volume "{volume}" : {text}'


def env_source_error(source: EnvSource, namespace: str, result: Result) -> str | None:
    """makeEnvironmentVariables' error for one source, or None if it resolves (or may be skipped)."""
    if isinstance(result, FetchError):
        if result.not_found and source.optional:
            return None
        return result.message
    if source.key is not None and source.key not in result.keys and not source.optional:
        return f"couldn't find key {source.key} in {_KIND[source.resource]} {namespace}/{source.name}"
    return None


def pull_secrets_message(failed: list[str]) -> str:
    """getPullSecretsForPod's FailedToRetrieveImagePullSecret event (the pull goes on without them)."""
    return (
        f"Unable to retrieve some image pull secrets ({', '.join(failed)}); attempting to pull the image may not "
        "succeed."
    )
