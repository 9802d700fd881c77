"""NodeConfig: defaults like kubelet's, YAML loading, and errors that name the field."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kubemark.hollow.config import (
    NodeConfig,
    NodeConfigError,
    exit_code_of,
    lifetime_of,
    load_node_config,
    node_config_from_dict,
)


def test_defaults_match_the_reference_hollow_node() -> None:
    config = load_node_config(None)
    assert config.capacity["cpu"] == "1"
    assert config.capacity["pods"] == "110"
    assert config.allocatable()["memory"] == "3740Mi"  # 3.75Gi - 100Mi eviction threshold
    assert config.allocatable()["cpu"] == "1"
    assert config.heartbeat.renew_interval == 10.0
    assert config.heartbeat.lease_duration_seconds == 40
    assert config.heartbeat.status_report_frequency == 300
    assert config.events and config.watch_services and config.reregister_on_delete
    # v1.37 kubelet / kube-proxy watches, on by default
    assert config.watch_csi_drivers and config.watch_runtime_classes and config.watch_pod_certificate_requests
    assert config.proxy.watch_service_cidrs
    assert config.canonical_capacity()["memory"] == "3840Mi"  # 3.75Gi, as the API server stores it
    assert config.pod_lifetime is None
    assert config.config_map_and_secret_change_detection_strategy == "Cache"
    assert config.sync_frequency == 60.0


def test_yaml_is_camel_case(tmp_path: Path) -> None:
    path = tmp_path / "nodes.yaml"
    path.write_text(
        "capacity: {cpu: '4', memory: 8Gi, pods: '30', example.com/gpu: '2'}\n"
        "labels: {zone: a}\n"
        "taints: [{key: dedicated, value: hollow, effect: NoSchedule}]\n"
        "delays:\n  imagePull: {kind: uniform, min: 0.1, max: 0.5}\n"
        "podLifetime: {kind: exponential, mean: 30}\n"
        "heartbeat: {leaseDurationSeconds: 20}\n"
        "nodePaddingBytes: 15000\n"
        "configMapAndSecretChangeDetectionStrategy: Watch\n"
        "syncFrequency: 30\n"
    )
    config = load_node_config(path)
    assert config.allocatable()["example.com/gpu"] == "2"
    assert config.taints[0].effect == "NoSchedule"
    assert config.heartbeat.renew_interval == 5.0
    assert 0.1 <= config.delays.image_pull.sample(random.Random(1)) <= 0.5
    assert config.node_padding_bytes == 15000
    assert config.config_map_and_secret_change_detection_strategy == "Watch"
    assert config.sync_frequency == 30


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"delays": {"imagePull": {"kind": "uniform", "min": 2, "max": 1}}}, "delays.imagePull"),
        ({"delays": {"imagePull": {"kind": "gamma"}}}, "delays.imagePull"),
        ({"taints": [{"key": "a", "effect": "Sometimes"}]}, "taints.0.effect"),
        ({"capacity": {"cpu": "lots"}}, "capacity"),
        ({"nodeCidr": "10.0.0.0/33"}, "nodeCidr"),
        ({"heartbeat": {"statusUpdateFrequency": 0}}, "heartbeat.statusUpdateFrequency"),
        ({"unknownKnob": 1}, "unknownKnob"),
        ({"configMapAndSecretChangeDetectionStrategy": "TTL"}, "configMapAndSecretChangeDetectionStrategy"),
        ({"syncFrequency": 0}, "syncFrequency"),
    ],
)
def test_errors_name_the_field(data: dict, where: str) -> None:
    with pytest.raises(NodeConfigError) as info:
        node_config_from_dict(data)
    assert where in str(info.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(NodeConfigError, match="cannot read"):
        load_node_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("capacity: [unclosed\n")
    with pytest.raises(NodeConfigError, match="not valid YAML"):
        load_node_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(NodeConfigError, match="mapping"):
        load_node_config(bad)


def test_node_ips_and_pod_ranges_are_unique_per_index() -> None:
    config = NodeConfig()
    ips = {config.node_ip(i) for i in range(1000)}
    cidrs = {config.fallback_pod_cidr(i) for i in range(1000)}
    assert len(ips) == 1000 and len(cidrs) == 1000
    assert config.node_ip(0) == "10.64.0.1"
    assert config.fallback_pod_cidr(1) == "10.128.1.0/24"
    assert config.kubelet_port(7) == 10250
    assert node_config_from_dict({"perNodePort": True}).kubelet_port(7) == 10257


def test_annotations_override_lifetime_and_exit_code() -> None:
    config = node_config_from_dict({"podLifetime": {"kind": "constant", "value": 5}})
    rng = random.Random(0)
    plain = {"metadata": {}}
    assert lifetime_of(plain, config, rng) == 5
    annotated = {"metadata": {"annotations": {"kubemark.io/lifetime-seconds": "1.5", "kubemark.io/exit-code": "2"}}}
    assert lifetime_of(annotated, config, rng) == 1.5
    assert exit_code_of(annotated) == 2
    assert exit_code_of(plain) == 0
    assert lifetime_of(plain, NodeConfig(), rng) is None


def test_a_pod_that_only_sleeps_exits_after_its_sleep() -> None:
    """clusterloader2's sleep image (a Go duration argument) and `sleep N` commands set the pod's lifetime."""
    from kubemark.hollow.config import sleep_lifetime

    def pod(*containers: dict) -> dict:
        return {"spec": {"containers": list(containers)}}

    cl2 = {"image": "gcr.io/k8s-staging-perf-tests/sleep:v0.0.3", "args": ["30s"]}
    assert sleep_lifetime(pod(cl2)) == 30.0
    assert sleep_lifetime(pod({**cl2, "args": ["1m30s"]})) == 90.0
    assert sleep_lifetime(pod({"image": "busybox", "command": ["sleep", "3600"]})) == 3600.0
    assert sleep_lifetime(pod({"image": "busybox", "command": ["/bin/sleep"], "args": ["2m"]})) == 120.0
    assert sleep_lifetime(pod(cl2, {"image": "busybox", "command": ["sleep", "45"]})) == 45.0  # the longest
    assert sleep_lifetime(pod(cl2, {"image": "registry.k8s.io/pause:3.10"})) is None  # pause runs until stopped
    assert sleep_lifetime(pod({"image": "busybox", "command": ["sh", "-c", "sleep 5"]})) is None
    assert sleep_lifetime(pod({**cl2, "args": ["forever"]})) is None
    assert sleep_lifetime(pod({"image": "gcr.io/k8s-staging-perf-tests/sleep:v0.0.3"})) is None  # no argument
    config = node_config_from_dict({})
    annotated = {**pod(cl2), "metadata": {"annotations": {"kubemark.io/lifetime-seconds": "2"}}}
    assert lifetime_of(annotated, config, random.Random(0)) == 2.0  # the annotation wins
    assert lifetime_of(pod(cl2), config, random.Random(0)) == 30.0
