"""Automanaged namespaces with clusterloader2's options (its framework's namespace handling).

Before the steps (`prepare`): list the namespaces; those named `<prefix>-<n>` exist already -> an error unless
`enableExistingNamespaces`; those that look like an earlier run's (`test-<id>-<n>`, the shape of the default prefix)
are stale and are deleted when `deleteStaleNamespaces`; then `<prefix>-1..number` are created (existing ones reused
when enabled). After the steps (`cleanup`): the automanaged namespaces are deleted when
`deleteAutomanagedNamespaces`, optionally waiting up to `deleteNamespaceTimeout` for them to be gone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

from kubemark.client import RestClient, is_already_exists, is_not_found, resource_path
from kubemark.load.config import NamespaceConfig

__all__ = ["STALE_NAMESPACE", "AutomanagedNamespaces", "NamespaceError"]

log = logging.getLogger(__name__)

# clusterloader2's framework: a namespace of an earlier execution with a default (random) prefix.
STALE_NAMESPACE = re.compile(r"^test-[a-z0-9]+-[0-9]+$")
DELETION_POLL_SECONDS = 1.0


class NamespaceError(Exception):
    """The automanaged namespaces cannot be prepared as the config asks."""


class AutomanagedNamespaces:
    """`<prefix>-1..number` of one test run, created and deleted per the config's namespace options."""

    def __init__(
        self,
        client: RestClient,
        config: NamespaceConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._current = re.compile(re.escape(config.prefix) + r"-[1-9][0-9]*")  # anchored by fullmatch below
        self.stale_deleted: list[str] = []

    @property
    def names(self) -> list[str]:
        return [f"{self.config.prefix}-{i}" for i in range(1, self.config.number + 1)]

    def is_current(self, name: str) -> bool:
        """`<prefix>-<n>`. clusterloader2's regexp is unanchored (`xload-1` would count for prefix `load`); a
        whole-name match keeps a short prefix from claiming other tools' namespaces."""
        return self._current.fullmatch(name) is not None

    def is_stale(self, name: str) -> bool:
        return STALE_NAMESPACE.match(name) is not None and not self.is_current(name)

    async def _existing(self) -> list[str]:
        items, _ = await self.client.list_all(resource_path("", "v1", "namespaces"))
        return [str(i["metadata"]["name"]) for i in items]

    async def prepare(self) -> None:
        existing = await self._existing()
        current = [n for n in existing if self.is_current(n)]
        if current and not self.config.enable_existing_namespaces:
            raise NamespaceError(
                f"pre-existing automanaged namespaces found: {', '.join(sorted(current)[:10])} "
                "(set namespace.enableExistingNamespaces to use them, or pick another namespace.prefix)"
            )
        stale = [n for n in existing if self.is_stale(n)]
        if stale and self.config.delete_stale_namespaces:
            log.warning("deleting stale automanaged namespaces: %s", ", ".join(stale))
            for name in stale:
                try:
                    await self._delete(name)
                except Exception as exc:  # clusterloader2 logs stale-namespace cleanup errors and goes on
                    log.error("stale namespace %s: cleanup failed: %s", name, exc)
                else:
                    self.stale_deleted.append(name)
        have = set(existing)
        path = resource_path("", "v1", "namespaces")
        for name in self.names:
            if name in have:
                if not self.config.enable_existing_namespaces:
                    raise NamespaceError(f"automanaged namespace {name} already created")
                log.info("namespace %s already exists; reusing it", name)
                continue
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            try:
                await self.client.create(path, body)
            except Exception as exc:
                if not is_already_exists(exc) or not self.config.enable_existing_namespaces:
                    raise
                log.info("namespace %s already exists; reusing it", name)

    async def _delete(self, name: str) -> None:
        try:
            await self.client.delete(resource_path("", "v1", "namespaces", name=name))
        except Exception as exc:
            if not is_not_found(exc):
                raise

    async def cleanup(self, *, wait: bool = False) -> None:
        """Delete the automanaged namespaces if the config says so; with `wait`, until they are gone (or
        deleteNamespaceTimeout passed: NamespaceError)."""
        if not self.config.delete_automanaged_namespaces:
            log.info("keeping the automanaged namespaces (deleteAutomanagedNamespaces: false)")
            return
        for name in self.names:
            await self._delete(name)
        if wait:
            await self._wait_gone(self.names)

    async def _wait_gone(self, names: list[str]) -> None:
        deadline = self._clock() + self.config.delete_namespace_timeout
        left = set(names)
        while left:
            left &= set(await self._existing())
            if not left:
                return
            if self._clock() >= deadline:
                raise NamespaceError(
                    f"namespaces not deleted after {self.config.delete_namespace_timeout:g}s: {', '.join(sorted(left))}"
                )
            await self._sleep(DELETION_POLL_SECONDS)
