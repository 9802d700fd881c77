"""PodGroups: the barrier's incremental pod buckets agree with matching every pod, through adds, status and
label changes, and deletions."""

from __future__ import annotations

import random

from kubemark.kube.labels import selector_from_label_selector
from kubemark.measure.barrier import PodGroups

SELECTORS = [
    {"matchLabels": {"name": "a"}},
    {"matchLabels": {"name": "b", "group": "latency"}},
    {"matchExpressions": [{"key": "name", "operator": "In", "values": ["a", "c"]}]},
    {"matchLabels": {"group": "saturation"}},
]


def make_pod(rng: random.Random, uid: str) -> dict:
    labels = {"name": rng.choice("abc"), "group": rng.choice(["latency", "saturation"])}
    meta: dict = {"uid": uid, "name": uid, "namespace": rng.choice(["ns1", "ns2"]), "labels": labels}
    if rng.random() < 0.1:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": rng.choice(["Pending", "Running", "Running"])}}


def brute_force(pods: dict[str, dict], namespace: str, spec: dict) -> tuple[int, int]:
    sel = selector_from_label_selector(spec)
    mine = [
        p for p in pods.values() if p["metadata"]["namespace"] == namespace and sel.matches(p["metadata"]["labels"])
    ]
    running = [p for p in mine if p["status"]["phase"] == "Running" and not p["metadata"].get("deletionTimestamp")]
    return len(mine), len(running)


def test_incremental_buckets_match_brute_force_through_random_events() -> None:
    rng = random.Random(7)
    live: dict[str, dict] = {}
    groups = PodGroups()
    for step in range(3000):
        roll = rng.random()
        if roll < 0.4 or not live:
            uid = f"p{step}"
            live[uid] = make_pod(rng, uid)
            groups.on_event("ADDED", None, live[uid], 0.0)
        elif roll < 0.8:
            uid = rng.choice(sorted(live))
            old = live[uid]
            new = make_pod(rng, uid)
            new["metadata"]["namespace"] = old["metadata"]["namespace"]  # namespaces never change
            live[uid] = new
            groups.on_event("MODIFIED", old, new, 0.0)
        else:
            uid = rng.choice(sorted(live))
            groups.on_event("DELETED", live[uid], live.pop(uid), 0.0)
        if step % 50 == 0:
            for i, spec in enumerate(SELECTORS):
                for namespace in ("ns1", "ns2"):
                    found = groups.matching(
                        f"{namespace}/o{i}", namespace, spec, lambda spec=spec: selector_from_label_selector(spec)
                    )
                    got = (sum(len(g.pods) for g in found), sum(g.running for g in found))
                    assert got == brute_force(live, namespace, spec), (step, spec, namespace)


def test_initial_pods_and_a_changed_selector() -> None:
    pods = [
        {"metadata": {"uid": "1", "namespace": "n", "labels": {"name": "a"}}, "status": {"phase": "Running"}},
        {"metadata": {"uid": "2", "namespace": "n", "labels": {"name": "b"}}, "status": {"phase": "Pending"}},
    ]
    groups = PodGroups(pods)
    a = {"matchLabels": {"name": "a"}}
    b = {"matchLabels": {"name": "b"}}
    found = groups.matching("n/x", "n", a, lambda: selector_from_label_selector(a))
    assert [(len(g.pods), g.running) for g in found] == [(1, 1)]
    found = groups.matching("n/x", "n", b, lambda: selector_from_label_selector(b))
    assert [(len(g.pods), g.running) for g in found] == [(1, 0)]
