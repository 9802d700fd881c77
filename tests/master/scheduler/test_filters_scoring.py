"""Filters, scores and the decision algorithm on plain dicts (no server)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from kubemark.master.scheduler.algorithm import FitError, ScheduleAlgorithm, num_feasible_nodes_to_find
from kubemark.master.scheduler.cache import SchedulerCache
from kubemark.master.scheduler.filters import filter_node
from kubemark.master.scheduler.pod_info import pod_info_from
from kubemark.master.scheduler.resources import pod_requests
from kubemark.master.scheduler.scoring import balanced_allocation, least_allocated, score_nodes

from .cluster import node_obj, pod_obj


def _pod(name: str = "p", namespace: str = "default", node: str = "", **kw: Any) -> dict[str, Any]:
    pod = pod_obj(name, **kw)
    pod["metadata"]["namespace"] = namespace
    pod["metadata"]["uid"] = f"uid-{name}"
    if node:
        pod["spec"]["nodeName"] = node
    return pod


def _cache(*nodes: dict[str, Any]) -> SchedulerCache:
    cache = SchedulerCache()
    for n in nodes:
        cache.add_node(n)
    return cache


def test_pod_requests_sum_containers_max_init_and_overhead() -> None:
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}},
            {"resources": {"requests": {"cpu": "300m", "example.com/gpu": "1"}}},
            {},
        ],
        "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "10Mi"}}}],
        "overhead": {"cpu": "50m"},
    }
    total, nz_cpu, nz_mem = pod_requests(spec)
    assert total.milli_cpu == 2050  # the init container's 2 cores dominate, plus overhead
    assert total.memory == 1024**3
    assert total.scalar == {"example.com/gpu": 1}
    assert total.pods == 1
    assert nz_cpu == 2050 and nz_mem == max(1024**3 + 2 * 200 * 1024**2, 10 * 1024**2)


def test_resource_fit_counts_assigned_and_assumed_pods() -> None:
    cache = _cache(node_obj("n1", cpu="1", pods="3"))
    node = cache.nodes["n1"]
    big = pod_info_from(_pod("a", cpu="600m"))
    assert filter_node(big, node, None) is None
    cache.assume(big, "n1")
    assert filter_node(pod_info_from(_pod("b", cpu="500m")), node, None) == ["Insufficient cpu"]
    cache.forget(big.key)
    assert filter_node(pod_info_from(_pod("b", cpu="500m")), node, None) is None
    for i in range(3):
        cache.add_pod(pod_info_from(_pod(f"z{i}", cpu=None, node="n1")))
    assert filter_node(pod_info_from(_pod("c", cpu="2", memory="10Gi")), node, None) == [
        "Too many pods",
        "Insufficient cpu",
        "Insufficient memory",
    ]


def test_extended_resources_and_ports() -> None:
    cache = _cache(node_obj("n1"))
    node = cache.nodes["n1"]
    gpu = _pod("g")
    gpu["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    assert filter_node(pod_info_from(gpu), node, None) == ["Insufficient example.com/gpu"]
    web = _pod("w")
    web["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    cache.add_pod(pod_info_from({**web, "spec": {**web["spec"], "nodeName": "n1"}}))
    other = _pod("w2")
    other["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]
    assert filter_node(pod_info_from(other), node, None) == [
        "node(s) didn't have free ports for the requested pod ports"
    ]
    other["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    assert filter_node(pod_info_from(other), node, None) is None


def test_taints_tolerations_unschedulable_and_readiness() -> None:
    cache = _cache(
        node_obj("t", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}]),
        node_obj("soft", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]),
        node_obj("cordoned", unschedulable=True),
        node_obj("down", ready=False),
    )
    plain = pod_info_from(_pod())
    assert filter_node(plain, cache.nodes["t"], None) == ["node(s) had untolerated taint {k: v}"]
    assert filter_node(plain, cache.nodes["soft"], None) is None  # PreferNoSchedule only scores
    assert filter_node(plain, cache.nodes["cordoned"], None) == ["node(s) were unschedulable"]
    assert filter_node(plain, cache.nodes["down"], None) == ["node(s) were not ready"]
    tolerant = pod_info_from(_pod(tolerations=[{"key": "k", "operator": "Exists"}]))
    assert filter_node(tolerant, cache.nodes["t"], None) is None
    wrong_value = pod_info_from(_pod(tolerations=[{"key": "k", "operator": "Equal", "value": "x"}]))
    assert filter_node(wrong_value, cache.nodes["t"], None) is not None
    cordon_ok = pod_info_from(
        _pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}])
    )
    assert filter_node(cordon_ok, cache.nodes["cordoned"], None) is None


@pytest.mark.parametrize(
    ("expression", "fits"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "zone", "operator": "Exists"}, True),
        ({"key": "gpu", "operator": "DoesNotExist"}, True),
        ({"key": "cores", "operator": "Gt", "values": ["8"]}, True),
        ({"key": "cores", "operator": "Lt", "values": ["8"]}, False),
    ],
)
def test_required_node_affinity_operators(expression: dict[str, Any], fits: bool) -> None:
    cache = _cache(node_obj("n1", labels={"zone": "a", "cores": "16"}))
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expression]}]
            }
        }
    }
    result = filter_node(pod_info_from(_pod(affinity=affinity)), cache.nodes["n1"], None)
    assert (result is None) is fits
    if not fits:
        assert result == ["node(s) didn't match Pod's node affinity/selector"]


def test_node_selector_and_match_fields() -> None:
    cache = _cache(node_obj("n1", labels={"disk": "ssd"}), node_obj("n2"))
    sel = pod_info_from(_pod(nodeSelector={"disk": "ssd"}))
    assert filter_node(sel, cache.nodes["n1"], None) is None
    assert filter_node(sel, cache.nodes["n2"], None) is not None
    by_name = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]
            }
        }
    }
    algo = ScheduleAlgorithm(rng=random.Random(1))
    assert algo.schedule(pod_info_from(_pod(affinity=by_name)), cache).node == "n2"


def test_pod_anti_affinity_on_hostname_and_existing_anti_affinity() -> None:
    cache = _cache(node_obj("n1"), node_obj("n2"), node_obj("n3"))
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    algo = ScheduleAlgorithm(rng=random.Random(3))
    placed = set()
    for i in range(3):
        info = pod_info_from(_pod(f"db-{i}", labels={"app": "db"}, affinity=anti))
        node = algo.schedule(info, cache).node
        cache.assume(info, node)
        placed.add(node)
    assert placed == {"n1", "n2", "n3"}
    with pytest.raises(FitError) as err:
        algo.schedule(pod_info_from(_pod("db-3", labels={"app": "db"}, affinity=anti)), cache)
    assert str(err.value) == "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
    # A pod without anti-affinity but matching the existing pods' terms is repelled by them.
    with pytest.raises(FitError) as err:
        algo.schedule(pod_info_from(_pod("intruder", labels={"app": "db"})), cache)
    assert "3 node(s) didn't satisfy existing pods anti-affinity rules" in str(err.value)
    assert algo.schedule(pod_info_from(_pod("web", labels={"app": "web"})), cache).node in placed


def test_pod_affinity_follows_existing_pod_and_allows_first_of_group() -> None:
    cache = _cache(node_obj("n1"), node_obj("n2"), node_obj("n3"))
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    algo = ScheduleAlgorithm(rng=random.Random(5))
    first = pod_info_from(_pod("c0", labels={"app": "cache"}, affinity=affinity))
    node = algo.schedule(first, cache).node  # nobody matches yet, and it matches itself
    cache.add_pod(pod_info_from(_pod("c0", labels={"app": "cache"}, affinity=affinity, node=node)))
    for i in range(1, 4):
        follower = pod_info_from(_pod(f"c{i}", labels={"app": "other"}, affinity=affinity))
        assert algo.schedule(follower, cache).node == node


def test_fit_error_message_like_kube_scheduler() -> None:
    taint = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    nodes = [node_obj(f"c{i}", cpu="1") for i in range(3)] + [node_obj(f"u{i}", taints=taint) for i in range(7)]
    cache = _cache(*nodes)
    with pytest.raises(FitError) as err:
        ScheduleAlgorithm().schedule(pod_info_from(_pod(cpu="2")), cache)
    assert str(err.value) == (
        "0/10 nodes are available: 3 Insufficient cpu, 7 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }."
    )
    with pytest.raises(FitError) as err:
        ScheduleAlgorithm().schedule(pod_info_from(_pod()), SchedulerCache())
    assert str(err.value) == "0/0 nodes are available:"


def test_num_feasible_nodes_to_find_adaptive() -> None:
    assert num_feasible_nodes_to_find(None, 50) == 50
    assert num_feasible_nodes_to_find(None, 100) == 100  # 50% would be 50, below the floor of 100
    assert num_feasible_nodes_to_find(None, 200) == 100  # never below 100
    assert num_feasible_nodes_to_find(None, 5000) == 500  # 50% - 40% = 10%
    assert num_feasible_nodes_to_find(None, 10000) == 500  # floor of 5%
    assert num_feasible_nodes_to_find(30, 5000) == 1500
    assert num_feasible_nodes_to_find(100, 5000) == 5000


def test_sampling_stops_early_and_rotates_start() -> None:
    cache = _cache(*(node_obj(f"n{i:04d}") for i in range(1000)))
    algo = ScheduleAlgorithm(rng=random.Random(0))
    first = algo.schedule(pod_info_from(_pod("a")), cache)
    want = num_feasible_nodes_to_find(None, 1000)
    assert first.evaluated_nodes == want == first.feasible_nodes == 420
    assert algo.next_start_index == want
    second = algo.schedule(pod_info_from(_pod("b")), cache)
    assert second.evaluated_nodes == want and algo.next_start_index == (2 * want) % 1000
    assert int(second.node[1:]) >= want  # chosen among the second window's nodes


def test_scores_prefer_free_balanced_untainted_and_spread() -> None:
    cache = _cache(
        node_obj("busy"), node_obj("free"), node_obj("soft", taints=[{"key": "x", "effect": "PreferNoSchedule"}])
    )
    cache.add_pod(pod_info_from(_pod("load", cpu="800m", memory="3Gi", node="busy")))
    pod = pod_info_from(_pod("new", cpu="100m", memory="100Mi"))
    assert least_allocated(pod, cache.nodes["free"]) > least_allocated(pod, cache.nodes["busy"])
    assert balanced_allocation(pod, cache.nodes["free"]) <= 100
    nodes = [cache.nodes[n] for n in ("busy", "free", "soft")]
    scores = dict(zip(("busy", "free", "soft"), score_nodes(pod, nodes), strict=True))
    assert scores["free"] > scores["soft"] and scores["free"] > scores["busy"]
    # Spreading: replicas of one owner avoid the node that already runs one of them.
    twin = _cache(node_obj("a"), node_obj("b"))
    twin.add_pod(pod_info_from(_pod("r0", owner_uid="rs", node="a")))
    replica = pod_info_from(_pod("r1", owner_uid="rs"))
    assert ScheduleAlgorithm().schedule(replica, twin).node == "b"
