"""The `kubemark` command-line surface: help, version, exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from kubemark import __version__
from kubemark.cli import app

runner = CliRunner()


def test_help_lists_every_command_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("master", "nodes", "run", "report", "compare"):
        assert command in result.output


def test_no_arguments_shows_help_and_is_a_usage_error() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Usage" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kubemark {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_unknown_option_is_a_usage_error() -> None:
    result = runner.invoke(app, ["--no-such-flag"])
    assert result.exit_code == 2


def test_nodes_start_requires_a_count() -> None:
    result = runner.invoke(app, ["nodes", "start"])
    assert result.exit_code == 2
    assert "--count" in result.output


def test_nodes_start_with_a_bad_node_config_names_the_field(tmp_path) -> None:
    bad = tmp_path / "nodes.yaml"
    bad.write_text("capacity:\n  cpu: lots\n")
    result = runner.invoke(app, ["nodes", "start", "--count", "1", "--config", str(bad)])
    assert result.exit_code == 2
    assert "capacity" in result.output


def test_installed_console_script() -> None:
    script = Path(sys.executable).parent / "kubemark"
    exe = str(script) if script.exists() else shutil.which("kubemark")
    assert exe, "the kubemark console script is not installed"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == f"kubemark {__version__}"
    help_out = subprocess.run([exe, "master", "--help"], capture_output=True, text=True, timeout=60)
    assert help_out.returncode == 0
    assert "start" in help_out.stdout


def test_python_dash_m() -> None:
    out = subprocess.run([sys.executable, "-m", "kubemark", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert __version__ in out.stdout


def test_run_label_must_be_key_value() -> None:
    result = runner.invoke(app, ["run", "--label", "no-equals-sign"])
    assert result.exit_code == 2
    assert "--label" in result.output and "key=value" in result.output


def test_run_records_version_git_commit_master_and_user_labels() -> None:
    from kubemark.run import RunOptions, run_labels

    labels = run_labels(RunOptions(master="real", labels={"branch": "x", "master": "mine"}))
    assert labels["kubemark"] == __version__ and labels["branch"] == "x"
    assert labels["master"] == "mine"  # the user's label wins
    assert run_labels(RunOptions(kubeconfig="k"))["master"] == "external"
    src = Path(__file__).resolve().parents[1] / "src"
    head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout (CI's clean clone is one): the commit is recorded
        assert labels["git"] == head.stdout.strip()
    else:
        assert "git" not in labels
