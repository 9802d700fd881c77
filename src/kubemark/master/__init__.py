"""The embedded control plane: API server on etcd, scheduler and controllers."""
