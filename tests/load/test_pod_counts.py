"""PodCounts: the progress display's pod totals, kept from watch events, match a recount of the pods."""

from __future__ import annotations

import random

from kubemark.load.progress import PodCounts


def recount(pods: dict[str, dict], prefix: str) -> tuple[int, int, int]:
    mine = [p for p in pods.values() if p["metadata"]["namespace"].startswith(prefix)]
    return (
        len(mine),
        sum(bool(p["spec"].get("nodeName")) for p in mine),
        sum(p["status"].get("phase") == "Running" for p in mine),
    )


def test_counts_follow_adds_updates_and_deletes() -> None:
    rng = random.Random(3)
    counts = PodCounts()
    pods: dict[str, dict] = {}
    for step in range(2000):
        if not pods or rng.random() < 0.4:
            name = f"p{step}"
            ns = rng.choice(["density-1", "density-2", "kube-system"])
            pods[name] = {"metadata": {"namespace": ns, "name": name}, "spec": {}, "status": {"phase": "Pending"}}
            counts.on_event("ADDED", None, pods[name], 0.0)
        elif rng.random() < 0.7:
            name = rng.choice(sorted(pods))
            old = pods[name]
            new = {**old, "spec": {"nodeName": "n1"}, "status": {"phase": rng.choice(["Pending", "Running"])}}
            pods[name] = new
            counts.on_event("MODIFIED", old, new, 0.0)
        else:
            name = rng.choice(sorted(pods))
            counts.on_event("DELETED", pods[name], pods.pop(name), 0.0)
        if step % 100 == 0:
            assert counts.totals("density-") == recount(pods, "density-")
            assert counts.totals() == recount(pods, "")
