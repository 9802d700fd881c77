"""ThroughputSampler: counting pods bound after the start, per interval, with idle ends trimmed."""

from __future__ import annotations

import asyncio

from kubemark.measure.scheduling_throughput import ThroughputSampler, trim_idle


def _pod(uid: str, node: str = "") -> dict:
    return {"metadata": {"uid": uid}, "spec": {"nodeName": node} if node else {}}


def test_only_pods_bound_after_start_count() -> None:
    st = ThroughputSampler(interval=1.0)
    st._bound_before.update({"old"})  # as start(existing) would record
    st.on_event("MODIFIED", _pod("old", "n"), _pod("old", "n"), 0.0)
    st.on_event("ADDED", None, _pod("a"), 0.0)
    assert st.scheduled == 0
    st.on_event("MODIFIED", _pod("a"), _pod("a", "n1"), 0.0)
    st.on_event("MODIFIED", _pod("a", "n1"), _pod("a", "n1"), 0.0)  # a status update: not a second binding
    st.on_event("ADDED", None, _pod("b", "n2"), 0.0)
    assert st.scheduled == 2


def test_trim_idle_keeps_the_busy_span() -> None:
    series = [(1.0, 0.0), (2.0, 5.0), (3.0, 0.0), (4.0, 7.0), (5.0, 0.0)]
    assert trim_idle(series) == [(2.0, 5.0), (3.0, 0.0), (4.0, 7.0)]
    assert trim_idle([(1.0, 0.0)]) == []


async def test_sampler_turns_bindings_into_per_interval_rates() -> None:
    st = ThroughputSampler(interval=0.01)
    st.start([_pod("pre", "n")])
    st.on_event("MODIFIED", _pod("pre", "n"), _pod("pre", "n"), 0.0)
    for i in range(5):
        st.on_event("MODIFIED", _pod(f"p{i}"), _pod(f"p{i}", "n"), 0.0)
    # Wait on the sampler's own progress (three intervals recorded), polling its state.
    while len(st._series) < 3:
        await asyncio.sleep(0.005)
    series = await st.stop()
    assert sum(v * st.interval for _, v in series) == 5
