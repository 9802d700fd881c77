"""APIServer on a real etcd (started by the test on loopback): CRUD, pagination, watch, compaction, restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubemark import codec
from kubemark.master.apiserver.server import APIServer, APIServerConfig

pytestmark = pytest.mark.etcd

CMS = "/api/v1/namespaces/default/configmaps"


async def call(
    session: aiohttp.ClientSession, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    data = codec.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    async with session.request(method, path, data=data, headers=headers, params=params or None) as resp:
        payload = await resp.read()
        return resp.status, codec.loads(payload) if payload else None


def configmap(name: str, value: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


def etcd_config(data_dir: Path) -> APIServerConfig:
    return APIServerConfig(storage="etcd", data_dir=data_dir, unsafe_no_fsync=True, compaction_interval=0)


async def test_etcd_crud_pagination_watch_and_compaction(tmp_path: Path) -> None:
    async with APIServer(etcd_config(tmp_path / "etcd")) as server, aiohttp.ClientSession(base_url=server.url) as s:
        code, ns = await call(s, "GET", "/api/v1/namespaces/kube-system")
        assert code == 200 and ns["status"]["phase"] == "Active"
        _, first = await call(s, "POST", CMS, configmap("c0"))
        for i in range(1, 5):
            assert (await call(s, "POST", CMS, configmap(f"c{i}")))[0] == 201
        code, status = await call(s, "POST", CMS, configmap("c0"))
        assert code == 409 and status["reason"] == "AlreadyExists"
        stale = dict(first, data={"v": "x"})
        _, updated = await call(s, "PUT", f"{CMS}/c0", dict(first, data={"v": "2"}))
        assert updated["data"] == {"v": "2"}
        code, status = await call(s, "PUT", f"{CMS}/c0", stale)
        assert code == 409 and status["reason"] == "Conflict"

        _, page1 = await call(s, "GET", CMS, limit="2")
        assert [i["metadata"]["name"] for i in page1["items"]] == ["c0", "c1"]
        _, page2 = await call(s, "GET", CMS, limit="2", **{"continue": page1["metadata"]["continue"]})
        assert [i["metadata"]["name"] for i in page2["items"]] == ["c2", "c3"]

        async with s.get(CMS, params={"watch": "1", "resourceVersion": first["metadata"]["resourceVersion"]}) as resp:
            lines = [codec.loads(await asyncio.wait_for(resp.content.readline(), 5)) for _ in range(5)]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [
            ("ADDED", "c1"),
            ("ADDED", "c2"),
            ("ADDED", "c3"),
            ("ADDED", "c4"),
            ("MODIFIED", "c0"),
        ]

        await call(s, "DELETE", f"{CMS}/c4")
        assert await server.compact_now() > 0
        code, status = await call(s, "GET", CMS, limit="2", **{"continue": page2["metadata"]["continue"]})
        assert code == 410 and status["reason"] == "Expired"
        code, status = await call(
            s, "GET", CMS, resourceVersion=first["metadata"]["resourceVersion"], resourceVersionMatch="Exact"
        )
        assert code == 410


async def test_etcd_state_survives_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "etcd"
    async with APIServer(etcd_config(data_dir)) as server, aiohttp.ClientSession(base_url=server.url) as s:
        _, created = await call(s, "POST", CMS, configmap("kept"))
    async with APIServer(etcd_config(data_dir)) as server, aiohttp.ClientSession(base_url=server.url) as s:
        code, got = await call(s, "GET", f"{CMS}/kept")
        assert code == 200 and got["metadata"]["uid"] == created["metadata"]["uid"]
        assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        _, namespaces = await call(s, "GET", "/api/v1/namespaces")
        names = sorted(n["metadata"]["name"] for n in namespaces["items"])
        assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
