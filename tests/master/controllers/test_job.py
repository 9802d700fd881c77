"""Job controller against the embedded API server (pods finish when the test reports their phase)."""

from __future__ import annotations

from typing import Any

from kubemark.client import resource_path
from kubemark.master.controllers.job import JobController, backoff_delay

JOBS = resource_path("batch", "v1", "jobs", "default")

Obj = dict[str, Any]


def job(name: str, completions: int | None, parallelism: int, backoff_limit: int = 6, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "parallelism": parallelism,
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            },
            **spec,
        },
    }
    if completions is not None:
        body["spec"]["completions"] = completions
    return body


async def get_job(cluster, name: str) -> Obj:
    return await cluster.client.get(resource_path("batch", "v1", "jobs", "default", name))


async def active_pods(cluster, name: str, count: int) -> list[Obj] | None:
    pods = await cluster.pods(selector=f"batch.kubernetes.io/job-name={name}")
    running = [
        p
        for p in pods
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not p["metadata"].get("deletionTimestamp")
    ]
    return running if len(running) == count else None


def conditions(obj: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or ()}


def test_backoff_delay_doubles_and_caps() -> None:
    assert backoff_delay(0) == 0.0
    assert [backoff_delay(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert backoff_delay(30) == 360.0


async def test_job_completes_after_three_successes_two_at_a_time(cluster) -> None:
    await cluster.run(JobController(cluster.client, cluster.informers, backoff_base=0))
    created = await cluster.client.create(JOBS, job("batch", completions=3, parallelism=2))
    uid = created["metadata"]["uid"]

    first = await cluster.wait_until(lambda: active_pods(cluster, "batch", 2), what="2 active pods")
    for pod in first:
        (ref,) = pod["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "batch",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert pod["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert pod["metadata"]["labels"]["app"] == "batch"
        assert pod["metadata"]["name"].startswith("batch-")

    async def running_status() -> Obj | None:
        got = await get_job(cluster, "batch")
        st = got.get("status") or {}
        return got if st.get("active") == 2 and st.get("startTime") else None

    await cluster.wait_until(running_status, what="status active=2 with startTime")

    await cluster.set_pod_status(first[0], phase="Succeeded", ready=False)
    await cluster.set_pod_status(first[1], phase="Succeeded", ready=False)
    (last,) = await cluster.wait_until(lambda: active_pods(cluster, "batch", 1), what="the third pod")
    assert last["metadata"]["name"] not in {p["metadata"]["name"] for p in first}
    await cluster.set_pod_status(last, phase="Succeeded", ready=False)

    async def complete() -> Obj | None:
        got = await get_job(cluster, "batch")
        return got if "Complete" in conditions(got) else None

    done = await cluster.wait_until(complete, what="Complete condition")
    conds = conditions(done)
    assert conds["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["reason"] == "CompletionsReached"
    assert conds["Complete"]["status"] == "True"
    st = done["status"]
    assert (st["succeeded"], st["failed"], st["active"], st["terminating"]) == (3, 0, 0, 0)
    assert st["completionTime"] and st["startTime"]
    assert len(await cluster.pods(selector="batch.kubernetes.io/job-name=batch")) == 3


async def test_job_fails_after_backoff_limit(cluster) -> None:
    await cluster.run(JobController(cluster.client, cluster.informers, backoff_base=0))
    await cluster.client.create(JOBS, job("flaky", completions=1, parallelism=1, backoff_limit=1))
    failed_names: set[str] = set()
    for _ in range(2):
        (pod,) = await cluster.wait_until(lambda: active_pods(cluster, "flaky", 1), what="an active pod")
        assert pod["metadata"]["name"] not in failed_names
        failed_names.add(pod["metadata"]["name"])
        await cluster.set_pod_status(pod, phase="Failed", ready=False)

    async def failed() -> Obj | None:
        got = await get_job(cluster, "flaky")
        return got if "Failed" in conditions(got) else None

    done = await cluster.wait_until(failed, what="Failed condition")
    conds = conditions(done)
    assert conds["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conds["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert "completionTime" not in done["status"]
    assert (done["status"]["failed"], done["status"]["active"]) == (2, 0)
    assert len(await cluster.pods(selector="batch.kubernetes.io/job-name=flaky")) == 2


async def test_failed_job_deletes_its_active_pods(cluster) -> None:
    await cluster.run(JobController(cluster.client, cluster.informers, backoff_base=0))
    await cluster.client.create(JOBS, job("doomed", completions=4, parallelism=2, backoff_limit=0))
    pods = await cluster.wait_until(lambda: active_pods(cluster, "doomed", 2), what="2 active pods")
    await cluster.set_pod_status(pods[0], phase="Failed", ready=False)

    async def failed() -> Obj | None:
        got = await get_job(cluster, "doomed")
        return got if "Failed" in conditions(got) else None

    await cluster.wait_until(failed, what="Failed condition")
    remaining = await cluster.pods(selector="batch.kubernetes.io/job-name=doomed")
    assert [p["metadata"]["name"] for p in remaining] == [pods[0]["metadata"]["name"]]


async def test_suspend_deletes_active_pods_and_resume_recreates(cluster) -> None:
    await cluster.run(JobController(cluster.client, cluster.informers, backoff_base=0))
    await cluster.client.create(JOBS, job("pausable", completions=5, parallelism=3))
    await cluster.wait_until(lambda: active_pods(cluster, "pausable", 3), what="3 active pods")
    path = resource_path("batch", "v1", "jobs", "default", "pausable")
    await cluster.client.patch(path, {"spec": {"suspend": True}}, "merge")

    async def suspended() -> Obj | None:
        got = await get_job(cluster, "pausable")
        cond = conditions(got).get("Suspended")
        pods = await cluster.pods(selector="batch.kubernetes.io/job-name=pausable")
        ok = cond and cond["status"] == "True" and got["status"]["active"] == 0 and not pods
        return got if ok else None

    await cluster.wait_until(suspended, what="suspended job without pods")
    await cluster.client.patch(path, {"spec": {"suspend": False}}, "merge")
    await cluster.wait_until(lambda: active_pods(cluster, "pausable", 3), what="3 pods after resume")

    async def resumed() -> bool:
        cond = conditions(await get_job(cluster, "pausable")).get("Suspended") or {}
        return cond.get("status") == "False" and cond.get("reason") == "JobResumed"

    await cluster.wait_until(resumed, what="Suspended=False")
