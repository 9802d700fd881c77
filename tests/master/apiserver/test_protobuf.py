"""Protobuf request bodies: the table-driven decoder, its encoder and real kubectl bodies."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kubemark import codec
from kubemark.kube.resources import RESOURCES
from kubemark.master.apiserver import protobuf
from kubemark.master.apiserver.discovery import discovery_routes
from kubemark.master.apiserver.openapi import openapi_routes
from kubemark.master.apiserver.protobuf import (
    PROTOBUF_CONTENT_TYPE,
    ProtobufDecodeError,
    decode_protobuf_body,
    encode_protobuf_object,
    go_duration,
)

KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web"},
            "annotations": {"a/b": "c"},
            "creationTimestamp": None,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "X",
                    "name": "o",
                    "uid": "u1",
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 0,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "command": ["nginx", "-g", "daemon off;"],
                            "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                            "env": [
                                {"name": "A", "value": "b"},
                                {
                                    "name": "POD",
                                    "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
                                },
                                {
                                    "name": "S",
                                    "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k", "optional": False}},
                                },
                            ],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1"}},
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                            "livenessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 3},
                            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}],
                            "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False},
                        }
                    ],
                    "volumes": [
                        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
                        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                    "tolerations": [
                        {
                            "key": "node.kubernetes.io/not-ready",
                            "operator": "Exists",
                            "effect": "NoExecute",
                            "tolerationSeconds": 300,
                        },
                        {"operator": "Exists", "tolerationSeconds": 0},
                    ],
                    "nodeSelector": {"disk": "ssd"},
                    "terminationGracePeriodSeconds": 30,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": True,
                },
            },
        },
        "status": {},
    }


def test_deployment_round_trip_keeps_present_zeros_and_special_types() -> None:
    obj = deployment()
    body = encode_protobuf_object(obj)
    assert body.startswith(b"k8s\x00")
    assert decode_protobuf_body(body) == obj


def test_inline_structs_are_flattened() -> None:
    # Probe.handler, Volume.volumeSource and LocalObjectReference are Go-embedded structs.
    decoded = decode_protobuf_body(encode_protobuf_object(deployment()))
    container = decoded["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    assert "handler" not in container["readinessProbe"]
    assert decoded["spec"]["template"]["spec"]["volumes"][0] == {
        "name": "cfg",
        "configMap": {"name": "cfg", "defaultMode": 420},
    }
    assert container["env"][2]["valueFrom"]["secretKeyRef"] == {"name": "sec", "key": "k", "optional": False}


def test_zero_value_scalars_are_omitted_like_go_omitempty() -> None:
    # gogo-protobuf writes every non-pointer scalar, even "" / 0 / false; Go's JSON drops them.
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": ""},
        "spec": {
            "containers": [{"name": "c", "image": "i", "workingDir": "", "stdin": False, "tty": False}],
            "hostNetwork": False,
            "priority": 0,
        },
    }
    decoded = decode_protobuf_body(encode_protobuf_object(obj))
    assert decoded["metadata"] == {"name": "p"}
    assert decoded["spec"] == {"containers": [{"name": "c", "image": "i"}], "priority": 0}


def test_eviction_with_delete_options() -> None:
    obj = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": None},
        "deleteOptions": {
            "gracePeriodSeconds": 0,
            "propagationPolicy": "Background",
            "dryRun": ["All"],
            "preconditions": {"uid": "abc"},
        },
    }
    assert decode_protobuf_body(encode_protobuf_object(obj)) == obj


def test_delete_options_are_accepted_under_any_group_version() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 5, "orphanDependents": False}
    assert decode_protobuf_body(encode_protobuf_object(obj)) == obj


def test_secret_bytes_are_base64_and_configmap_binary_data() -> None:
    raw = bytes(range(256))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "creationTimestamp": None},
        "type": "Opaque",
        "data": {"bin": base64.b64encode(raw).decode(), "text": base64.b64encode(b"hello").decode()},
        "immutable": False,
    }
    decoded = decode_protobuf_body(encode_protobuf_object(secret))
    assert decoded == secret
    assert base64.b64decode(decoded["data"]["bin"]) == raw
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "b", "empty": ""},
        "binaryData": {"x": "AAE="},
    }
    assert decode_protobuf_body(encode_protobuf_object(cm)) == cm


def test_lease_microtime_has_six_fraction_digits() -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease", "creationTimestamp": "2024-05-06T07:08:09Z"},
        "spec": {
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 40,
            "renewTime": "2024-05-06T07:08:09.123456Z",
            "acquireTime": "2024-05-06T07:08:00.000000Z",
            "leaseTransitions": 0,
        },
    }
    assert decode_protobuf_body(encode_protobuf_object(lease)) == lease


def test_job_and_node_and_events() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "default"},
        "spec": {
            "parallelism": 2,
            "completions": 4,
            "backoffLimit": 0,
            "suspend": False,
            "template": {
                "metadata": {},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "args": ["true"]}]},
            },
        },
        "status": {
            "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-02T03:04:05Z"}],
            "succeeded": 4,
        },
    }
    assert decode_protobuf_body(encode_protobuf_object(job)) == job
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}], "unschedulable": True},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-02T03:04:05Z"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.36.0", "architecture": "amd64"},
        },
    }
    assert decode_protobuf_body(encode_protobuf_object(node)) == node
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2024-01-02T03:04:05.000001Z",
        "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:06.500000Z"},
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started",
        "type": "Normal",
        "deprecatedCount": 2,
    }
    assert decode_protobuf_body(encode_protobuf_object(event)) == event


def test_managed_fields_carry_raw_json() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "x",
            "managedFields": [
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-01-02T03:04:05Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}},
                }
            ],
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert decode_protobuf_body(encode_protobuf_object(obj)) == obj


def test_packed_repeated_scalars_and_unknown_fields_are_handled() -> None:
    # supplementalGroups (PodSecurityContext 4) packed; field 99 is unknown and must be skipped.
    sec_ctx = bytearray([4 << 3 | 2, 3, 1, 2, 3])
    sec_ctx += bytes([99 << 3 & 0x7F | 0x80, 99 >> 4, 5])  # varint field 99 = 5 (two-byte key)
    spec = bytes([14 << 3 | 2, len(sec_ctx)]) + sec_ctx
    raw = bytes([2 << 3 | 2, len(spec)]) + spec
    envelope = _envelope("v1", "Pod", raw)
    assert decode_protobuf_body(envelope) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {"securityContext": {"supplementalGroups": [1, 2, 3]}},
    }


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = bytes([10, len(api_version)]) + api_version.encode() + bytes([18, len(kind)]) + kind.encode()
    return b"k8s\x00" + bytes([10, len(type_meta)]) + type_meta + bytes([18, len(raw)]) + raw


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Pod"}', "magic"),
        (_envelope("v1", "Frobnicator", b""), "no protobuf schema"),
        (b"k8s\x00\x0a\x05\x0a\x02v1", "overruns"),
        (_envelope("v1", "Pod", b"\x0a\x10\x0a"), "overruns"),
        (_envelope("v1", "Pod", b"\x0a\x02\x0a\xff"), "truncated varint"),
        (_envelope("v1", "Pod", b"") + b"\x1a\x04gzip", "contentEncoding"),
        (_envelope("v1", "Pod", b"\x12\x04\x12\x02\x08\x01"), "wire type 0 does not match string"),
        (_envelope("v1", "Pod", b"\x0a\x03\x0a\x01\xff"), "UTF-8"),
        (b"k8s\x00\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "varint"),
    ],
)
def test_malformed_bodies_raise_protobuf_decode_error(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=message):
        decode_protobuf_body(body)
    assert issubclass(ProtobufDecodeError, ValueError)


def test_go_duration_strings() -> None:
    assert go_duration(0) == "0s"
    assert go_duration(1_500) == "1.5µs"
    assert go_duration(2_000_000) == "2ms"
    assert go_duration(1_500_000_000) == "1.5s"
    assert go_duration(90 * 10**9) == "1m30s"
    assert go_duration(3723 * 10**9) == "1h2m3s"
    assert go_duration(-(10**9)) == "-1s"


def test_schema_covers_the_served_kinds() -> None:
    kinds = protobuf._schema().kinds
    for key in (
        "v1/Pod",
        "v1/Binding",
        "apps/v1/Deployment",
        "policy/v1/Eviction",
        "autoscaling/v1/Scale",
        "discovery.k8s.io/v1/EndpointSlice",
    ):
        assert key in kinds


def test_decoding_a_deployment_takes_well_under_a_millisecond() -> None:
    body = encode_protobuf_object(deployment())
    decode_protobuf_body(body)
    # Best of a few batches, so a busy shared machine does not make this flaky.
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(50):
            decode_protobuf_body(body)
        timings.append((time.perf_counter() - start) / 50)
    assert min(timings) < 0.001, timings


# --- the real kubectl -----------------------------------------------------------------------------


async def _kubectl_capture(fake_apiserver: Any, *args: str) -> list[tuple[str, str, bytes]]:
    """Run kubectl against a recording server; return (path, content type, body) of each POST."""
    posts: list[tuple[str, str, bytes]] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        posts.append((request.path, request.content_type, body))
        if request.content_type == PROTOBUF_CONTENT_TYPE:
            obj = decode_protobuf_body(body)
        else:
            obj = codec.loads(body)
        obj.setdefault("metadata", {})["uid"] = "00000000-0000-0000-0000-000000000001"
        return web.Response(status=201, body=codec.dumps(obj), content_type="application/json")

    kubeconfig = await fake_apiserver.serve(
        [*discovery_routes(RESOURCES), *openapi_routes(RESOURCES), web.post("/{tail:.*}", record)]
    )
    code, out, err = await fake_apiserver.kubectl(kubeconfig, *args)
    assert code == 0, err + out
    return posts


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="no kubectl")
async def test_kubectl_create_deployment_sends_protobuf_we_decode(fake_apiserver: Any) -> None:
    posts = await _kubectl_capture(
        fake_apiserver, "create", "deployment", "web", "--image=nginx", "--replicas=3", "-o", "json"
    )
    [(path, content_type, body)] = posts
    assert path == "/apis/apps/v1/namespaces/default/deployments"
    assert content_type == PROTOBUF_CONTENT_TYPE
    obj = decode_protobuf_body(body)
    assert obj["apiVersion"] == "apps/v1" and obj["kind"] == "Deployment"
    assert obj["metadata"]["name"] == "web"
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    [container] = obj["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx"
    assert container["name"] == "nginx"


@pytest.mark.kubectl
@pytest.mark.skipif(not KUBECTL.exists(), reason="no kubectl")
async def test_kubectl_create_namespace_and_configmap_send_protobuf_we_decode(fake_apiserver: Any) -> None:
    posts = await _kubectl_capture(fake_apiserver, "create", "namespace", "x")
    posts += await _kubectl_capture(fake_apiserver, "create", "configmap", "c", "--from-literal=a=b")
    [(ns_path, ns_type, ns_body), (cm_path, cm_type, cm_body)] = posts
    assert (ns_path, ns_type) == ("/api/v1/namespaces", PROTOBUF_CONTENT_TYPE)
    namespace = decode_protobuf_body(ns_body)
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == "x"
    assert (cm_path, cm_type) == ("/api/v1/namespaces/default/configmaps", PROTOBUF_CONTENT_TYPE)
    configmap = decode_protobuf_body(cm_body)
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "c"
    assert configmap["data"] == {"a": "b"}
