"""kubectl delete: --cascade=orphan|foreground|background, pods' graceful and forced deletion, -l, -f, and
namespaces (Terminating until finalized; immortal ones refused).

The master runs without controllers here, so what is asserted is what the API server alone does: it records
the propagation policy as a finalizer and keeps the object until a garbage collector removes that finalizer.
"""

from __future__ import annotations

import orjson
import pytest

from .conftest import Kubectl, columns

pytestmark = pytest.mark.kubectl


def deletion_state(kubectl: Kubectl, what: str, name: str) -> tuple[bool, list[str]]:
    md = orjson.loads(kubectl.ok("get", what, name, "-o", "json"))["metadata"]
    return bool(md.get("deletionTimestamp")), md.get("finalizers", [])


def test_cascade_variants(kubectl: Kubectl) -> None:
    for policy in ("orphan", "foreground", "background"):
        kubectl.ok("create", "deployment", f"d-{policy}", "--image=nginx")
    ns = kubectl.namespace
    for policy in ("orphan", "foreground", "background"):
        out = kubectl.ok("delete", "deployment", f"d-{policy}", f"--cascade={policy}", "--wait=false")
        assert out == f'deployment.apps "d-{policy}" deleted from {ns} namespace\n'
    assert deletion_state(kubectl, "deployment", "d-orphan") == (True, ["orphan"])
    assert deletion_state(kubectl, "deployment", "d-foreground") == (True, ["foregroundDeletion"])
    err = kubectl.fails("get", "deployment", "d-background")
    assert err == 'Error from server (NotFound): deployments.apps "d-background" not found\n'
    # Deleting again while the finalizer is pending is accepted and changes nothing.
    kubectl.ok("delete", "deployment", "d-orphan", "--cascade=orphan", "--wait=false")
    assert deletion_state(kubectl, "deployment", "d-orphan") == (True, ["orphan"])
    # What the garbage collector would do: drop the finalizer; the object then goes away.
    kubectl.ok(
        "patch", "deployment", "d-orphan", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]'
    )
    assert "NotFound" in kubectl.fails("get", "deployment", "d-orphan")


def test_delete_missing_is_not_found_unless_ignored(kubectl: Kubectl) -> None:
    err = kubectl.fails("delete", "deployment", "nope")
    assert err == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    done = kubectl.run("delete", "deployment", "nope", "--ignore-not-found")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_pod_graceful_and_forced_deletion(kubectl: Kubectl) -> None:
    bound = "apiVersion: v1\nkind: Pod\nmetadata: {name: bound}\nspec:\n  nodeName: n1\n  containers:\n"
    bound += "  - {name: c, image: busybox}\n"
    kubectl.ok("apply", "-f", "-", stdin=bound)
    kubectl.ok("run", "unbound", "--image=busybox")
    ns = kubectl.namespace
    # Not on a node: nothing has to stop it, so it is removed at once.
    assert kubectl.ok("delete", "pod", "unbound") == f'pod "unbound" deleted from {ns} namespace\n'
    assert "NotFound" in kubectl.fails("get", "pod", "unbound")
    # On a node: marked with the 30 s grace period and kept until the kubelet confirms.
    kubectl.ok("delete", "pod", "bound", "--wait=false")
    md = orjson.loads(kubectl.ok("get", "pod", "bound", "-o", "json"))["metadata"]
    assert md["deletionGracePeriodSeconds"] == 30 and md["deletionTimestamp"]
    assert columns(kubectl.ok("get", "pod", "bound", "--no-headers"))[2] == "Terminating"
    done = kubectl.run("delete", "pod", "bound", "--grace-period=0", "--force")
    assert done.returncode == 0 and done.stdout == f'pod "bound" force deleted from {ns} namespace\n'
    assert done.stderr.startswith("Warning: Immediate deletion does not wait for confirmation")
    assert "NotFound" in kubectl.fails("get", "pod", "bound")


def test_delete_by_label_all_and_file(kubectl: Kubectl) -> None:
    for name, label in (("a", "k=v"), ("b", "k=v"), ("c", "k=w")):
        kubectl.ok("run", name, "--image=busybox", f"--labels={label}")
    ns = kubectl.namespace
    out = kubectl.ok("delete", "pods", "-l", "k=v")
    assert out == f'pod "a" deleted from {ns} namespace\npod "b" deleted from {ns} namespace\n'
    assert kubectl.ok("get", "pods", "-o", "name") == "pod/c\n"
    assert kubectl.ok("delete", "pods", "--all") == f'pod "c" deleted from {ns} namespace\n'
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm1}\ndata: {k: v}\n---\n"
    manifest += "apiVersion: v1\nkind: Service\nmetadata: {name: svc1}\nspec:\n  ports: [{port: 80}]\n"
    kubectl.ok("apply", "-f", "-", stdin=manifest)
    out = kubectl.ok("delete", "-f", "-", stdin=manifest)
    assert out == f'configmap "cm1" deleted from {ns} namespace\nservice "svc1" deleted from {ns} namespace\n'
    done = kubectl.run("get", "configmap,service")
    assert done.stdout == "" and done.returncode == 0


def test_namespace_deletion_and_immortal_namespaces(kubectl_admin: Kubectl, kubectl: Kubectl) -> None:
    ns = kubectl.namespace
    assert ns is not None
    kubectl.ok("create", "configmap", "keep", "--from-literal=a=b")
    assert kubectl_admin.ok("delete", "namespace", ns, "--wait=false") == f'namespace "{ns}" deleted\n'
    doc = orjson.loads(kubectl_admin.ok("get", "namespace", ns, "-o", "json"))
    # Without the namespace controller the `kubernetes` finalizer stays: Terminating for good.
    assert doc["status"]["phase"] == "Terminating" and doc["spec"]["finalizers"] == ["kubernetes"]
    assert columns(kubectl_admin.ok("get", "namespace", ns, "--no-headers"))[1] == "Terminating"
    err = kubectl.fails("create", "configmap", "late", "--from-literal=a=b")
    assert err.endswith(f"unable to create new content in namespace {ns} because it is being terminated\n"), err
    for immortal in ("default", "kube-system", "kube-public"):
        err = kubectl_admin.fails("delete", "namespace", immortal, "--wait=false")
        assert (
            err
            == f'Error from server (Forbidden): namespaces "{immortal}" is forbidden: this namespace may not be deleted\n'
        )
        assert columns(kubectl_admin.ok("get", "namespace", immortal, "--no-headers"))[1] == "Active"
