"""Built-in tests (`kubemark run --test density|load|api|fill`): clusterloader2-style configs and object templates.

Every config is parameterised by `{{.Nodes}}` and works from one node up: namespace counts are rounded up and
never reach zero, and per-namespace object counts are at least one where the test needs them.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_DIR = Path(__file__).parent
BUILTIN_TESTS = ("density", "load", "api", "fill")


def builtin_test_path(name: str) -> Path | None:
    """The config file of built-in test `name`, or None if there is no such test."""
    if name not in BUILTIN_TESTS:
        return None
    return BUILTIN_DIR / f"{name}.yaml"
