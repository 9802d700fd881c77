"""`run_scheduler`: the body of `kubemark master scheduler --kubeconfig K` (runs until cancelled)."""

from __future__ import annotations

import asyncio
import logging

from kubemark.client import RestClient, load_in_cluster, load_kubeconfig
from kubemark.master.scheduler.scheduler import DEFAULT_BIND_CONCURRENCY, Scheduler

log = logging.getLogger(__name__)

# KubeSchedulerConfiguration's clientConnection defaults.
DEFAULT_QPS = 50.0
DEFAULT_BURST = 100


async def run_scheduler(
    kubeconfig: str | None,
    *,
    context: str | None = None,
    name: str = "default-scheduler",
    qps: float = DEFAULT_QPS,
    burst: int = DEFAULT_BURST,
    percentage_of_nodes_to_score: int | None = None,
    bind_concurrency: int = DEFAULT_BIND_CONCURRENCY,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = 10251,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a scheduler against the cluster of `kubeconfig` (in-cluster config when None) until `stop` is set
    or the task is cancelled."""
    creds = load_kubeconfig(kubeconfig, context) if kubeconfig else load_in_cluster()
    user_agent = f"kubemark-scheduler/{name}"
    # Events get a client and rate limit of their own (kube-scheduler's createClients), so they never take
    # bindings' share of the QPS.
    async with (
        RestClient(creds, qps=qps, burst=burst, user_agent=user_agent) as client,
        RestClient(creds, qps=qps, burst=burst, user_agent=user_agent) as event_client,
    ):
        scheduler = Scheduler(
            client,
            event_client=event_client,
            name=name,
            percentage_of_nodes_to_score=percentage_of_nodes_to_score,
            bind_concurrency=bind_concurrency,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )
        await scheduler.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await scheduler.stop()
