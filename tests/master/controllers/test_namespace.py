"""Namespace deletion empties and finalizes the namespace; every namespace gets a default ServiceAccount."""

from __future__ import annotations

from kubemark.client import resource_path
from kubemark.master.controllers.namespace import NamespaceController
from kubemark.master.controllers.serviceaccount import ServiceAccountController


async def test_namespace_deletion_removes_everything(cluster) -> None:
    await cluster.run(
        NamespaceController(cluster.client, cluster.informers, recheck_seconds=0.05),
        ServiceAccountController(cluster.client, cluster.informers),
    )
    nss = resource_path("", "v1", "namespaces")
    await cluster.client.create(nss, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
    await cluster.wait_until(
        lambda: cluster.get("", "v1", "serviceaccounts", "doomed", "default"), what="default service account"
    )
    for i in range(3):
        await cluster.client.create(
            resource_path("", "v1", "configmaps", "doomed"),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}, "data": {"a": "b"}},
        )
    await cluster.client.create(
        resource_path("", "v1", "pods", "doomed"),
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "pause"}]},
        },
    )
    # An object with a finalizer holds the namespace until someone removes it.
    held = await cluster.client.create(
        resource_path("", "v1", "secrets", "doomed"),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}},
    )
    await cluster.client.delete(resource_path("", "v1", "namespaces", None, "doomed"))

    async def only_held_left() -> bool:
        cms = (await cluster.client.list(resource_path("", "v1", "configmaps", "doomed")))["items"]
        pods = (await cluster.client.list(resource_path("", "v1", "pods", "doomed")))["items"]
        secret = await cluster.get("", "v1", "secrets", "doomed", "held")
        return not cms and not pods and secret is not None and bool(secret["metadata"].get("deletionTimestamp"))

    await cluster.wait_until(only_held_left, what="content deleted except the finalized secret")
    ns = await cluster.get("", "v1", "namespaces", None, "doomed")
    assert ns is not None and ns["status"]["phase"] == "Terminating"

    held = await cluster.client.get(resource_path("", "v1", "secrets", "doomed", "held"))
    held["metadata"]["finalizers"] = []
    await cluster.client.replace(resource_path("", "v1", "secrets", "doomed", "held"), held)

    async def gone() -> bool:
        return await cluster.get("", "v1", "namespaces", None, "doomed") is None

    await cluster.wait_until(gone, what="namespace removed")


async def test_default_service_account_recreated(cluster) -> None:
    await cluster.run(ServiceAccountController(cluster.client, cluster.informers))
    sa = await cluster.wait_until(
        lambda: cluster.get("", "v1", "serviceaccounts", "kube-system", "default"), what="kube-system default SA"
    )
    await cluster.client.delete(resource_path("", "v1", "serviceaccounts", "kube-system", "default"))

    async def recreated() -> bool:
        got = await cluster.get("", "v1", "serviceaccounts", "kube-system", "default")
        return got is not None and got["metadata"]["uid"] != sa["metadata"]["uid"]

    await cluster.wait_until(recreated, what="default SA recreated")
