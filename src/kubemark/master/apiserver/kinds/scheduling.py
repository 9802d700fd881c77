"""PriorityClass rules and the Priority admission plugin that resolves a pod's priorityClassName.

Upstream: pkg/apis/scheduling/validation (ValidatePriorityClass / Update), scheduling/v1 defaults
(preemptionPolicy PreemptLowerPriority), pkg/apis/scheduling/v1/helpers.go (the two system classes
kube-apiserver creates at start-up) and plugin/pkg/admission/priority: at most one globalDefault class, user
values up to one billion, and on pod create priorityClassName -> spec.priority and spec.preemptionPolicy (the
global default class, or priority 0, when no name is given; 403 for an unknown name or a contradicting
priority).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import field as field_
from typing import Any

from kubemark.master.apiserver import errors
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.options import ListOptions
from kubemark.master.apiserver.strategy import Obj, ObjectStore

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PREFIX = "system-"
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")
DEFAULT_PREEMPTION_POLICY = "PreemptLowerPriority"
# name -> (value, description) of the classes kube-apiserver creates (SystemPriorityClasses).
SYSTEM_PRIORITY_CLASSES: dict[str, tuple[int, str]] = {
    "system-node-critical": (
        2 * HIGHEST_USER_DEFINABLE_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    "system-cluster-critical": (
        2 * HIGHEST_USER_DEFINABLE_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
}

# What admission reads: the named class (None when absent), and every class (for the global default).
GetClass = Callable[[str], Awaitable[Obj | None]]
ListClasses = Callable[[], Awaitable[list[Obj]]]


def system_priority_class(name: str) -> Obj:
    """One of the system classes as kube-apiserver's bootstrap writes it."""
    value, description = SYSTEM_PRIORITY_CLASSES[name]
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "description": description,
        "preemptionPolicy": DEFAULT_PREEMPTION_POLICY,
    }


def _validate(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    value = obj.get("value", 0)
    if not isinstance(value, int) or isinstance(value, bool):
        return [field.invalid("value", value, "must be an integer")]
    if name.startswith(SYSTEM_PREFIX):
        known = SYSTEM_PRIORITY_CLASSES.get(name)
        if known is None:
            why = f"{name!r} is not a known system priority class"
        elif known[0] != value:
            why = f"value of {name} PriorityClass must be {known[0]}"
        elif obj.get("globalDefault"):
            why = f"globalDefault must be false for {name}"
        else:
            why = ""
        if why:
            causes.append(
                field.forbidden(
                    "metadata.name",
                    f"priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {why}",
                )
            )
    elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
        causes.append(
            field.forbidden(
                "value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
            )
        )
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in PREEMPTION_POLICIES:
        causes.append(field.not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
    return causes


def default_global_class(classes: list[Obj]) -> Obj | None:
    """The global default class; with several (a race), the one with the lowest value, as upstream."""
    defaults = [c for c in classes if c.get("globalDefault")]
    return min(defaults, key=lambda c: c.get("value", 0)) if defaults else None


@dataclass(frozen=True)
class PriorityClassLister:
    """What admission reads of the PriorityClasses, as upstream's informer lister: the watch cache; a name the
    cache does not hold yet is asked of storage before it is called missing."""

    store: ObjectStore

    async def get(self, name: str) -> Obj | None:
        for resource_version in ("0", ""):
            try:
                return await self.store.get("", name, resource_version)
            except errors.StatusError as err:
                if err.code != 404:
                    raise
        return None

    async def list(self) -> list[Obj]:
        page = await self.store.list("", ListOptions(resource_version="0"))
        return list(page.items)


@dataclass
class PriorityClassStrategy(KindStrategy):
    """Validation here; the single-global-default rule needs the other classes, so it is admission."""

    lister: PriorityClassLister | None = field_(default=None, repr=False)

    def bind_stores(self, lookup: Callable[[str, str], ObjectStore | None]) -> None:
        store = lookup("scheduling.k8s.io", "priorityclasses")
        self.lister = PriorityClassLister(store) if store is not None else None

    async def admit_create(self, obj: Obj) -> None:
        if self.lister is not None:
            await admit_priority_class(obj, self.lister.list, creating=True)

    def prepare_for_create(self, obj: Obj) -> None:
        obj.setdefault("preemptionPolicy", DEFAULT_PREEMPTION_POLICY)
        obj.setdefault("value", 0)

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        new.setdefault("preemptionPolicy", DEFAULT_PREEMPTION_POLICY)
        new.setdefault("value", 0)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = _validate(new)
        if new.get("value") != old.get("value"):
            causes.append(field.forbidden("value", "may not be changed in an update."))
        if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
            causes.append(field.immutable("preemptionPolicy", new.get("preemptionPolicy")))
        return causes

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return False


async def admit_priority_class(obj: Obj, list_classes: ListClasses, *, creating: bool) -> None:
    """Priority admission of a PriorityClass write: only one class may be the global default (403)."""
    if not obj.get("globalDefault"):
        return
    name = (obj.get("metadata") or {}).get("name") or ""
    current = default_global_class(await list_classes())
    if current is None:
        return
    current_name = (current.get("metadata") or {}).get("name") or ""
    if creating or current_name != name:
        raise errors.admission_forbidden(
            "scheduling.k8s.io",
            "priorityclasses",
            name,
            f"PriorityClass {current_name} is already marked as default. Only one default can exist",
        )


async def admit_pod_priority(pod: Obj, get_class: GetClass, list_classes: ListClasses) -> None:
    """Priority admission of a new pod: set spec.priorityClassName/priority/preemptionPolicy (403 on conflict)."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = (pod.get("metadata") or {}).get("name") or (pod.get("metadata") or {}).get("generateName") or ""
    class_name = spec.get("priorityClassName") or ""
    policy: Any = DEFAULT_PREEMPTION_POLICY
    if not class_name:
        chosen = default_global_class(await list_classes())
        priority = 0
        if chosen is not None:
            class_name = (chosen.get("metadata") or {}).get("name") or ""
            priority, policy = chosen.get("value", 0), chosen.get("preemptionPolicy")
    else:
        chosen = await get_class(class_name)
        if chosen is None:
            raise errors.admission_forbidden("", "pods", name, f"no PriorityClass with name {class_name} was found")
        priority, policy = chosen.get("value", 0), chosen.get("preemptionPolicy")
    if class_name:
        spec["priorityClassName"] = class_name
    given = spec.get("priority")
    if given is not None and given != priority:
        raise errors.admission_forbidden(
            "",
            "pods",
            name,
            f"the integer value of priority ({given}) must not be provided in pod spec; priority admission "
            f"controller computed {priority} from the given PriorityClass name",
        )
    spec["priority"] = priority
    if policy is not None:
        given_policy = spec.get("preemptionPolicy")
        if given_policy is not None and given_policy != policy:
            raise errors.admission_forbidden(
                "",
                "pods",
                name,
                f"the string value of PreemptionPolicy ({given_policy}) must not be provided in pod spec; priority "
                f"admission controller computed {policy} from the given PriorityClass name",
            )
        spec["preemptionPolicy"] = policy
