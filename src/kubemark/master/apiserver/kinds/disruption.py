"""The eviction subresource with PodDisruptionBudgets, and the budget rules it shares with the disruption
controller (pkg/registry/core/pod/storage/eviction.go, pkg/apis/policy/helper).

POST pods/<name>/eviction:
- a pod that is Pending, Succeeded, Failed or already being deleted is deleted without looking at budgets;
- otherwise the budgets of its namespace whose selector matches it decide: none, delete; more than one, 500;
  one: an unready pod is deleted when the budget's unhealthyPodEvictionPolicy is AlwaysAllow or the budget is
  already healthy; else the budget must have been processed (status.observedGeneration >= generation, else
  429) and allow a disruption (disruptionsAllowed 0 is 429, negative or too many pending evictions 403); the
  eviction takes one disruption and records the pod in status.disruptedPods in the same status write;
- before deleting, the pod gets the condition DisruptionTarget (reason EvictionByEvictionAPI); a resourceVersion
  precondition guards the delete where upstream sets one.
"""

from __future__ import annotations

from typing import Any

from kubemark.kube.disruption import DELETION_TIMEOUT_SECONDS, disruption_allowed_condition
from kubemark.kube.intstr import scaled_value
from kubemark.kube.labels import LabelSelectorError, selector_from_label_selector
from kubemark.kube.meta import now_rfc3339
from kubemark.master.apiserver import errors
from kubemark.master.apiserver.options import ListOptions
from kubemark.master.apiserver.strategy import Obj, ObjectStore, SubresourceRequest

MAX_DISRUPTED_POD_SIZE = 2000
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
_IGNORE_PDB_PHASES = ("Succeeded", "Failed", "Pending")

__all__ = ["DELETION_TIMEOUT_SECONDS", "disruption_allowed_condition", "evict", "scaled_value"]


def _too_many_requests(message: str, cause: str, retry_after: int) -> errors.StatusError:
    details: dict[str, Any] = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    headers: dict[str, str] = {}
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return errors.StatusError(429, "TooManyRequests", message, details, headers)


def _budget_forbidden(name: str, why: str, cause: str) -> errors.StatusError:
    err = errors.admission_forbidden("policy", "poddisruptionbudget", name, why)
    err.details = {**(err.details or {}), "causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]}
    return err


def _is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict))


def _matching_budgets(pod: Obj, budgets: list[Obj]) -> list[Obj]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    out = []
    for pdb in budgets:
        raw = (pdb.get("spec") or {}).get("selector")
        if raw is None:
            continue  # policy/v1: a nil selector selects nothing
        try:
            if selector_from_label_selector(raw).matches(labels):
                out.append(pdb)
        except LabelSelectorError:
            continue
    return out


def take_disruption(pdb: Obj, pod_name: str, now: str) -> Obj:
    """checkAndDecrement on a private copy of the budget: raise the refusal, or return it one disruption down."""
    name = (pdb.get("metadata") or {}).get("name") or ""
    status = pdb.setdefault("status", {})
    if int(status.get("observedGeneration") or 0) < int((pdb.get("metadata") or {}).get("generation") or 0):
        raise _too_many_requests(VIOLATION, f"The disruption budget {name} is still being processed by the server.", 10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _budget_forbidden(
            name,
            "pdb disruptions allowed is negative",
            f"The disruption budget {name} does not allow evicting pods currently: pdb disruptions allowed is negative",
        )
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise _budget_forbidden(
            name,
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
            f"The disruption budget {name} does not allow evicting pods currently: too many pending evictions not "
            "confirmed by PDB controller",
        )
    if allowed == 0:
        current, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        if current <= desired:
            cause = f"The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        else:
            cause = f"The disruption budget {name} does not allow evicting pods currently"
        raise _too_many_requests(VIOLATION, cause, 0)
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        condition = disruption_allowed_condition(0, int(status.get("observedGeneration") or 0))
        others = [c for c in status.get("conditions") or () if c.get("type") != "DisruptionAllowed"]
        previous: dict[str, Any] = next(
            (c for c in status.get("conditions") or () if c.get("type") == "DisruptionAllowed"), {}
        )
        transition = previous.get("lastTransitionTime") if previous.get("status") == "False" else now
        status["conditions"] = [*others, {**condition, "lastTransitionTime": transition, "message": ""}]
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: now}
    return pdb


async def _budgets(req: SubresourceRequest) -> list[Obj]:
    try:
        store = req.stores("policy", "poddisruptionbudgets")
    except errors.StatusError:
        return []  # the server does not serve budgets
    page = await store.list(req.namespace, ListOptions())
    return list(page.items)


async def _mark_and_delete(pods: ObjectStore, req: SubresourceRequest, options: Obj) -> None:
    """addConditionAndDeletePod: DisruptionTarget=True (a status write), then the delete."""
    if not options.get("dryRun") and "dryRun" not in req.query:
        precondition = options.get("preconditions") or {}

        def add_condition(pod: Obj) -> Obj:
            md = pod.get("metadata") or {}
            if precondition.get("uid") and precondition["uid"] != md.get("uid"):
                raise errors.conflict(
                    "", "Pod", req.name,
                    f"the UID in the precondition ({precondition['uid']}) does not match the UID in record "
                    f"({md.get('uid')}). The object might have been deleted and then recreated",
                )  # fmt: skip
            if precondition.get("resourceVersion") and precondition["resourceVersion"] != md.get("resourceVersion"):
                raise errors.conflict(
                    "", "Pod", req.name,
                    f"the ResourceVersion in the precondition ({precondition['resourceVersion']}) does not match the "
                    f"ResourceVersion in record ({md.get('resourceVersion')}). The object might have been modified",
                )  # fmt: skip
            conditions = [
                c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") != "DisruptionTarget"
            ]
            conditions.append(
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(),
                    "reason": "EvictionByEvictionAPI",
                    "message": "Eviction API: evicting",
                }
            )
            pod.setdefault("status", {})["conditions"] = conditions
            return pod

        updated = await pods.guaranteed_update(req.namespace, req.name, add_condition, status_only=True)
        if precondition.get("resourceVersion"):
            options = {
                **options,
                "preconditions": {**precondition, "resourceVersion": updated["metadata"]["resourceVersion"]},
            }
    await pods.delete(req.namespace, req.name, options, req.user)


async def evict(req: SubresourceRequest, options: Obj) -> None:
    """The eviction decision and the delete (raises the StatusError of a refusal)."""
    pods = req.stores("", "pods")
    pod = await pods.get(req.namespace, req.name)
    md = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase in _IGNORE_PDB_PHASES or md.get("deletionTimestamp"):
        if phase not in ("Succeeded", "Failed") and not md.get("deletionTimestamp"):
            options = _with_resource_version(options, md.get("resourceVersion"))
        await _mark_and_delete(pods, req, options)
        return
    matching = _matching_budgets(pod, await _budgets(req))
    if len(matching) > 1:
        raise errors.StatusError(
            500, "", "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        )
    if matching:
        pdb = matching[0]
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        current, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
        unready_ok = not _is_ready(pod) and (
            spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or (current >= desired and desired > 0)
        )
        if unready_ok:
            options = _with_resource_version(options, md.get("resourceVersion"))
        else:
            budgets = req.stores("policy", "poddisruptionbudgets")
            now = now_rfc3339()
            pdb_name = (pdb.get("metadata") or {}).get("name") or ""
            dry_run = bool(options.get("dryRun")) or "dryRun" in req.query
            if dry_run:
                take_disruption(pdb, req.name, now)  # the checks only
            else:
                await budgets.guaranteed_update(
                    req.namespace, pdb_name, lambda b: take_disruption(b, req.name, now), status_only=True
                )
    await _mark_and_delete(pods, req, options)


def _with_resource_version(options: Obj, resource_version: Any) -> Obj:
    """setPreconditionsResourceVersion unless the caller gave one."""
    precondition = options.get("preconditions") or {}
    if precondition.get("resourceVersion") or not resource_version:
        return options
    return {**options, "preconditions": {**precondition, "resourceVersion": resource_version}}
