"""Nodes through kubectl: apply a Node, set its status via the status subresource, get -o wide, describe,
cordon and uncordon."""

from __future__ import annotations

import re

import orjson
import pytest

from .conftest import Kubectl, columns, unique_name

pytestmark = pytest.mark.kubectl

NODE_STATUS = {
    "status": {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.11"}, {"type": "Hostname", "address": "h"}],
        "nodeInfo": {
            "kubeletVersion": "v1.36.0-kubemark",
            "kubeProxyVersion": "v1.36.0-kubemark",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "kernelVersion": "6.1.0-hollow",
            "containerRuntimeVersion": "fake://1.0",
            "architecture": "amd64",
            "operatingSystem": "linux",
            "machineID": "machine-1",
            "systemUUID": "uuid-1",
            "bootID": "boot-1",
        },
    }
}


def node_manifest(name: str) -> str:
    return f"""apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels:
    kubernetes.io/hostname: {name}
    node-role.kubernetes.io/worker: ""
spec:
  podCIDR: 10.244.7.0/24
status:
  capacity: {{cpu: "4", memory: 8Gi, pods: "110"}}
"""


@pytest.fixture
def node(kubectl_admin: Kubectl) -> str:
    """A Ready node: created with `kubectl apply -f`, status set with a merge patch of the status subresource."""
    name = unique_name("hollow")
    assert kubectl_admin.ok("apply", "-f", "-", stdin=node_manifest(name)) == f"node/{name} created\n"
    out = kubectl_admin.ok(
        "patch", "node", name, "--subresource=status", "--type=merge", "-p", orjson.dumps(NODE_STATUS).decode()
    )
    assert out == f"node/{name} patched\n"
    return name


def test_node_create_keeps_status_and_defaults_allocatable(kubectl_admin: Kubectl, node: str) -> None:
    doc = orjson.loads(kubectl_admin.ok("get", "node", node, "-o", "json"))
    assert doc["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert doc["status"]["allocatable"] == doc["status"]["capacity"]
    assert doc["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.0-kubemark"
    assert doc["spec"]["podCIDRs"] == ["10.244.7.0/24"]


def test_status_patch_ignores_spec_and_plain_patch_ignores_status(kubectl_admin: Kubectl, node: str) -> None:
    kubectl_admin.ok(
        "patch", "node", node, "--subresource=status", "--type=merge", "-p", '{"spec":{"unschedulable":true}}'
    )
    kubectl_admin.ok("patch", "node", node, "--type=merge", "-p", '{"status":{"phase":"Terminated"}}')
    doc = orjson.loads(kubectl_admin.ok("get", "node", node, "-o", "json"))
    assert "unschedulable" not in doc["spec"]
    assert "phase" not in doc["status"]


def test_get_nodes_wide(kubectl_admin: Kubectl, node: str) -> None:
    lines = kubectl_admin.ok("get", "nodes", node, "-o", "wide").splitlines()
    assert columns(lines[0]) == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    cells = columns(lines[1])
    assert cells[:3] == [node, "Ready", "worker"]
    assert cells[4:] == [
        "v1.36.0-kubemark",
        "10.0.0.11",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-hollow",
        "fake://1.0",
    ]
    assert len(lines) == 2


def test_get_nodes_by_label_selector(kubectl_admin: Kubectl, node: str) -> None:
    out = kubectl_admin.ok("get", "nodes", "-l", f"kubernetes.io/hostname={node}", "-o", "name")
    assert out == f"node/{node}\n"
    missing = kubectl_admin.run("get", "nodes", "-l", f"kubernetes.io/hostname={node}-x")
    assert (missing.returncode, missing.stdout, missing.stderr) == (0, "", "No resources found\n")


def test_describe_node(kubectl_admin: Kubectl, node: str) -> None:
    out = kubectl_admin.ok("describe", "node", node)
    lines = out.splitlines()
    assert lines[0] == f"Name:               {node}"
    assert "Roles:              worker" in lines
    assert "Unschedulable:      false" in lines
    assert any(columns(line)[:2] == ["Ready", "True"] and "KubeletReady" in line for line in lines), out
    assert "  InternalIP:  10.0.0.11" in lines
    assert "  Kernel Version:             6.1.0-hollow" in lines
    assert "  Kubelet Version:            v1.36.0-kubemark" in lines
    assert re.search(r"^PodCIDRs:\s+10\.244\.7\.0/24$", out, re.M), out
    # Non-terminated pods come from a pods list with fieldSelector spec.nodeName=<node>,status.phase!=...
    assert re.search(r"^Non-terminated Pods:\s+\(0 in total\)$", out, re.M), out


def test_describe_node_lists_its_pods(kubectl_admin: Kubectl, kubectl: Kubectl, node: str) -> None:
    pod = f"""apiVersion: v1
kind: Pod
metadata: {{name: on-node}}
spec:
  nodeName: {node}
  containers:
  - name: c
    image: busybox
    resources:
      requests: {{cpu: 500m, memory: 1Gi}}
"""
    kubectl.ok("apply", "-f", "-", stdin=pod)
    kubectl.ok("run", "elsewhere", "--image=busybox")
    out = kubectl_admin.ok("describe", "node", node)
    assert re.search(r"^Non-terminated Pods:\s+\(1 in total\)$", out, re.M), out
    row = next(line for line in out.splitlines() if "on-node" in line)
    assert columns(row)[:5] == [kubectl.namespace, "on-node", "500m (12%)", "0 (0%)", "1Gi (12%)"]
    assert "elsewhere" not in out


def test_cordon_and_uncordon(kubectl_admin: Kubectl, node: str) -> None:
    assert kubectl_admin.ok("cordon", node) == f"node/{node} cordoned\n"
    assert kubectl_admin.ok("cordon", node) == f"node/{node} already cordoned\n"
    assert kubectl_admin.ok("get", "node", node, "-o", "jsonpath={.spec.unschedulable}") == "true"
    row = kubectl_admin.ok("get", "node", node, "--no-headers").splitlines()[0]
    assert columns(row)[1] == "Ready,SchedulingDisabled"
    assert "Unschedulable:      true" in kubectl_admin.ok("describe", "node", node).splitlines()
    assert kubectl_admin.ok("uncordon", node) == f"node/{node} uncordoned\n"
    assert kubectl_admin.ok("uncordon", node) == f"node/{node} already uncordoned\n"
    doc = orjson.loads(kubectl_admin.ok("get", "node", node, "-o", "json"))
    assert "unschedulable" not in doc["spec"]
    assert columns(kubectl_admin.ok("get", "node", node, "--no-headers"))[1] == "Ready"


def test_cordon_missing_node_is_not_found(kubectl_admin: Kubectl) -> None:
    err = kubectl_admin.fails("cordon", "no-such-node")
    assert err == 'Error from server (NotFound): nodes "no-such-node" not found\n'
