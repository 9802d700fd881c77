"""WaitForFinishedJobs against the in-process API server, Job statuses driven by the test."""

from __future__ import annotations

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.kube.meta import now_rfc3339
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.finished_jobs import FinishedJobsBarrier, job_finished
from kubemark.measure.watch import ObjectWatch

JOBS = resource_path("batch", "v1", "jobs", "default")


def job(name: str, group: str, completions: int) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"group": group}},
        "spec": {
            "completions": completions,
            "parallelism": completions,
            "template": {
                "metadata": {"labels": {"group": group}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


async def set_job_status(admin: RestClient, name: str, status: dict) -> None:
    current = await admin.get(f"{JOBS}/{name}")
    current["status"] = status
    await admin.replace(f"{JOBS}/{name}/status", current)


def finished(kind: str, succeeded: int) -> dict:
    now = now_rfc3339()
    return {
        "succeeded": succeeded,
        "startTime": now,
        "conditions": [{"type": kind, "status": "True", "lastTransitionTime": now, "lastProbeTime": now}],
    }


def test_job_finished_reads_the_complete_and_failed_conditions() -> None:
    assert job_finished({"status": finished("Complete", 1)})
    assert job_finished({"status": finished("Failed", 0)})
    assert not job_finished({"status": {"conditions": [{"type": "Complete", "status": "False"}]}})
    assert not job_finished({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}})
    assert not job_finished({})


async def test_waits_for_matching_jobs_and_names_the_unfinished(admin: RestClient) -> None:
    jobs = ObjectWatch(admin, resource_path("batch", "v1", "jobs"))
    await jobs.start(10)

    async def lister() -> list[dict]:
        items, _ = await admin.list_all(JOBS, label_selector="group = load-job")
        return items

    try:
        barrier = FinishedJobsBarrier(jobs, label_selector="group = load-job", lister=lister)
        barrier.start()
        await admin.create(JOBS, job("small", "load-job", 5))
        await admin.create(JOBS, job("medium", "load-job", 30))
        await admin.create(JOBS, job("other", "unrelated", 1))  # never finishes; not selected
        await set_job_status(admin, "small", finished("Complete", 5))
        await set_job_status(admin, "medium", {"active": 30, "succeeded": 0, "startTime": now_rfc3339()})

        with pytest.raises(BarrierTimeout) as info:
            await barrier.wait(0.5)
        message = str(info.value)
        assert "WaitForFinishedJobs: 1 Jobs not finished after 0.5s" in message
        assert "Job default/medium: 0 of 30 succeeded, 30 active, 0 failed" in message
        assert "small" not in message and "other" not in message

        await set_job_status(admin, "medium", finished("Failed", 3))
        await barrier.wait(5)  # a failed Job is finished too
        assert barrier.unfinished() == []

        # A Job created just before the wait is waited for, even if the watch has not delivered it yet.
        await admin.create(JOBS, job("late", "load-job", 1))
        with pytest.raises(BarrierTimeout, match="default/late"):
            await barrier.wait(0.3)
        await admin.delete(f"{JOBS}/late")
        await barrier.wait(5)  # deleted: nothing left to wait for
        barrier.stop()
    finally:
        await jobs.stop()
