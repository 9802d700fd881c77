"""The built-in `load` test's objects, rendered as the Player renders them: services pair 1-1 with deployments.

clusterloader2's load test gives about half of the big, medium and small Deployments a Service of their own
(service `<size>-service-i` selects the pods of `<size>-deployment-i`). A selector that matched a whole size
class instead made every small Service select every small pod: at 100 nodes, 150 services x ~1,500 endpoints,
which every hollow proxy then held and re-counted (11 GB in the node pool before the run was stopped).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from kubemark.client import ClusterCredentials, RestClient
from kubemark.kube.labels import selector_from_label_selector
from kubemark.load.builtin import builtin_test_path
from kubemark.load.config import load_test_config
from kubemark.load.player import CREATE, Player

SIZES = ("big", "medium", "small")


def _created_objects(nodes: int) -> list[dict[str, Any]]:
    """Every object the load test creates, rendered, up to (and including) the step creating the deployments."""
    params = {"Nodes": nodes}
    config = load_test_config(builtin_test_path("load"), params, rng=random.Random(1))  # type: ignore[arg-type]
    # The client is never used: plan and render only compute.
    player = Player(RestClient(ClusterCredentials(server="https://127.0.0.1:1")), config, params=params)
    objects = []
    for step in config.steps:
        for phase in step.phases or ():
            objects += [player.render(a) for a in player.plan(phase) if a.verb == CREATE]
        if step.name == "Creating objects":
            break
    return objects


@pytest.mark.parametrize("nodes", [1, 100, 300])
def test_each_service_selects_the_pods_of_one_deployment(nodes: int) -> None:
    objects = _created_objects(nodes)
    services = [o for o in objects if o["kind"] == "Service"]
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    assert services and deployments

    served: Counter[tuple[str, str]] = Counter()
    for svc in services:
        ns = svc["metadata"]["namespace"]
        assert svc["spec"]["selector"], f"{svc['metadata']['name']} has no selector"
        selector = selector_from_label_selector({"matchLabels": svc["spec"]["selector"]})
        selected = [
            d
            for d in deployments
            if d["metadata"]["namespace"] == ns and selector.matches(d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, f"service {ns}/{svc['metadata']['name']} selects {len(selected)} deployments"
        deployment = selected[0]["metadata"]["name"]
        # service <size>-service-i belongs to deployment <size>-deployment-i
        assert deployment == svc["metadata"]["name"].replace("-service-", "-deployment-")
        served[(ns, deployment)] += 1
    assert max(served.values()) == 1

    # About half of each size class has a service: ceil(deployments / 2) per namespace.
    for size in SIZES:
        per_ns_deployments = Counter(
            d["metadata"]["namespace"] for d in deployments if d["metadata"]["name"].startswith(f"{size}-deployment-")
        )
        per_ns_services = Counter(
            s["metadata"]["namespace"] for s in services if s["metadata"]["name"].startswith(f"{size}-service-")
        )
        assert per_ns_services == Counter({ns: (n + 1) // 2 for ns, n in per_ns_deployments.items()}), size


def test_pod_startup_is_judged_as_clusterloader2_judges_load_and_can_be_tightened() -> None:
    path = builtin_test_path("load")
    assert path is not None

    def threshold(**overrides: Any) -> Any:
        config = load_test_config(path, {"Nodes": 10, **overrides})
        starts = [m for step in config.steps for m in step.measurements or () if m.identifier == "PodStartupLatency"]
        return starts[0].params["threshold"]

    assert threshold() == "1h"  # clusterloader2's load test: bursts of 250 pods are reported, not held to 5 s
    assert threshold(POD_STARTUP_THRESHOLD="5s") == "5s"
