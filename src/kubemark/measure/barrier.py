"""WaitForControlledPodsRunning: wait until every controlled object has exactly its replicas' pods Running.

Objects (e.g. Deployments matching a label selector) are tracked from `start`; `gather` waits until each live
object has its desired number of Running, non-terminating pods matching its selector in its namespace (as
clusterloader2's GetReplicasFromRuntimeObject: `spec.replicas`; a Job's `spec.parallelism`; a DaemonSet's
`status.desiredNumberScheduled` once its controller has seen the current generation), and every object
deleted since `start` has no pods left. On timeout the error lists the stuck objects and, for their pods that are
not Running, the phase and the last condition's reason and message: the answer to "which pods, and why".

Pods are kept in buckets by namespace and exact label set (`PodGroups`, updated from the pods watch), so a
re-check matches each object's selector once per bucket (and remembers the answer) instead of once per pod:
tens of thousands of pods and a thousand objects must not make the player, which shares its event loop with
the hollow nodes, spend a core re-checking the barrier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubemark.client import namespaced_key, namespaced_key_from
from kubemark.kube.labels import Selector, parse_label_selector, selector_from_label_selector
from kubemark.kube.meta import resource_version
from kubemark.measure.watch import ObjectWatch

Obj = dict[str, Any]

MAX_LISTED_PODS = 20
# A busy pods watch wakes the barrier hundreds of times a second; re-checking at most this often is plenty.
RECHECK_INTERVAL = 0.2


class BarrierTimeout(Exception):
    """The barrier's deadline passed; the message says which objects and pods are stuck, and why."""


@dataclass(frozen=True)
class _Tracked:
    namespace: str
    name: str
    selector: Any  # the object's spec.selector, as written


def _running(pod: Obj) -> bool:
    meta = pod.get("metadata") or {}
    return (pod.get("status") or {}).get("phase") == "Running" and not meta.get("deletionTimestamp")


def _last_condition(pod: Obj) -> str:
    conditions = (pod.get("status") or {}).get("conditions") or []
    if not conditions:
        return "no conditions yet" if (pod.get("spec") or {}).get("nodeName") else "not scheduled yet, no conditions"
    failing = [c for c in conditions if c.get("status") != "True"] or conditions
    last = max(failing, key=lambda c: str(c.get("lastTransitionTime") or ""))
    text = f"{last.get('type')}={last.get('status')}"
    if last.get("reason"):
        text += f" ({last['reason']})"
    if last.get("message"):
        text += f": {last['message']}"
    return text


def describe_pod(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    where = (pod.get("spec") or {}).get("nodeName") or "no node"
    phase = status.get("phase") or "Pending"
    if meta.get("deletionTimestamp"):
        phase += ", terminating"
    return f"{meta.get('namespace')}/{meta.get('name')} [{phase}, {where}] {_last_condition(pod)}"


class _Group:
    """Pods of one namespace sharing one exact label set, with how many of them are Running."""

    __slots__ = ("pods", "running")

    def __init__(self) -> None:
        self.pods: dict[str, Obj] = {}
        self.running = 0


def _pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name") or "")


class PodGroups:
    """Pods by namespace and label set, kept current from a pods ObjectWatch (a WatchSubscriber)."""

    def __init__(self, pods: Iterable[Obj] = ()) -> None:
        self._by_ns: dict[str, dict[frozenset[tuple[str, str]], _Group]] = {}
        self._generation: dict[str, int] = {}  # namespace -> bumped whenever a label set appears or vanishes
        self._matches: dict[str, tuple[Any, int, list[_Group]]] = {}  # object key -> (selector, generation, groups)
        for pod in pods:
            self._add(pod)

    @staticmethod
    def _where(pod: Obj) -> tuple[str, frozenset[tuple[str, str]]]:
        meta = pod.get("metadata") or {}
        return str(meta.get("namespace", "")), frozenset((meta.get("labels") or {}).items())

    def _add(self, pod: Obj) -> None:
        namespace, labels = self._where(pod)
        groups = self._by_ns.setdefault(namespace, {})
        group = groups.get(labels)
        if group is None:
            group = groups[labels] = _Group()
            self._generation[namespace] = self._generation.get(namespace, 0) + 1
        key = _pod_key(pod)
        previous = group.pods.get(key)
        if previous is not None and _running(previous):
            group.running -= 1
        group.pods[key] = pod
        if _running(pod):
            group.running += 1

    def _remove(self, pod: Obj) -> None:
        namespace, labels = self._where(pod)
        groups = self._by_ns.get(namespace) or {}
        group = groups.get(labels)
        if group is None:
            return
        previous = group.pods.pop(_pod_key(pod), None)
        if previous is not None and _running(previous):
            group.running -= 1
        if not group.pods:
            del groups[labels]
            self._generation[namespace] = self._generation.get(namespace, 0) + 1

    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        if kind == "DELETED":
            self._remove(new)
            return
        if old is not None and self._where(old) != self._where(new):
            self._remove(old)
        self._add(new)

    def matching(self, key: str, namespace: str, selector_spec: Any, selector: Callable[[], Selector]) -> list[_Group]:
        """The buckets of `namespace` whose labels the object `key`'s selector matches (cached until the
        namespace's label sets or the selector change)."""
        generation = self._generation.get(namespace, 0)
        cached = self._matches.get(key)
        if cached is not None and cached[0] == selector_spec and cached[1] == generation:
            return cached[2]
        sel = selector()
        found = [g for labels, g in (self._by_ns.get(namespace) or {}).items() if sel.matches(dict(labels))]
        self._matches[key] = (selector_spec, generation, found)
        return found


revision_of = resource_version  # an object's resourceVersion as a number; 0 when it is not one


DesiredPods = Callable[[Obj], "int | None"]  # a controller's desired pod count; None: not known yet


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value or 0)


def replicas_wanted(obj: Obj) -> int | None:
    """Deployments, ReplicaSets, ReplicationControllers, StatefulSets: spec.replicas (defaulted to 1)."""
    return _int((obj.get("spec") or {}).get("replicas"), 1)


def parallelism_wanted(obj: Obj) -> int | None:
    """Jobs: spec.parallelism (defaulted to 1), the pods that run at once."""
    return _int((obj.get("spec") or {}).get("parallelism"), 1)


def daemon_pods_wanted(obj: Obj) -> int | None:
    """DaemonSets: one pod per eligible node, as its controller counts them; unknown until the controller has
    observed the current generation (a fresh DaemonSet's 0 would pass the barrier before any pod exists)."""
    status = obj.get("status") or {}
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    if int(status.get("observedGeneration") or 0) < generation:
        return None
    return _int(status.get("desiredNumberScheduled"), 0)


def desired_pods(kind: str) -> DesiredPods:
    """How a controller of `kind` says how many pods it wants Running."""
    return {"DaemonSet": daemon_pods_wanted, "Job": parallelism_wanted}.get(kind, replicas_wanted)


class ControlledPodsBarrier:
    """Tracks objects seen by `objects` (an ObjectWatch on e.g. deployments) against pods seen by `pods`."""

    def __init__(
        self,
        objects: ObjectWatch,
        pods: ObjectWatch,
        *,
        label_selector: str = "",
        namespace_prefix: str = "",
        lister: Callable[[], Awaitable[list[Obj]]] | None = None,
        desired: DesiredPods = replicas_wanted,
    ) -> None:
        """`desired`: the pods an object wants (see `desired_pods`). `lister` makes a consistent read of the controlled objects: `wait` first lists them and then also
        requires the watch to have seen each one at least at that version, so objects created a moment
        before the wait are waited for instead of being missed (a watch is always a little behind)."""
        self.objects = objects
        self.pods = pods
        self.selector = parse_label_selector(label_selector)
        self.namespace_prefix = namespace_prefix
        self.lister = lister
        self.desired = desired
        self._deleted: dict[str, _Tracked] = {}
        self._expected: dict[str, int] = {}  # namespace/name -> resourceVersion the watch must have reached
        self._groups: PodGroups | None = None

    def _wanted(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace_prefix and not str(meta.get("namespace", "")).startswith(self.namespace_prefix):
            return False
        return self.selector.matches(meta.get("labels"))

    def on_event(self, kind: str, old: Obj | None, new: Obj, received: float) -> None:
        if kind == "DELETED" and self._wanted(new):
            tracked = self._track(new)
            self._deleted[namespaced_key_from(tracked.namespace, tracked.name)] = tracked

    def start(self) -> None:
        self.objects.subscribe(self)
        # Listing and subscribing in one synchronous step: no pod event can fall between them.
        self._groups = PodGroups(self.pods.list())
        self.pods.subscribe(self._groups)

    def stop(self) -> None:
        self.objects.unsubscribe(self)
        if self._groups is not None:
            self.pods.unsubscribe(self._groups)
            self._groups = None

    @staticmethod
    def _track(obj: Obj) -> _Tracked:
        meta = obj.get("metadata") or {}
        return _Tracked(
            str(meta.get("namespace", "")),
            str(meta.get("name", "")),
            (obj.get("spec") or {}).get("selector"),
        )

    @staticmethod
    def _groups_of(tracked: _Tracked, groups: PodGroups) -> list[_Group]:
        return groups.matching(
            namespaced_key_from(tracked.namespace, tracked.name),
            tracked.namespace,
            tracked.selector,
            lambda: selector_from_label_selector(tracked.selector),
        )

    def problems(self) -> list[tuple[str, list[Obj]]]:
        """(what is wrong, the pods concerned) per unsatisfied object; empty when the barrier holds."""
        groups = self._groups if self._groups is not None else PodGroups(self.pods.list())
        out: list[tuple[str, list[Obj]]] = []
        live: set[str] = set()
        seen: dict[str, int] = {}
        for obj in self.objects.list():
            if not self._wanted(obj):
                continue
            tracked = self._track(obj)
            key = namespaced_key_from(tracked.namespace, tracked.name)
            live.add(key)
            seen[key] = revision_of(obj)
            want = self.desired(obj)
            mine = self._groups_of(tracked, groups)
            running = sum(g.running for g in mine)
            total = sum(len(g.pods) for g in mine)
            kind = obj.get("kind") or "object"
            if want is None:
                out.append((f"{kind} {tracked.namespace}/{tracked.name}: not yet observed by its controller", []))
            elif running != want or total != want:
                out.append(
                    (
                        f"{kind} {tracked.namespace}/{tracked.name}: {running} of {want} pods Running "
                        f"({total} pods exist)",
                        [p for g in mine for p in g.pods.values() if not _running(p)],
                    )
                )
        for key, revision in self._expected.items():
            if seen.get(key, -1) < revision:
                out.append((f"{key}: not yet observed by the watch (resourceVersion {revision})", []))
        for key, tracked in self._deleted.items():
            if key in live:
                continue
            left = [p for g in self._groups_of(tracked, groups) for p in g.pods.values()]
            if left:
                out.append((f"deleted {key}: {len(left)} pods still exist", left))
        return out

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - the barrier's own deadline
        """Return once the barrier holds; raise BarrierTimeout with the stuck objects and pods otherwise."""
        if self.lister is not None:
            self._expected = {namespaced_key(o): revision_of(o) for o in await self.lister() if self._wanted(o)}
        # The pods watch is the busy one; its wake-ups (and wait_until's 1 s re-check) also cover object events.
        if not await self.pods.wait_until(lambda: not self.problems(), timeout, min_interval=RECHECK_INTERVAL):
            raise BarrierTimeout(self.report(timeout))

    def report(self, timeout: float) -> str:
        problems = self.problems()
        lines = [f"WaitForControlledPodsRunning: {len(problems)} objects not ready after {timeout:g}s"]
        listed = 0
        for what, pods in problems:
            lines.append(f"  {what}")
            for pod in pods:
                if listed >= MAX_LISTED_PODS:
                    break
                lines.append(f"    {describe_pod(pod)}")
                listed += 1
        hidden = sum(len(p) for _, p in problems) - listed
        if hidden > 0:
            lines.append(f"  ... and {hidden} more pods not Running")
        return "\n".join(lines)
