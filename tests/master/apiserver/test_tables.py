"""Table output: kubectl's printer columns, the pod STATUS logic and human durations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubemark import codec
from kubemark.kube.resources import RESOURCES, ResourceType, find
from kubemark.master.apiserver.discovery import discovery_routes
from kubemark.master.apiserver.tables import (
    columns,
    format_selector,
    human_duration,
    parse_time,
    pod_status_reason,
    table_row,
    to_table,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def ago(seconds: float) -> str:
    return datetime.fromtimestamp(NOW - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(group: str, plural: str) -> ResourceType:
    found = find(group, "v1", plural)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (303, "5m3s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (8 * 3600 + 59, "8h"),
        (47 * 3600, "47h"),
        (5 * 86400 + 2 * 3600, "5d2h"),
        (9 * 86400, "9d"),
        (2 * 365 * 86400 + 30 * 86400, "2y30d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_parse_time_accepts_time_and_microtime() -> None:
    assert parse_time("2025-01-01T12:00:00Z") == NOW
    assert parse_time("2025-01-01T12:00:00.000000Z") == NOW
    assert parse_time(None) is None
    assert parse_time("garbage") is None


def pod(**status: object) -> dict:
    return {
        "metadata": {"name": "p", "creationTimestamp": ago(303)},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": {"phase": "Pending", **status},
    }


def running(name: str, ready: bool = True, restarts: int = 0) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(60)}}}


def test_pod_status_pending_creating_running_completed_terminating() -> None:
    assert pod_status_reason(pod())[0] == "Pending"
    creating = pod(containerStatuses=[{"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert pod_status_reason(creating)[0] == "ContainerCreating"
    up = pod(phase="Running", containerStatuses=[running("a"), running("b", ready=False)])
    assert pod_status_reason(up)[:3] == ("Running", 1, 2)
    done = pod(
        phase="Succeeded",
        containerStatuses=[{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
    )
    assert pod_status_reason(done)[0] == "Completed"
    crashed = pod(phase="Running", containerStatuses=[{"name": "a", "state": {"terminated": {"exitCode": 2}}}])
    assert pod_status_reason(crashed)[0] == "ExitCode:2"
    deleting = pod(phase="Running", containerStatuses=[running("a"), running("b")])
    deleting["metadata"]["deletionTimestamp"] = ago(1)
    assert pod_status_reason(deleting)[0] == "Terminating"
    evicted = pod(phase="Failed", reason="Evicted")
    assert pod_status_reason(evicted)[0] == "Evicted"
    gated = pod(conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}])
    assert pod_status_reason(gated)[0] == "SchedulingGated"


def test_pod_status_init_containers() -> None:
    p = pod(initContainerStatuses=[{"name": "init", "state": {"waiting": {"reason": "PodInitializing"}}}])
    p["spec"]["initContainers"] = [{"name": "init"}]
    assert pod_status_reason(p)[0] == "Init:0/1"
    p["status"]["initContainerStatuses"][0]["state"] = {"waiting": {"reason": "ImagePullBackOff"}}
    assert pod_status_reason(p)[0] == "Init:ImagePullBackOff"


def test_pod_row_cells_wide_and_restarts() -> None:
    p = pod(
        phase="Running",
        podIPs=[{"ip": "10.0.0.5"}],
        containerStatuses=[
            running("a", restarts=2) | {"lastState": {"terminated": {"finishedAt": ago(125)}}},
            running("b"),
        ],
    )
    row = table_row(rt("", "pods"), p, now=NOW)
    assert row["cells"] == ["p", "2/2", "Running", "2 (2m5s ago)", "5m3s", "10.0.0.5", "n1", "<none>", "<none>"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": p["metadata"]}
    assert "object" not in table_row(rt("", "pods"), p, "None", now=NOW)
    assert table_row(rt("", "pods"), p, "Object", now=NOW)["object"] is p
    assert [c["name"] for c in columns(rt("", "pods"))] == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates",
    ]  # fmt: skip
    assert [c["priority"] for c in columns(rt("", "pods"))] == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_node_cells() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": ago(7200),
            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "Unknown"}],
            "addresses": [{"type": "InternalIP", "address": "10.1.0.1"}, {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {
                "kubeletVersion": "v1.36.0",
                "osImage": "Debian",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "fake://1",
            },
        },
    }
    cells = table_row(rt("", "nodes"), node, now=NOW)["cells"]
    assert cells == [
        "n1", "NotReady,SchedulingDisabled", "control-plane,worker", "120m", "v1.36.0",
        "10.1.0.1", "<none>", "Debian", "6.1", "fake://1",
    ]  # fmt: skip
    bare = {"metadata": {"name": "n2"}, "status": {}}
    assert table_row(rt("", "nodes"), bare, now=NOW)["cells"][1:4] == ["Unknown", "<none>", "<unknown>"]


def test_deployment_replicaset_and_job_cells() -> None:
    template = {"spec": {"containers": [{"name": "c1", "image": "img:1"}, {"name": "c2", "image": "img:2"}]}}
    selector = {
        "matchLabels": {"app": "x"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
    }
    deploy = {
        "metadata": {"name": "d", "creationTimestamp": ago(30)},
        "spec": {"replicas": 3, "selector": selector, "template": template},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    cells = table_row(find("apps", "v1", "deployments"), deploy, now=NOW)["cells"]  # type: ignore[arg-type]
    assert cells == ["d", "2/3", 3, 2, "30s", "c1,c2", "img:1,img:2", "app=x,tier in (a,b)"]
    rs = deploy | {"status": {"replicas": 3, "readyReplicas": 1}}
    assert table_row(find("apps", "v1", "replicasets"), rs, now=NOW)["cells"][:4] == ["d", 3, 3, 1]  # type: ignore[arg-type]
    job = {
        "metadata": {"name": "j", "creationTimestamp": ago(600)},
        "spec": {"completions": 5, "template": template, "selector": {"matchLabels": {"a": "b"}}},
        "status": {
            "succeeded": 5,
            "startTime": ago(600),
            "completionTime": ago(480),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    assert table_row(find("batch", "v1", "jobs"), job, now=NOW)["cells"][:5] == ["j", "Complete", "5/5", "2m", "10m"]  # type: ignore[arg-type]
    job["spec"] = {"parallelism": 2}
    job["status"] = {"succeeded": 0}
    assert table_row(find("batch", "v1", "jobs"), job, now=NOW)["cells"][1:4] == ["Running", "0/1 of 2", ""]  # type: ignore[arg-type]


def test_service_endpoints_and_slices() -> None:
    svc = {
        "metadata": {"name": "s", "creationTimestamp": ago(10)},
        "spec": {
            "type": "NodePort",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "selector": {"b": "2", "a": "1"},
        },
    }
    assert table_row(rt("", "services"), svc, now=NOW)["cells"] == [
        "s", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "10s", "a=1,b=2",
    ]  # fmt: skip
    lb = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"]}}
    assert table_row(rt("", "services"), lb, now=NOW)["cells"][3] == "<pending>"

    ep = {
        "metadata": {"name": "s"},
        "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)], "ports": [{"port": 8080}]}],
    }
    assert (
        table_row(rt("", "endpoints"), ep, now=NOW)["cells"][1]
        == "10.0.0.0:8080,10.0.0.1:8080,10.0.0.2:8080 + 2 more..."
    )
    assert table_row(rt("", "endpoints"), {"metadata": {"name": "e"}}, now=NOW)["cells"][1] == "<none>"

    es = find("discovery.k8s.io", "v1", "endpointslices")
    assert es is not None
    slice_ = {
        "metadata": {"name": "s-abc"},
        "addressType": "IPv4",
        "ports": [{"port": 8080}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
    }
    assert table_row(es, slice_, now=NOW)["cells"][:4] == ["s-abc", "IPv4", "8080", "10.0.0.1,10.0.0.2"]
    assert table_row(es, {"metadata": {"name": "e"}, "addressType": "IPv4"}, now=NOW)["cells"][2:4] == [
        "<unset>",
        "<unset>",
    ]


def test_event_small_kinds_and_default() -> None:
    event = {
        "metadata": {"name": "p.123", "creationTimestamp": ago(100)},
        "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
        "reason": "Started",
        "type": "Normal",
        "message": "Started container a ",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(100),
        "lastTimestamp": ago(40),
        "count": 3,
    }
    assert table_row(rt("", "events"), event, now=NOW)["cells"] == [
        "40s", "Normal", "Started", "pod/p", "spec.containers{a}", "kubelet, n1", "Started container a", "100s", 3, "p.123",
    ]  # fmt: skip
    new_event = {
        "metadata": {"name": "e"},
        "regarding": {"kind": "Node", "name": "n1"},
        "reason": "NodeReady",
        "type": "Normal",
        "note": "ready",
        "eventTime": "2025-01-01T11:59:00.000000Z",
        "reportingController": "kubelet",
    }
    ev1 = find("events.k8s.io", "v1", "events")
    assert ev1 is not None
    assert table_row(ev1, new_event, now=NOW)["cells"][:9] == [
        "60s",
        "Normal",
        "NodeReady",
        "node/n1",
        "",
        "kubelet",
        "ready",
        "60s",
        1,
    ]

    lease = {"metadata": {"name": "n1", "creationTimestamp": ago(5)}, "spec": {"holderIdentity": "n1"}}
    assert table_row(find("coordination.k8s.io", "v1", "leases"), lease, now=NOW)["cells"] == ["n1", "n1", "5s"]  # type: ignore[arg-type]
    cm = {"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert table_row(rt("", "configmaps"), cm, now=NOW)["cells"] == ["c", 2, "<unknown>"]
    secret = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}}
    assert table_row(rt("", "secrets"), secret, now=NOW)["cells"][:3] == ["s", "Opaque", 1]
    ns = {"metadata": {"name": "default", "creationTimestamp": ago(90000)}, "status": {"phase": "Active"}}
    assert table_row(rt("", "namespaces"), ns, now=NOW)["cells"] == ["default", "Active", "25h"]
    other = ResourceType("example.com", "v1", "Widget", "widgets", "widget", True)
    assert [c["name"] for c in columns(other)] == ["Name", "Age"]
    assert table_row(other, {"metadata": {"name": "w", "creationTimestamp": ago(3)}}, now=NOW)["cells"] == ["w", "3s"]


def test_to_table_shape_and_every_resource_has_matching_cells() -> None:
    for resource in RESOURCES:
        obj = {"metadata": {"name": "x", "creationTimestamp": ago(1)}}
        table = to_table(resource, [obj], {"resourceVersion": "7"}, now=NOW)
        assert table["kind"] == "Table"
        assert table["apiVersion"] == "meta.k8s.io/v1"
        assert table["metadata"] == {"resourceVersion": "7"}
        assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), resource.plural
        assert sum(1 for c in table["columnDefinitions"] if c["format"] == "name") == 1
    assert "columnDefinitions" not in to_table(RESOURCES[0], [], {}, with_headers=False)


def test_selector_formatting() -> None:
    assert format_selector(None) == "<none>"
    assert format_selector({}) == ""
    selector = {"matchExpressions": [{"key": "b", "operator": "Exists"}, {"key": "a", "operator": "DoesNotExist"}]}
    assert format_selector(selector) == "!a,b"


# --- the real kubectl -----------------------------------------------------------------------------

KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="no kubectl")
async def test_kubectl_get_renders_our_table(fake_apiserver: Any) -> None:
    pods = rt("", "pods")
    objs = [pod(phase="Running", podIPs=[{"ip": "10.0.0.5"}], containerStatuses=[running("a"), running("b")])]
    accepts: list[str] = []

    async def list_pods(request: web.Request) -> web.Response:
        accepts.append(request.headers.get("Accept", ""))
        table = to_table(pods, objs, {"resourceVersion": "5"}, request.query.get("includeObject", "Metadata"))
        return web.Response(body=codec.dumps(table), content_type="application/json")

    kubeconfig = await fake_apiserver.serve(
        [*discovery_routes(RESOURCES), web.get("/api/v1/namespaces/default/pods", list_pods)]
    )
    code, out, err = await fake_apiserver.kubectl(kubeconfig, "get", "pods", "-o", "wide")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES",
    ]  # fmt: skip
    assert row.split()[:4] == ["p", "2/2", "Running", "0"]
    assert row.split()[5:] == ["10.0.0.5", "n1", "<none>", "<none>"]
    assert "as=Table" in accepts[0]
