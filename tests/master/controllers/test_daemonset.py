"""DaemonSet controller against the embedded API server: one pod per eligible node, following node changes."""

from __future__ import annotations

from typing import Any

from kubemark.client import resource_path
from kubemark.master.controllers.daemonset import DaemonSetController, should_run, target_node

DS = resource_path("apps", "v1", "daemonsets", "default")
NODES = resource_path("", "v1", "nodes")


def daemonset(name: str, **pod_spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}], **pod_spec},
            },
        },
    }


def node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
    }


def _ds_path(name: str, sub: str | None = None) -> str:
    return resource_path("apps", "v1", "daemonsets", "default", name, sub)


async def _by_node(cluster, selector: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pod in await cluster.pods(selector=selector):
        out.setdefault(target_node(pod), []).append(pod["metadata"]["name"])
    return out


def test_should_run_honours_selector_affinity_and_taints() -> None:
    ds = daemonset("d", nodeSelector={"role": "worker"})
    assert should_run(ds, node("a", {"role": "worker"}))
    assert not should_run(ds, node("b"))
    tainted = node("c", {"role": "worker"}, [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    assert not should_run(ds, tainted)
    prefer = node("d", {"role": "worker"}, [{"key": "dedicated", "value": "gpu", "effect": "PreferNoSchedule"}])
    assert should_run(ds, prefer)
    # Every daemon pod tolerates cordoned and not-ready/unreachable (NoExecute) nodes.
    cordoned = node("e", {"role": "worker"}, [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    assert should_run(ds, cordoned)
    tolerating = daemonset("t", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    assert should_run(tolerating, node("f", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]))


async def test_one_pod_per_node_following_node_add_and_remove(cluster) -> None:
    for name in ("n1", "n2", "n3"):
        await cluster.client.create(NODES, node(name))
    await cluster.client.create(NODES, node("gpu", taints=[{"key": "gpu", "value": "x", "effect": "NoSchedule"}]))
    controller = DaemonSetController(cluster.client, cluster.informers)
    await cluster.run(controller)
    created = await cluster.client.create(DS, daemonset("agent", hostNetwork=True))
    assert created["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"

    async def per_node(expected: set[str]) -> dict[str, list[str]] | None:
        placed = await _by_node(cluster, "app=agent")
        ok = set(placed) == expected and all(len(v) == 1 for v in placed.values())
        return placed if ok else None

    await cluster.wait_until(lambda: per_node({"n1", "n2", "n3"}), what="one pod on each untainted node")
    (pod,) = [p for p in await cluster.pods(selector="app=agent") if target_node(p) == "n2"]
    assert pod["metadata"]["name"].startswith("agent-")
    assert "nodeName" not in pod["spec"]  # the scheduler binds it, as upstream
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]
    }
    keys = {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") in keys  # hostNetwork
    labels = pod["metadata"]["labels"]
    assert labels["pod-template-generation"] == "1" and labels["controller-revision-hash"]
    (ref,) = pod["metadata"]["ownerReferences"]
    assert ref["kind"] == "DaemonSet" and ref["uid"] == created["metadata"]["uid"]

    await cluster.ready_all(selector="app=agent")

    async def status(want: dict[str, int]) -> dict[str, Any] | None:
        st = (await cluster.client.get(_ds_path("agent"))).get("status") or {}
        return st if all(st.get(k) == v for k, v in want.items()) else None

    full = {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "numberReady": 3,
        "numberAvailable": 3,
        "updatedNumberScheduled": 3,
        "numberMisscheduled": 0,
        "observedGeneration": 1,
    }
    await cluster.wait_until(lambda: status(full), what="status of 3 ready daemon pods")

    await cluster.client.create(NODES, node("n4"))
    await cluster.wait_until(lambda: per_node({"n1", "n2", "n3", "n4"}), what="a pod on the new node")
    await cluster.client.delete(resource_path("", "v1", "nodes", None, "n1"))
    await cluster.wait_until(lambda: per_node({"n2", "n3", "n4"}), what="the removed node's pod deleted")
    await cluster.ready_all(selector="app=agent")
    await cluster.wait_until(lambda: status({**full, "numberReady": 3}), what="status back to 3")

    # Tolerating the taint brings the gpu node in; a rolling update replaces every pod.
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}}}}
    await cluster.client.patch(_ds_path("agent"), patch, "strategic")

    async def rolled() -> bool:
        await cluster.ready_all(selector="app=agent")
        pods = await cluster.pods(selector="app=agent")
        nodes = sorted(target_node(p) for p in pods)
        gens = {p["metadata"]["labels"]["pod-template-generation"] for p in pods}
        return nodes == ["gpu", "n2", "n3", "n4"] and gens == {"2"}

    await cluster.wait_until(rolled, timeout=20, what="rolled out on 4 nodes")
    await cluster.wait_until(
        lambda: status(
            {
                **full,
                "desiredNumberScheduled": 4,
                "currentNumberScheduled": 4,
                "updatedNumberScheduled": 4,
                "numberReady": 4,
                "numberAvailable": 4,
                "observedGeneration": 2,
            }
        ),
        what="status after the update",
    )
    got = await cluster.client.get(_ds_path("agent"))
    assert got["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    revisions = (await cluster.client.list(resource_path("apps", "v1", "controllerrevisions", "default")))["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]


async def test_node_selector_and_relabelling(cluster) -> None:
    await cluster.client.create(NODES, node("w1", {"role": "worker"}))
    await cluster.client.create(NODES, node("m1"))
    controller = DaemonSetController(cluster.client, cluster.informers)
    await cluster.run(controller)
    await cluster.client.create(DS, daemonset("sel", nodeSelector={"role": "worker"}))

    async def placed(expected: set[str]) -> bool:
        return set(await _by_node(cluster, "app=sel")) == expected

    await cluster.wait_until(lambda: placed({"w1"}), what="only the worker")
    await cluster.client.patch(
        resource_path("", "v1", "nodes", None, "m1"), {"metadata": {"labels": {"role": "worker"}}}, "merge"
    )
    await cluster.wait_until(lambda: placed({"w1", "m1"}), what="relabelled node gets a pod")
    await cluster.client.patch(
        resource_path("", "v1", "nodes", None, "w1"), {"metadata": {"labels": {"role": None}}}, "merge"
    )
    await cluster.wait_until(lambda: placed({"m1"}), what="unlabelled node loses its pod")
