"""The Player: turns a test config's declarative phases into object create/update/delete calls.

A phase says "in these namespaces, `replicasPerNamespace` instances of each object bundle". The player remembers
how many instances of each (namespace, basename, template) exist and acts to match: more replicas create the missing
indices, fewer delete the highest ones, the same number updates every instance (a merge patch with the freshly
rendered template). Instances are named `<basename>-<index>`. Automanaged namespaces are `<prefix>-<n>` for n in
1..namespace.number. The phases of one step run concurrently, each paced by its tuning set. Every request goes
through the one RestClient the player is given, so its `on_request` hook sees every call the load makes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubemark.client import RestClient, is_already_exists, is_not_found, object_path, resource_path
from kubemark.load.config import ObjectBundle, Phase, TestConfig, render_object_template
from kubemark.load.templates import TemplateError
from kubemark.load.tuning import TuningSetFactory

__all__ = ["ObjectAction", "Player", "PlayerError"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CREATE, UPDATE, DELETE = "create", "update", "delete"
MAX_REPORTED_ERRORS = 5


class PlayerError(Exception):
    """Some actions of a step failed; the message counts them and quotes the first few."""


@dataclass(frozen=True, slots=True)
class ObjectAction:
    verb: str  # create | update | delete
    namespace: str
    bundle: ObjectBundle
    index: int

    @property
    def name(self) -> str:
        return f"{self.bundle.basename}-{self.index}"


class Player:
    """Plays the phases of one TestConfig against a cluster through `client`."""

    def __init__(
        self,
        client: RestClient,
        config: TestConfig,
        *,
        params: Mapping[str, Any] | None = None,
        tuning: TuningSetFactory | None = None,
        rng: random.Random | None = None,
        delete_propagation: str = "Background",
    ) -> None:
        self.client = client
        self.config = config
        self.params = dict(params or {})
        self._rng = rng or random.Random()
        self.tuning = tuning or TuningSetFactory(config.tuning_sets, rng=self._rng)
        self.delete_propagation = delete_propagation
        # (namespace, basename, template) -> instances that exist; a ConfigMap and a Deployment may share a basename.
        self.replicas: dict[tuple[str, str, str], int] = {}
        self._samples: dict[tuple[str, str, str], Obj] = {}  # same key -> a rendered instance (for its kind)
        self.done: Counter[str] = Counter()  # verb -> successful actions, for progress
        self.failed: Counter[str] = Counter()

    # -- namespaces --------------------------------------------------------------------------------------------

    @property
    def namespaces(self) -> list[str]:
        ns = self.config.namespace
        return [f"{ns.prefix}-{i}" for i in range(1, ns.number + 1)]

    async def create_namespaces(self) -> None:
        path = resource_path("", "v1", "namespaces")
        for name in self.namespaces:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            try:
                await self.client.create(path, body)
            except Exception as exc:
                if not is_already_exists(exc):
                    raise
                log.info("namespace %s already exists; reusing it", name)

    async def delete_namespaces(self) -> None:
        for name in self.namespaces:
            try:
                await self.client.delete(resource_path("", "v1", "namespaces", name=name))
            except Exception as exc:
                if not is_not_found(exc):
                    raise

    # -- phases ------------------------------------------------------------------------------------------------

    def phase_namespaces(self, phase: Phase) -> list[str]:
        if phase.namespace_list is not None:
            return list(phase.namespace_list)
        nr = phase.namespace_range
        if nr is None:
            return self.namespaces
        prefix = nr.basename or self.config.namespace.prefix
        return [f"{prefix}-{i}" for i in range(nr.min, nr.max + 1)]

    def plan(self, phase: Phase) -> list[ObjectAction]:
        """The actions that bring every (namespace, bundle) of `phase` to its replica count, and record it."""
        actions: list[ObjectAction] = []
        target = phase.replicas_per_namespace
        for namespace in self.phase_namespaces(phase):
            for bundle in phase.object_bundle:
                key = (namespace, bundle.basename, bundle.object_template_path)
                current = self.replicas.get(key, 0)
                if target > current:
                    actions += [ObjectAction(CREATE, namespace, bundle, i) for i in range(current, target)]
                elif target < current:
                    actions += [ObjectAction(DELETE, namespace, bundle, i) for i in range(target, current)]
                else:
                    actions += [ObjectAction(UPDATE, namespace, bundle, i) for i in range(current)]
                self.replicas[key] = target
        return actions

    async def run_phase(self, phase: Phase) -> None:
        actions = self.plan(phase)
        log.info("phase: %s via %s", dict(Counter(a.verb for a in actions)), phase.tuning_set)
        await self.tuning.get(phase.tuning_set).execute([self._bind(a) for a in actions])

    async def run_phases(self, phases: Sequence[Phase]) -> None:
        """Run phases concurrently (as clusterloader2 runs the phases of one step); raise PlayerError on failures."""
        results = await asyncio.gather(*(self.run_phase(p) for p in phases), return_exceptions=True)
        errors: list[BaseException] = []
        for r in results:
            if isinstance(r, BaseExceptionGroup):
                errors.extend(_leaves(r))
            elif isinstance(r, BaseException):
                errors.append(r)
        for err in errors:
            if not isinstance(err, Exception):
                raise err  # cancellation
        if errors:
            quoted = "; ".join(str(e) for e in errors[:MAX_REPORTED_ERRORS])
            raise PlayerError(f"{len(errors)} actions failed: {quoted}")

    # -- actions -----------------------------------------------------------------------------------------------

    def render(self, action: ObjectAction) -> Obj:
        mapping = {
            **self.params,
            **action.bundle.template_fill_map,
            "Name": action.name,
            "Index": action.index,
            "Namespace": action.namespace,
        }
        path = self.config.template_path(action.bundle)
        try:
            obj = render_object_template(path, mapping, rng=self._rng)
        except TemplateError as exc:
            raise PlayerError(f"{path}: {exc}") from None
        if not isinstance(obj, dict):
            raise PlayerError(f"{path}: the template must render one object (a YAML map)")
        meta = obj.setdefault("metadata", {})
        meta["name"] = action.name
        meta["namespace"] = action.namespace
        return obj

    def _bind(self, action: ObjectAction):  # type: ignore[no-untyped-def]
        async def run() -> None:
            try:
                await self.perform(action)
            except Exception as exc:
                self.failed[action.verb] += 1
                raise PlayerError(f"{action.verb} {action.namespace}/{action.name}: {exc}") from exc
            self.done[action.verb] += 1

        return run

    async def perform(self, action: ObjectAction) -> None:
        key = (action.namespace, action.bundle.basename, action.bundle.object_template_path)
        if action.verb == DELETE:
            sample = self._samples.get(key) or self.render(action)
            try:
                await self.client.delete(
                    object_path(sample, action.namespace, action.name), propagation_policy=self.delete_propagation
                )
            except Exception as exc:
                if not is_not_found(exc):
                    raise
            return
        obj = self.render(action)
        self._samples.setdefault(key, obj)
        if action.verb == CREATE:
            try:
                await self.client.create(object_path(obj, action.namespace), obj)
            except Exception as exc:
                if not is_already_exists(exc):
                    raise
                await self.client.patch(object_path(obj, action.namespace, action.name), obj, "merge")
        else:
            await self.client.patch(object_path(obj, action.namespace, action.name), obj, "merge")


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out
