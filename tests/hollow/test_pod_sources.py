"""pod_sources: what a pod references and kubelet's verdicts on fetched (or missing) Secrets / ConfigMaps."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from kubemark.client.errors import APIError
from kubemark.hollow import object_managers
from kubemark.hollow.object_managers import CacheManager, GetManager
from kubemark.hollow.pod_sources import (
    CONFIGMAPS,
    SECRETS,
    EnvSource,
    Fetched,
    FetchError,
    VolumeSource,
    env_source_error,
    mount_failed_message,
    not_found_message,
    pod_sources,
    pull_secrets_message,
    summarize,
    volume_source_error,
)


def _pod(**spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "app", "image": "pause"}])
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


def test_a_pod_without_references_has_none() -> None:
    pod = _pod(
        volumes=[{"name": "scratch", "emptyDir": {}}],
        containers=[{"name": "app", "env": [{"name": "A", "value": "1"}]}],
    )
    assert pod_sources(pod) is None


def test_every_kind_of_reference_is_collected() -> None:
    pod = _pod(
        imagePullSecrets=[{"name": "pull"}, {"name": ""}],
        volumes=[
            {"name": "s", "secret": {"secretName": "vol-secret", "items": [{"key": "k", "path": "p"}]}},
            {"name": "c", "configMap": {"name": "vol-cm", "optional": True}},
            {
                "name": "proj",
                "projected": {
                    "sources": [
                        {"secret": {"name": "proj-secret"}},
                        {"configMap": {"name": "proj-cm"}},
                        {"serviceAccountToken": {"path": "token"}},  # a TokenRequest: skipped
                        {"downwardAPI": {"items": []}},
                    ]
                },
            },
        ],
        initContainers=[{"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
        containers=[
            {
                "name": "app",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "a"}}},
                    {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "envfrom-cm", "optional": True}}],
            },
            {"name": "plain"},
        ],
        ephemeralContainers=[{"name": "debug", "envFrom": [{"configMapRef": {"name": "debug-cm"}}]}],
    )
    sources = pod_sources(pod)
    assert sources is not None
    assert sources.pull_secrets == ("pull",)
    assert [(v.name, [(s.resource, s.name) for s in v.sources]) for v in sources.volumes] == [
        ("s", [(SECRETS, "vol-secret")]),
        ("c", [(CONFIGMAPS, "vol-cm")]),
        ("proj", [(SECRETS, "proj-secret"), (CONFIGMAPS, "proj-cm")]),
    ]
    assert sources.volumes[0].sources[0].keys == ("k",)
    assert sources.volumes[1].sources[0].optional
    # envFrom before env, as makeEnvironmentVariables resolves them.
    assert sources.env_of("app") == (
        EnvSource(CONFIGMAPS, "envfrom-cm", True),
        EnvSource(SECRETS, "env-secret", False, "a"),
    )
    assert sources.env_of("plain") == ()
    assert sources.init_env == (("init", (EnvSource(SECRETS, "init-secret", False),)),)
    assert sources.objects() == {
        (SECRETS, "pull"),
        (SECRETS, "vol-secret"),
        (CONFIGMAPS, "vol-cm"),
        (SECRETS, "proj-secret"),
        (CONFIGMAPS, "proj-cm"),
        (SECRETS, "init-secret"),
        (SECRETS, "env-secret"),
        (CONFIGMAPS, "envfrom-cm"),
        (CONFIGMAPS, "debug-cm"),
    }


def test_summaries_keep_keys_and_flags_but_no_values() -> None:
    secret = {"metadata": {"resourceVersion": "17"}, "data": {"a": "eA=="}, "stringData": {"b": "y"}, "immutable": True}
    assert summarize(SECRETS, secret) == Fetched(17, ("a", "b"), True)
    cm = {"metadata": {}, "data": {"x": "1"}, "binaryData": {"y": "AA=="}}
    assert summarize(CONFIGMAPS, cm) == Fetched(0, ("x", "y"), False)


def test_volume_verdicts_follow_the_volume_plugins() -> None:
    present = Fetched(1, ("k",), False)
    gone = FetchError('secrets "s" not found', not_found=True)
    forbidden = FetchError('secrets "s" is forbidden', status=403)
    assert volume_source_error(VolumeSource(SECRETS, "s", False), present) is None
    assert volume_source_error(VolumeSource(SECRETS, "s", False), gone) == 'secrets "s" not found'
    assert volume_source_error(VolumeSource(SECRETS, "s", True), gone) is None  # mounts empty
    assert volume_source_error(VolumeSource(SECRETS, "s", True), forbidden) == 'secrets "s" is forbidden'
    missing_key = VolumeSource(SECRETS, "s", False, ("k", "other"))
    assert volume_source_error(missing_key, present) == "references non-existent secret key: other"
    cm_key = VolumeSource(CONFIGMAPS, "c", False, ("other",))
    assert volume_source_error(cm_key, present) == "configmap references non-existent config key: other"
    assert volume_source_error(VolumeSource(CONFIGMAPS, "c", True, ("other",)), present) is None
    assert mount_failed_message("v", ["e1"]) == 'MountVolume.SetUp failed for volume "v" : e1'
    assert mount_failed_message("v", ["e1", "e2"]) == 'MountVolume.SetUp failed for volume "v" : [e1, e2]'
    assert not_found_message(SECRETS, "s") == 'secret "s" not found'
    assert not_found_message(CONFIGMAPS, "c") == 'configmap "c" not found'


def test_env_verdicts_follow_make_environment_variables() -> None:
    present = Fetched(1, ("a",), False)
    gone = FetchError('configmaps "c" not found', not_found=True)
    assert env_source_error(EnvSource(CONFIGMAPS, "c", False), "ns", gone) == 'configmaps "c" not found'
    assert env_source_error(EnvSource(CONFIGMAPS, "c", True), "ns", gone) is None
    assert env_source_error(EnvSource(CONFIGMAPS, "c", False, "a"), "ns", present) is None
    assert (
        env_source_error(EnvSource(CONFIGMAPS, "c", False, "b"), "ns", present)
        == "couldn't find key b in ConfigMap ns/c"
    )
    assert env_source_error(EnvSource(SECRETS, "s", False, "b"), "ns", present) == "couldn't find key b in Secret ns/s"
    assert env_source_error(EnvSource(SECRETS, "s", True, "b"), "ns", present) is None
    assert pull_secrets_message(["a", "b"]) == (
        "Unable to retrieve some image pull secrets (a, b); attempting to pull the image may not succeed."
    )


# --- the managers, against a fake client ---------------------------------------------------------------


class FakeClient:
    """Answers GETs from `objects` (path -> object or APIError); `gate` holds answers back until set."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.calls: list[tuple[str, Any]] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def get(self, path: str, *, params: Any = None) -> Any:
        self.calls.append((path, params))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        answer = self.objects.get(path, APIError(404, "NotFound", f'secrets "{path.rsplit("/", 1)[-1]}" not found'))
        if isinstance(answer, APIError):
            raise answer
        return answer


SECRET_PATH = "/api/v1/namespaces/ns/secrets/s"


def _secret(rv: int, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": "s", "resourceVersion": str(rv)}, "data": data}


async def test_cache_reads_once_per_registration_and_ttl() -> None:
    client = FakeClient()
    client.objects[SECRET_PATH] = _secret(5, a="x")
    now = [0.0]
    ttl: list[float | None] = [None]
    cache = CacheManager(client, random.Random(0), ttl=lambda: ttl[0], clock=lambda: now[0])  # type: ignore[arg-type]
    with pytest.raises(FetchError, match="not registered"):
        await cache.get(SECRETS, "ns", "s")
    cache.register("ns", [(SECRETS, "s")])
    cache.register("ns", [(SECRETS, "s")])
    # Two readers at once: one GET, the other waits for its answer.
    client.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.get(SECRETS, "ns", "s")) for _ in range(2)]
    await client.entered.wait()  # the first reader is in its GET; the second, started with it, waits on it
    client.gate.set()
    assert [r.keys for r in await asyncio.gather(*readers)] == [("a",)] * 2
    assert client.calls == [(SECRET_PATH, None)]
    client.gate = None
    now[0] = 59.0
    await cache.get(SECRETS, "ns", "s")
    assert len(client.calls) == 1  # within kubelet's default TTL of 60 s
    now[0] = 61.0
    await cache.get(SECRETS, "ns", "s")
    assert client.calls[-1] == (SECRET_PATH, {"resourceVersion": "0"})  # a refresh reads the server's cache
    # An older copy (a lagging cache) never replaces a newer one; a refused refresh keeps the cached copy.
    client.objects[SECRET_PATH] = _secret(3)
    ttl[0] = 0.0
    assert (await cache.get(SECRETS, "ns", "s")).resource_version == 5
    client.objects[SECRET_PATH] = APIError(500, "InternalError", "etcd is down")
    assert (await cache.get(SECRETS, "ns", "s")).resource_version == 5
    # NotFound is cached as the answer (and asked again on the next read).
    client.objects[SECRET_PATH] = APIError(404, "NotFound", 'secrets "s" not found')
    with pytest.raises(FetchError) as info:
        await cache.get(SECRETS, "ns", "s")
    assert info.value.not_found and info.value.message == 'secrets "s" not found'
    # Registering a pod again invalidates: the next read is a fresh (consistent) GET.
    client.objects[SECRET_PATH] = _secret(9)
    ttl[0] = None
    cache.register("ns", [(SECRETS, "s")])
    assert (await cache.get(SECRETS, "ns", "s")).resource_version == 9
    assert client.calls[-1] == (SECRET_PATH, None)
    cache.unregister("ns", [(SECRETS, "s")] * 3)
    assert len(cache) == 0


async def test_a_forbidden_get_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(object_managers, "FORBIDDEN_GRACE", 0.5)
    client = FakeClient()
    client.objects[SECRET_PATH] = APIError(403, "Forbidden", 'secrets "s" is forbidden: no relationship found')
    getter = GetManager(client, random.Random(0))  # type: ignore[arg-type]
    with pytest.raises(FetchError) as info:
        await getter.get(SECRETS, "ns", "s")
    assert info.value.status == 403 and "forbidden" in info.value.message
    assert getter.forbidden_retries >= 2 and getter.gets == getter.forbidden_retries + 1
