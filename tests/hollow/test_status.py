"""Node object and node-status patch decisions (injected clock), pod status builders and admission."""

from __future__ import annotations

import random

import pytest

from kubemark.hollow.config import node_config_from_dict
from kubemark.hollow.podstatus import ContainerRecord, PodView, admit, build_status, merge_status, status_patch
from kubemark.hollow.status import NodeIdentity, NodeSpecFacts, NodeStatusReporter, build_node, status_changed
from kubemark.kube.patch import apply_strategic_merge_patch


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _facts(**config: object) -> NodeSpecFacts:
    return NodeSpecFacts("n-3", 3, node_config_from_dict(config), NodeIdentity.for_node("n-3", boot_id="boot"))


def test_registered_node_has_kubelet_fields() -> None:
    facts = _facts(labels={"zone": "z1"}, taints=[{"key": "k", "effect": "NoSchedule"}], nodePaddingBytes=100)
    node = build_node(facts, 1_700_000_000.0)
    meta, spec, status = node["metadata"], node["spec"], node["status"]
    assert meta["labels"]["kubernetes.io/hostname"] == "n-3"
    assert meta["labels"]["kubernetes.io/os"] == "linux" and meta["labels"]["kubernetes.io/arch"] == "amd64"
    assert meta["labels"]["zone"] == "z1"
    assert len(meta["annotations"]["kubemark.io/node-padding"]) == 100
    assert spec == {"providerID": "kubemark://n-3", "taints": [{"key": "k", "effect": "NoSchedule"}]}
    assert status["addresses"] == [
        {"type": "InternalIP", "address": "10.64.0.4"},
        {"type": "Hostname", "address": "n-3"},
    ]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    # canonical, as kube-apiserver stores them: the config's 3.75Gi is 3840Mi
    assert status["capacity"] == {"cpu": "1", "memory": "3840Mi", "pods": "110", "ephemeral-storage": "100Gi"}
    assert status["allocatable"]["memory"] == "3740Mi"
    info = status["nodeInfo"]
    assert info["containerRuntimeVersion"] == "hollow://1.0" and info["bootID"] == "boot"
    assert info["machineID"] == NodeIdentity.for_node("n-3").machine_id  # stable per name
    types = [c["type"] for c in status["conditions"]]
    assert types == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    ready = status["conditions"][-1]
    assert ready["status"] == "False" and ready["reason"] == "KubeletNotReady"  # until the first status sync
    assert len(status["images"]) == 3


def test_status_patch_only_on_change_or_after_the_report_period() -> None:
    clock = Clock()
    facts = _facts(heartbeat={"statusReportFrequency": 300})
    reporter = NodeStatusReporter(facts, clock=clock, rng=FixedRandom(0.5))  # no extra delay after a change
    node = build_node(facts, clock.now)
    node["metadata"]["resourceVersion"] = "5"

    first = reporter.patch_for(node)  # Ready False -> True: a change
    assert first is not None
    assert first["status"]["$setElementOrder/conditions"] == [
        {"type": t} for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]
    node = apply_strategic_merge_patch(node, first, "Node")
    reporter.reported()
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["message"] == "kubelet is posting ready status"

    clock.now += 10
    assert reporter.patch_for(node) is None  # unchanged, report period not over
    clock.now += 290
    heartbeat = reporter.patch_for(node)  # 5 minutes since the last report
    assert heartbeat is not None
    conds = heartbeat["status"]["conditions"]
    assert {c["type"] for c in conds} == {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
    assert all(set(c) == {"type", "lastHeartbeatTime"} for c in conds)  # only heartbeats moved
    node = apply_strategic_merge_patch(node, heartbeat, "Node")
    reporter.reported()
    clock.now += 10
    facts.pressure["MemoryPressure"] = True
    changed = reporter.patch_for(node)
    assert changed is not None
    mem = next(c for c in changed["status"]["conditions"] if c["type"] == "MemoryPressure")
    assert mem["status"] == "True" and mem["reason"] == "KubeletHasInsufficientMemory"


class FixedRandom(random.Random):
    """random() answers the given values in turn (the last one repeats)."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def test_report_after_a_change_waits_a_one_time_random_delay_as_kubelet() -> None:
    """kubelet's delayAfterNodeStatusChange: frequency * (rand - 0.5) once after a change, then the plain period."""
    clock = Clock()
    facts = _facts(heartbeat={"statusReportFrequency": 300})
    reporter = NodeStatusReporter(facts, clock=clock, rng=FixedRandom(0.9))  # +120 s after the change
    node = build_node(facts, clock.now)
    first = reporter.patch_for(node)  # Ready False -> True: a change
    assert first is not None
    node = apply_strategic_merge_patch(node, first, "Node")
    reporter.reported()
    assert reporter.delay_after_change == pytest.approx(120.0)
    clock.now += 300
    assert reporter.patch_for(node) is None  # 5 min passed, but the one-time delay has not
    clock.now += 119
    assert reporter.patch_for(node) is None
    clock.now += 1
    periodic = reporter.patch_for(node)
    assert periodic is not None
    node = apply_strategic_merge_patch(node, periodic, "Node")
    reporter.reported()
    assert reporter.delay_after_change == 0.0  # a periodic report resets it: every 5 min from now on
    clock.now += 299
    assert reporter.patch_for(node) is None
    clock.now += 1
    assert reporter.patch_for(node) is not None


def test_report_delays_spread_nodes_over_half_to_one_and_a_half_periods() -> None:
    """Many nodes started together: their first periodic reports spread over [2.5, 7.5] min, not all at 5 min."""
    delays = []
    rng = random.Random(7)
    for _ in range(200):
        clock = Clock()
        facts = _facts(heartbeat={"statusReportFrequency": 300})
        reporter = NodeStatusReporter(facts, clock=clock, rng=rng)
        node = build_node(facts, clock.now)
        assert reporter.patch_for(node) is not None
        reporter.reported()
        delays.append(reporter.delay_after_change)
    assert all(-150.0 <= d <= 150.0 for d in delays)
    assert min(delays) < -100 and max(delays) > 100  # spread, not one value


def test_quantities_compare_by_value_as_semantic_deep_equal() -> None:
    """A Node whose capacity the server spells differently (same values) is no change; another value is."""
    clock = Clock()
    facts = _facts(capacity={"cpu": "1000m", "memory": "3.75Gi", "pods": "110"})
    reporter = NodeStatusReporter(facts, clock=clock)
    node = build_node(facts, clock.now, ready=True)
    assert node["status"]["capacity"] == {"cpu": "1", "memory": "3840Mi", "pods": "110"}
    assert node["status"]["allocatable"] == {"cpu": "1", "memory": "3740Mi", "pods": "110"}
    clock.now += 10
    assert reporter.patch_for(node) is not None  # the first report (heartbeat times moved)
    reporter.reported()
    clock.now += 10
    node["status"]["capacity"] = {"cpu": "1", "memory": "4026531840", "pods": 110}  # equal values
    node["status"]["allocatable"]["memory"] = "3921674240"
    assert reporter.patch_for(node) is None
    assert not status_changed(node["status"], reporter.desired_status(node["status"], clock.now))
    node["status"]["capacity"]["memory"] = "4Gi"
    assert reporter.patch_for(node) is not None
    assert status_changed(node["status"], reporter.desired_status(dict(node["status"], capacity={}), clock.now))


def test_other_writers_conditions_are_kept() -> None:
    clock = Clock()
    facts = _facts()
    reporter = NodeStatusReporter(facts, clock=clock)
    node = build_node(facts, clock.now, ready=True)
    node["status"]["conditions"].insert(0, {"type": "KernelDeadlock", "status": "False"})
    desired = reporter.desired(node, clock.now + 10)
    assert desired["status"]["conditions"][0]["type"] == "KernelDeadlock"
    assert len(desired["status"]["conditions"]) == 5


def _pod(cpu: str = "0", memory: str = "0") -> dict:
    return {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}


def test_admission_like_kubelet() -> None:
    alloc = {"cpu": "1", "memory": "1Gi", "pods": "2"}
    assert admit(_pod("500m"), [_pod("500m")], alloc) is None
    reason, message = admit(_pod("600m"), [_pod("500m")], alloc)
    assert reason == "OutOfcpu"
    assert message.endswith("cpu, requested: 600, used: 500, capacity: 1000")
    assert admit(_pod(memory="2Gi"), [], alloc)[0] == "OutOfmemory"
    assert admit(_pod(), [_pod(), _pod()], alloc)[0] == "OutOfpods"
    assert admit(_pod() | {"spec": {"containers": [{"resources": {"requests": {"example.com/gpu": "1"}}}]}}, [], alloc)[
        0
    ] == ("OutOfexample.com/gpu")


def test_pod_status_shapes_and_patch() -> None:
    c = ContainerRecord("app", "img")
    pending = build_status(PodView("Pending", [c], host_ip="10.64.0.2", start_time=1_700_000_000.0))
    conds = {x["type"]: x for x in pending["conditions"]}
    assert conds["PodReadyToStartContainers"]["status"] == "False"
    assert conds["Ready"]["reason"] == "ContainersNotReady"
    assert conds["Ready"]["message"] == "containers with unready status: [app]"
    assert pending["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    old = {"phase": "Pending", "qosClass": "BestEffort", "conditions": [{"type": "PodScheduled", "status": "True"}]}
    merged = merge_status(old, pending, 1_700_000_000.0)
    assert [x["type"] for x in merged["conditions"]][-1] == "PodScheduled"
    assert merged["qosClass"] == "BestEffort"
    pod = {"metadata": {"uid": "u1"}, "status": old}
    patch = status_patch(pod, merged)
    assert patch["metadata"] == {"uid": "u1"}
    assert "phase" not in patch["status"]  # unchanged fields are not sent
    assert patch["status"]["hostIP"] == "10.64.0.2"
    assert status_patch({"metadata": {"uid": "u1"}, "status": merged}, merged) is None

    c.state, c.ready, c.started_at, c.container_id = "running", True, 1_700_000_001.0, "hollow://ab"
    running = merge_status(
        merged, build_status(PodView("Running", [c], "10.64.0.2", "10.128.0.2", 1.0, True)), 1_700_000_002.0
    )
    conds = {x["type"]: x for x in running["conditions"]}
    assert all(
        conds[t]["status"] == "True" for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
    )
    assert conds["Initialized"]["lastTransitionTime"] == "2023-11-14T22:13:20Z"  # unchanged status keeps its time
    assert conds["Ready"]["lastTransitionTime"] == "2023-11-14T22:13:22Z"
    assert running["podIPs"] == [{"ip": "10.128.0.2"}]
