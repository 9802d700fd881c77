"""Deployment rollout arithmetic (pure)."""

from __future__ import annotations

from typing import Any

from kubemark.master.controllers import rollout as ro


def deployment(replicas: int, surge: Any = "25%", unavailable: Any = "25%", kind: str = "RollingUpdate") -> dict:
    strategy: dict[str, Any] = {"type": kind}
    if kind == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"generation": 1}, "spec": {"replicas": replicas, "strategy": strategy}, "status": {}}


def rs(replicas: int, max_replicas: int | None = None, created: str = "2024-01-01T00:00:00Z") -> dict:
    md: dict[str, Any] = {
        "name": f"rs-{replicas}-{created}",
        "creationTimestamp": created,
        "uid": created + str(replicas),
    }
    if max_replicas is not None:
        md["annotations"] = {ro.MAX_REPLICAS: str(max_replicas)}
    return {"metadata": md, "spec": {"replicas": replicas}, "status": {}}


def test_surge_rounds_up_unavailable_rounds_down() -> None:
    assert ro.resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert ro.resolve_fenceposts("25%", "25%", 1) == (1, 0)
    assert ro.resolve_fenceposts(0, 0, 5) == (0, 1)
    assert ro.resolve_fenceposts("0%", "0%", 5) == (0, 1)
    assert ro.resolve_fenceposts(2, "50%", 5) == (2, 2)


def test_max_unavailable_capped_and_zero_for_recreate() -> None:
    assert ro.max_unavailable(deployment(4, unavailable=10)) == 4
    assert ro.max_unavailable(deployment(0)) == 0
    assert ro.max_unavailable(deployment(4, kind="Recreate")) == 0
    assert ro.max_surge(deployment(4, kind="Recreate")) == 0


def test_new_rs_new_replicas_respects_surge() -> None:
    d = deployment(10)  # surge 3
    old = rs(10)
    new = rs(0)
    assert ro.new_rs_new_replicas(d, [old, new], new) == 3
    assert ro.new_rs_new_replicas(d, [rs(13), new], new) == 0
    assert ro.new_rs_new_replicas(d, [rs(5), rs(7)], rs(7)) == 8  # 13 - 12 = 1 more
    assert ro.new_rs_new_replicas(deployment(10, kind="Recreate"), [old, new], new) == 10


def test_proportional_scaling_matches_upstream_example() -> None:
    # Upstream doc example: 10 replicas, maxSurge 3, mid-rollout with 8 (old) + 5 (new) = 13; scale to 15.
    d = deployment(15, surge=3, unavailable=2)
    old = rs(8, max_replicas=13, created="2024-01-01T00:00:00Z")
    new = rs(5, max_replicas=13, created="2024-01-02T00:00:00Z")
    sizes = {r["metadata"]["name"]: size for r, size in ro.proportional_sizes(d, [old, new])}
    assert sum(sizes.values()) == 18
    assert sizes[old["metadata"]["name"]] == 11  # 8 * 18 / 13 = 11.08 -> 11
    assert sizes[new["metadata"]["name"]] == 7


def test_go_round_halves_away_from_zero() -> None:
    assert ro.go_round(2.5) == 3
    assert ro.go_round(-2.5) == -3
    assert ro.go_round(1.49) == 1


def test_pod_template_hash_is_stable_and_safe() -> None:
    t = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    h = ro.pod_template_hash(t)
    assert h == ro.pod_template_hash({"spec": t["spec"], "metadata": t["metadata"]})
    assert h != ro.pod_template_hash(t, 1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert ro.equal_ignore_hash(t, {"metadata": {"labels": {"a": "b", ro.POD_TEMPLATE_HASH: h}}, "spec": t["spec"]})
