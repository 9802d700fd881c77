"""Build definitions.json (Swagger 2.0 definitions of the served kinds) from the official Python client.

The `kubernetes` package's generated models carry every property of every API type with its JSON name,
type and description; this walks them from the served kinds and writes upstream-named definitions
(io.k8s.api.core.v1.Pod, ...). What the models do not keep — Go package of each type, int-or-string,
quantities, micro-times and strategic-merge keys — comes from the small tables below.

A developer tool, not part of the package: run it from the repository root after changing the served kinds
(kube/resources.py) or the tables below, and commit the regenerated file:

    .venv/bin/python tools/openapi_generate.py
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from kubemark import codec
from kubemark.kube.resources import RESOURCES
from kubemark.master.apiserver.openapi import META, PACKAGES  # the served document's names: one table

log = logging.getLogger(__name__)

# The checked-in data file openapi.py loads; found from this file, so the script runs from any directory.
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "kubemark" / "master" / "apiserver" / "openapi_data" / "definitions.json"

META_TYPES = {
    "ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
    "ManagedFieldsEntry", "Status", "StatusDetails", "StatusCause", "DeleteOptions", "Preconditions",
    "Condition", "WatchEvent",
}  # fmt: skip

# Extra top-level kinds (group, version, python class, kind) that subresources and errors use.
EXTRA_KINDS = [
    ("", "v1", "V1Status", "Status"),
    ("", "v1", "V1DeleteOptions", "DeleteOptions"),
    ("", "v1", "V1Binding", "Binding"),
    ("autoscaling", "v1", "V1Scale", "Scale"),
    ("policy", "v1", "V1Eviction", "Eviction"),
]

MICRO_TIME_FIELDS = {"acquireTime", "renewTime", "eventTime", "lastObservedTime"}
QUANTITY_MAP_FIELDS = {
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "hard",
    "used",
    "overhead",
    "allocatedResources",
}
QUANTITY_FIELDS = {"sizeLimit"}
INT_OR_STRING_FIELDS = {"port", "targetPort", "maxSurge", "maxUnavailable", "minAvailable"}

# (type, field) -> (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key or ""), from the Go struct tags.
PATCH = {
    ("ObjectMeta", "finalizers"): ("merge", ""),
    ("ObjectMeta", "ownerReferences"): ("merge", "uid"),
    ("PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("PodSpec", "initContainers"): ("merge", "name"),
    ("PodSpec", "containers"): ("merge", "name"),
    ("PodSpec", "ephemeralContainers"): ("merge", "name"),
    ("PodSpec", "imagePullSecrets"): ("merge", "name"),
    ("PodSpec", "hostAliases"): ("merge", "ip"),
    ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name"),
    ("PodSpec", "schedulingGates"): ("merge", "name"),
    ("Container", "ports"): ("merge", "containerPort"),
    ("Container", "env"): ("merge", "name"),
    ("Container", "volumeMounts"): ("merge", "mountPath"),
    ("Container", "volumeDevices"): ("merge", "devicePath"),
    ("EphemeralContainer", "env"): ("merge", "name"),
    ("EphemeralContainer", "volumeMounts"): ("merge", "mountPath"),
    ("EphemeralContainer", "volumeDevices"): ("merge", "devicePath"),
    ("PodStatus", "conditions"): ("merge", "type"),
    ("PodStatus", "podIPs"): ("merge", "ip"),
    ("PodStatus", "hostIPs"): ("merge", "ip"),
    ("PodStatus", "resourceClaimStatuses"): ("merge,retainKeys", "name"),
    ("NodeSpec", "podCIDRs"): ("merge", ""),
    ("NodeStatus", "conditions"): ("merge", "type"),
    ("NodeStatus", "addresses"): ("merge", "type"),
    ("NamespaceStatus", "conditions"): ("merge", "type"),
    ("ServiceSpec", "ports"): ("merge", "port"),
    ("ServiceStatus", "conditions"): ("merge", "type"),
    ("ServiceAccount", "secrets"): ("merge", "name"),
    ("ReplicationControllerStatus", "conditions"): ("merge", "type"),
    ("DeploymentSpec", "strategy"): ("retainKeys", ""),
    ("DeploymentStatus", "conditions"): ("merge", "type"),
    ("ReplicaSetStatus", "conditions"): ("merge", "type"),
    ("JobStatus", "conditions"): ("merge", "type"),
    ("StatefulSetStatus", "conditions"): ("merge", "type"),
    ("DaemonSetStatus", "conditions"): ("merge", "type"),
    ("PodDisruptionBudgetStatus", "conditions"): ("merge", "type"),
    ("PersistentVolumeClaimStatus", "conditions"): ("merge", "type"),
    ("ServiceCIDRStatus", "conditions"): ("merge", "type"),
    ("PodCertificateRequestStatus", "conditions"): ("merge", "type"),
}
# (type, field) -> (x-kubernetes-list-type, x-kubernetes-list-map-keys)
LIST_TYPES = {
    ("Container", "ports"): ("map", ["containerPort", "protocol"]),
    ("ServiceSpec", "ports"): ("map", ["port", "protocol"]),
    ("PodSpec", "topologySpreadConstraints"): ("map", ["topologyKey", "whenUnsatisfiable"]),
    ("PodSpec", "schedulingGates"): ("map", ["name"]),
    ("PodSpec", "resourceClaims"): ("map", ["name"]),
    ("ServiceStatus", "conditions"): ("map", ["type"]),
    ("PodDisruptionBudgetStatus", "conditions"): ("map", ["type"]),
    ("JobStatus", "conditions"): ("atomic", []),
    ("EndpointSlice", "endpoints"): ("atomic", []),
    ("EndpointSlice", "ports"): ("atomic", []),
    ("ObjectMeta", "finalizers"): ("set", []),
    ("ServiceCIDRSpec", "cidrs"): ("atomic", []),
    ("ServiceCIDRStatus", "conditions"): ("map", ["type"]),
    ("PodCertificateRequestStatus", "conditions"): ("map", ["type"]),
}

_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)*?V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")

COMMON_DEFINITIONS: dict[str, dict[str, Any]] = {
    f"{META}.Time": {
        "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.",
        "type": "string",
        "format": "date-time",
    },
    f"{META}.MicroTime": {
        "description": "MicroTime is version of Time with microsecond level precision.",
        "type": "string",
        "format": "date-time",
    },
    f"{META}.FieldsV1": {
        "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
        "type": "object",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number, e.g. 100m, 1Gi.",
        "type": "string",
    },
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.",
        "type": "string",
        "format": "int-or-string",
    },
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {
        "description": "RawExtension is used to hold extensions in external versions.",
        "type": "object",
    },
}


def _go_name(py_name: str) -> str:
    return _PREFIX.sub("", py_name)


def _class_description(cls: type) -> str:
    doc = (cls.__doc__ or "").split("Attributes:")[0]
    return " ".join(doc.split())


class Builder:
    """Walks model classes and emits Swagger definitions keyed by upstream names."""

    def __init__(self, models: Any) -> None:
        self.models = models
        self.definitions: dict[str, dict[str, Any]] = dict(COMMON_DEFINITIONS)
        self.names: dict[str, str] = {}  # python class -> definition name

    def definition_name(self, py_name: str, package: str) -> str:
        if py_name not in self.names:
            go = _go_name(py_name)
            self.names[py_name] = f"{META}.{go}" if go in META_TYPES else f"{package}.{go}"
        return self.names[py_name]

    def add(self, py_name: str, package: str, gvk: list[dict[str, str]] | None = None) -> str:
        name = self.definition_name(py_name, package)
        if name in self.definitions:
            if gvk:
                self.definitions[name].setdefault("x-kubernetes-group-version-kind", []).extend(gvk)
            return name
        cls = getattr(self.models, py_name)
        go = _go_name(py_name)
        definition: dict[str, Any] = {"description": _class_description(cls), "type": "object", "properties": {}}
        self.definitions[name] = definition
        own_package = name.rsplit(".", 1)[0]
        required = []
        # Pydantic renames reserved words (_continue -> var_continue); match fields by their JSON alias.
        fields = {f.serialization_alias or n: f for n, f in cls.model_fields.items()}
        for attr, type_str in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            field = fields[json_name]
            prop = self.schema(type_str, json_name, own_package)
            description = field.description or _default_description(go, json_name)
            if description:
                prop["description"] = " ".join(description.split())
            patch = PATCH.get((go, json_name))
            if patch:
                prop["x-kubernetes-patch-strategy"] = patch[0]
                if patch[1]:
                    prop["x-kubernetes-patch-merge-key"] = patch[1]
            list_type = LIST_TYPES.get((go, json_name))
            if list_type:
                prop["x-kubernetes-list-type"] = list_type[0]
                if list_type[1]:
                    prop["x-kubernetes-list-map-keys"] = list_type[1]
            definition["properties"][json_name] = prop
            if field.is_required():
                required.append(json_name)
        if required:
            definition["required"] = required
        if gvk:
            definition["x-kubernetes-group-version-kind"] = gvk
        return name

    def schema(self, type_str: str, json_name: str, package: str) -> dict[str, Any]:
        if type_str.startswith("List["):
            return {"type": "array", "items": self.schema(type_str[5:-1], json_name, package)}
        if type_str.startswith("Dict[str, "):
            inner = type_str[10:-1]
            if json_name in QUANTITY_MAP_FIELDS:
                return {"type": "object", "additionalProperties": _ref("io.k8s.apimachinery.pkg.api.resource.Quantity")}
            return {"type": "object", "additionalProperties": self.schema(inner, "", package)}
        if type_str == "str":
            if json_name in QUANTITY_FIELDS:
                return _ref("io.k8s.apimachinery.pkg.api.resource.Quantity")
            return {"type": "string"}
        if type_str == "bytes" or type_str == "bytearray":
            return {"type": "string", "format": "byte"}
        if type_str == "int":
            return {"type": "integer", "format": "int32"}
        if type_str == "float":
            return {"type": "number", "format": "double"}
        if type_str == "bool":
            return {"type": "boolean"}
        if type_str == "datetime":
            return _ref(f"{META}.MicroTime" if json_name in MICRO_TIME_FIELDS else f"{META}.Time")
        if type_str == "object":
            if json_name in INT_OR_STRING_FIELDS:
                return _ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
            if json_name == "fieldsV1":
                return _ref(f"{META}.FieldsV1")
            if json_name == "object":
                return _ref("io.k8s.apimachinery.pkg.runtime.RawExtension")
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if hasattr(self.models, type_str):
            return _ref(self.add(type_str, package))
        log.warning("unknown type %s for %s; left as object", type_str, json_name)
        return {"type": "object"}


_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"


def _default_description(go_type: str, json_name: str) -> str:
    """Upstream's wording for the standard fields the client models keep no description for."""
    if json_name == "metadata":
        if go_type.endswith("List"):
            return f"Standard list metadata. More info: {_CONVENTIONS}#types-kinds"
        return f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"
    if json_name == "spec":
        return f"Specification of the desired behavior of the {go_type}. More info: {_CONVENTIONS}#spec-and-status"
    if json_name == "status":
        return (
            f"Most recently observed status of the {go_type}. This data may not be up to date. Populated by the "
            f"system. Read-only. More info: {_CONVENTIONS}#spec-and-status"
        )
    return ""


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}"}


def _py_class(group: str, kind: str) -> str:
    if kind == "Event":
        return "EventsV1Event" if group == "events.k8s.io" else "CoreV1Event"
    return f"V1{kind}"


def build(models: Any) -> dict[str, dict[str, Any]]:
    builder = Builder(models)
    # Core kinds first so that types shared with other groups (PodTemplateSpec, ...) land in core/v1.
    ordered = sorted(RESOURCES, key=lambda rt: rt.group != "")
    for rt in ordered:
        package = PACKAGES[rt.group]
        gvk = [{"group": rt.group, "kind": rt.kind, "version": rt.version}]
        builder.add(_py_class(rt.group, rt.kind), package, gvk)
        list_gvk = [{"group": rt.group, "kind": rt.list_kind_name, "version": rt.version}]
        builder.add(_py_class(rt.group, rt.kind) + "List", package, list_gvk)
    for group, version, py_name, kind in EXTRA_KINDS:
        builder.add(py_name, PACKAGES[group], [{"group": group, "kind": kind, "version": version}])
    return dict(sorted(builder.definitions.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Regenerate {OUT.relative_to(ROOT)}.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    import kubernetes.client.models as models  # only needed at build time

    definitions = build(models)
    data = codec.dumps(definitions)
    if args.check:
        current = OUT.read_bytes() if OUT.exists() else b""
        log.info("%s is %s", OUT, "up to date" if current == data else "out of date")
        return 0 if current == data else 1
    OUT.write_bytes(data)
    log.info("wrote %d definitions (%d bytes) to %s", len(definitions), OUT.stat().st_size, OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
