"""Storage for the embedded API server: an etcd v3 backend, a memory backend, and the watch cache."""
