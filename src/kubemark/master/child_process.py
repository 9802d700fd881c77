"""Processes the master starts beside itself (etcd, the scheduler, the controller manager): they die with it.

`terminate_with_parent` asks Linux for SIGTERM when the parent dies (even by SIGKILL), so nothing is orphaned;
it is tied to the spawning *thread*, hence children are spawned from the event-loop thread. etcd gets it as a
preexec hook (it starts before any gRPC thread exists). Components start later, while the etcd client's gRPC
threads run, and a fork that runs Python code in the child then crashes gRPC's fork handlers; so they are
spawned without a preexec hook (vfork/exec) and call `exit_with_parent()` themselves, first thing.
`ComponentProcess` runs one `python -m kubemark master <component>` child, waits until its /metrics answers,
and stops it with SIGTERM (SIGKILL after a grace period); that stop, the PID and the log tail are `ChildProcess`,
which real_master.py's kube binaries share.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
PARENT_ENV = "KUBEMARK_PARENT_PID"  # set for components: the master's PID, see exit_with_parent
READY_TIMEOUT = 60.0
STOP_GRACE = 30.0


def terminate_with_parent() -> None:
    """In a child before exec: SIGTERM when the parent dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def exit_with_parent() -> None:
    """In a component started by `ComponentProcess`: SIGTERM when the master dies; exit now if it already did
    (between spawn and this call). A no-op for processes started any other way."""
    expected = os.environ.pop(PARENT_ENV, "")
    if not expected.isdigit():
        return
    terminate_with_parent()
    if os.getppid() != int(expected):
        os._exit(0)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ComponentStartError(RuntimeError):
    """A component process exited, or its /metrics did not answer, in time; the message has its log tail."""


class ChildProcess:
    """A child process named `name` that logs to `log_path`, stopped with SIGTERM (SIGKILL after a grace period).
    Subclasses spawn it into `_proc`."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited and been polled (None before that, or when never spawned)."""
        return self._proc.returncode if self._proc is not None else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, grace: float = STOP_GRACE) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), grace)
        except TimeoutError:
            log.warning("%s did not stop within %gs; killing it", self.name, grace)
            proc.kill()
            await asyncio.to_thread(proc.wait)


class ComponentProcess(ChildProcess):
    """`python -m kubemark master <args>` as a child process whose /metrics is at `metrics_url`."""

    def __init__(self, name: str, args: list[str], metrics_url: str, log_path: Path) -> None:
        super().__init__(name, log_path)
        self.args = args
        self.metrics_url = metrics_url

    async def start(self, timeout: float = READY_TIMEOUT) -> None:  # noqa: ASYNC109 - a start-up deadline
        """Spawn it (from the event-loop thread, see the module docstring) and wait until /metrics answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: ASYNC220 - vfork+exec only; PDEATHSIG needs this thread
                [sys.executable, "-m", "kubemark", *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, PARENT_ENV: str(os.getpid())},
            )
        try:
            await asyncio.wait_for(self._wait_ready(), timeout)
        except TimeoutError:
            await self.stop()
            message = f"{self.name}: /metrics did not answer within {timeout:g}s\n{self.log_tail()}"
            raise ComponentStartError(message) from None
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0)) as session:
            delay = 0.05
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise ComponentStartError(
                        f"{self.name} exited with code {self._proc.returncode}\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(self.metrics_url) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
