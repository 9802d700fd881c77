"""Workload controllers' objects: Deployment, ReplicaSet, ReplicationController and Job.

Defaults from pkg/apis/apps/v1/defaults.go, core/v1 (RC) and batch/v1 (Job); validation of replicas,
selectors against template labels, template pod specs and restart policies; immutable selectors (and the
Job template). The shared `scale` subresource lives in `scale.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubemark.kube import meta
from kubemark.kube.labels import LabelSelectorError, selector_from_label_selector
from kubemark.master.apiserver.errors import Cause
from kubemark.master.apiserver.kinds import field, podspec, scale
from kubemark.master.apiserver.kinds.kind_strategy import KindStrategy
from kubemark.master.apiserver.strategy import Obj

STRATEGY_TYPES = ("Recreate", "RollingUpdate")
COMPLETION_MODES = ("Indexed", "NonIndexed")
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"


def _template_spec(spec: Obj) -> Obj | None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return template["spec"]
    return None


def _template_labels(spec: Obj) -> dict[str, str]:
    template = spec.get("template")
    meta = template.get("metadata") if isinstance(template, dict) else None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return dict(labels) if isinstance(labels, dict) else {}


def _default_template(spec: Obj) -> None:
    pod_spec = _template_spec(spec)
    if pod_spec is not None:
        podspec.default_pod_spec(pod_spec)


def _validate_template(spec: Obj, restart_policies: tuple[str, ...]) -> list[Cause]:
    template = spec.get("template")
    if not isinstance(template, dict):
        return [field.required("spec.template")]
    pod_spec = template.get("spec")
    causes = podspec.validate_pod_spec(pod_spec, "spec.template.spec", require_image=False)
    policy = pod_spec.get("restartPolicy") if isinstance(pod_spec, dict) else None
    if policy in podspec.RESTART_POLICIES and policy not in restart_policies:
        causes.append(field.not_supported("spec.template.spec.restartPolicy", policy, restart_policies))
    return causes


def _validate_label_selector(spec: Obj, what: str) -> list[Cause]:
    """apps/v1 and batch/v1: a non-empty metav1.LabelSelector matching the template labels."""
    selector = spec.get("selector")
    if selector is None:
        return [field.required("spec.selector")]
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [field.invalid("spec.selector", selector, f"empty selector is invalid for {what}")]
    try:
        compiled = selector_from_label_selector(selector)
    except LabelSelectorError as err:
        return [field.invalid("spec.selector", selector, str(err))]
    labels = _template_labels(spec)
    if not compiled.matches(labels):
        return [field.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")]
    return []


def _validate_replicas(spec: Obj) -> list[Cause]:
    return field.non_negative("spec.replicas", spec.get("replicas"))


@dataclass
class DeploymentStrategy(KindStrategy):
    def __post_init__(self) -> None:
        self.subresources.setdefault("scale", scale.ScaleSubresource(self.rt).handle)

    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_deployment(spec)
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_deployment(obj.get("spec"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            default_deployment(new["spec"])

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _validate_deployment(new.get("spec")) + _immutable_selector(new, old)


def default_deployment(spec: Obj) -> None:
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)


def _validate_deployment(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes = _validate_replicas(spec) + _validate_label_selector(spec, "deployment")
    causes += _validate_template(spec, ("Always",))
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind not in STRATEGY_TYPES:
        causes.append(field.not_supported("spec.strategy.type", kind, STRATEGY_TYPES))
    elif kind == "Recreate" and strategy.get("rollingUpdate") is not None:
        causes.append(
            field.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
        )
    rolling = strategy.get("rollingUpdate") or {}
    if kind == "RollingUpdate" and _is_zero(rolling.get("maxUnavailable")) and _is_zero(rolling.get("maxSurge")):
        causes.append(
            field.invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                rolling.get("maxUnavailable"),
                "may not be 0 when `maxSurge` is 0",
            )
        )
    causes += field.non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    causes += field.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return causes


def _is_zero(value: Any) -> bool:
    return value in (0, "0", "0%")


def _immutable_selector(new: Obj, old: Obj) -> list[Cause]:
    new_selector = (new.get("spec") or {}).get("selector")
    if new_selector != (old.get("spec") or {}).get("selector"):
        return [field.immutable("spec.selector", new_selector)]
    return []


@dataclass
class ReplicaSetStrategy(KindStrategy):
    def __post_init__(self) -> None:
        self.subresources.setdefault("scale", scale.ScaleSubresource(self.rt).handle)

    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            _default_template(spec)
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_replica_set(obj.get("spec"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            new["spec"].setdefault("replicas", 1)
            _default_template(new["spec"])

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _validate_replica_set(new.get("spec")) + _immutable_selector(new, old)


def _validate_replica_set(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes = _validate_replicas(spec) + _validate_label_selector(spec, "replicaset")
    causes += field.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return causes + _validate_template(spec, ("Always",))


@dataclass
class ReplicationControllerStrategy(KindStrategy):
    """core/v1 RC: a map selector defaulted from the template labels; the selector stays mutable."""

    def __post_init__(self) -> None:
        self.subresources.setdefault("scale", scale.ScaleSubresource(self.rt).handle)

    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_replication_controller(obj)
        obj["status"] = {"replicas": 0}

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_replication_controller(obj.get("spec"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            default_replication_controller(new)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _validate_replication_controller(new.get("spec"))


def default_replication_controller(obj: Obj) -> None:
    spec = obj["spec"]
    labels = _template_labels(spec)
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        metadata = obj.setdefault("metadata", {})
        if not metadata.get("labels"):
            metadata["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    _default_template(spec)


def _validate_replication_controller(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes = _validate_replicas(spec)
    selector = spec.get("selector") or {}
    if not selector:
        causes.append(field.required("spec.selector"))
    else:
        labels = _template_labels(spec)
        if any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                field.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
            )
    causes += field.non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
    return causes + _validate_template(spec, ("Always",))


@dataclass
class JobStrategy(KindStrategy):
    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        default_job(obj)
        if not spec.get("manualSelector"):
            generate_job_selector(obj)
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_job(obj.get("spec"))

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        if isinstance(new.get("spec"), dict):
            default_job(new)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = _validate_job(new.get("spec"))
        causes += _immutable_selector(new, old)
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        if new_spec.get("template") != old_spec.get("template"):
            causes.append(field.immutable("spec.template", new_spec.get("template")))
        if new_spec.get("completionMode") != old_spec.get("completionMode"):
            causes.append(field.immutable("spec.completionMode", new_spec.get("completionMode")))
        if old_spec.get("completionMode") != "Indexed" and new_spec.get("completions") != old_spec.get("completions"):
            causes.append(field.immutable("spec.completions", new_spec.get("completions")))
        return causes


def default_job(obj: Obj) -> None:
    spec = obj["spec"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if not spec.get("podFailurePolicy"):
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    labels = _template_labels(spec)
    metadata = obj.setdefault("metadata", {})
    if labels and not metadata.get("labels"):
        metadata["labels"] = labels
    _default_template(spec)


def generate_job_selector(obj: Obj) -> None:
    """JobStrategy.PrepareForCreate: select the job's pods by its uid, and label the template to match."""
    metadata = obj.setdefault("metadata", {})
    uid = metadata.get("uid")
    if not uid:
        # The generic machinery normally fills uid first; keep the selector and the object consistent anyway.
        uid = metadata["uid"] = meta.new_uid()
    name = metadata.get("name", "")
    spec = obj["spec"]
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    template_meta = template.setdefault("metadata", {})
    labels = template_meta.get("labels") or {}
    labels.update({JOB_UID_LABEL: uid, JOB_NAME_LABEL: name, LEGACY_JOB_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name})
    template_meta["labels"] = labels
    spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}


def _validate_job(spec: Any) -> list[Cause]:
    if not isinstance(spec, dict):
        return [field.required("spec")]
    causes = _validate_label_selector(spec, "job")
    for key in ("parallelism", "completions", "backoffLimit"):
        causes += field.non_negative(f"spec.{key}", spec.get(key))
    causes += field.positive("spec.activeDeadlineSeconds", spec.get("activeDeadlineSeconds"))
    mode = spec.get("completionMode")
    if mode not in COMPLETION_MODES:
        causes.append(field.not_supported("spec.completionMode", mode, COMPLETION_MODES))
    elif mode == "Indexed" and spec.get("completions") is None:
        causes.append(field.required("spec.completions", "when completion mode is Indexed"))
    return causes + _validate_template(spec, ("OnFailure", "Never"))
