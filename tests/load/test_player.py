"""The Player against the in-process API server: declarative phases create, scale down/up, update and delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubemark.client import ClusterCredentials, RestClient, resource_path
from kubemark.load.config import load_test_config
from kubemark.load.player import Player, PlayerError
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.measure.api_responsiveness import ApiCallRecorder

CONFIG = """
name: player-test
namespace:
  number: 2
  prefix: pt
tuningSets:
- name: Fast
  qpsLoad:
    qps: 1000
steps:
{{range $i, $replicas := .Plan}}
- name: phase {{$i}}
  phases:
  - namespaceRange: {min: 1, max: 2}
    replicasPerNamespace: {{$replicas}}
    tuningSet: Fast
    objectBundle:
    - basename: cm
      objectTemplatePath: cm.yaml
      templateFillMap:
        Color: {{$i}}
{{end}}
"""

TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.Name}}
data:
  index: "{{.Index}}"
  color: "{{.Color}}"
  nodes: "{{.Nodes}}"
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


async def _configmaps(client: RestClient, ns: str) -> dict[str, dict[str, str]]:
    items, _ = await client.list_all(resource_path("", "v1", "configmaps", ns))
    return {i["metadata"]["name"]: i["data"] for i in items if i["metadata"]["name"].startswith("cm-")}


async def test_declarative_phases(tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]) -> None:
    rest, recorder = client
    (tmp_path / "cm.yaml").write_text(TEMPLATE)
    (tmp_path / "test.yaml").write_text(CONFIG)
    # Go templates range over lists; the plan is: create 3, scale to 1, scale to 2, update (2 again), delete all.
    plan = [3, 1, 2, 2, 0]
    config = load_test_config(tmp_path / "test.yaml", {"Plan": plan})
    player = Player(rest, config, params={"Nodes": 7})
    await player.create_namespaces()
    assert player.namespaces == ["pt-1", "pt-2"]

    seen = []
    for step in config.steps:
        await player.run_phases(step.phases)
        seen.append({ns: await _configmaps(rest, ns) for ns in player.namespaces})

    for ns in player.namespaces:
        assert set(seen[0][ns]) == {"cm-0", "cm-1", "cm-2"}
        assert seen[0][ns]["cm-2"] == {"index": "2", "color": "0", "nodes": "7"}
        assert set(seen[1][ns]) == {"cm-0"}  # the highest indices go first
        assert set(seen[2][ns]) == {"cm-0", "cm-1"}
        assert seen[2][ns]["cm-0"]["color"] == "0"  # scaling up does not touch existing objects
        assert {d["color"] for d in seen[3][ns].values()} == {"3"}  # same replicas: every object updated
        assert seen[4][ns] == {}
    assert player.done == {"create": 2 * (3 + 1), "delete": 2 * (2 + 2), "update": 2 * 2}

    verbs = [c.verb for c in recorder.calls if c.resource == "configmaps"]
    assert verbs.count("POST") == 8 and verbs.count("DELETE") == 8 and verbs.count("PATCH") == 4
    await player.delete_namespaces()
    ns = await rest.get(resource_path("", "v1", "namespaces", name="pt-1"))
    assert ns["metadata"].get("deletionTimestamp") or ns["status"].get("phase") == "Terminating"


async def test_failed_actions_are_reported_together(tmp_path: Path, client: tuple[RestClient, ApiCallRecorder]) -> None:
    rest, _ = client
    (tmp_path / "cm.yaml").write_text(TEMPLATE.replace("kind: ConfigMap", "kind: NoSuchKind"))
    (tmp_path / "test.yaml").write_text(CONFIG)
    config = load_test_config(tmp_path / "test.yaml", {"Plan": [2]})
    player = Player(rest, config, params={"Nodes": 1})
    await player.create_namespaces()
    with pytest.raises(PlayerError, match=r"4 actions failed: create pt-\d/cm-\d"):
        await player.run_phases(config.steps[0].phases)
    assert player.failed == {"create": 4}
