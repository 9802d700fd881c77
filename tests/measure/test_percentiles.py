"""clusterloader2's percentile rule and pod-startup transitions."""

from __future__ import annotations

import pytest

from kubemark.measure.percentiles import (
    POD_STARTUP_TRANSITIONS,
    LatencySeries,
    percentile,
    pod_startup_series,
    summarize,
)
from kubemark.measure.results import PodTimeline


@pytest.mark.parametrize(
    ("samples", "p", "expected"),
    [
        ([], 50, 0.0),
        ([7.0], 99, 7.0),
        ([1, 2, 3, 4], 50, 2),  # ceil(4*50/100)-1 = 1 -> no interpolation
        ([1, 2, 3, 4], 51, 3),  # ceil(2.04)-1 = 2
        ([1, 2, 3, 4], 100, 4),
        (list(range(1, 101)), 99, 99),
        (list(range(1, 101)), 90, 90),
        (list(range(1, 1001)), 99, 990),
        ([5, 1, 4, 2, 3], 10, 1),  # unsorted input is sorted first
        ([5, 1, 4, 2, 3], 90, 5),
    ],
)
def test_percentile(samples: list[float], p: float, expected: float) -> None:
    assert percentile(samples, p) == expected


def test_percentile_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize() -> None:
    s = summarize(float(i) for i in range(1, 201))
    assert s == {"Perc10": 20.0, "Perc50": 100.0, "Perc90": 180.0, "Perc99": 198.0, "max": 200.0, "count": 200}
    assert summarize([]) == {"Perc10": 0.0, "Perc50": 0.0, "Perc90": 0.0, "Perc99": 0.0, "max": 0.0, "count": 0}


def test_latency_series_summary() -> None:
    series = LatencySeries("pod_startup")
    for i in range(10):
        series.add(i / 10, at=100.0 + i)
    assert series.summary()["Perc50"] == pytest.approx(0.4)
    assert series.observed_at[-1] == 109.0


def test_pod_startup_transitions() -> None:
    pods = [
        PodTimeline("a", created=10.0, scheduled=10.5, running=11.5, watched=11.75),
        PodTimeline("b", created=20.0, scheduled=21.0, running=None, watched=None),  # never ran
    ]
    series = pod_startup_series(pods)
    assert list(series) == list(POD_STARTUP_TRANSITIONS)
    assert series["create_to_schedule"].samples == [0.5, 1.0]
    assert series["schedule_to_run"].samples == [1.0]
    assert series["run_to_watch"].samples == [0.25]
    assert series["schedule_to_watch"].samples == [1.25]
    assert series["pod_startup"].samples == [1.75]
    assert series["pod_startup"].observed_at == [11.75]
