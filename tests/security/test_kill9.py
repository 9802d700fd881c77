"""kill -9 durability: no write the API server acknowledged is lost when the master is SIGKILLed mid-burst.

`kubemark master start` (etcd with fsync, as users run it) takes a burst of concurrent writes from RestClients:
creates of ConfigMaps, Pods and Leases, then updates (PUT, merge PATCH) and deletes of them. After N acknowledged
writes the master process gets SIGKILL (its etcd, a child, dies with it). Every 2xx is recorded: object, content
hash and resourceVersion, or "deleted". The master restarts on the same data dir and each object is read back:
an acknowledged create/update must be there with its content (or with the content of the one write in flight on
that object when the kill landed) and a resourceVersion at least the acknowledged one; an acknowledged delete
must be gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.master.test_master_cli import Master, etcd_children, wait_gone

from kubemark import codec
from kubemark.client import NotFound, RestClient, load_kubeconfig
from kubemark.client.paths import resource_path

pytestmark = pytest.mark.etcd

WORKERS = 12
OBJECTS_PER_WORKER = 12
KILL_AFTER = 240  # acknowledged writes before the SIGKILL
MAX_OPS = 3000  # a bound, should the kill not land
NAMESPACE = "default"
KINDS = ("configmaps", "pods", "leases")


def object_path(kind: str, name: str = "") -> str:
    group = "coordination.k8s.io" if kind == "leases" else ""
    return resource_path(group, "v1", kind, NAMESPACE, name or None)


def content(kind: str, obj: dict[str, Any]) -> str:
    """A hash of the fields the burst writes (not those the master's own components may add)."""
    if kind == "configmaps":
        part: Any = obj.get("data")
    elif kind == "pods":
        part = (obj.get("metadata") or {}).get("annotations")
    else:
        spec = obj.get("spec") or {}
        part = [spec.get("holderIdentity"), spec.get("leaseDurationSeconds")]
    return hashlib.sha256(codec.dumps(part)).hexdigest()[:16]


def new_object(kind: str, name: str, version: int) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if kind == "configmaps":
        return {"metadata": md, "data": {"v": str(version), "pad": "x" * 200}}
    if kind == "pods":
        md["annotations"] = {"v": str(version)}
        return {"metadata": md, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}
    return {"metadata": md, "spec": {"holderIdentity": f"holder-{version}", "leaseDurationSeconds": 40}}


@dataclass
class Tracked:
    """One object of the burst: its last acknowledged state and the state of a write in flight at the kill."""

    kind: str
    name: str
    version: int = 0
    acked: tuple[str, str, int] | None = None  # ("present", content hash, resourceVersion) or ("deleted", "", 0)
    pending: tuple[str, str] | None = None  # ("present", hash) or ("deleted", "")
    obj: dict[str, Any] = field(default_factory=dict)


@dataclass
class Burst:
    master: Master
    objects: list[Tracked]
    acknowledged: int = 0
    ops: int = 0
    killed_at: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {"creates": 0, "updates": 0, "patches": 0, "deletes": 0})

    def ack(self, what: str) -> None:
        self.acknowledged += 1
        self.counts[what] += 1
        if self.acknowledged == KILL_AFTER:
            self.killed_at = time.monotonic()
            os.kill(self.master.proc.pid, signal.SIGKILL)

    async def worker(self, client: RestClient, mine: list[Tracked], rng: random.Random) -> None:
        live = list(mine)
        while live and self.ops < MAX_OPS:
            self.ops += 1
            item = rng.choice(live)
            try:
                if item.acked is None:
                    await self.create(client, item)
                elif rng.random() < 0.1 and item.kind != "leases":
                    await self.delete(client, item)
                    live.remove(item)
                else:
                    await self.update(client, item, rng)
            except Exception:
                return  # the master is gone (or refused): this worker's burst ends here
            item.pending = None

    async def create(self, client: RestClient, item: Tracked) -> None:
        body = new_object(item.kind, item.name, item.version)
        item.pending = ("present", content(item.kind, body))
        created = await client.create(object_path(item.kind), body)
        self.record(item, created)
        self.ack("creates")

    async def update(self, client: RestClient, item: Tracked, rng: random.Random) -> None:
        item.version += 1
        if item.kind == "pods" and rng.random() < 0.7:
            patch = {"metadata": {"annotations": {"v": str(item.version)}}}
            item.pending = ("present", content(item.kind, patch))
            updated = await client.patch(object_path(item.kind, item.name), patch, "merge")
            self.record(item, updated)
            self.ack("patches")
            return
        body = dict(item.obj)
        fresh = new_object(item.kind, item.name, item.version)
        for key in ("data", "spec"):
            if key in fresh and item.kind != "pods":
                body[key] = fresh[key]
        if item.kind == "pods":
            body["metadata"] = dict(body["metadata"], annotations=fresh["metadata"]["annotations"])
        item.pending = ("present", content(item.kind, body))
        updated = await client.replace(object_path(item.kind, item.name), body)
        self.record(item, updated)
        self.ack("updates")

    async def delete(self, client: RestClient, item: Tracked) -> None:
        item.pending = ("deleted", "")
        await client.delete(object_path(item.kind, item.name), grace_period_seconds=0)
        item.acked = ("deleted", "", 0)
        self.ack("deletes")

    @staticmethod
    def record(item: Tracked, obj: dict[str, Any]) -> None:
        item.obj = obj
        item.acked = ("present", content(item.kind, obj), int(obj["metadata"]["resourceVersion"]))


async def run_burst(burst: Burst) -> None:
    creds = load_kubeconfig(burst.master.kubeconfig)
    rng = random.Random(20)
    clients = [RestClient(creds, qps=0, max_retries=0, timeout=10) for _ in range(WORKERS)]
    try:
        await asyncio.gather(
            *(
                burst.worker(client, burst.objects[i * OBJECTS_PER_WORKER : (i + 1) * OBJECTS_PER_WORKER], rng)
                for i, client in enumerate(clients)
            )
        )
    finally:
        for client in clients:
            await client.close()


async def read_back(master: Master, objects: list[Tracked]) -> tuple[list[str], dict[str, int]]:
    """(lost or wrong objects, figures) after the restart."""
    problems: list[str] = []
    figures = {"present_ok": 0, "deleted_ok": 0, "in_flight_applied": 0, "unacknowledged": 0}
    async with RestClient(load_kubeconfig(master.kubeconfig), qps=0) as client:
        for item in objects:
            try:
                got: dict[str, Any] | None = await client.get(object_path(item.kind, item.name))
            except NotFound:
                got = None
            where = f"{item.kind}/{item.name}"
            if item.acked is None:
                figures["unacknowledged"] += 1
                continue
            state = item.acked[0]
            if got is None:
                if state == "deleted":
                    figures["deleted_ok"] += 1
                elif item.pending == ("deleted", ""):
                    figures["in_flight_applied"] += 1
                else:
                    problems.append(f"{where}: acknowledged {item.acked} but gone")
                continue
            if state == "deleted":
                problems.append(f"{where}: acknowledged delete, but it is back")
                continue
            _, acked_hash, acked_rv = item.acked
            have = content(item.kind, got)
            if int(got["metadata"]["resourceVersion"]) < acked_rv:
                problems.append(f"{where}: resourceVersion {got['metadata']['resourceVersion']} < acked {acked_rv}")
            if have == acked_hash:
                figures["present_ok"] += 1
            elif item.pending is not None and item.pending[1] == have:
                figures["in_flight_applied"] += 1
            else:
                problems.append(f"{where}: content {have} is neither the acknowledged {acked_hash} nor in flight")
    return problems, figures


def kill_leftovers(master: Master | None, data_dir: Path) -> None:
    if master is not None and master.proc.poll() is None:
        master.proc.kill()
        master.proc.wait(timeout=30)
    for pid in etcd_children(data_dir):  # only the etcd serving this test's data dir
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_mid_burst_loses_no_acknowledged_write(tmp_path: Path, record_property: Any) -> None:
    data_dir = tmp_path / "master"
    first: Master | None = None
    again: Master | None = None
    try:
        first = Master(data_dir)
        objects = [Tracked(KINDS[i % 3], f"k9-{KINDS[i % 3][:-1]}-{i}") for i in range(WORKERS * OBJECTS_PER_WORKER)]
        burst = Burst(first, objects)
        asyncio.run(run_burst(burst))
        assert burst.acknowledged >= KILL_AFTER, f"only {burst.acknowledged} writes before the burst ended"
        assert first.proc.wait(timeout=30) == -signal.SIGKILL
        etcd_pids = etcd_children(data_dir)
        assert wait_gone(etcd_pids), f"etcd {etcd_pids} outlived the killed master"

        restart = time.monotonic()
        again = Master(data_dir)
        ready_s = time.monotonic() - restart
        problems, figures = asyncio.run(read_back(again, objects))
        in_flight = sum(1 for o in objects if o.pending is not None)
        summary = {
            "acknowledged_writes": burst.acknowledged,
            **{f"acknowledged_{k}": v for k, v in burst.counts.items()},
            "writes_in_flight_at_kill": in_flight,
            "objects_read_back": len(objects),
            **figures,
            "lost_or_wrong": len(problems),
            "restart_ready_seconds": round(ready_s, 1),
        }
        for key, value in summary.items():
            record_property(key, value)
        print("kill -9 durability:", codec.dumps(summary).decode())
        assert not problems, "acknowledged writes lost after kill -9:\n" + "\n".join(problems[:20])
    finally:
        kill_leftovers(first, data_dir)
        if again is not None:
            again.stop()
        kill_leftovers(again, data_dir)
