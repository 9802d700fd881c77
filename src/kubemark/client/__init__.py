"""Async Kubernetes client: kubeconfig, REST, watch, rate limits, informers.

Typical use::

    creds = load_kubeconfig()
    client = RestClient(creds, qps=10, burst=20)
    pods = Informer(client, resource_path("", "v1", "pods"), field_selector="spec.nodeName=n1")
    pods.add_handler(on_add=..., on_update=..., on_delete=...)
    pods.start(); await pods.wait_synced(30)
"""

from kubemark.client.errors import (
    AlreadyExists,
    APIError,
    Conflict,
    Expired,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
    is_already_exists,
    is_conflict,
    is_gone,
    is_invalid,
    is_not_found,
    is_too_many_requests,
)
from kubemark.client.informer import Informer, namespaced_key, namespaced_key_from
from kubemark.client.kubeconfig import ClusterCredentials, KubeconfigError, load_in_cluster, load_kubeconfig
from kubemark.client.paths import describe_path, object_path, resource_path
from kubemark.client.ratelimit import TokenBucket
from kubemark.client.rest import RequestRecord, RestClient
from kubemark.client.retry import Backoff, is_retryable
from kubemark.client.tls import ssl_context_for
from kubemark.client.watch import Reflector, watch_stream

__all__ = [
    "APIError",
    "AlreadyExists",
    "Backoff",
    "ClusterCredentials",
    "Conflict",
    "Expired",
    "Forbidden",
    "Gone",
    "Informer",
    "Invalid",
    "KubeconfigError",
    "NotFound",
    "Reflector",
    "RequestRecord",
    "RestClient",
    "TokenBucket",
    "TooManyRequests",
    "Unauthorized",
    "describe_path",
    "is_already_exists",
    "is_conflict",
    "is_gone",
    "is_invalid",
    "is_not_found",
    "is_retryable",
    "is_too_many_requests",
    "load_in_cluster",
    "load_kubeconfig",
    "namespaced_key",
    "namespaced_key_from",
    "object_path",
    "resource_path",
    "ssl_context_for",
    "watch_stream",
]
