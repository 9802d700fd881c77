"""Async Kubernetes client: kubeconfig, REST, watch, rate limits, informers."""
