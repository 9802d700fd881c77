"""The Player with clusterloader2's executor semantics, against the in-process API server: cluster-scoped phases,
one tuning-set action per replica index of a bundle (created in order, deleted in reverse), listUnknownObjectOptions,
empty templates, `.BaseName`; and the automanaged namespace options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubemark.client import ClusterCredentials, RestClient, resource_path
from kubemark.load.config import load_test_config
from kubemark.load.namespaces import NamespaceError
from kubemark.load.player import Player, PlayerError
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.measure.api_responsiveness import ApiCallRecorder

CM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.Name}}
  labels: {base: {{.BaseName}}}
data: {index: "{{.Index}}", namespace: "{{.Namespace}}"}
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{.Name}}
stringData: {configmap: "{{.BaseName}}-{{.Index}}"}
"""
PRIORITY = """\
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: {{.Name}}
value: {{AddInt 1000 .Index}}
"""


@pytest.fixture
async def client() -> AsyncIterator[tuple[RestClient, ApiCallRecorder]]:
    server = APIServer(APIServerConfig(storage="memory", compaction_interval=0))
    await server.start()
    recorder = ApiCallRecorder()
    c = RestClient(ClusterCredentials(server=server.url), qps=0, burst=1, max_retries=1, on_request=recorder.on_request)
    try:
        yield c, recorder
    finally:
        await c.close()
        await server.stop()


def write(tmp_path: Path, config: str) -> Path:
    (tmp_path / "cm.yaml").write_text(CM)
    (tmp_path / "secret.yaml").write_text(SECRET)
    (tmp_path / "priority.yaml").write_text(PRIORITY)
    (tmp_path / "empty.yaml").write_text("{{if false}}kind: Nothing{{end}}\n")
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return path


BUNDLES = """\
name: bundles
namespace: {number: 1, prefix: bun}
tuningSets:
- {name: Seq, parallelismLimitedLoad: {parallelismLimit: 1}}
steps:
{{range $r := .Plan}}
- phases:
  - replicasPerNamespace: {{$r}}
    tuningSet: Seq
    objectBundle:
    - {basename: prio, objectTemplatePath: priority.yaml}
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: {{$r}}
    tuningSet: Seq
    objectBundle:
    - {basename: pair, objectTemplatePath: cm.yaml}
    - {basename: pair, objectTemplatePath: secret.yaml}
    - {basename: pair, objectTemplatePath: empty.yaml}
{{end}}
"""


async def test_bundles_cluster_scope_and_placeholders(
    tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]
) -> None:
    rest, recorder = client
    config = load_test_config(write(tmp_path, BUNDLES), {"Plan": [2, 0]})
    player = Player(rest, config)
    await player.create_namespaces()

    await player.run_phases(config.steps[0].phases)
    classes, _ = await rest.list_all(resource_path("scheduling.k8s.io", "v1", "priorityclasses"))
    assert {c["metadata"]["name"]: c["value"] for c in classes if c["metadata"]["name"].startswith("prio-")} == {
        "prio-0": 1000,
        "prio-1": 1001,
    }  # no namespaceRange: cluster-scoped objects, as clusterloader2
    cms, _ = await rest.list_all(resource_path("", "v1", "configmaps", "bun-1"))
    mine = {c["metadata"]["name"]: c for c in cms if c["metadata"]["name"].startswith("pair-")}
    assert mine["pair-1"]["data"] == {"index": "1", "namespace": "bun-1"}
    assert mine["pair-1"]["metadata"]["labels"] == {"base": "pair"}
    secret = await rest.get(resource_path("", "v1", "secrets", "bun-1", name="pair-1"))
    assert secret["metadata"]["name"] == "pair-1"
    # The empty template renders to nothing and is skipped; ConfigMap before Secret within each index.
    writes = [
        (c.verb, c.resource) for c in recorder.calls if c.verb == "POST" and c.resource in ("configmaps", "secrets")
    ]
    assert writes == [("POST", "configmaps"), ("POST", "secrets")] * 2

    recorder.calls.clear()
    await player.run_phases(config.steps[1].phases)
    deletes = [c.resource for c in recorder.calls if c.verb == "DELETE" and c.resource in ("configmaps", "secrets")]
    assert deletes == ["secrets", "configmaps"] * 2  # a bundle is deleted in reverse order
    assert player.done["create"] == 2 + 4 and player.done["delete"] == 2 + 4


async def test_inconsistent_bundle_is_an_error(tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]) -> None:
    rest, _ = client
    text = BUNDLES.replace("    - {basename: pair, objectTemplatePath: secret.yaml}\n", "")
    config = load_test_config(write(tmp_path, text), {"Plan": [1]})
    player = Player(rest, config)
    await player.create_namespaces()
    await player.run_phases(config.steps[0].phases)
    grown = config.steps[0].phases[1].model_copy(deep=True)
    grown.object_bundle.append(config.steps[0].phases[1].object_bundle[0].model_copy(update={"basename": "other"}))
    with pytest.raises(PlayerError, match="bundle error in bun-1: replica counts differ"):
        await player.run_phases([grown])


async def test_list_unknown_objects_counts_existing_ones(
    tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]
) -> None:
    rest, _ = client
    text = """\
name: unknown
namespace: {number: 1, prefix: unk}
tuningSets:
- {name: Seq, parallelismLimitedLoad: {parallelismLimit: 1}}
steps:
- phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 0
    tuningSet: Seq
    objectBundle:
    - basename: made
      objectTemplatePath: cm.yaml
      listUnknownObjectOptions:
        labelSelector: {matchLabels: {owner: someone-else}}
"""
    config = load_test_config(write(tmp_path, text), {})
    player = Player(rest, config)
    await player.create_namespaces()
    path = resource_path("", "v1", "configmaps", "unk-1")
    for i in range(3):  # made by something else (a StatefulSet's PVCs, in clusterloader2's load test)
        await rest.create(path, {"metadata": {"name": f"made-{i}", "labels": {"owner": "someone-else"}}})
    await rest.create(path, {"metadata": {"name": "made-9", "labels": {"owner": "me"}}})
    await player.run_phases(config.steps[0].phases)
    left, _ = await rest.list_all(path)
    assert sorted(c["metadata"]["name"] for c in left if c["metadata"]["name"].startswith("made-")) == ["made-9"]
    assert player.done["delete"] == 3


async def test_deletes_read_the_template_raw_without_rendering_it(
    tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]
) -> None:
    # clusterloader2 deletes by the raw template's apiVersion/kind (RawToObject): functions that would fail when
    # rendered (here IsEven of a missing value) do not stop a delete.
    rest, _ = client
    (tmp_path / "broken.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{.Name}}\ndata: {even: "{{IsEven .Nope}}"}\n'
    )
    text = """\
name: raw
namespace: {number: 1, prefix: raw}
tuningSets:
- {name: Seq, parallelismLimitedLoad: {parallelismLimit: 1}}
steps:
- phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: {{.Replicas}}
    tuningSet: Seq
    objectBundle:
    - basename: made
      objectTemplatePath: broken.yaml
      listUnknownObjectOptions:
        labelSelector: {matchLabels: {owner: test}}
"""
    config = load_test_config(write(tmp_path, text), {"Replicas": 0})
    player = Player(rest, config)
    await player.create_namespaces()
    path = resource_path("", "v1", "configmaps", "raw-1")
    for i in range(2):
        await rest.create(path, {"metadata": {"name": f"made-{i}", "labels": {"owner": "test"}}})
    await player.run_phases(config.steps[0].phases)
    left, _ = await rest.list_all(path)
    assert not [c for c in left if c["metadata"]["name"].startswith("made-")] and player.done["delete"] == 2
    creating = load_test_config(write(tmp_path, text), {"Replicas": 1})
    with pytest.raises(PlayerError, match="error calling IsEven"):
        await Player(rest, creating).run_phases(creating.steps[0].phases)


NS = """\
name: namespaces
namespace:
  number: 2
  prefix: {{.Prefix}}
  enableExistingNamespaces: {{.Existing}}
  deleteStaleNamespaces: {{.Stale}}
  deleteAutomanagedNamespaces: {{.DeleteAfter}}
tuningSets:
- {name: Seq, parallelismLimitedLoad: {parallelismLimit: 1}}
steps:
- measurements: [{Identifier: W, Method: Sleep, Params: {duration: 0s}}]
"""


def ns_config(tmp_path: Path, prefix: str = "own", existing: bool = False, stale: bool = False, delete: bool = True):  # type: ignore[no-untyped-def]
    params = {"Prefix": prefix, "Existing": existing, "Stale": stale, "DeleteAfter": delete}
    return load_test_config(write(tmp_path, NS), params)


async def _namespaces(rest: RestClient) -> dict[str, str]:
    items, _ = await rest.list_all(resource_path("", "v1", "namespaces"))
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}


async def test_existing_automanaged_namespaces_need_enable_existing(
    tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]
) -> None:
    rest, _ = client
    await rest.create(resource_path("", "v1", "namespaces"), {"metadata": {"name": "own-2"}})
    with pytest.raises(NamespaceError, match="pre-existing automanaged namespaces found: own-2"):
        await Player(rest, ns_config(tmp_path)).create_namespaces()
    player = Player(rest, ns_config(tmp_path, existing=True))
    await player.create_namespaces()  # own-2 is reused, own-1 created
    assert {"own-1", "own-2"} <= set(await _namespaces(rest))


async def test_stale_namespaces_are_deleted_only_when_asked(
    tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]
) -> None:
    rest, _ = client
    for name in ("test-abc123-1", "test-abc123-2", "test-other", "unrelated-1"):
        await rest.create(resource_path("", "v1", "namespaces"), {"metadata": {"name": name}})
    keep = Player(rest, ns_config(tmp_path, prefix="run-a"))
    await keep.create_namespaces()
    assert keep.automanaged.stale_deleted == []
    clean = Player(rest, ns_config(tmp_path, prefix="run-b", stale=True))
    await clean.create_namespaces()
    assert clean.automanaged.stale_deleted == ["test-abc123-1", "test-abc123-2"]
    phases = await _namespaces(rest)
    gone_or_terminating = {
        n for n in ("test-abc123-1", "test-abc123-2") if phases.get(n, "Terminating") == "Terminating"
    }
    assert gone_or_terminating == {"test-abc123-1", "test-abc123-2"}
    assert phases["test-other"] != "Terminating" and phases["unrelated-1"] != "Terminating"


async def test_delete_automanaged_namespaces_false_keeps_them(
    tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]
) -> None:
    rest, _ = client
    player = Player(rest, ns_config(tmp_path, prefix="kept", delete=False))
    await player.create_namespaces()
    await player.delete_namespaces()
    assert {n: p for n, p in (await _namespaces(rest)).items() if n.startswith("kept-")} == {
        "kept-1": "Active",
        "kept-2": "Active",
    }
    deleting = Player(rest, ns_config(tmp_path, prefix="gone", delete=True))
    await deleting.create_namespaces()
    await deleting.delete_namespaces()
    after = await _namespaces(rest)
    assert all(after.get(n, "Terminating") == "Terminating" for n in ("gone-1", "gone-2"))


async def test_objects_are_identified_by_basename_and_kind_not_template_file(
    tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]
) -> None:
    rest, _ = client
    (tmp_path / "other-cm.yaml").write_text(CM.replace("data:", "# another file for the same objects\ndata:"))
    text = """\
name: identity
namespace: {number: 1, prefix: ident}
tuningSets:
- {name: Seq, parallelismLimitedLoad: {parallelismLimit: 1}}
steps:
- phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 2
    tuningSet: Seq
    objectBundle: [{basename: same, objectTemplatePath: cm.yaml}]
- phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 0
    tuningSet: Seq
    objectBundle: [{basename: same, objectTemplatePath: other-cm.yaml}]
"""
    config = load_test_config(write(tmp_path, text), {})
    player = Player(rest, config)
    await player.create_namespaces()
    for step in config.steps:
        await player.run_phases(step.phases)
    left, _ = await rest.list_all(resource_path("", "v1", "configmaps", "ident-1"))
    assert [c["metadata"]["name"] for c in left if c["metadata"]["name"].startswith("same-")] == []
    assert player.done == {"create": 2, "delete": 2}
