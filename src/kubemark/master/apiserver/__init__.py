"""A Kubernetes-compatible API server (REST + watch) on aiohttp."""
