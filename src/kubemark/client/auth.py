"""Request authentication: static bearer tokens, re-read token files, and exec credential plugins.

Exec plugins follow client.authentication.k8s.io v1/v1beta1: run the command with the configured args and env
(plus KUBERNETES_EXEC_INFO), parse the ExecCredential it prints, cache it until expirationTimestamp, and run
it again after a 401.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubemark import codec
from kubemark.client.kubeconfig import ClusterCredentials, KubeconfigError
from kubemark.client.tls import client_context, ssl_context_for

log = logging.getLogger(__name__)

EXEC_API_VERSIONS = frozenset({"client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"})
TOKEN_FILE_RELOAD_SECONDS = 60.0


class ExecPluginError(KubeconfigError):
    """The exec credential plugin failed or printed something that is not a valid ExecCredential."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    token: str | None
    cert_pem: bytes | None
    key_pem: bytes | None
    expires_at: float | None  # unix time; None means valid until a 401


class ExecCredentialPlugin:
    """Runs one exec plugin and caches its credential; concurrent callers share one run."""

    def __init__(self, config: dict[str, Any], *, clock: Any = time.time, timeout: float = 60.0) -> None:
        api_version = config.get("apiVersion", "")
        if api_version not in EXEC_API_VERSIONS:
            raise ExecPluginError(f"exec plugin: unsupported apiVersion {api_version!r}")
        self._config = config
        self._clock = clock
        self._timeout = timeout
        self._cached: ExecResult | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._cached = None

    def _fresh(self) -> ExecResult | None:
        cached = self._cached
        if cached is None:
            return None
        if cached.expires_at is not None and self._clock() >= cached.expires_at:
            return None
        return cached

    async def get(self) -> ExecResult:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._fresh()
            if fresh is None:
                fresh = self._cached = await self._run()
            return fresh

    def _exec_info(self) -> bytes:
        spec: dict[str, Any] = {"interactive": False}
        if self._config.get("provideClusterInfo") and self._config.get("cluster"):
            spec["cluster"] = {k: v for k, v in self._config["cluster"].items() if v is not None}
        return codec.dumps({"apiVersion": self._config["apiVersion"], "kind": "ExecCredential", "spec": spec})

    async def _run(self) -> ExecResult:
        command = self._config["command"]
        env = dict(os.environ)
        env.update(self._config.get("env") or {})
        env["KUBERNETES_EXEC_INFO"] = self._exec_info().decode()
        log.debug("running exec credential plugin %s", command)
        try:
            proc = await asyncio.create_subprocess_exec(
                command,
                *self._config.get("args", []),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ExecPluginError(f"exec plugin: cannot run {command!r}: {exc.strerror or exc}") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise ExecPluginError(f"exec plugin {command!r} timed out after {self._timeout}s") from exc
        if proc.returncode != 0:
            raise ExecPluginError(
                f"exec plugin {command!r} exited with {proc.returncode}: {err.decode(errors='replace').strip()}"
            )
        return self._parse(out)

    def _parse(self, out: bytes) -> ExecResult:
        command = self._config["command"]
        try:
            doc = codec.loads(out)
        except codec.JSONDecodeError as exc:
            raise ExecPluginError(f"exec plugin {command!r}: output is not JSON") from exc
        if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
            raise ExecPluginError(f"exec plugin {command!r}: output kind is not ExecCredential")
        if doc.get("apiVersion") != self._config["apiVersion"]:
            raise ExecPluginError(
                f"exec plugin {command!r}: apiVersion {doc.get('apiVersion')!r} does not match the configured "
                f"{self._config['apiVersion']!r}"
            )
        status = doc.get("status") or {}
        token = status.get("token") or None
        cert = status.get("clientCertificateData")
        key = status.get("clientKeyData")
        if bool(cert) != bool(key):
            raise ExecPluginError(
                f"exec plugin {command!r}: status.clientCertificateData and clientKeyData go together"
            )
        if not token and not cert:
            raise ExecPluginError(f"exec plugin {command!r}: status has neither token nor clientCertificateData")
        expires_at = None
        stamp = status.get("expirationTimestamp")
        if stamp:
            try:
                expires_at = datetime.fromisoformat(str(stamp)).timestamp()
            except ValueError as exc:
                raise ExecPluginError(
                    f"exec plugin {command!r}: status.expirationTimestamp {stamp!r} is not RFC 3339"
                ) from exc
        return ExecResult(
            token=token,
            cert_pem=cert.encode() if cert else None,
            key_pem=key.encode() if key else None,
            expires_at=expires_at,
        )


class Authenticator:
    """Gives each request its Authorization header and TLS context; refreshes after a 401."""

    def __init__(
        self,
        creds: ClusterCredentials,
        *,
        exec_plugin: ExecCredentialPlugin | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self._creds = creds
        self._clock = clock
        self._token = creds.token
        self._token_read_at = clock()
        self._exec = exec_plugin
        if self._exec is None and creds.exec_config:
            self._exec = ExecCredentialPlugin(creds.exec_config)
        self._base_ssl = ssl_context_for(creds)

    @property
    def refreshable(self) -> bool:
        return self._exec is not None or self._creds.token_file is not None

    def _file_token(self) -> str | None:
        # client-go re-reads token files about once a minute: bound service account tokens rotate.
        path = self._creds.token_file
        if path and (self._token is None or self._clock() - self._token_read_at >= TOKEN_FILE_RELOAD_SECONDS):
            try:
                self._token = Path(path).read_text().strip()
                self._token_read_at = self._clock()
            except OSError as exc:
                log.warning("cannot re-read token file %s: %s", path, exc)
        return self._token

    async def prepare(self) -> tuple[str | None, ssl.SSLContext | bool]:
        """(Authorization header value or None, ssl argument) for the next request."""
        if self._exec is not None:
            result = await self._exec.get()
            ssl_arg = self._base_ssl
            if result.cert_pem is not None and self._creds.server.startswith("https://"):
                ssl_arg = client_context(
                    self._creds.ca_pem, result.cert_pem, result.key_pem, self._creds.insecure_skip_tls_verify
                )
            if result.token:
                return f"Bearer {result.token}", ssl_arg
            return None, ssl_arg
        token = self._file_token() if self._creds.token_file else self._token
        return (f"Bearer {token}" if token else None), self._base_ssl

    def unauthorized(self) -> bool:
        """Forget cached credentials after a 401; True if a retry could use different ones."""
        if self._exec is not None:
            self._exec.invalidate()
            return True
        if self._creds.token_file:
            self._token_read_at = float("-inf")
            return True
        return False
