"""Precomputed OpenAPI schema data: definitions.json, built by `.venv/bin/python tools/openapi_generate.py` (repo root)."""
