"""kubectl get (-o wide/json/yaml/name, label and field selectors, -w) and describe pod with its events."""

from __future__ import annotations

import orjson
import pytest
import yaml

from .conftest import Kubectl, LineReader, columns

pytestmark = pytest.mark.kubectl

POD_WIDE_HEADER = [
    "NAME",
    "READY",
    "STATUS",
    "RESTARTS",
    "AGE",
    "IP",
    "NODE",
    "NOMINATED NODE",
    "READINESS GATES",
]


def pod_manifest(name: str, labels: str = "{app: web}", node: str = "") -> str:
    node_line = f"  nodeName: {node}\n" if node else ""
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {labels}
spec:
{node_line}  containers:
  - name: main
    image: busybox:1.36
    resources:
      requests: {{cpu: 100m, memory: 64Mi}}
"""


def test_get_pods_wide_json_yaml_name(kubectl: Kubectl) -> None:
    assert kubectl.ok("apply", "-f", "-", stdin=pod_manifest("p1", node="node-a")) == "pod/p1 created\n"
    lines = kubectl.ok("get", "pods", "-o", "wide").splitlines()
    assert columns(lines[0]) == POD_WIDE_HEADER
    assert columns(lines[1]) == [
        "p1",
        "0/1",
        "Pending",
        "0",
        columns(lines[1])[4],
        "<none>",
        "node-a",
        "<none>",
        "<none>",
    ]
    assert columns(kubectl.ok("get", "pods").splitlines()[0]) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]

    doc = orjson.loads(kubectl.ok("get", "pod", "p1", "-o", "json"))
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "Pod")
    assert doc["metadata"]["namespace"] == kubectl.namespace
    assert doc["metadata"]["uid"] and doc["metadata"]["resourceVersion"]
    assert doc["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert doc["spec"]["restartPolicy"] == "Always"
    assert doc["status"]["phase"] == "Pending"
    # DefaultTolerationSeconds admission adds the two NoExecute tolerations.
    assert {t["key"] for t in doc["spec"]["tolerations"]} == {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    }

    listed = orjson.loads(kubectl.ok("get", "pods", "-o", "json"))
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["p1"]

    doc_yaml = yaml.safe_load(kubectl.ok("get", "pod", "p1", "-o", "yaml"))
    assert doc_yaml["metadata"]["uid"] == doc["metadata"]["uid"]
    assert "managedFields" not in doc_yaml["metadata"]  # kubectl hides them unless --show-managed-fields

    assert kubectl.ok("get", "pods", "-o", "name") == "pod/p1\n"
    assert kubectl.ok("get", "pod", "p1", "-o", "jsonpath={.spec.nodeName}") == "node-a"


def test_get_missing_object_is_not_found(kubectl: Kubectl) -> None:
    err = kubectl.fails("get", "pod", "nope")
    assert err == 'Error from server (NotFound): pods "nope" not found\n'
    empty = kubectl.run("get", "pods")
    assert (empty.returncode, empty.stdout) == (0, "")
    assert empty.stderr == f"No resources found in {kubectl.namespace} namespace.\n"


def test_label_selectors(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("web-1", "{app: web, tier: front}"))
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("web-2", "{app: web, tier: back}"))
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("db-1", "{app: db}"))
    assert kubectl.ok("get", "pods", "-l", "app=web", "-o", "name").split() == ["pod/web-1", "pod/web-2"]
    assert kubectl.ok("get", "pods", "-l", "app=web,tier!=back", "-o", "name").split() == ["pod/web-1"]
    assert kubectl.ok("get", "pods", "-l", "tier in (front,back)", "-o", "name").split() == ["pod/web-1", "pod/web-2"]
    assert kubectl.ok("get", "pods", "-l", "!tier", "-o", "name").split() == ["pod/db-1"]
    shown = kubectl.ok("get", "pods", "-l", "app=db", "--show-labels").splitlines()
    assert columns(shown[0])[-1] == "LABELS" and columns(shown[1])[-1] == "app=db"
    err = kubectl.fails("get", "pods", "-l", "app in x")
    assert err.startswith('Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label')
    # The server's message is labels.Parse's: one "unable to parse requirement: " prefix, not two.
    assert err.rstrip().endswith(": unable to parse requirement: found 'x' expected: '('"), err


def test_field_selectors(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("bound", node="node-f"))
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("unbound"))
    assert kubectl.ok("get", "pods", "--field-selector=spec.nodeName=node-f", "-o", "name") == "pod/bound\n"
    assert kubectl.ok("get", "pods", "--field-selector=spec.nodeName=", "-o", "name") == "pod/unbound\n"
    assert kubectl.ok("get", "pods", "--field-selector=metadata.name!=bound", "-o", "name") == "pod/unbound\n"
    assert kubectl.ok("get", "pods", "--field-selector=status.phase=Pending", "-o", "name").split() == [
        "pod/bound",
        "pod/unbound",
    ]
    # Combined with a label selector, across namespaces.
    out = kubectl.ok("get", "pods", "-A", "-l", "app=web", "--field-selector=spec.nodeName=node-f", "-o", "name")
    assert out == "pod/bound\n"
    err = kubectl.fails("get", "pods", "--field-selector=spec.bogus=x")
    assert err.startswith("Error from server (BadRequest): ")
    assert err.rstrip().endswith("field label not supported: spec.bogus"), err


def test_watch_prints_added_modified_deleted(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("before"))
    watcher = LineReader(
        kubectl.popen("get", "pods", "-w", "--output-watch-events", "--request-timeout=25s", "-l", "app=web")
    )
    try:
        header = watcher.until(r"^EVENT\s+NAME")
        assert columns(header) == ["EVENT", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert columns(watcher.until(r"\bbefore\b"))[:4] == ["ADDED", "before", "0/1", "Pending"]
        kubectl.ok("apply", "-f", "-", stdin=pod_manifest("other", "{app: other}"))
        kubectl.ok("apply", "-f", "-", stdin=pod_manifest("during"))
        assert columns(watcher.until(r"\bduring\b"))[:2] == ["ADDED", "during"]
        kubectl.ok("label", "pod", "during", "extra=1")
        assert columns(watcher.until(r"^MODIFIED\s+during\b"))[:2] == ["MODIFIED", "during"]
        # An unbound pod is deleted at once (no kubelet has to confirm), so the watch sees DELETED.
        kubectl.ok("delete", "pod", "during", "--wait=false")
        assert columns(watcher.until(r"^DELETED\s+during\b"))[:2] == ["DELETED", "during"]
    finally:
        watcher.close()
    # The label selector held on the watch: the non-matching pod created in between never showed up.
    assert not any("other" in line for line in watcher.lines), watcher.lines


def test_watch_single_object_plain_rows(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("solo", node="node-w"))
    watcher = LineReader(kubectl.popen("get", "pod", "solo", "-w", "-o", "wide", "--request-timeout=25s"))
    try:
        assert columns(watcher.until(r"^NAME\s+READY")) == POD_WIDE_HEADER
        assert columns(watcher.until(r"^solo\s"))[6] == "node-w"
        kubectl.ok("delete", "pod", "solo", "--wait=false")
        # A bound pod is deleted gracefully: the watch shows it Terminating.
        assert columns(watcher.until(r"^solo\s.*Terminating"))[:3] == ["solo", "0/1", "Terminating"]
    finally:
        watcher.close()


def event_manifest(name: str, pod: str, uid: str, namespace: str, reason: str, message: str) -> str:
    return f"""apiVersion: v1
kind: Event
metadata: {{name: {name}}}
involvedObject: {{apiVersion: v1, kind: Pod, name: {pod}, namespace: {namespace}, uid: {uid}}}
reason: {reason}
message: {message}
type: Normal
source: {{component: default-scheduler}}
firstTimestamp: "2024-01-01T00:00:00Z"
lastTimestamp: "2024-01-01T00:00:00Z"
count: 1
"""


def test_describe_pod_with_events(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("desc", "{app: web, tier: back}", node="node-d"))
    kubectl.ok("apply", "-f", "-", stdin=pod_manifest("neighbour"))
    ns = kubectl.namespace
    assert ns is not None
    uid = kubectl.ok("get", "pod", "desc", "-o", "jsonpath={.metadata.uid}")
    other_uid = kubectl.ok("get", "pod", "neighbour", "-o", "jsonpath={.metadata.uid}")
    kubectl.ok("create", "-f", "-", stdin=event_manifest("desc.1", "desc", uid, ns, "Scheduled", "assigned-desc"))
    kubectl.ok(
        "create", "-f", "-", stdin=event_manifest("nb.1", "neighbour", other_uid, ns, "Pulled", "neighbour-event")
    )
    out = kubectl.ok("describe", "pod", "desc")
    lines = out.splitlines()
    assert lines[0] == "Name:             desc"
    assert f"Namespace:        {ns}" in lines
    assert "Node:             node-d/" in lines
    assert "Status:           Pending" in lines
    assert "QoS Class:        Burstable" in lines
    assert "Labels:           app=web" in lines and "                  tier=back" in lines
    # Events are found with fieldSelector involvedObject.name/namespace/kind/uid: only this pod's event shows.
    events = lines[lines.index("Events:") :]
    assert columns(events[1]) == ["Type", "Reason", "Age", "From", "Message"]
    assert columns(events[3])[:2] == ["Normal", "Scheduled"] and columns(events[3])[-2:] == [
        "default-scheduler",
        "assigned-desc",
    ]
    assert "neighbour-event" not in out
    out = kubectl.ok("get", "events", "--field-selector", "involvedObject.name=neighbour", "-o", "name")
    assert out == "event/nb.1\n"
    err = kubectl.fails("describe", "pod", "nope")
    assert err == 'Error from server (NotFound): pods "nope" not found\n'


def test_get_scale_subresource_as_table(kubectl: Kubectl) -> None:
    kubectl.ok("create", "deployment", "sc", "--image=nginx", "--replicas=3")
    lines = kubectl.ok("get", "deployment", "sc", "--subresource=scale").splitlines()
    assert columns(lines[0]) == ["NAME", "DESIRED", "AVAILABLE", "AGE"]
    assert columns(lines[1])[:3] == ["sc", "3", "0"]
    scale = orjson.loads(kubectl.ok("get", "deployment", "sc", "--subresource=scale", "-o", "json"))
    assert (scale["apiVersion"], scale["kind"], scale["spec"]) == ("autoscaling/v1", "Scale", {"replicas": 3})
    assert scale["status"] == {"replicas": 0, "selector": "app=sc"}
