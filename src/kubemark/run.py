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
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from kubemark import __version__, codec
from kubemark.client import RestClient, resource_path
from kubemark.load.builtin import builtin_test_path
from kubemark.load.config import ConfigError, TestConfig, load_test_config
from kubemark.load.measurements import MeasurementSet, StepErrors, validate_measurements
from kubemark.load.player import Player, PlayerError
from kubemark.load.progress import PodCounts, RunProgress, Snapshot
from kubemark.master.launcher import Cluster, EmbeddedMasterLauncher, ExternalMaster, MasterLauncher
from kubemark.measure.api_responsiveness import ApiCallRecorder, server_perfdata
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.clock import SkewCheck, probe_clock_skew
from kubemark.measure.component_metrics import KUBE_PROXY, MetricsReader, exposition_reader, http_metrics_reader
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.node_startup import NodeStartupTracker
from kubemark.measure.results import MeasurementResult, StepResult, Verdict
from kubemark.measure.slo import SLOThresholds, check_node_startup
from kubemark.measure.watch import ObjectWatch
from kubemark.report.html import render_report
from kubemark.report.junit import write_junit
from kubemark.report.model import RunResult, write_run_dir
from kubemark.report.perfdata import perfdata_file_name, pod_startup_perfdata, write_summaries

__all__ = ["RunInterrupted", "RunOptions", "resolve_test", "run_test", "run_until_signal"]

log = logging.getLogger(__name__)

DEFAULT_NODES = 10
NODE_PREFIX = "hollow-node"
NODE_MAX_STARTING = 64  # nodes registering at once: faster than the master can admit only causes timeouts
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
    master: str = "embedded"  # without a kubeconfig: "embedded" (ours) or "real" (the real binaries)
    kube_binaries: Path | None = None  # for master="real": where the binaries are (default: cache, else PATH)
    progress: bool | None = None  # None: rich live display on a terminal, plain lines otherwise
    seed: int | None = None
    labels: dict[str, str] = field(default_factory=dict)  # --label k=v, recorded in summary.json
    identifier: str = ""  # a test suite's scenario: appended to the test name, as clusterloader2 names PerfData


DEFAULT_IMAGE_REGISTRY = "registry.k8s.io"


def resolve_test(test: str) -> Path:
    """The config file for `--test`: a built-in name or a path; ConfigError if neither."""
    builtin = builtin_test_path(test)
    if builtin is not None:
        return builtin
    path = Path(test)
    if path.is_file():
        return path
    raise ConfigError("--test", [("", f'"{test}" is neither a built-in test (density, load, api, fill) nor a file')])


def _git_commit(directory: Path) -> str | None:
    """The short commit of the git checkout `directory` is in (kubemark's own source), or None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def run_labels(options: RunOptions) -> dict[str, str]:
    """What a run records about itself: kubemark's version and git commit (when run from a checkout), which
    master, and the user's --label k=v (which win)."""
    labels = {"kubemark": __version__, "master": "external" if options.kubeconfig else options.master}
    commit = _git_commit(Path(__file__).resolve().parent)
    if commit:
        labels["git"] = commit
    return {**labels, **options.labels}


def default_out_dir(test: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("kubemark-runs") / f"{Path(test).stem}-{stamp}"


def prepare(options: RunOptions, nodes: int) -> tuple[TestConfig, dict[str, Any], SLOThresholds]:
    """Load and validate the test (raises ConfigError), with `Nodes` set unless overridden."""
    path = resolve_test(options.test)
    # clusterloader2 always gives templates these two (ImageRegistry: its --registry-k8s-repo flag).
    params = {"Nodes": nodes, "ImageRegistry": DEFAULT_IMAGE_REGISTRY, **options.overrides}
    config = load_test_config(path, params, rng=random.Random(options.seed))
    validate_measurements(config)
    try:
        thresholds = SLOThresholds.from_config(config.slos)
    except ValueError as exc:
        raise ConfigError(str(path), [("slos", str(exc))]) from None
    return config, params, thresholds


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
        self.pool: Any = None  # the hollow NodePool this run started (chaosMonkey fails its nodes)

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
        except (PlayerError, BarrierTimeout, ConfigError, StepErrors) as exc:
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
    out_dir = options.out_dir = options.out_dir or default_out_dir(options.test)
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
        # `kubemark master start` as a child process (see EmbeddedMasterLauncher), or the given cluster.
        cluster_cm: MasterLauncher
        if options.master == "real":
            from kubemark.master.real_master import RealMasterLauncher

            cluster_cm = RealMasterLauncher(data_dir, options.kube_binaries)
        else:
            cluster_cm = EmbeddedMasterLauncher(data_dir, options.storage, options.apiserver_workers)
    else:
        cluster_cm = ExternalMaster(options.kubeconfig, options.context)
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
            player = Player(player_client, config, params=params, rng=random.Random(options.seed), node_target=run.pool)
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
                    component_metrics=_component_metrics(cluster, run.pool),
                    node_failures=run.pool,
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
    measured = measurements.result if measurements is not None else None
    write_artifacts(result, out_dir, config_holder.get("config"), measured, config_holder.get("thresholds"))
    if cancelled:
        raise asyncio.CancelledError
    return result


def _cluster_label(options: RunOptions) -> str:
    if options.master == "real":
        return "real (kube-apiserver, kube-controller-manager, kube-scheduler)"
    return f"embedded ({options.storage})"


class _Abort(Exception):
    """A set-up step failed; its error is already recorded."""


def _ready(node: Mapping[str, Any]) -> bool:
    from kubemark.measure.node_startup import node_ready

    return node_ready(dict(node))


def _component_metrics(cluster: Cluster, pool: Any) -> dict[str, MetricsReader]:
    """What this run can scrape directly: the master's published component endpoints (the embedded master's
    kube-scheduler, kube-controller-manager and etcd) and the hollow nodes' kube-proxy histograms."""
    readers: dict[str, MetricsReader] = {name: http_metrics_reader(url) for name, url in cluster.metrics_urls.items()}
    if pool is not None:
        readers[KUBE_PROXY] = exposition_reader(pool.metrics.exposition)
    return readers


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
        proxy_credentials=cluster.proxy_credentials,
    )
    stack.push_async_callback(pool.stop, delete_nodes=not cluster.embedded and not options.keep)
    run.pool = pool
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
            async with player.chaos.running():
                for i, step in enumerate(config.steps, start=1):
                    name = step.name or f"step {i}"
                    body = (
                        player.run_phases(step.phases) if step.phases else measurements.execute_all(step.measurements)
                    )
                    # A failed step does not end the test: clusterloader2 runs every step and reports each
                    # one's errors (its isErrsCritical is always false), so later gathers still report.
                    await run.step(name, body)
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
        test=(config.name if config else Path(options.test).stem)
        + (f"_{options.identifier}" if options.identifier else ""),
        start=start,
        end=time.time(),
        parameters={
            "nodes": nodes,
            "test": options.test,
            "overrides": dict(options.overrides),
            "cluster": options.kubeconfig or _cluster_label(options),
            **{f"param.{k}": v for k, v in (holder.get("params") or {}).items() if _plain(v)},
        },
        steps=list(run.steps),
        verdicts=list(run.verdicts),
        clock_skew=run.skew.as_dict() if run.skew else None,
        api_calls=list(run.recorder.calls),
        labels=run_labels(options),
    )
    if measurements is not None:
        result.merge(measurements.result)
    return result


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def write_artifacts(
    result: RunResult,
    out_dir: Path,
    config: TestConfig | None,
    measured: MeasurementResult | None,
    thresholds: SLOThresholds | None = None,
) -> None:
    """summary.json + CSVs, PerfData, junit.xml, the effective config and report.html."""
    write_run_dir(result, out_dir)
    when = datetime.fromtimestamp(result.end, UTC)
    # perfdash reads PodStartupLatency_PodStartupLatency as the SLO's pods: the measurement of that name when the
    # test has one (density: the latency pods only), else every pod the run saw.
    slo_pods = measured.pods.get("PodStartupLatency") if measured is not None else None
    summarised = result if slo_pods is None else dataclasses.replace(result, pods=slo_pods)
    write_summaries(summarised, out_dir, when=when, thresholds=thresholds)
    if measured is not None:
        for identifier, timelines in measured.pods.items():
            if identifier == "PodStartupLatency":
                continue  # written above
            data = pod_startup_perfdata(RunResult(result.test, result.start, result.end, pods=timelines))
            (out_dir / perfdata_file_name(f"PodStartupLatency_{identifier}", result.test, when)).write_bytes(
                codec.dumps_pretty(data)
            )
        if measured.server_latency:
            (out_dir / perfdata_file_name("APIResponsivenessPrometheus_server", result.test, when)).write_bytes(
                codec.dumps_pretty(server_perfdata(measured.server_latency))
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
