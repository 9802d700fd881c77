"""Pod strategy: defaulting, QoS, validation, update rules, graceful deletion, binding and eviction."""

from __future__ import annotations

import copy

import pytest

from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.kinds.pods import POD_UPDATE_FORBIDDEN


def pod(name: str = "p", **spec_extra: object) -> dict:
    spec = {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec_extra}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}, "spec": spec}


def container(name: str = "c", image: str = "nginx:1.25", **extra: object) -> dict:
    return {"name": name, "image": image, **extra}


@pytest.fixture
def pods(make_strategy):
    return make_strategy("", "pods")


def test_create_defaults(pods) -> None:
    obj = pod()
    pods.prepare_for_create(obj)
    spec = obj["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    assert spec["enableServiceLinks"] is True
    assert spec["securityContext"] == {}
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert pods.validate(obj) == []


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("registry:5000/nginx", "Always"),
        ("registry:5000/nginx:1.2", "IfNotPresent"),
        ("nginx@sha256:abc", "IfNotPresent"),
    ],
)
def test_image_pull_policy_default(pods, image: str, policy: str) -> None:
    obj = pod(containers=[container(image=image)])
    pods.prepare_for_create(obj)
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_existing_tolerations_and_service_account_kept(pods) -> None:
    tolerations = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]
    obj = pod(serviceAccountName="builder", tolerations=tolerations)
    pods.prepare_for_create(obj)
    keys = [t["key"] for t in obj["spec"]["tolerations"]]
    assert keys == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert "tolerationSeconds" not in obj["spec"]["tolerations"][0]
    assert obj["spec"]["serviceAccount"] == "builder"


def test_ports_default_tcp_and_requests_from_limits(pods) -> None:
    obj = pod(
        containers=[container(ports=[{"containerPort": 80}], resources={"limits": {"cpu": "500m", "memory": "64Mi"}})]
    )
    pods.prepare_for_create(obj)
    c = obj["spec"]["containers"][0]
    assert c["ports"][0]["protocol"] == "TCP"
    assert c["resources"]["requests"] == {"cpu": "500m", "memory": "64Mi"}
    assert obj["status"]["qosClass"] == "Guaranteed"


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "100m"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"requests": {"cpu": "1000m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}], "Guaranteed"),
        ([{"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}], "Burstable"),
        ([{"limits": {"cpu": "1"}}], "Burstable"),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
        ([{"requests": {"ephemeral-storage": "1Gi"}}], "BestEffort"),
    ],
)
def test_qos_class(pods, resources: list[dict], qos: str) -> None:
    obj = pod(containers=[container(name=f"c{i}", resources=r) for i, r in enumerate(resources)])
    pods.prepare_for_create(obj)
    assert obj["status"]["qosClass"] == qos


def test_validation_failures(pods) -> None:
    obj = pod(
        containers=[
            {"name": "Bad_Name", "image": "x"},
            {"name": "dup", "image": ""},
            {"name": "dup", "image": "y", "ports": [{"containerPort": 70000, "protocol": "XTP"}]},
        ],
        restartPolicy="Sometimes",
    )
    pods.prepare_for_create(obj)
    causes = {(c.field, c.reason) for c in pods.validate(obj)}
    assert causes == {
        ("spec.containers[0].name", "FieldValueInvalid"),
        ("spec.containers[1].image", "FieldValueRequired"),
        ("spec.containers[2].name", "FieldValueDuplicate"),
        ("spec.containers[2].ports[0].containerPort", "FieldValueInvalid"),
        ("spec.containers[2].ports[0].protocol", "FieldValueNotSupported"),
        ("spec.restartPolicy", "FieldValueNotSupported"),
    }


def test_containers_required(pods) -> None:
    obj = pod(containers=[])
    pods.prepare_for_create(obj)
    [cause] = pods.validate(obj)
    assert (cause.field, cause.message, cause.reason) == ("spec.containers", "Required value", "FieldValueRequired")


def test_resources_must_parse_and_requests_not_exceed_limits(pods) -> None:
    obj = pod(
        containers=[
            container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
            container(name="d", resources={"requests": {"memory": "lots"}}),
        ]
    )
    pods.prepare_for_create(obj)
    causes = pods.validate(obj)
    assert [(c.field, c.reason) for c in causes] == [
        ("spec.containers[0].resources.requests", "FieldValueInvalid"),
        ("spec.containers[1].resources.requests[memory]", "FieldValueInvalid"),
    ]
    assert causes[0].message == 'Invalid value: "2": must be less than or equal to cpu limit of 1'


def created(pods, **spec_extra: object) -> dict:
    obj = pod(**spec_extra)
    obj["metadata"]["resourceVersion"] = "1"
    pods.prepare_for_create(obj)
    return obj


def test_update_may_change_image_and_add_tolerations(pods) -> None:
    old = created(pods)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["tolerations"].append({"key": "k", "operator": "Exists", "effect": "NoSchedule"})
    new["spec"]["activeDeadlineSeconds"] = 60
    new["status"] = {"phase": "Running"}
    pods.prepare_for_update(new, old)
    assert pods.validate_update(new, old) == []
    assert new["status"] == old["status"]  # status is not writable through the main resource


def test_update_of_other_fields_forbidden(pods) -> None:
    old = created(pods)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    pods.prepare_for_update(new, old)
    [cause] = pods.validate_update(new, old)
    assert (cause.field, cause.reason) == ("spec", "FieldValueForbidden")
    assert cause.message == f"Forbidden: {POD_UPDATE_FORBIDDEN}"


def test_node_name_cannot_be_set_by_update(pods) -> None:
    old = created(pods)
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "n1"
    pods.prepare_for_update(new, old)
    assert [(c.field, c.reason) for c in pods.validate_update(new, old)] == [("spec", "FieldValueForbidden")]


def test_removing_toleration_forbidden(pods) -> None:
    old = created(pods)
    new = copy.deepcopy(old)
    new["spec"]["tolerations"].pop()
    pods.prepare_for_update(new, old)
    assert ("spec.tolerations", "FieldValueForbidden") in [(c.field, c.reason) for c in pods.validate_update(new, old)]


def test_status_update_keeps_spec(pods) -> None:
    old = created(pods)
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "sneaky"
    new["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    pods.prepare_for_status_update(new, old)
    assert "nodeName" not in new["spec"]
    assert new["status"]["podIP"] == "10.0.0.5"
    assert pods.validate_status_update(new, old) == []
    new["status"]["phase"] = "Sleeping"
    assert [c.field for c in pods.validate_status_update(new, old)] == ["status.phase"]


@pytest.mark.parametrize(
    ("node", "phase", "grace", "requested", "expected"),
    [
        ("", "Pending", 30, None, 0),
        ("n1", "Running", 30, None, 30),
        ("n1", "Running", 45, None, 45),
        ("n1", "Running", 30, 5, 5),
        ("n1", "Running", 30, 0, 0),
        ("n1", "Succeeded", 30, None, 0),
        ("n1", "Failed", 30, 10, 0),
        ("n1", "Running", None, None, 30),
        ("", "Running", 30, 10, 0),
    ],
)
def test_graceful_delete_seconds(pods, node, phase, grace, requested, expected) -> None:
    spec: dict = {"containers": [container()]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    obj = {"metadata": {"name": "p"}, "spec": spec, "status": {"phase": phase}}
    assert pods.graceful_delete_seconds(obj, requested) == expected


async def test_binding_assigns_node_once(cluster) -> None:
    store = cluster.store("", "pods")
    await store.create(pod("web"), None)
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "web"},
        "target": {"kind": "Node", "name": "n1"},
    }
    status = await cluster.call("", "pods", "binding", "create", "ns", "web", binding)
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    bound = await store.get("ns", "web")
    assert bound["spec"]["nodeName"] == "n1"
    [condition] = bound["status"]["conditions"]
    assert condition["type"] == "PodScheduled" and condition["status"] == "True"
    assert condition["lastTransitionTime"].endswith("Z")

    again = {**binding, "target": {"kind": "Node", "name": "n2"}}
    with pytest.raises(StatusError) as err:
        await cluster.call("", "pods", "binding", "create", "ns", "web", again)
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert 'pod web is already assigned to node "n1"' in err.value.message
    assert (await store.get("ns", "web"))["spec"]["nodeName"] == "n1"


async def test_binding_errors(cluster) -> None:
    await cluster.store("", "pods").create(pod("web"), None)
    with pytest.raises(StatusError) as err:
        await cluster.call("", "pods", "binding", "create", "ns", "missing", {"target": {"name": "n1"}})
    assert err.value.code == 404
    with pytest.raises(StatusError) as err:
        await cluster.call("", "pods", "binding", "create", "ns", "web", {"target": {"kind": "Pod", "name": "x"}})
    assert err.value.code == 422
    with pytest.raises(StatusError) as err:
        await cluster.call("", "pods", "binding", "create", "ns", "web", {"target": {}})
    assert err.value.code == 422
    with pytest.raises(StatusError) as err:
        await cluster.call(
            "", "pods", "binding", "create", "ns", "web", {"metadata": {"name": "other"}, "target": {"name": "n1"}}
        )
    assert err.value.code == 400


async def test_eviction_of_bound_pod_is_graceful(cluster) -> None:
    store = cluster.store("", "pods")
    await store.create(pod("web"), None)
    await cluster.call("", "pods", "binding", "create", "ns", "web", {"target": {"name": "n1"}})
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web", "namespace": "ns"}}
    status = await cluster.call("", "pods", "eviction", "create", "ns", "web", eviction)
    assert status["status"] == "Success" and status["code"] == 201
    evicted = await store.get("ns", "web")
    assert evicted["metadata"]["deletionTimestamp"]
    assert evicted["metadata"]["deletionGracePeriodSeconds"] == 30


async def test_eviction_honours_delete_options_and_unbound_pods_go_at_once(cluster) -> None:
    store = cluster.store("", "pods")
    await store.create(pod("a"), None)
    await store.create(pod("b"), None)
    await cluster.call("", "pods", "binding", "create", "ns", "b", {"target": {"name": "n1"}})
    await cluster.call("", "pods", "eviction", "create", "ns", "a", {"metadata": {"name": "a"}})
    await cluster.call(
        "",
        "pods",
        "eviction",
        "create",
        "ns",
        "b",
        {"metadata": {"name": "b"}, "deleteOptions": {"gracePeriodSeconds": 0}},
    )
    assert store.objects == {}
    with pytest.raises(StatusError) as err:
        await cluster.call("", "pods", "eviction", "create", "ns", "a", {"metadata": {"name": "a"}})
    assert err.value.code == 404


async def test_invalid_pod_create_is_422(cluster) -> None:
    with pytest.raises(StatusError) as err:
        await cluster.store("", "pods").create(pod(containers=[{"name": "c"}]), None)
    assert err.value.code == 422
    assert err.value.message == 'Pod "p" is invalid: spec.containers[0].image: Required value'
