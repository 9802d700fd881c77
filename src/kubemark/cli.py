"""The `kubemark` command line: one entry point, one sub-command group per part of the product."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from kubemark import __version__

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


@master_app.command("start")
def master_start() -> None:
    """Run API server + scheduler + controllers on real etcd in the foreground."""
    _not_available("`kubemark master start`", 3)


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
