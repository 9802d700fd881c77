"""Fixtures for driving the real kubectl against `kubemark master start` run as a user runs it (a subprocess).

One master serves the whole package (API server only: `--no-controllers --no-scheduler`, so what the tests see
is what the API server alone defines); each test gets its own namespace, created with kubectl.
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KUBEMARK = [sys.executable, "-m", "kubemark"]
KUBECTL = str(Path(sys.executable).parent / "kubectl")
READY = re.compile(r"kubemark master ready at (https://127\.0\.0\.1:\d+)")
KUBECTL_TIMEOUT = 30.0


class MasterProcess:
    """A `kubemark master start` child process on memory storage, with TLS and the admin client certificate.

    A thread drains its output (so a chatty master never blocks on a full pipe) and signals the ready banner.
    """

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.output: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [*KUBEMARK, "master", "start", "--data-dir", str(data_dir), "--port", "0", "--storage", "memory", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._drain = threading.Thread(target=self._read_output, daemon=True)
        self._drain.start()
        if not self._ready.wait(timeout=60) or not self.url:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("master did not become ready:\n" + "".join(self.output))

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if not self.url and (match := READY.search(line)):
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()  # EOF: let the constructor fail fast instead of waiting out its timeout

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise
        self._drain.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


@dataclass
class Kubectl:
    """The real kubectl bound to one master's admin kubeconfig and a private discovery cache."""

    kubeconfig: Path
    cache_dir: Path
    namespace: str | None = None

    def argv(self, *args: str) -> list[str]:
        base = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir)]
        if self.namespace is not None:
            base += ["--namespace", self.namespace]
        return [*base, *args]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), input=stdin, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT, check=False
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run and demand exit 0; returns stdout."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def fails(self, *args: str, stdin: str | None = None) -> str:
        """Run and demand exit 1 (kubectl's error exit); returns stderr."""
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 1, f"kubectl {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stderr

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.kubeconfig, self.cache_dir, namespace)


class LineReader:
    """Lines of a running child's stdout, read with a deadline (for `kubectl get -w` and the master's banner).

    Reads the raw pipe with os.read: a buffered readline() could hold a second line that select() then never
    reports.
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: list[str] = []
        self._fd = proc.stdout.fileno()
        self._pending = b""
        self._eof = False
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)

    def _next_line(self, deadline: float) -> str | None:
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if self._eof or left <= 0 or not self._sel.select(timeout=left):
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self._eof = True
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        text = line.decode()
        self.lines.append(text)
        return text

    def until(self, pattern: str, timeout: float = 20.0) -> str:
        """Read lines until one matches the regex; fails with everything read so far on timeout or EOF."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while (line := self._next_line(deadline)) is not None:
            if regex.search(line):
                return line
        raise AssertionError(f"no line matching {pattern!r} (eof={self._eof}); got:\n" + "\n".join(self.lines))

    def close(self) -> None:
        self._sel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def columns(line: str) -> list[str]:
    """Cells of one `kubectl get` table line (columns are separated by at least two spaces)."""
    return re.split(r"\s{2,}", line.strip())


def unique_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="package")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    proc = MasterProcess(tmp_path_factory.mktemp("kubectl-master"), "--no-controllers", "--no-scheduler")
    yield proc
    code = proc.stop()
    assert code == 0, f"master exited with {code}:\n" + "".join(proc.output)


@pytest.fixture(scope="package")
def kubectl_admin(master: MasterProcess, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl without a namespace (cluster-scoped objects)."""
    return Kubectl(master.kubeconfig, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture
def kubectl(kubectl_admin: Kubectl, request: pytest.FixtureRequest) -> Kubectl:
    """kubectl in a fresh namespace of this test's own, created with `kubectl create namespace`."""
    name = unique_name(re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-"))
    assert kubectl_admin.ok("create", "namespace", name) == f"namespace/{name} created\n"
    return kubectl_admin.in_namespace(name)
