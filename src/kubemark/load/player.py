"""The Player: turns a test config's declarative phases into object create/update/delete calls.

A phase says "in these namespaces, `replicasPerNamespace` instances of each object bundle". The player remembers
how many instances of each (namespace, basename, API group and kind) exist and acts to match: more replicas create the missing
indices, fewer delete the highest ones, the same number updates every instance (a merge patch with the freshly
rendered template). Instances are named `<basename>-<index>`. Automanaged namespaces are `<prefix>-<n>` for n in
1..namespace.number (namespaces.py). The phases of one step run concurrently, each paced by its tuning set. Every
request goes through the one RestClient the player is given, so its `on_request` hook sees every call the load makes.

As clusterloader2's executor: a phase without namespaceRange or namespaceList manages cluster-scoped objects (no
namespace); one tuning-set action is one replica index of the whole bundle, its objects created or updated in order
(stopping at the first failure) or deleted in reverse order; per namespace the deletions come first, then the
updates, then the creations; all objects of a bundle must have the same replica count; an object with
`listUnknownObjectOptions` first counts the objects matching its selector (e.g. PVCs a StatefulSet made) as its
existing replicas; an object template that renders to nothing is skipped; templates see `.BaseName`, `.Index`,
`.Name` and `.Namespace` besides the params and the fill map.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubemark.client import RestClient, is_already_exists, is_not_found, object_path
from kubemark.load.chaos import ChaosMonkey
from kubemark.load.config import ObjectBundle, Phase, TestConfig, render_object_template
from kubemark.load.namespaces import AutomanagedNamespaces
from kubemark.load.templates import TemplateError
from kubemark.load.tuning import Action, TuningSetFactory
from kubemark.node_killer import NodeFailureTarget

__all__ = ["ObjectAction", "Player", "PlayerError"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CREATE, UPDATE, DELETE = "create", "update", "delete"
MAX_REPORTED_ERRORS = 5

# clusterloader2 reads an object's kind from its raw template (RawToObject: actions removed, then parsed); the
# top-level `kind:` and `apiVersion:` lines are what that finds, also in templates whose actions break the YAML.
_QUOTES = "\"'"
_TOP_LEVEL = re.compile(r"^(kind|apiVersion):[ \t]*([^\s#{]+)", re.MULTILINE)


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
        node_target: NodeFailureTarget | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.params = dict(params or {})
        self._rng = rng or random.Random()
        self.tuning = tuning or TuningSetFactory(config.tuning_sets, rng=self._rng)
        self.delete_propagation = delete_propagation
        self.automanaged = AutomanagedNamespaces(client, config.namespace)
        # chaosMonkey fails nodes of the run's own hollow node pool (None: the run started no nodes).
        self.chaos = ChaosMonkey(config.chaos_monkey, node_target, rng=self._rng)
        # (namespace, basename, group/kind) -> instances that exist; a ConfigMap and a Deployment may share a basename.
        self.replicas: dict[tuple[str, str, str], int] = {}
        self._samples: dict[tuple[str, str, str], Obj] = {}  # same key -> a rendered instance (for its kind)
        self._raw_types: dict[str, tuple[str, str] | None] = {}  # template path -> raw (apiVersion, kind)
        self.done: Counter[str] = Counter()  # verb -> successful actions, for progress
        self.failed: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # actions whose template rendered to nothing

    # -- namespaces --------------------------------------------------------------------------------------------

    @property
    def namespaces(self) -> list[str]:
        return self.automanaged.names

    async def create_namespaces(self) -> None:
        """Prepare the automanaged namespaces (clusterloader2's options: existing, stale, created)."""
        await self.automanaged.prepare()

    async def delete_namespaces(self, *, wait: bool = False) -> None:
        """Delete the automanaged namespaces unless `deleteAutomanagedNamespaces: false`."""
        await self.automanaged.cleanup(wait=wait)

    # -- phases ------------------------------------------------------------------------------------------------

    def phase_namespaces(self, phase: Phase) -> list[str]:
        """The phase's namespaces; [""] (cluster scope) when it names none, as clusterloader2."""
        if phase.namespace_list is not None:
            return list(phase.namespace_list)
        nr = phase.namespace_range
        if nr is None:
            return [""]
        prefix = nr.basename or self.config.namespace.prefix
        return [f"{prefix}-{i}" for i in range(nr.min, nr.max + 1)]

    def _raw_type(self, bundle: ObjectBundle) -> tuple[str, str] | None:
        """(apiVersion, kind) of the bundle's template read raw (clusterloader2's RawToObject), or None."""
        path = bundle.object_template_path
        if path not in self._raw_types:
            fields: dict[str, str] = {}
            try:
                for m in _TOP_LEVEL.finditer(self.config.template_path(bundle).read_text()):
                    fields.setdefault(m.group(1), m.group(2).strip(_QUOTES))
            except OSError:
                pass
            found = (fields.get("apiVersion", ""), fields["kind"]) if fields.get("kind") else None
            self._raw_types[path] = found
        return self._raw_types[path]

    def _kind(self, bundle: ObjectBundle) -> str:
        """What clusterloader2 identifies an object by besides its basename: the API group and kind of its
        template read raw (actions removed), so two template files for the same objects share their state."""
        raw = self._raw_type(bundle)
        if raw is None:
            return bundle.object_template_path
        return f"{raw[0].rpartition('/')[0]}/{raw[1]}"

    def _key(self, namespace: str, bundle: ObjectBundle) -> tuple[str, str, str]:
        return (namespace, bundle.basename, self._kind(bundle))

    def plan(self, phase: Phase) -> list[ObjectAction]:
        """The object actions that bring every (namespace, bundle) of `phase` to its replica count, in
        clusterloader2's order, and record the new counts. Raises PlayerError for an inconsistent bundle."""
        actions: list[ObjectAction] = []
        target = phase.replicas_per_namespace
        bundle = phase.object_bundle
        if not bundle:
            return actions
        for namespace in self.phase_namespaces(phase):
            counts = [self.replicas.get(self._key(namespace, b), 0) for b in bundle]
            if len(set(counts)) > 1:
                detail = ", ".join(f"{b.basename} has {c}" for b, c in zip(bundle, counts, strict=True))
                raise PlayerError(f"bundle error in {namespace or 'cluster scope'}: replica counts differ ({detail})")
            current = counts[0]
            for i in range(target, current):
                actions += [ObjectAction(DELETE, namespace, b, i) for b in reversed(bundle)]
            if current == target:
                for i in range(target):
                    actions += [ObjectAction(UPDATE, namespace, b, i) for b in bundle]
            for i in range(current, target):
                actions += [ObjectAction(CREATE, namespace, b, i) for b in bundle]
            for b in bundle:
                self.replicas[self._key(namespace, b)] = target
        return actions

    async def count_unknown_objects(self, phase: Phase) -> None:
        """For objects with listUnknownObjectOptions seen for the first time: their existing replicas are the
        objects of their kind in the namespace matching the selector (clusterloader2's getReplicaCountOfNewObject;
        a failed list counts 0)."""
        for bundle in phase.object_bundle:
            options = bundle.list_unknown_object_options
            if options is None:
                continue
            for namespace in self.phase_namespaces(phase):
                key = self._key(namespace, bundle)
                if key in self.replicas:
                    continue
                # As clusterloader2, by the raw template's type (a rendered one only where it has none).
                raw = self._raw_type(bundle)
                sample = (
                    {"apiVersion": raw[0], "kind": raw[1]}
                    if raw is not None
                    else self.render(ObjectAction(CREATE, namespace, bundle, 0))
                )
                if sample is None:
                    continue
                try:
                    items, _ = await self.client.list_all(
                        object_path(sample, namespace), label_selector=options.label_selector.as_query()
                    )
                except Exception as exc:
                    log.warning("listing unknown %s objects in %s failed: %s", bundle.basename, namespace, exc)
                    items = []
                self.replicas[key] = len(items)

    async def run_phase(self, phase: Phase) -> None:
        await self.count_unknown_objects(phase)
        actions = self.plan(phase)
        log.info("phase: %s via %s", dict(Counter(a.verb for a in actions)), phase.tuning_set)
        await self.tuning.get(phase.tuning_set).execute(self._bind_bundles(actions))

    def _bind_bundles(self, actions: Sequence[ObjectAction]) -> list[Action]:
        """One tuning-set action per (namespace, verb, replica index): the bundle's objects one after another."""
        groups: list[list[ObjectAction]] = []
        for action in actions:
            last = groups[-1][0] if groups else None
            if last is not None and (last.namespace, last.verb, last.index) == (
                action.namespace,
                action.verb,
                action.index,
            ):
                groups[-1].append(action)
            else:
                groups.append([action])
        return [self._bind(group) for group in groups]

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

    def render(self, action: ObjectAction) -> Obj | None:
        """The object of `action` (None when its template renders to nothing, which clusterloader2 skips)."""
        mapping = {
            **self.params,
            **action.bundle.template_fill_map,
            "BaseName": action.bundle.basename,
            "Name": action.name,
            "Index": action.index,
            "Namespace": action.namespace,
        }
        path = self.config.template_path(action.bundle)
        try:
            obj = render_object_template(path, mapping, rng=self._rng, base_dir=self.config.base_dir)
        except TemplateError as exc:
            raise PlayerError(f"{path}: {exc}") from None
        if obj is None:
            return None
        if not isinstance(obj, dict):
            raise PlayerError(f"{path}: the template must render one object (a YAML map)")
        meta = obj.setdefault("metadata", {})
        meta["name"] = action.name
        if action.namespace:
            meta["namespace"] = action.namespace
        return obj

    def _bind(self, group: Sequence[ObjectAction]) -> Action:
        async def run() -> None:
            errors: list[Exception] = []
            for action in group:
                try:
                    acted = await self.perform(action)
                except Exception as exc:
                    self.failed[action.verb] += 1
                    where = f"{action.namespace}/{action.name}" if action.namespace else action.name
                    errors.append(PlayerError(f"{action.verb} {where}: {exc}"))
                    if action.verb != DELETE:
                        break  # clusterloader2 skips the rest of the bundle when creating or updating
                    continue
                (self.done if acted else self.skipped)[action.verb] += 1
            if len(errors) == 1:
                raise errors[0]
            if errors:
                raise ExceptionGroup(f"{len(errors)} objects failed", errors)

        return run

    async def perform(self, action: ObjectAction) -> bool:
        """Do one object action; False when its template rendered to nothing (skipped)."""
        key = self._key(action.namespace, action.bundle)
        if action.verb == DELETE:
            # clusterloader2 deletes by the raw template's type, without rendering it (a template whose
            # functions fail at delete time still deletes); a template it cannot read raw is rendered.
            raw = self._raw_type(action.bundle)
            sample = self._samples.get(key) or (
                {"apiVersion": raw[0], "kind": raw[1]} if raw is not None else self.render(action)
            )
            if sample is None:
                return False
            try:
                await self.client.delete(
                    object_path(sample, action.namespace, action.name), propagation_policy=self.delete_propagation
                )
            except Exception as exc:
                if not is_not_found(exc):
                    raise
            return True
        obj = self.render(action)
        if obj is None:
            return False
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
        return True


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out
