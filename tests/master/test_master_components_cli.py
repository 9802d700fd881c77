"""`kubemark master scheduler` and `kubemark master controllers` run alone against a master without them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

KUBEMARK = [sys.executable, "-m", "kubemark"]
KUBECTL = str(Path(sys.executable).parent / "kubectl")

NODE = (
    """{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}"""
)
STATUS = (
    '{"status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}, '
    '"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}, '
    '"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}'
)


@pytest.mark.kubectl
def test_scheduler_and_controllers_as_separate_processes(tmp_path: Path) -> None:
    master = subprocess.Popen(
        [
            *KUBEMARK,
            "master",
            "start",
            "--data-dir",
            str(tmp_path / "m"),
            "--port",
            "0",
            "--storage",
            "memory",
            "--no-scheduler",
            "--no-controllers",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    components: list[subprocess.Popen[bytes]] = []
    try:
        assert master.stdout is not None
        for line in master.stdout:
            if "ready at" in line:
                break
        kubeconfig = tmp_path / "m" / "admin.kubeconfig"

        def kubectl(*args: str, stdin: str | None = None) -> str:
            out = subprocess.run(
                [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "c"), *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr
            return out.stdout

        kubectl("apply", "-f", "-", stdin=NODE)
        kubectl("patch", "node", "n1", "--subresource=status", "--type=merge", "-p", STATUS)
        kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3")
        # Without controllers nothing turns the Deployment into pods.
        assert json.loads(kubectl("get", "pods", "-o", "json"))["items"] == []

        for cmd in (["controllers"], ["scheduler", "--metrics-port", "0"]):
            components.append(
                subprocess.Popen([*KUBEMARK, "master", *cmd, "--kubeconfig", str(kubeconfig)], stderr=subprocess.PIPE)
            )
        deadline = time.monotonic() + 90
        bound: list[str] = []
        while time.monotonic() < deadline and len(bound) < 3:
            pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
            bound = [p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")]
            time.sleep(0.2)  # polling the API for the outcome, bounded by the deadline
        assert bound == ["n1", "n1", "n1"]
    finally:
        for proc in components:
            proc.send_signal(signal.SIGTERM)
        for proc in components:
            assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        master.send_signal(signal.SIGTERM)
        assert master.wait(timeout=60) == 0
