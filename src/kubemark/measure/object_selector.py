"""clusterloader2's ObjectSelector params (`namespace`, `labelSelector`, `fieldSelector`) over watched objects.

The waits filter the run's shared watches instead of opening a filtered watch each, so field selectors are
matched here for the fields clusterloader2 configs use on pods and nodes: metadata.name, metadata.namespace,
spec.nodeName and status.phase (`=`, `==` and `!=`, comma-separated). Any other field is a ValueError, not a
selector that silently matches everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubemark.kube.labels import Selector, parse_label_selector

__all__ = ["ObjectSelector"]

_FIELDS = {
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "spec.nodeName": ("spec", "nodeName"),
    "status.phase": ("status", "phase"),
}


def _parse_fields(text: str) -> list[tuple[tuple[str, str], str, bool]]:
    out = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        negate = "!=" in term
        key, _, value = term.partition("!=" if negate else "==" if "==" in term else "=")
        key = key.strip()
        if key not in _FIELDS:
            raise ValueError(f'field selector "{term}": only {", ".join(_FIELDS)} are supported')
        out.append((_FIELDS[key], value.strip(), negate))
    return out


@dataclass
class ObjectSelector:
    namespace: str = ""
    labels: Selector = field(default_factory=Selector.everything)
    fields: list[tuple[tuple[str, str], str, bool]] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ObjectSelector:
        return cls(
            namespace=str(params.get("namespace") or ""),
            labels=parse_label_selector(str(params.get("labelSelector") or "")),
            fields=_parse_fields(str(params.get("fieldSelector") or "")),
        )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if not self.labels.matches(meta.get("labels") or {}):
            return False
        for (section, key), value, negate in self.fields:
            actual = str((obj.get(section) or {}).get(key) or "")
            if (actual == value) == negate:
                return False
        return True


def phase_counts(objects: list[dict[str, Any]]) -> Counter[str]:
    """Objects by `status.phase` ("" for one its controller has not synced yet): clusterloader2's
    ComputePVCStartupStatus / ComputePVsStartupStatus."""
    return Counter(str((o.get("status") or {}).get("phase") or "") for o in objects)
