"""Real kubectl on the kinds clusterloader2 creates: apply (create, then a strategic-merge re-apply), get with
upstream's columns and short names, scale, and delete of StatefulSets, DaemonSets, PriorityClasses,
PodDisruptionBudgets, NetworkPolicies and PersistentVolumeClaims."""

from __future__ import annotations

import orjson
import pytest

from .conftest import Kubectl, columns, unique_name

pytestmark = pytest.mark.kubectl

TEMPLATE = """  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: registry.k8s.io/pause:3.9
"""


def manifests(replicas: int = 1) -> str:
    return f"""apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: web
  replicas: {replicas}
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: web}}}}
{TEMPLATE}---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  updateStrategy: {{rollingUpdate: {{maxUnavailable: 10}}}}
{TEMPLATE}---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web}}
spec:
  minAvailable: 1
  selector: {{matchLabels: {{app: web}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: web}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 100Mi}}}}
"""


def test_apply_get_scale_delete(kubectl: Kubectl) -> None:
    out = kubectl.ok("apply", "-f", "-", stdin=manifests())
    assert out.splitlines() == [
        "statefulset.apps/web created",
        "daemonset.apps/agent created",
        "poddisruptionbudget.policy/web created",
        "networkpolicy.networking.k8s.io/web created",
        "persistentvolumeclaim/data created",
    ]
    lines = kubectl.ok("get", "sts").splitlines()
    assert columns(lines[0]) == ["NAME", "READY", "AGE"] and columns(lines[1])[:2] == ["web", "0/1"]
    lines = kubectl.ok("get", "ds", "-o", "wide").splitlines()
    assert columns(lines[0])[:8] == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
    ]
    assert columns(lines[1])[:7] == ["agent", "0", "0", "0", "0", "0", "<none>"]
    lines = kubectl.ok("get", "pdb").splitlines()
    assert columns(lines[0]) == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
    assert columns(lines[1])[:4] == ["web", "1", "N/A", "0"]
    lines = kubectl.ok("get", "netpol").splitlines()
    assert columns(lines[1])[:2] == ["web", "app=web"]
    lines = kubectl.ok("get", "pvc").splitlines()
    assert columns(lines[0])[:3] == ["NAME", "STATUS", "VOLUME"] and columns(lines[1])[:2] == ["data", "Pending"]

    # Re-apply with a change: kubectl sends a strategic merge patch computed from its last-applied annotation.
    assert "statefulset.apps/web configured" in kubectl.ok("apply", "-f", "-", stdin=manifests(replicas=2))
    assert kubectl.ok("scale", "sts", "web", "--replicas=4") == "statefulset.apps/web scaled\n"
    doc = orjson.loads(kubectl.ok("get", "statefulset", "web", "-o", "json"))
    assert doc["spec"]["replicas"] == 4 and doc["metadata"]["generation"] == 3
    assert doc["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": 0, "maxUnavailable": 1},
    }

    out = kubectl.ok("delete", "-f", "-", stdin=manifests())
    assert 'statefulset.apps "web" deleted' in out and 'daemonset.apps "agent" deleted' in out
    assert kubectl.ok("get", "sts,ds,pdb,netpol,pvc", "-o", "name") == ""


def test_priority_classes(kubectl_admin: Kubectl) -> None:
    lines = kubectl_admin.ok("get", "priorityclasses").splitlines()
    assert columns(lines[0]) == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    rows = {columns(line)[0]: columns(line) for line in lines[1:]}
    assert rows["system-node-critical"][1:3] == ["2000001000", "false"]
    assert rows["system-cluster-critical"][1:3] == ["2000000000", "false"]
    name = unique_name("pc")
    manifest = f"apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: {name}}}\nvalue: 100\n"
    assert kubectl_admin.ok("apply", "-f", "-", stdin=manifest) == f"priorityclass.scheduling.k8s.io/{name} created\n"
    err = kubectl_admin.fails("apply", "-f", "-", stdin=manifest.replace("value: 100", "value: 200"))
    assert "value: Forbidden: may not be changed in an update." in err
    assert kubectl_admin.ok("delete", "pc", name) == f'priorityclass.scheduling.k8s.io "{name}" deleted\n'
