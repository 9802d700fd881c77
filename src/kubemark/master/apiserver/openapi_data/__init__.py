"""Precomputed OpenAPI schema data: definitions.json, built by `python -m kubemark.master.apiserver.openapi_data.generate`."""
