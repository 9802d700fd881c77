"""Build ``protobuf_schema.json`` from Kubernetes ``generated.proto`` text.

The decoder in ``protobuf.py`` is driven by a compact table derived from the
upstream ``generated.proto`` files (k8s.io/api, k8s.io/apimachinery).  This
script (a developer tool, not part of the package) turns proto text into that
table; run it from the repository root::

    .venv/bin/python tools/protobuf_schema_gen.py /tmp/proto

It reads every ``*.proto`` file in the directory (real upstream files or
condensed copies of them; the proto text itself is not kept in the repo),
keeps the messages reachable from the served kinds and writes the table to
``src/kubemark/master/apiserver/protobuf_schema.json`` (next to
``protobuf.py``).  Two annotations that proto syntax cannot express come from
the Go types and may be written after a field number:

* ``[inline]`` - the Go field is embedded (``json:",inline"``), so its fields
  are merged into the parent JSON object (e.g. ``Probe.handler``).
* ``[ptr]`` / ``[keep]`` - the Go field is a pointer (or has no
  ``omitempty``), so a present zero value must be kept in JSON
  (e.g. ``DeploymentSpec.replicas: 0``).  Other zero scalars are dropped,
  matching Go's ``omitempty`` for value fields that gogo-protobuf always
  encodes.

Table format (``messages``): message full name -> {field number (string):
[json name, label, type, flags]} with label ``o`` (singular), ``r``
(repeated) or ``m`` (``map<string, type>``), type a proto scalar name or a
message full name, flags a string of ``k`` (keep zero) / ``i`` (inline).
``kinds`` maps ``apiVersion/kind`` to the root message.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from kubemark import codec

# The checked-in table the decoder loads; found from this file, so the script runs from any directory.
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "kubemark" / "master" / "apiserver" / "protobuf_schema.json"

SCALARS = frozenset(
    {
        "string",
        "bytes",
        "bool",
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
        "double",
        "float",
    }
)

_CORE = "k8s.io.api.core.v1."
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."

# apiVersion/kind -> root message: the kinds kubectl and client-go send as
# protobuf request bodies against the resources this server serves.
KINDS: dict[str, str] = {
    "v1/Pod": _CORE + "Pod",
    "v1/Node": _CORE + "Node",
    "v1/Namespace": _CORE + "Namespace",
    "v1/Service": _CORE + "Service",
    "v1/Endpoints": _CORE + "Endpoints",
    "v1/ConfigMap": _CORE + "ConfigMap",
    "v1/Secret": _CORE + "Secret",
    "v1/ServiceAccount": _CORE + "ServiceAccount",
    "v1/Event": _CORE + "Event",
    "v1/ReplicationController": _CORE + "ReplicationController",
    "v1/Binding": _CORE + "Binding",
    "v1/PodTemplate": _CORE + "PodTemplate",
    "v1/LimitRange": _CORE + "LimitRange",
    "v1/ResourceQuota": _CORE + "ResourceQuota",
    "v1/PodStatusResult": _CORE + "PodStatusResult",
    "apps/v1/Deployment": "k8s.io.api.apps.v1.Deployment",
    "apps/v1/ReplicaSet": "k8s.io.api.apps.v1.ReplicaSet",
    "batch/v1/Job": "k8s.io.api.batch.v1.Job",
    "batch/v1/CronJob": "k8s.io.api.batch.v1.CronJob",
    "coordination.k8s.io/v1/Lease": "k8s.io.api.coordination.v1.Lease",
    "discovery.k8s.io/v1/EndpointSlice": "k8s.io.api.discovery.v1.EndpointSlice",
    "events.k8s.io/v1/Event": "k8s.io.api.events.v1.Event",
    "policy/v1/Eviction": "k8s.io.api.policy.v1.Eviction",
    "policy/v1beta1/Eviction": "k8s.io.api.policy.v1.Eviction",
    "policy/v1/PodDisruptionBudget": "k8s.io.api.policy.v1.PodDisruptionBudget",
    "autoscaling/v1/Scale": "k8s.io.api.autoscaling.v1.Scale",
    # serviceaccounts/token (kubectl create token); spec.expirationSeconds is a pointer: mark it [ptr].
    "authentication.k8s.io/v1/TokenRequest": "k8s.io.api.authentication.v1.TokenRequest",
    # kubectl auth can-i.
    "authorization.k8s.io/v1/SelfSubjectAccessReview": "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
    "rbac.authorization.k8s.io/v1/Role": "k8s.io.api.rbac.v1.Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "k8s.io.api.rbac.v1.RoleBinding",
    "rbac.authorization.k8s.io/v1/ClusterRole": "k8s.io.api.rbac.v1.ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "k8s.io.api.rbac.v1.ClusterRoleBinding",
    "meta.k8s.io/v1/DeleteOptions": _META + "DeleteOptions",
    "meta.k8s.io/v1/Status": _META + "Status",
}

_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.M)
_MESSAGE = re.compile(r"message\s+(\w+)\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*(?:\[([^\]]*)\])?\s*;")
_MAP_FIELD = re.compile(r"map\s*<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*(?:\[([^\]]*)\])?\s*;")
_COMMENT = re.compile(r"//[^\n]*")


def _resolve(type_name: str, package: str) -> str:
    if type_name in SCALARS:
        return type_name
    if type_name.startswith("."):
        return type_name[1:]
    if "." in type_name:
        return type_name
    return f"{package}.{type_name}"


def _flags(options: str | None) -> str:
    opts = {o.strip() for o in (options or "").split(",") if o.strip()}
    flags = ""
    if opts & {"ptr", "keep"}:
        flags += "k"
    if "inline" in opts:
        flags += "i"
    return flags


def parse_proto(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse (condensed) proto text into {message full name: fields}."""
    text = _COMMENT.sub("", text)
    package_match = _PACKAGE.search(text)
    if package_match is None:
        raise ValueError("proto text has no package statement")
    package = package_match.group(1)
    messages: dict[str, dict[str, list[str]]] = {}
    for msg in _MESSAGE.finditer(text):
        fields: dict[str, list[str]] = {}
        body = msg.group(2)
        for label, type_name, name, number, options in _FIELD.findall(body):
            fields[number] = [
                name,
                "r" if label == "repeated" else "o",
                _resolve(type_name, package),
                _flags(options),
            ]
        for key_type, value_type, name, number, options in _MAP_FIELD.findall(body):
            if key_type != "string":
                raise ValueError(f"{msg.group(1)}.{name}: only string map keys are supported")
            fields[number] = [name, "m", _resolve(value_type, package), _flags(options)]
        messages[f"{package}.{msg.group(1)}"] = fields
    return messages


def build_table(proto_dir: Path | None, extra: Sequence[Path] = ()) -> dict[str, object]:
    """Parse all ``*.proto`` files in ``proto_dir`` (or, without one, start from the committed table's messages)
    and the ``extra`` files; keep what the kinds reach."""
    every: dict[str, dict[str, list[str]]] = {}
    if proto_dir is None:
        every.update(codec.loads(OUT.read_bytes())["messages"])
    else:
        for path in sorted(proto_dir.glob("*.proto")):
            every.update(parse_proto(path.read_text()))
    for path in extra:
        for name, fields in parse_proto(path.read_text()).items():
            every.setdefault(name, fields)
    reachable: dict[str, dict[str, list[str]]] = {}
    pending = [*KINDS.values(), "k8s.io.apimachinery.pkg.runtime.Unknown"]
    while pending:
        name = pending.pop()
        if name in reachable:
            continue
        if name not in every:
            raise ValueError(f"message {name} is referenced but not defined")
        reachable[name] = every[name]
        pending.extend(f[2] for f in every[name].values() if f[2] not in SCALARS)
    return {
        "source": "derived from kubernetes generated.proto files by protobuf_schema_gen.py",
        "kinds": dict(sorted(KINDS.items())),
        "messages": dict(sorted(reachable.items())),
    }


def main(argv: list[str]) -> int:
    usage = "usage: protobuf_schema_gen.py PROTO_DIR | --extend PROTO_FILE...\n"
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        sys.stdout.write(
            f"{usage}\nwrites {OUT.relative_to(ROOT)}; --extend adds the messages of new kinds from their\n"
            "generated.proto files to the committed table (its other messages kept as they are)\n"
        )
        return 0
    if len(argv) >= 3 and argv[1] == "--extend":
        table = build_table(None, [Path(a) for a in argv[2:]])
    elif len(argv) == 2:
        table = build_table(Path(argv[1]))
    else:
        sys.stderr.write(usage)
        return 2
    # One message per line keeps the committed table reviewable and small.
    lines = ["{"]
    lines.append(f'"source": {codec.dumps(table["source"]).decode()},')
    lines.append(f'"kinds": {codec.dumps(table["kinds"]).decode()},')
    lines.append('"messages": {')
    messages = table["messages"]
    assert isinstance(messages, dict)
    entries = [f"{codec.dumps(name).decode()}: {codec.dumps(fields).decode()}" for name, fields in messages.items()]
    lines.append(",\n".join(entries))
    lines.append("}}")
    OUT.write_text("\n".join(lines) + "\n")
    sys.stdout.write(f"wrote {len(messages)} messages to {OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
