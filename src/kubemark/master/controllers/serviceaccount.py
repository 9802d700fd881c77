"""ServiceAccounts controller (pkg/controller/serviceaccount): a `default` ServiceAccount in every namespace."""

from __future__ import annotations

from kubemark.client import APIError, RestClient, is_already_exists, resource_path
from kubemark.client.informer import namespaced_key_from
from kubemark.master.controllers.base import Controller, Obj, SharedInformers
from kubemark.master.controllers.ownership import is_deleting, meta
from kubemark.master.controllers.workqueue import QueueMetrics

DEFAULT_ACCOUNTS = ("default",)


class ServiceAccountController(Controller):
    """Creates the default ServiceAccount(s) in active namespaces, and again if deleted."""

    name = "serviceaccount"

    def __init__(
        self,
        client: RestClient,
        informers: SharedInformers,
        *,
        workers: int = 1,
        accounts: tuple[str, ...] = DEFAULT_ACCOUNTS,
        metrics: QueueMetrics | None = None,
    ) -> None:
        super().__init__(client, informers, workers=workers, metrics=metrics)
        self.accounts = accounts
        self.namespaces = self.use("", "v1", "namespaces")
        self.accounts_informer = self.use("", "v1", "serviceaccounts")
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.accounts_informer.add_handler(on_delete=self._account_deleted)

    def _account_deleted(self, sa: Obj) -> None:
        md = meta(sa)
        if md.get("name") in self.accounts and md.get("namespace"):
            self.queue.add(md["namespace"])

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or is_deleting(ns):
            return
        for name in self.accounts:
            if self.accounts_informer.get(namespaced_key_from(key, name)) is not None:
                continue
            body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": key}}
            try:
                await self.client.create(resource_path("", "v1", "serviceaccounts", key), body)
            except APIError as exc:
                # AlreadyExists: our cache lags; Forbidden: the namespace began terminating.
                if not is_already_exists(exc) and exc.status != 403:
                    raise
