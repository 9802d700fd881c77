"""`kubemark run`: stand up a cluster (or use one), start hollow nodes, play a test, measure, report, tear down.

`run_test(options)` is the library entry; it returns the RunResult and leaves the run directory (summary.json,
CSVs, PerfData, junit.xml, the effective config, report.html) in `options.out_dir`. Cluster up: the embedded master
(etcd storage) with its scheduler and controller manager, unless `kubeconfig` points at an existing cluster. Then
hollow nodes (measuring node start-up), the clock check, the test's steps, and teardown in reverse order, also on
failure or cancellation (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from kubemark import codec
from kubemark.client import ClusterCredentials, RestClient, load_kubeconfig, resource_path
from kubemark.load.builtin import builtin_test_path
from kubemark.load.config import ConfigError, TestConfig, load_test_config
from kubemark.load.measurements import MeasureContext, MeasurementSet, validate_measurements
from kubemark.load.player import Player, PlayerError
from kubemark.load.progress import PodCounts, RunProgress, Snapshot
from kubemark.measure.api_responsiveness import ApiCallRecorder, server_perfdata
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.clock import SkewCheck, probe_clock_skew
from kubemark.measure.node_startup import NodeStartupTracker
from kubemark.measure.percentiles import PodTimeline
from kubemark.measure.slo import SLOThresholds, Verdict, check_node_startup
from kubemark.measure.watch import ObjectWatch
from kubemark.report.html import render_report
from kubemark.report.junit import write_junit
from kubemark.report.model import RunResult, StepResult, write_run_dir
from kubemark.report.perfdata import perfdata_file_name, pod_startup_perfdata, write_summaries

__all__ = ["RunInterrupted", "RunOptions", "resolve_test", "run_test", "run_until_signal"]

log = logging.getLogger(__name__)

DEFAULT_NODES = 10
NODE_PREFIX = "hollow-node"
NODE_MAX_STARTING = 64  # nodes registering at once: faster than the master can admit only causes timeouts
MASTER_READY_TIMEOUT = 120.0  # seconds for `kubemark master start` (etcd + PKI) to come up
PLAYER_QPS = 500.0  # the tuning sets pace the load; the client limiter must not be the bottleneck


class RunInterrupted(Exception):
    """SIGINT/SIGTERM during a run (after a clean teardown)."""


@dataclass
class RunOptions:
    test: str = "density"  # a built-in test name or a config file
    nodes: int | None = None  # None: DEFAULT_NODES embedded; with a kubeconfig, use the cluster's own nodes
    overrides: dict[str, Any] = field(default_factory=dict)
    kubeconfig: str | None = None
    context: str | None = None
    out_dir: Path | None = None
    keep: bool = False
    storage: str = "etcd"
    node_config: Path | None = None
    node_ready_timeout: float = 300.0
    # Nodes started per second: a thousand nodes' TLS handshakes, LISTs and watches at once would saturate the
    # master and fail the node start-up SLO for reasons of our own making (Go kubemark's nodes come up at the
    # rate their ReplicationController creates them).
    node_ramp: float = 100.0
    apiserver_workers: int = 1  # API server processes of the embedded master (etcd storage)
    progress: bool | None = None  # None: rich live display on a terminal, plain lines otherwise
    seed: int | None = None


def resolve_test(test: str) -> Path:
    """The config file for `--test`: a built-in name or a path; ConfigError if neither."""
    builtin = builtin_test_path(test)
    if builtin is not None:
        return builtin
    path = Path(test)
    if path.is_file():
        return path
    raise ConfigError("--test", [("", f'"{test}" is neither a built-in test (density, load, api, fill) nor a file')])


def _default_out_dir(test: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("kubemark-runs") / f"{Path(test).stem}-{stamp}"


def prepare(options: RunOptions, nodes: int) -> tuple[TestConfig, dict[str, Any], SLOThresholds]:
    """Load and validate the test (raises ConfigError), with `Nodes` set unless overridden."""
    path = resolve_test(options.test)
    params = {"Nodes": nodes, **options.overrides}
    config = load_test_config(path, params, rng=random.Random(options.seed))
    validate_measurements(config)
    try:
        thresholds = SLOThresholds.from_config(config.slos)
    except ValueError as exc:
        raise ConfigError(str(path), [("slos", str(exc))]) from None
    return config, params, thresholds


# -- the cluster ------------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    admin: ClusterCredentials
    pids: dict[str, int | tuple[int, ...]]
    node_credentials: Any  # name -> ClusterCredentials
    embedded: bool


@contextlib.asynccontextmanager
async def _embedded_cluster(options: RunOptions, data_dir: Path) -> AsyncIterator[Cluster]:
    """`kubemark master start` as a child process: the master gets its own event loop (and core), apart from
    the hollow nodes and the player, and its resource usage is its own."""
    from kubemark.master.apiserver.pki import ClusterPKI

    master = await _MasterProcess.start(data_dir, options.storage, options.apiserver_workers)
    try:
        admin = load_kubeconfig(data_dir / "admin.kubeconfig")
        pki = ClusterPKI.load_or_create(data_dir / "pki")
        # The master process is the API server; etcd, the scheduler and the controller manager are its children.
        children = _master_children(master.pid)
        workers = children.pop("kube-apiserver", ())
        pids: dict[str, int | tuple[int, ...]] = {"kube-apiserver": (master.pid, *workers), **children}

        def node_credentials(name: str) -> ClusterCredentials:
            # Each hollow node authenticates as system:node:<name>, as kubelets do (NodeRestriction applies).
            cert, key = pki.node_credentials(name)
            return ClusterCredentials(server=admin.server, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key)

        yield Cluster(admin, pids, node_credentials, embedded=True)
    finally:
        await master.stop()


class _MasterProcess:
    """A `python -m kubemark master start` child on a free port, stopped with SIGTERM."""

    READY = "ready at "

    def __init__(self, proc: asyncio.subprocess.Process, log: list[str], log_path: Path) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._drain: asyncio.Task[None] | None = None
        self.log = log
        self.log_path = log_path

    @classmethod
    async def start(cls, data_dir: Path, storage: str, apiserver_workers: int = 1) -> _MasterProcess:
        cmd = [sys.executable, "-m", "kubemark", "master", "start", "--data-dir", str(data_dir), "--port", "0"]
        cmd += ["--storage", storage, "--unsafe-no-fsync"]  # a throw-away cluster: etcd fsync is not what is measured
        cmd += ["--apiserver-workers", str(apiserver_workers)]
        # Its log (stderr) goes to a file: through a pipe, a burst of log lines while this busy process drains
        # it late would block the API server's event loop on write. Stdout carries only the few status lines.
        log_path = data_dir / "kube-apiserver.log"
        with _append(log_path) as log_file:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=log_file, stdin=asyncio.subprocess.DEVNULL
            )
        master = cls(proc, [], log_path)
        try:
            await asyncio.wait_for(master._wait_ready(), MASTER_READY_TIMEOUT)
        except BaseException:
            await master.stop()
            raise
        master._drain = asyncio.create_task(master._keep_reading())
        return master

    async def _wait_ready(self) -> None:
        assert self.proc.stdout is not None
        while line := (await self.proc.stdout.readline()).decode(errors="replace"):
            self.log.append(line)
            if self.READY in line:
                return
        raise PlayerError(
            "the embedded master exited before it was ready:\n" + "".join(self.log[-30:]) + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the master's log file (for error reports)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "".join(text.splitlines(keepends=True)[-lines:])

    async def _keep_reading(self) -> None:
        # Keep its pipe drained (a full pipe would block the master) and the tail for error reports.
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.log.append(line.decode(errors="replace"))
            del self.log[:-200]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


def _append(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def _master_children(pid: int) -> dict[str, Any]:
    """The master's component processes by component name (for resource usage): etcd, kube-scheduler and
    kube-controller-manager (`kubemark master scheduler|controllers` children), and under kube-apiserver the
    tuple of its extra API server processes (`--apiserver-workers`)."""
    found: dict[str, Any] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        if Path(argv[0]).name == "etcd":
            found["etcd"] = int(entry.name)
        elif "master" in argv and "apiserver-worker" in argv:
            found["kube-apiserver"] = (*found.get("kube-apiserver", ()), int(entry.name))
        elif "master" in argv and "scheduler" in argv:
            found["kube-scheduler"] = int(entry.name)
        elif "master" in argv and "controllers" in argv:
            found["kube-controller-manager"] = int(entry.name)
    return found


@contextlib.asynccontextmanager
async def _external_cluster(options: RunOptions) -> AsyncIterator[Cluster]:
    admin = load_kubeconfig(options.kubeconfig, options.context)
    yield Cluster(admin, {}, admin, embedded=False)


# -- the run ----------------------------------------------------------------------------------------------------


class _Run:
    """State of one run, shared by the steps, the progress display and the report."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.stage = "starting"
        self.nodes_total = 0
        self.recorder = ApiCallRecorder()
        self.steps: list[StepResult] = []
        self.verdicts: list[Verdict] = []
        self.node_tracker = NodeStartupTracker()
        self.pods: ObjectWatch | None = None
        self.pod_counts = PodCounts()
        self.nodes: ObjectWatch | None = None
        self.skew: SkewCheck | None = None
        self.namespace_prefix = ""

    def snapshot(self) -> Snapshot:
        created, scheduled, running = self.pod_counts.totals(self.namespace_prefix)
        now = time.time()
        recent = 0
        for call in reversed(self.recorder.calls):
            if call.started_at < now - 5.0:
                break
            recent += 1
        return Snapshot(
            self.stage, self.node_tracker.ready_count, self.nodes_total, created, scheduled, running, recent / 5.0
        )

    async def step(self, name: str, body: Any) -> bool:
        """Run one step; record its time and error. False when it failed."""
        self.stage = name
        started = time.time()
        error = ""
        try:
            await body
        except (PlayerError, BarrierTimeout, ConfigError) as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("step %r failed", name)
            error = f"{type(exc).__name__}: {exc}"
        self.steps.append(StepResult(name, started, time.time(), error))
        if error:
            log.error("step %r failed: %s", name, error)
        return not error


async def run_test(options: RunOptions) -> RunResult:
    """Run one test end to end and write its run directory; raises ConfigError before touching any cluster."""
    nodes_param = options.nodes if options.nodes is not None else (DEFAULT_NODES if not options.kubeconfig else 0)
    if options.kubeconfig is None or options.nodes is not None:
        config, params, thresholds = prepare(options, nodes_param)  # fail fast, before any cluster exists
    out_dir = options.out_dir = options.out_dir or _default_out_dir(options.test)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(options)
    start = time.time()
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if options.kubeconfig is None:
        if options.keep:
            data_dir = out_dir / "cluster"
        else:
            tmp = tempfile.TemporaryDirectory(prefix="kubemark-run-")
            data_dir = Path(tmp.name)
        cluster_cm = _embedded_cluster(options, data_dir)
    else:
        cluster_cm = _external_cluster(options)
    progress: RunProgress | None = None
    measurements: MeasurementSet | None = None
    config_holder: dict[str, Any] = {}
    cancelled = False
    try:
        async with cluster_cm as cluster, contextlib.AsyncExitStack() as stack:
            admin = RestClient(cluster.admin, qps=0, burst=1, user_agent="kubemark-run")
            stack.push_async_callback(admin.close)
            run.pods = ObjectWatch(admin, resource_path("", "v1", "pods"))
            run.pods.subscribe(run.pod_counts)
            run.nodes = ObjectWatch(admin, resource_path("", "v1", "nodes"))
            run.nodes.subscribe(run.node_tracker)
            run.stage = "starting watches"
            await run.nodes.start()
            stack.push_async_callback(run.nodes.stop)
            await run.pods.start()
            stack.push_async_callback(run.pods.stop)
            progress = RunProgress(run.snapshot, live=options.progress)
            progress.start()
            stack.push_async_callback(progress.stop)

            # Hollow nodes.
            if options.nodes is not None or cluster.embedded:
                run.nodes_total = nodes_param
                if not await run.step("Starting hollow nodes", _start_nodes(run, cluster, stack, nodes_param)):
                    raise _Abort
                run.verdicts.append(check_node_startup(list(run.node_tracker.samples().values()), thresholds))
            else:
                nodes_param = sum(1 for n in run.nodes.list() if _ready(n))
                run.nodes_total = nodes_param
                config, params, thresholds = prepare(options, nodes_param)
            config_holder.update(config=config, params=params, thresholds=thresholds)

            # Clock check before trusting any latency.
            run.stage = "checking clocks"
            try:
                run.skew = await probe_clock_skew(admin)
            except Exception as exc:
                log.warning("clock check failed: %s", exc)
            run.namespace_prefix = f"{config.namespace.prefix}-"
            player_client = RestClient(
                cluster.admin,
                qps=PLAYER_QPS,
                burst=int(PLAYER_QPS),
                on_request=run.recorder.on_request,
                user_agent="kubemark-player",
            )
            stack.push_async_callback(player_client.close)
            player = Player(player_client, config, params=params, rng=random.Random(options.seed))
            measurements = MeasurementSet(
                MeasureContext(
                    client=admin,
                    pods=run.pods,
                    thresholds=thresholds,
                    recorder=run.recorder,
                    namespace_prefix=run.namespace_prefix,
                    pids=cluster.pids,
                    latency_trusted=run.skew is None or run.skew.latency_slis_trusted,
                    skew_reason=run.skew.message if run.skew else "",
                )
            )
            await _play(run, player, measurements, config)
    except _Abort:
        pass
    except asyncio.CancelledError:
        # Ctrl-C: the teardown above has run; still leave a report of what was measured, then stop.
        run.steps.append(StepResult(f"interrupted during: {run.stage}", time.time(), time.time(), "interrupted"))
        cancelled = True
    finally:
        if measurements is not None:
            with contextlib.suppress(Exception):
                await measurements.finish()
        if tmp is not None:
            tmp.cleanup()
    result = _result(run, options, config_holder, measurements, start, nodes_param)
    write_artifacts(result, out_dir, config_holder.get("config"), measurements, config_holder.get("thresholds"))
    if cancelled:
        raise asyncio.CancelledError
    return result


class _Abort(Exception):
    """A set-up step failed; its error is already recorded."""


def _ready(node: Mapping[str, Any]) -> bool:
    from kubemark.measure.node_startup import node_ready

    return node_ready(dict(node))


async def _start_nodes(run: _Run, cluster: Cluster, stack: contextlib.AsyncExitStack, count: int) -> None:
    from kubemark.hollow.config import load_node_config
    from kubemark.hollow.pool import NodePool

    options = run.options
    pool = NodePool(
        count,
        load_node_config(options.node_config),
        cluster.node_credentials,
        prefix=NODE_PREFIX,
        ramp=options.node_ramp,
        max_starting=NODE_MAX_STARTING,
    )
    stack.push_async_callback(pool.stop, delete_nodes=not cluster.embedded and not options.keep)
    await pool.start()
    assert run.nodes is not None
    if not await run.nodes.wait_until(lambda: run.node_tracker.ready_count >= count, options.node_ready_timeout):
        stuck = run.node_tracker.not_ready()
        raise PlayerError(
            f"{count - run.node_tracker.ready_count} of {count} hollow nodes not Ready after "
            f"{options.node_ready_timeout:g}s: {', '.join(stuck[:20])}"
        )


async def _play(run: _Run, player: Player, measurements: MeasurementSet, config: TestConfig) -> None:
    created = await run.step("Creating namespaces", player.create_namespaces())
    try:
        if created:
            for i, step in enumerate(config.steps, start=1):
                name = step.name or f"step {i}"
                body = player.run_phases(step.phases) if step.phases else measurements.execute_all(step.measurements)
                if not await run.step(name, body):
                    break
    finally:
        await measurements.finish()
        if run.options.kubeconfig and not run.options.keep:  # an embedded cluster goes away whole
            run.stage = "deleting namespaces"
            with contextlib.suppress(Exception):
                await player.delete_namespaces()


def _result(
    run: _Run,
    options: RunOptions,
    holder: Mapping[str, Any],
    measurements: MeasurementSet | None,
    start: float,
    nodes: int,
) -> RunResult:
    config: TestConfig | None = holder.get("config")
    result = RunResult(
        test=config.name if config else Path(options.test).stem,
        start=start,
        end=time.time(),
        parameters={
            "nodes": nodes,
            "test": options.test,
            "overrides": dict(options.overrides),
            "cluster": options.kubeconfig or f"embedded ({options.storage})",
            **{f"param.{k}": v for k, v in (holder.get("params") or {}).items() if _plain(v)},
        },
        steps=list(run.steps),
        verdicts=list(run.verdicts),
        clock_skew=run.skew.as_dict() if run.skew else None,
        api_calls=list(run.recorder.calls),
    )
    if measurements is not None:
        seen: dict[str, PodTimeline] = {}
        for identifier, timelines in measurements.pods.items():
            for t in timelines:
                if t.name not in seen:  # a pod tracked by two measurements is reported under the first
                    seen[t.name] = dataclasses.replace(t, measurement=identifier)
        result.pods = list(seen.values())
        result.verdicts += measurements.verdicts
        result.throughput = list(measurements.throughput)
        result.usage = list(measurements.usage)
        result.fill_levels = dict(measurements.fill_levels)
        result.flowcontrol = list(measurements.flowcontrol)
    return result


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def write_artifacts(
    result: RunResult,
    out_dir: Path,
    config: TestConfig | None,
    measurements: MeasurementSet | None,
    thresholds: SLOThresholds | None = None,
) -> None:
    """summary.json + CSVs, PerfData, junit.xml, the effective config and report.html."""
    write_run_dir(result, out_dir)
    when = datetime.fromtimestamp(result.end, UTC)
    # perfdash reads PodStartupLatency_PodStartupLatency as the SLO's pods: the measurement of that name when the
    # test has one (density: the latency pods only), else every pod the run saw.
    slo_pods = measurements.pods.get("PodStartupLatency") if measurements is not None else None
    summarised = result if slo_pods is None else dataclasses.replace(result, pods=slo_pods)
    write_summaries(summarised, out_dir, when=when, thresholds=thresholds)
    if measurements is not None:
        for identifier, timelines in measurements.pods.items():
            if identifier == "PodStartupLatency":
                continue  # written above
            data = pod_startup_perfdata(RunResult(result.test, result.start, result.end, pods=timelines))
            (out_dir / perfdata_file_name(f"PodStartupLatency_{identifier}", result.test, when)).write_bytes(
                codec.dumps_pretty(data)
            )
        if measurements.server_latency:
            (out_dir / perfdata_file_name("APIResponsivenessPrometheus_server", result.test, when)).write_bytes(
                codec.dumps_pretty(server_perfdata(measurements.server_latency))
            )
    write_junit(result, out_dir / "junit.xml")
    if config is not None:
        effective = config.model_dump(mode="json", by_alias=True, exclude_none=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(effective, sort_keys=False))
    render_report(out_dir)


# -- signals ----------------------------------------------------------------------------------------------------


async def run_until_signal(options: RunOptions) -> RunResult:
    """`run_test` with SIGINT/SIGTERM cancelling it cleanly (teardown runs); raises RunInterrupted then."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run_test(options))
    interrupted: list[int] = []

    def on_signal(sig: signal.Signals) -> None:
        # Cancel on every signal: a cancellation can be absorbed by a library racing with it, and a second
        # Ctrl-C must still get through.
        log.warning("received %s: tearing down", sig.name)
        interrupted.append(sig)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise RunInterrupted from None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
