"""Query parameters and DeleteOptions of API requests, parsed into small dataclasses.

Invalid values answer 400 BadRequest naming the parameter (as kube-apiserver's query decoder does) and
inconsistent combinations answer 422 Invalid on ListOptions / DeleteOptions, like upstream validation.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubemark.master.apiserver.errors import Cause, bad_request, invalid

# Upstream --min-request-timeout: a watch without timeoutSeconds lasts a random time in [min, 2*min].
MIN_REQUEST_TIMEOUT_SECONDS = 1800

_TRUE = frozenset({"true", "1", "True", "TRUE"})
_FALSE = frozenset({"false", "0", "False", "FALSE", ""})
_RV_MATCHES = frozenset({"", "NotOlderThan", "Exact"})
_PROPAGATIONS = frozenset({"Orphan", "Background", "Foreground"})


@dataclass(slots=True)
class ListOptions:
    """metav1.ListOptions of a list or watch request."""

    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    watch: bool = False
    allow_watch_bookmarks: bool = False
    timeout_seconds: int | None = None
    send_initial_events: bool | None = None

    def watch_timeout(self) -> float:
        """Seconds a watch may stay open: timeoutSeconds, else a random spread like upstream."""
        if self.timeout_seconds is not None and self.timeout_seconds > 0:
            return float(self.timeout_seconds)
        return MIN_REQUEST_TIMEOUT_SECONDS * (1.0 + random.random())


@dataclass(slots=True)
class DeleteOptions:
    """metav1.DeleteOptions, merged from the request body and the query."""

    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    propagation_policy: str | None = None
    orphan_dependents: bool | None = None
    dry_run: bool = False


def _bool(query: Mapping[str, str], name: str) -> bool | None:
    value = query.get(name)
    if value is None:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad_request(f'invalid value for "{name}": strconv.ParseBool: parsing "{value}": invalid syntax')


def _int(query: Mapping[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'invalid value for "{name}": strconv.ParseInt: parsing "{value}": invalid syntax') from None


def parse_dry_run(query: Mapping[str, str] | None, values: list[str] | None = None) -> bool:
    """dryRun=All (the only supported value) means: run everything but do not persist."""
    found = list(values or [])
    if query is not None and "dryRun" in query:
        found.append(query["dryRun"])
    for value in found:
        if value != "All":
            raise invalid(
                "meta.k8s.io",
                "DryRun",
                "",
                [Cause("dryRun", f'Unsupported value: "{value}": supported values: "All"', "FieldValueNotSupported")],
            )
    return bool(found)


def _is_resource_version(value: str) -> bool:
    return value == "" or value.isdigit()


def parse_list_options(query: Mapping[str, str], *, is_watch: bool = False) -> ListOptions:
    """ListOptions from the query string, validated like k8s.io/apimachinery ValidateListOptions."""
    limit = _int(query, "limit") or 0
    opts = ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=max(limit, 0),
        continue_token=query.get("continue", ""),
        resource_version=query.get("resourceVersion", ""),
        resource_version_match=query.get("resourceVersionMatch", ""),
        watch=is_watch or bool(_bool(query, "watch")),
        allow_watch_bookmarks=bool(_bool(query, "allowWatchBookmarks")),
        timeout_seconds=_int(query, "timeoutSeconds"),
        send_initial_events=_bool(query, "sendInitialEvents"),
    )
    if not _is_resource_version(opts.resource_version):
        raise bad_request(f'invalid resource version "{opts.resource_version}"')
    causes = _list_option_causes(opts)
    if causes:
        raise invalid("meta.k8s.io", "ListOptions", "", causes)
    return opts


def _forbidden(field: str, message: str) -> Cause:
    return Cause(field, f"Forbidden: {message}", "FieldValueForbidden")


def _list_option_causes(opts: ListOptions) -> list[Cause]:
    if opts.watch:
        return _watch_option_causes(opts)
    causes: list[Cause] = []
    match = opts.resource_version_match
    if match:
        if not opts.resource_version:
            causes.append(
                _forbidden(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"
                )
            )
        if opts.continue_token:
            causes.append(
                _forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
            )
        if match not in _RV_MATCHES:
            causes.append(
                Cause(
                    "resourceVersionMatch",
                    f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""',
                    "FieldValueNotSupported",
                )
            )
        if match == "Exact" and opts.resource_version == "0":
            causes.append(
                _forbidden("resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
            )
    if opts.send_initial_events is not None:
        causes.append(_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return causes


def _watch_option_causes(opts: ListOptions) -> list[Cause]:
    causes: list[Cause] = []
    match = opts.resource_version_match
    if opts.send_initial_events is not None and match != "NotOlderThan":
        causes.append(
            _forbidden(
                "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            )
        )
    if match:
        if opts.send_initial_events is None:
            causes.append(
                _forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            )
        if match != "NotOlderThan":
            causes.append(
                Cause(
                    "resourceVersionMatch",
                    f'Unsupported value: "{match}": supported values: "NotOlderThan"',
                    "FieldValueNotSupported",
                )
            )
        if opts.continue_token:
            causes.append(
                _forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
            )
    return causes


def parse_delete_options(query: Mapping[str, str], body: Mapping[str, Any] | None) -> DeleteOptions:
    """DeleteOptions from a JSON body (if any) overlaid by query parameters, as kube-apiserver merges them."""
    body = body or {}
    if not isinstance(body, Mapping):
        raise bad_request("DeleteOptions must be a JSON object")
    kind = body.get("kind")
    if kind not in (None, "", "DeleteOptions"):
        raise bad_request(f"expected DeleteOptions, got {kind}")
    opts = DeleteOptions()
    grace = body.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise bad_request("json: cannot unmarshal gracePeriodSeconds into Go value of type int64")
    opts.grace_period_seconds = grace
    pre = body.get("preconditions") or {}
    if not isinstance(pre, Mapping):
        raise bad_request("json: cannot unmarshal preconditions into Go value of type v1.Preconditions")
    for key in ("uid", "resourceVersion"):
        if pre.get(key) is not None and not isinstance(pre[key], str):
            raise bad_request(f"json: cannot unmarshal preconditions.{key} into Go value of type string")
    opts.precondition_uid = pre.get("uid")
    opts.precondition_resource_version = pre.get("resourceVersion")
    # Typed like DeleteOptions' Go fields: anything else is a decode error (400), not a crash further on.
    propagation = body.get("propagationPolicy")
    if propagation is not None and not isinstance(propagation, str):
        raise bad_request("json: cannot unmarshal propagationPolicy into Go value of type v1.DeletionPropagation")
    orphan = body.get("orphanDependents")
    if orphan is not None and not isinstance(orphan, bool):
        raise bad_request("json: cannot unmarshal orphanDependents into Go value of type bool")
    opts.propagation_policy = propagation
    opts.orphan_dependents = orphan
    body_dry_run = body.get("dryRun") or []
    if isinstance(body_dry_run, str):
        body_dry_run = [body_dry_run]
    if not isinstance(body_dry_run, list) or not all(isinstance(v, str) for v in body_dry_run):
        raise bad_request("json: cannot unmarshal dryRun into Go value of type []string")

    query_grace = _int(query, "gracePeriodSeconds")
    if query_grace is not None:
        opts.grace_period_seconds = query_grace
    if "propagationPolicy" in query:
        opts.propagation_policy = query["propagationPolicy"]
    query_orphan = _bool(query, "orphanDependents")
    if query_orphan is not None:
        opts.orphan_dependents = query_orphan
    opts.dry_run = parse_dry_run(query, list(body_dry_run))

    causes: list[Cause] = []
    if opts.grace_period_seconds is not None and opts.grace_period_seconds < 0:
        # Upstream treats negative grace as "immediately" (kubectl --force --grace-period=0 sends 0 or 1).
        opts.grace_period_seconds = 0
    if opts.propagation_policy is not None and opts.propagation_policy not in _PROPAGATIONS:
        causes.append(
            Cause(
                "propagationPolicy",
                f'Unsupported value: "{opts.propagation_policy}": supported values: "Foreground", '
                '"Background", "Orphan", "nil"',
                "FieldValueNotSupported",
            )
        )
    if opts.propagation_policy is not None and opts.orphan_dependents is not None:
        causes.append(
            Cause(
                "propagationPolicy",
                "Invalid value: "
                f'"{opts.propagation_policy}": orphanDependents and deletionPropagation cannot be both set',
            )
        )
    if causes:
        raise invalid("meta.k8s.io", "DeleteOptions", "", causes)
    return opts
