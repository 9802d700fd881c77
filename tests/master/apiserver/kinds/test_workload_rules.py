"""Deployment, ReplicaSet, ReplicationController and Job rules, and the shared scale subresource."""

from __future__ import annotations

import copy

import pytest

from kubemark import codec
from kubemark.master.apiserver.errors import StatusError
from kubemark.master.apiserver.kinds.scale import format_label_selector


def template(labels: dict | None = None, **spec: object) -> dict:
    return {
        "metadata": {"labels": labels if labels is not None else {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec},
    }


def deployment(name: str = "web", **spec: object) -> dict:
    body = {"selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "ns"}, "spec": body}


def test_deployment_defaults(make_strategy) -> None:
    strategy = make_strategy("apps", "deployments")
    obj = deployment()
    strategy.prepare_for_create(obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always" and pod_spec["dnsPolicy"] == "ClusterFirst"
    assert pod_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "tolerations" not in pod_spec  # admission defaults apply to pods, not templates
    assert strategy.validate(obj) == []


def test_deployment_validation(make_strategy) -> None:
    strategy = make_strategy("apps", "deployments")
    obj = deployment(
        replicas=-1, selector={"matchLabels": {"app": "other"}}, strategy={"type": "Recreate", "rollingUpdate": {}}
    )
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    strategy.prepare_for_create(obj)
    causes = strategy.validate(obj)
    assert {(c.field, c.reason) for c in causes} == {
        ("spec.replicas", "FieldValueInvalid"),
        ("spec.template.metadata.labels", "FieldValueInvalid"),
        ("spec.template.spec.restartPolicy", "FieldValueNotSupported"),
        ("spec.strategy.rollingUpdate", "FieldValueForbidden"),
    }
    mismatch = next(c for c in causes if c.field == "spec.template.metadata.labels")
    assert mismatch.message.endswith("`selector` does not match template `labels`")
    missing = deployment()
    del missing["spec"]["selector"]
    strategy.prepare_for_create(missing)
    assert [(c.field, c.reason) for c in strategy.validate(missing)] == [("spec.selector", "FieldValueRequired")]


def test_match_expressions_selector(make_strategy) -> None:
    strategy = make_strategy("apps", "replicasets")
    obj = deployment(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]})
    strategy.prepare_for_create(obj)
    assert strategy.validate(obj) == []
    assert obj["spec"]["replicas"] == 1


def test_selector_immutable(make_strategy) -> None:
    strategy = make_strategy("apps", "deployments")
    old = deployment()
    strategy.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    strategy.prepare_for_update(new, old)
    [cause] = strategy.validate_update(new, old)
    assert cause.field == "spec.selector" and cause.message.endswith("field is immutable")
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    strategy.prepare_for_update(scaled, old)
    assert strategy.validate_update(scaled, old) == []


def test_replication_controller_defaults_selector(make_strategy) -> None:
    strategy = make_strategy("", "replicationcontrollers")
    obj = {"metadata": {"name": "rc", "namespace": "ns"}, "spec": {"template": template({"app": "rc"})}}
    strategy.prepare_for_create(obj)
    assert obj["spec"]["selector"] == {"app": "rc"}
    assert obj["metadata"]["labels"] == {"app": "rc"}
    assert obj["spec"]["replicas"] == 1
    assert strategy.validate(obj) == []
    bad = {"metadata": {"name": "rc"}, "spec": {"selector": {"app": "x"}, "template": template({"app": "rc"})}}
    strategy.prepare_for_create(bad)
    assert [c.field for c in strategy.validate(bad)] == ["spec.template.metadata.labels"]


def job(**spec: object) -> dict:
    body = {"template": template({}, restartPolicy="Never"), **spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "ns", "uid": "u-1"},
        "spec": body,
    }


def test_job_defaults_and_generated_selector(make_strategy) -> None:
    strategy = make_strategy("batch", "jobs")
    obj = job()
    strategy.prepare_for_create(obj)
    spec = obj["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": "u-1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u-1",
        "job-name": "pi",
    }
    assert strategy.validate(obj) == []
    only_parallelism = job(parallelism=3)
    strategy.prepare_for_create(only_parallelism)
    assert only_parallelism["spec"]["parallelism"] == 3 and "completions" not in only_parallelism["spec"]


def test_job_restart_policy_and_immutability(make_strategy) -> None:
    strategy = make_strategy("batch", "jobs")
    obj = job(template=template({}))  # restartPolicy defaults to Always, which Jobs refuse
    strategy.prepare_for_create(obj)
    [cause] = strategy.validate(obj)
    assert cause.field == "spec.template.spec.restartPolicy"
    assert cause.message == 'Unsupported value: "Always": supported values: "OnFailure", "Never"'
    old = job()
    strategy.prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    new["spec"]["parallelism"] = 4
    strategy.prepare_for_update(new, old)
    assert [c.field for c in strategy.validate_update(new, old)] == ["spec.template"]


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
        (
            {
                "matchLabels": {"app": "x"},
                "matchExpressions": [
                    {"key": "tier", "operator": "NotIn", "values": ["b", "a"]},
                    {"key": "env", "operator": "Exists"},
                    {"key": "zz", "operator": "DoesNotExist"},
                ],
            },
            "app=x,env,tier notin (a,b),!zz",
        ),
        ({"app": "rc"}, "app=rc"),
        (None, ""),
    ],
)
def test_format_label_selector(selector, text) -> None:
    assert format_label_selector(selector) == text


async def _created_deployment(cluster) -> dict:
    return await cluster.store("apps", "deployments").create(deployment(replicas=2), None)


async def test_scale_get_and_put(cluster) -> None:
    created = await _created_deployment(cluster)
    scale = await cluster.call("apps", "deployments", "scale", "get", "ns", "web")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=web"}
    assert scale["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert scale["metadata"]["uid"] == created["metadata"]["uid"]

    scale["spec"]["replicas"] = 7
    updated = await cluster.call("apps", "deployments", "scale", "update", "ns", "web", scale)
    assert updated["spec"]["replicas"] == 7
    assert (await cluster.store("apps", "deployments").get("ns", "web"))["spec"]["replicas"] == 7

    with pytest.raises(StatusError) as err:  # `scale` still carries the old resourceVersion
        await cluster.call("apps", "deployments", "scale", "update", "ns", "web", scale)
    assert err.value.code == 409
    with pytest.raises(StatusError) as err:
        await cluster.call("apps", "deployments", "scale", "update", "ns", "web", {"spec": {"replicas": -1}})
    assert err.value.code == 422
    assert err.value.message.endswith(
        '"web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    )
    assert err.value.details["causes"][0]["field"] == "spec.replicas"
    with pytest.raises(StatusError) as err:
        await cluster.call("apps", "deployments", "scale", "get", "ns", "missing")
    assert err.value.code == 404


@pytest.mark.parametrize(
    ("patch_type", "patch"),
    [
        ("application/merge-patch+json", {"spec": {"replicas": 4}}),
        ("application/strategic-merge-patch+json", {"spec": {"replicas": 4}}),
        ("application/json-patch+json", [{"op": "replace", "path": "/spec/replicas", "value": 4}]),
    ],
)
async def test_scale_patch(cluster, patch_type: str, patch) -> None:
    await _created_deployment(cluster)
    result = await cluster.call(
        "apps", "deployments", "scale", "patch", "ns", "web", patch_type=patch_type, raw_body=codec.dumps(patch)
    )
    assert result["spec"]["replicas"] == 4
    assert (await cluster.store("apps", "deployments").get("ns", "web"))["spec"]["replicas"] == 4


async def test_scale_patch_errors(cluster) -> None:
    await _created_deployment(cluster)
    with pytest.raises(StatusError) as err:
        await cluster.call(
            "apps", "deployments", "scale", "patch", "ns", "web", patch_type="text/plain", raw_body=b"{}"
        )
    assert err.value.code == 415
    with pytest.raises(StatusError) as err:
        await cluster.call(
            "apps",
            "deployments",
            "scale",
            "patch",
            "ns",
            "web",
            patch_type="application/merge-patch+json",
            raw_body=b"{not json",
        )
    assert err.value.code == 400


async def test_scale_of_replication_controller(cluster) -> None:
    rc = {"metadata": {"name": "rc", "namespace": "ns"}, "spec": {"replicas": 3, "template": template({"app": "rc"})}}
    await cluster.store("", "replicationcontrollers").create(rc, None)
    scale = await cluster.call("", "replicationcontrollers", "scale", "get", "ns", "rc")
    assert scale["spec"]["replicas"] == 3 and scale["status"]["selector"] == "app=rc"
    scale["spec"]["replicas"] = 0
    result = await cluster.call("", "replicationcontrollers", "scale", "update", "ns", "rc", scale)
    assert result["spec"]["replicas"] == 0
