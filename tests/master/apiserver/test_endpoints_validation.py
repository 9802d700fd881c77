"""Endpoints validation names the bad field for malformed subsets instead of failing (found by the fuzzer)."""

from __future__ import annotations

from typing import Any

import pytest

from kubemark.kube.resources import find
from kubemark.master.apiserver.kinds import strategy_for

ENDPOINTS = find("", "v1", "endpoints")


def _causes(subsets: Any) -> list[str]:
    assert ENDPOINTS is not None
    strategy = strategy_for(ENDPOINTS)
    obj = {"metadata": {"name": "e", "namespace": "default"}, "subsets": subsets}
    strategy.prepare_for_create(obj)
    return [c.field for c in strategy.validate(obj)]


@pytest.mark.parametrize(
    ("subsets", "field"),
    [
        ([["x"]], "subsets[0]"),
        ("abc", "subsets"),
        ([{"addresses": ["10.0.0.1"]}], "subsets[0].addresses[0].ip"),
        ([{"addresses": "10.0.0.1"}], "subsets[0].addresses[0].ip"),
        ([{"ports": [7]}], "subsets[0].ports[0].port"),
        ([{"ports": 7}], "subsets[0].ports[0].port"),
    ],
)
def test_malformed_subsets_name_the_field(subsets: Any, field: str) -> None:
    assert field in _causes(subsets)


def test_a_valid_subset_passes_and_is_defaulted() -> None:
    assert _causes([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]) == []
