"""The `scope` label of kube-apiserver's request metrics (apiserver_request_total, the latency SLI histograms):
one rule for the embedded API server's metrics and the client's own record of its calls.

Upstream (k8s.io/apiserver endpoints/metrics CleanScope): "resource" for a request with a name or a create,
"namespace" for other namespaced requests, "cluster" for the rest. A list or watch takes its name from an exact
`metadata.name=` field selector (RequestInfoFactory), so a kubelet's LIST of its own Node is "resource" too, and
a POST to a collection is "resource", not "namespace".
"""

from __future__ import annotations

from kubemark.kube.fields import selected_name

__all__ = ["request_scope"]


def request_scope(*, namespace: str, name: str, create: bool, field_selector: str = "") -> str:
    """`field_selector`: a list's or watch's ?fieldSelector= (pass "" for other verbs)."""
    if name or create or (field_selector and selected_name(field_selector)):
        return "resource"
    if namespace:
        return "namespace"
    return "cluster"
