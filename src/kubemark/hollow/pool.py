"""NodePool: many hollow nodes (kubelet + proxy + NPD each) in one event loop, and worker processes of pools.

Each node gets its own aiohttp sessions and TCP connectors by default (its own connections, like a real node:
one for the kubelet's heartbeat client, the rest for its calls and watches);
`shared_connection=True` shares one connector across the pool (a lighter, KWOK-like mode). The kubelet, proxy
and NPD of a node are separate clients (own rate limits) over the node's session. Nodes start at `ramp` nodes/s.
`run_workers` spreads nodes over spawned worker processes, each running a pool on uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubemark.client.informer import Informer
from kubemark.client.kubeconfig import ClusterCredentials, load_kubeconfig
from kubemark.client.rest import RestClient
from kubemark.client.shared_objects import SharedObjects
from kubemark.hollow.config import NodeConfig, load_node_config
from kubemark.hollow.endpoint import KubeletEndpoint
from kubemark.hollow.kubelet import HollowKubelet
from kubemark.hollow.metrics import LoopLagProbe, PoolMetrics
from kubemark.hollow.npd import HollowNodeProblemDetector
from kubemark.hollow.proxy import HollowProxy
from kubemark.hollow.transport import CALL_CONNECTIONS, IDLE_CONNECTION_SECONDS, node_connector

log = logging.getLogger(__name__)

CredentialsSource = ClusterCredentials | Callable[[str], ClusterCredentials]


@dataclass
class NodesOptions:
    """What `kubemark nodes start` asks for (picklable: it is sent to worker processes)."""

    count: int
    kubeconfig: str | None = None
    context: str | None = None
    workers: int = 1
    prefix: str = "hollow-node"
    config_path: str | None = None
    ramp: float = 0.0  # nodes per second; 0 = as fast as possible
    shared_connection: bool = False
    delete_on_exit: bool = False
    start_index: int = 0
    endpoint_host: str = "127.0.0.1"
    endpoint_port: int | None = None  # kubelet API + pool /metrics; None = not served; worker w uses port + w
    max_starting: int = 0  # nodes starting at once (registration to informers synced); 0 = no limit


class HollowNode:
    """One simulated node: the clients and daemons that run on it."""

    def __init__(
        self,
        name: str,
        index: int,
        creds: ClusterCredentials,
        config: NodeConfig,
        *,
        metrics: PoolMetrics | None = None,
        connector: aiohttp.BaseConnector | None = None,
        shared: SharedObjects | None = None,
        proxy_creds: ClusterCredentials | None = None,
    ) -> None:
        self.name = name
        self.index = index
        on_request = metrics.on_request if metrics else None
        self._sessions: list[aiohttp.ClientSession] = []
        if connector is None:
            # Watches hold a connection each (HTTP/1.1); the kubelet's heartbeat client (Node registration,
            # status, Lease) gets a connection of its own so a renewal never waits behind a watch storm's
            # handshakes. Idle connections live 60 s (under the server's 75 s keep-alive; client-go keeps 90 s).
            # Calls share CALL_CONNECTIONS connections; each watch has its own (HTTP/1.1 streams hold one).
            main = aiohttp.ClientSession(connector=node_connector(limit=CALL_CONNECTIONS))
            beat = aiohttp.ClientSession(connector=node_connector(limit=1))
            own_streams = aiohttp.ClientSession(connector=node_connector(limit=0))
            self._sessions = [main, beat, own_streams]
            streams: aiohttp.ClientSession | None = own_streams
        else:
            main = beat = aiohttp.ClientSession(connector=connector, connector_owner=False)
            streams = None
            self._sessions = [main]
        c = config.client

        def client(
            qps: float,
            burst: int,
            agent: str,
            session: aiohttp.ClientSession = main,
            identity: ClusterCredentials = creds,
        ) -> RestClient:
            return RestClient(
                identity,
                session=session,
                stream_session=streams,
                qps=qps,
                burst=burst,
                timeout=c.timeout,
                user_agent=f"{agent}/{config.kubelet_version} (linux/amd64) kubemark",
                on_request=on_request,
            )

        self.kubelet_client = client(c.qps, c.burst, "kubelet")
        self.heartbeat_client = client(c.qps, c.burst, "kubelet", beat)
        self.kubelet = HollowKubelet(
            name,
            self.kubelet_client,
            config,
            index=index,
            heartbeat_client=self.heartbeat_client,
            on_lease_lateness=metrics.observe_lease_lateness if metrics else None,
            on_renewal_lateness=metrics.observe_renewal_lateness if metrics else None,
            shared=shared,
        )
        self.proxy: HollowProxy | None = None
        if config.proxy.enabled:
            # kube-proxy runs as its own user (system:kube-proxy on a real master: the node authorizer does not
            # let a kubelet's identity list EndpointSlices); by default the node's.
            self.proxy = HollowProxy(
                name,
                client(5, 10, "kube-proxy", identity=proxy_creds or creds),
                config,
                on_programming_latency=metrics.programming.observe if metrics else None,
                shared=shared,
            )
        self.npd: HollowNodeProblemDetector | None = None
        if config.npd.enabled:
            self.npd = HollowNodeProblemDetector(name, client(5, 10, "node-problem-detector"), config)

    async def start(self) -> None:
        """Short calls first, one after the other over one connection (register, status, lease, NPD
        conditions, kube-proxy's event), then the watches: a node opens 1 + its watch count connections, not
        one per call in flight, which halves its TLS handshakes (the dominant start-up cost, both sides)."""
        await self.kubelet.start_heartbeats()
        if self.npd is not None:
            await self.npd.update()
            self.npd.start(updated=True)
        if self.proxy is not None:
            await self.proxy.start()
        self.kubelet.start_watches()

    def informers(self) -> list[Informer]:
        """Every informer of the node's daemons (one WATCH stream each once synced)."""
        out = self.kubelet.informers
        if self.proxy is not None:
            out += self.proxy.informers
        return out

    async def stop(self, *, delete_node: bool = False) -> None:
        if self.npd is not None:
            await self.npd.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        await self.kubelet.stop(delete_node=delete_node)
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            await session.close()


class NodePool:
    """Runs hollow nodes `<prefix>-<i>` for i in [start_index, start_index + count)."""

    def __init__(
        self,
        count: int,
        config: NodeConfig,
        credentials: CredentialsSource,
        *,
        prefix: str = "hollow-node",
        start_index: int = 0,
        ramp: float = 0.0,
        shared_connection: bool = False,
        metrics: PoolMetrics | None = None,
        max_starting: int = 0,
        proxy_credentials: CredentialsSource | None = None,  # kube-proxy's identity (default: the node's)
    ) -> None:
        self.count = count
        self._proxy_credentials = proxy_credentials
        self.config = config
        self._credentials = credentials
        self.prefix = prefix
        self.start_index = start_index
        self.ramp = ramp
        self.shared_connection = shared_connection
        self.metrics = metrics or PoolMetrics()
        # One copy of each Service / EndpointSlice version for all the nodes' kubelets and proxies.
        self.shared_objects = SharedObjects()
        self.nodes: dict[str, HollowNode] = {}
        self.stopped: dict[str, int] = {}  # name -> index of nodes stopped by stop_node (simulated failures)
        self.metrics.bind_pool(self.phase_counts, self.ready_count, lambda: len(self.nodes))
        self._connector: aiohttp.TCPConnector | None = None
        self._starts: set[asyncio.Task[None]] = set()
        # At most this many nodes between "created" and "informers synced" (0: no limit), so a ramp faster
        # than the master can serve slows down instead of piling up timeouts and retries.
        self._starting = asyncio.Semaphore(max_starting) if max_starting > 0 else None
        self._probe = LoopLagProbe(self.metrics.loop_lag)

    def _creds(self, name: str) -> ClusterCredentials:
        source = self._credentials
        return source if isinstance(source, ClusterCredentials) else source(name)

    def _proxy_creds(self, name: str) -> ClusterCredentials | None:
        source = self._proxy_credentials
        if source is None or isinstance(source, ClusterCredentials):
            return source
        return source(name)

    def kubelet(self, name: str) -> HollowKubelet | None:
        node = self.nodes.get(name)
        return node.kubelet if node is not None else None

    def ready_count(self) -> int:
        return sum(1 for n in self.nodes.values() if n.kubelet.ready.is_set())

    def phase_counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for node in self.nodes.values():
            total.update(node.kubelet.phase_counts())
        return total

    async def _start_node(self, node: HollowNode) -> None:
        try:
            if self._starting is None:
                await node.start()
                return
            async with self._starting:
                await node.start()
                informers = node.informers()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*(i.wait_synced() for i in informers)), 60)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("hollow node %s failed to start", node.name)

    async def start(self) -> None:
        """Create the nodes at the ramp rate; returns once all have begun starting (not once they are Ready)."""
        self._probe.start()
        if self.shared_connection:
            self._connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_CONNECTION_SECONDS)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for n, index in enumerate(range(self.start_index, self.start_index + self.count)):
            if self.ramp > 0:
                delay = began + n / self.ramp - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self._launch(f"{self.prefix}-{index}", index, "start")

    async def wait_ready(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract
        """True once every node reported Ready; False if `timeout` passed first."""
        waits = [node.kubelet.ready.wait() for node in self.nodes.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    async def wait_synced(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the contract
        """True once every informer of every node has delivered its first LIST; False after `timeout`."""
        waits = [informer.wait_synced() for node in self.nodes.values() for informer in node.informers()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            return False
        return True

    def _launch(self, name: str, index: int, what: str) -> None:
        """A new HollowNode `name` in this pool, started in the background (tracked until it is up)."""
        node = HollowNode(
            name,
            index,
            self._creds(name),
            self.config,
            metrics=self.metrics,
            connector=self._connector,
            shared=self.shared_objects,
            proxy_creds=self._proxy_creds(name),
        )
        self.nodes[name] = node
        task = asyncio.create_task(self._start_node(node), name=f"{what} {name}")
        self._starts.add(task)
        task.add_done_callback(self._starts.discard)

    # -- simulated failures (chaosMonkey): a NodeFailureTarget ---------------------------------------------------

    def node_names(self) -> list[str]:
        """The nodes running now (stopped ones excluded)."""
        return list(self.nodes)

    async def stop_node(self, name: str) -> None:
        """Stop one node's kubelet, proxy and NPD as a failed machine stops: no more heartbeats or Lease
        renewals, the Node object stays. `start_node` brings it back."""
        node = self.nodes.pop(name)
        self.stopped[name] = node.index
        await node.stop(delete_node=False)

    async def start_node(self, name: str) -> None:
        """Start a stopped node again: a fresh hollow node of the same name, as a rebooted machine's kubelet
        (it re-registers, reports status and renews its Lease; its pods are whatever the API says)."""
        self._launch(name, self.stopped.pop(name), "restart")

    async def stop(self, *, delete_nodes: bool = False) -> None:
        for task in list(self._starts):
            task.cancel()
        await asyncio.gather(*self._starts, return_exceptions=True)
        await asyncio.gather(
            *(node.stop(delete_node=delete_nodes) for node in self.nodes.values()), return_exceptions=True
        )
        self.nodes.clear()
        self.stopped.clear()
        if self._connector is not None:
            await self._connector.close()
            self._connector = None
        await self._probe.stop()


# --- running from the CLI ----------------------------------------------------------------------------------


def _credentials(options: NodesOptions) -> ClusterCredentials:
    return load_kubeconfig(options.kubeconfig, options.context)


async def run_pool(
    options: NodesOptions,
    config: NodeConfig,
    creds: CredentialsSource,
    stop: asyncio.Event,
    *,
    endpoint_port: int | None = None,
) -> None:
    """Run one pool until `stop` is set, serving its endpoint if asked."""
    pool = NodePool(
        options.count,
        config,
        creds,
        prefix=options.prefix,
        start_index=options.start_index,
        ramp=options.ramp,
        shared_connection=options.shared_connection,
        max_starting=options.max_starting,
    )
    endpoint: KubeletEndpoint | None = None
    if endpoint_port is not None:
        endpoint = KubeletEndpoint(pool.kubelet, pool_metrics=pool.metrics.exposition)
        port = await endpoint.start(options.endpoint_host, endpoint_port)
        log.info(
            "hollow nodes %s-[%d..%d) served on port %d",
            options.prefix,
            options.start_index,
            options.start_index + options.count,
            port,
        )
    try:
        await pool.start()
        await stop.wait()
    finally:
        if endpoint is not None:
            await endpoint.stop()
        await pool.stop(delete_nodes=options.delete_on_exit)


def _worker_main(options: NodesOptions, worker: int) -> None:
    """Entry point of a worker process: its own uvloop, its own pool, stops on SIGTERM/SIGINT."""
    from kubemark.aio import run as run_async
    from kubemark.aio import wait_for_shutdown_signal

    async def main() -> None:
        config = load_node_config(options.config_path)
        creds = _credentials(options)
        stop = asyncio.Event()

        async def on_signal() -> None:
            await wait_for_shutdown_signal()
            stop.set()

        watcher = asyncio.create_task(on_signal())
        port = (
            None if options.endpoint_port is None else (options.endpoint_port + worker if options.endpoint_port else 0)
        )
        try:
            await run_pool(options, config, creds, stop, endpoint_port=port)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    run_async(main())


def split_ranges(count: int, workers: int, start: int = 0) -> list[tuple[int, int]]:
    """(start_index, count) per worker, as even as possible; workers without nodes are dropped."""
    workers = max(1, min(workers, count)) if count > 0 else 1
    base, extra = divmod(count, workers)
    out, index = [], start
    for w in range(workers):
        n = base + (1 if w < extra else 0)
        if n:
            out.append((index, n))
        index += n
    return out


async def run_workers(options: NodesOptions, stop: asyncio.Event) -> None:
    """Spread the nodes over `options.workers` spawned processes; on `stop`, SIGTERM them and wait."""
    ctx = multiprocessing.get_context("spawn")
    processes = []
    for worker, (start, n) in enumerate(split_ranges(options.count, options.workers, options.start_index)):
        sub = NodesOptions(**{**options.__dict__, "count": n, "start_index": start, "workers": 1})
        proc = ctx.Process(target=_worker_main, args=(sub, worker), name=f"kubemark-nodes-{worker}", daemon=False)
        proc.start()
        processes.append(proc)
    loop = asyncio.get_running_loop()
    try:
        exits = [loop.run_in_executor(None, p.join) for p in processes]
        stopped = asyncio.ensure_future(stop.wait())
        waiters: list[asyncio.Future[Any]] = [stopped, *exits]
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if stopped not in done:
            stopped.cancel()
            failed = [p.name for p in processes if p.exitcode not in (None, 0)]
            if failed:
                log.error("hollow node workers exited early: %s", ", ".join(failed))
    finally:
        for p in processes:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for p in processes:
            await loop.run_in_executor(None, p.join, 30)
            if p.is_alive():
                p.kill()
                await loop.run_in_executor(None, p.join)


async def run_nodes(options: NodesOptions, *, stop: asyncio.Event | None = None) -> None:
    """`kubemark nodes start`: run the nodes until SIGINT/SIGTERM (or `stop`).

    Raises NodeConfigError / KubeconfigError before starting anything if the config or kubeconfig is bad.
    """
    config = load_node_config(options.config_path)
    creds = _credentials(options)
    own_signal = stop is None
    stop = stop or asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    if own_signal:
        from kubemark.aio import wait_for_shutdown_signal

        async def on_signal() -> None:
            sig = await wait_for_shutdown_signal()
            log.info("received %s; stopping hollow nodes", signal.Signals(sig).name)
            stop.set()

        watcher = asyncio.create_task(on_signal())
    try:
        if options.workers <= 1:
            await run_pool(options, config, creds, stop, endpoint_port=options.endpoint_port)
        else:
            await run_workers(options, stop)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
