"""RuleSet, the hollow proxy's rule count kept change by change, equals a full recount after any sequence of
service and endpoint-slice adds, updates and deletes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubemark.hollow.proxy import SERVICE_NAME_LABEL, RuleSet

NAMESPACES = ("a", "b")
SERVICES = ("web", "db", "cache")


def recount(services: dict[tuple[str, str], Any], slices: dict[tuple[str, str], Any]) -> int:
    """The definition: per service port, one rule plus one per ready endpoint of the service's slices."""
    ready: dict[tuple[str, str], int] = {}
    for s in slices.values():
        meta = s["metadata"]
        owner = meta.get("labels", {}).get(SERVICE_NAME_LABEL)
        if owner:
            n = sum(1 for e in s["endpoints"] if e["conditions"].get("ready", True) is not False)
            ready[(meta["namespace"], owner)] = ready.get((meta["namespace"], owner), 0) + n
    return sum(len(svc["spec"]["ports"]) * (1 + ready.get(key, 0)) for key, svc in services.items())


def service(ns: str, name: str, ports: int) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"ports": [{"port": 80 + i} for i in range(ports)]}}


def endpoint_slice(ns: str, name: str, owner: str | None, readiness: list[bool | None]) -> dict[str, Any]:
    labels = {SERVICE_NAME_LABEL: owner} if owner else {}
    endpoints = [{"conditions": {} if r is None else {"ready": r}} for r in readiness]
    return {"metadata": {"namespace": ns, "name": name, "labels": labels}, "endpoints": endpoints}


ops = st.one_of(
    st.tuples(st.just("service"), st.sampled_from(NAMESPACES), st.sampled_from(SERVICES), st.integers(0, 3)),
    st.tuples(st.just("delete-service"), st.sampled_from(NAMESPACES), st.sampled_from(SERVICES)),
    st.tuples(
        st.just("slice"),
        st.sampled_from(NAMESPACES),
        st.sampled_from(["s1", "s2", "s3", "s4"]),
        st.sampled_from([*SERVICES, None]),
        st.lists(st.sampled_from([True, False, None]), max_size=5),
    ),
    st.tuples(st.just("delete-slice"), st.sampled_from(NAMESPACES), st.sampled_from(["s1", "s2", "s3", "s4"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_rule_set_matches_a_recount(sequence: list[tuple[Any, ...]]) -> None:
    rules = RuleSet()
    services: dict[tuple[str, str], Any] = {}
    slices: dict[tuple[str, str], Any] = {}
    for op, ns, name, *rest in sequence:
        if op == "service":
            services[(ns, name)] = service(ns, name, rest[0])
            rules.set_service(services[(ns, name)])
        elif op == "delete-service" and (ns, name) in services:
            rules.remove_service(services.pop((ns, name)))
        elif op == "slice":
            # a slice may move to another service (or to none) in an update
            slices[(ns, name)] = endpoint_slice(ns, name, rest[0], rest[1])
            rules.set_slice(slices[(ns, name)])
        elif op == "delete-slice" and (ns, name) in slices:
            rules.remove_slice(slices.pop((ns, name)))
        assert rules.rules == recount(services, slices)


def test_a_slice_before_its_service_counts_once_the_service_arrives() -> None:
    rules = RuleSet()
    rules.set_slice(endpoint_slice("a", "web-1", "web", [True, True, False]))
    assert rules.rules == 0
    rules.set_service(service("a", "web", 2))
    assert rules.rules == 2 * (1 + 2)
    rules.remove_slice(endpoint_slice("a", "web-1", "web", []))
    assert rules.rules == 2
