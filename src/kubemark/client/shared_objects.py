"""SharedObjects: one copy of each object version for all the informers of a process that follow it.

Every hollow node's kube-proxy watches every Service and EndpointSlice, as the real one does; each decoded its
own copy, so a process of a thousand nodes held a thousand copies of the cluster's services (at the load test's
1,650 services, megabytes per node). The watches stay per node — the API server sees each node's load — but the
informers that opt in keep one shared, read-only copy of each (resource, key, resourceVersion).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


class SharedObjects:
    """Reference-counted canonical objects. `hold` returns the copy to keep (maybe another informer's, equal to
    `obj`: a resourceVersion names one state of one object); `release` gives it up. Callers must not mutate."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str], tuple[Obj, int]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def hold(self, resource: str, key: str, obj: Obj) -> Obj:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if not rv:
            return obj  # nothing names this state; keep it unshared
        ident = (resource, key, rv)
        held = self._objects.get(ident)
        if held is None:
            self._objects[ident] = (obj, 1)
            return obj
        self._objects[ident] = (held[0], held[1] + 1)
        return held[0]

    def release(self, resource: str, key: str, obj: Obj) -> None:
        ident = (resource, key, (obj.get("metadata") or {}).get("resourceVersion") or "")
        held = self._objects.get(ident)
        if held is None or held[0] is not obj:
            return  # never held (no resourceVersion), or not the shared copy
        if held[1] == 1:
            del self._objects[ident]
        else:
            self._objects[ident] = (obj, held[1] - 1)
