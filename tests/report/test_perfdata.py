"""clusterloader2 summary files: PerfData shape, names, and the validator."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kubemark import codec
from kubemark.report.model import read_run_dir
from kubemark.report.perfdata import (
    api_responsiveness_perfdata,
    perfdata_file_name,
    pod_startup_perfdata,
    validate_perfdata,
    write_summaries,
)


def test_pod_startup_perfdata(make_run_dir: Callable[..., Path]) -> None:
    result = read_run_dir(make_run_dir())
    pd = pod_startup_perfdata(result)
    assert validate_perfdata(pd) == []
    assert pd["version"] == "1.0"
    metrics = [item["labels"]["Metric"] for item in pd["dataItems"]]
    assert metrics == ["create_to_schedule", "schedule_to_run", "run_to_watch", "schedule_to_watch", "pod_startup"]
    for item in pd["dataItems"]:
        assert item["unit"] == "ms"
        assert set(item["data"]) == {"Perc50", "Perc90", "Perc99"}
        assert item["data"]["Perc50"] <= item["data"]["Perc90"] <= item["data"]["Perc99"]
    startup = pd["dataItems"][-1]["data"]
    assert 500 < startup["Perc50"] < 2000  # ms, not seconds


def test_api_responsiveness_perfdata_labels(make_run_dir: Callable[..., Path]) -> None:
    pd = api_responsiveness_perfdata(read_run_dir(make_run_dir(slowdown=12.0)))
    assert validate_perfdata(pd) == []
    by_key = {
        (i["labels"]["Verb"], i["labels"]["Resource"], i["labels"]["Subresource"], i["labels"]["Scope"]): i
        for i in pd["dataItems"]
    }
    assert set(by_key) == {
        ("POST", "pods", "", "namespace"),
        ("LIST", "nodes", "", "cluster"),
        ("PUT", "nodes", "status", "resource"),
    }
    put = by_key[("PUT", "nodes", "status", "resource")]
    assert put["labels"]["Count"] == "100"
    assert int(put["labels"]["SlowCount"]) > 0  # 12x slowdown pushes some PUTs over 1 s
    assert by_key[("LIST", "nodes", "", "cluster")]["labels"]["SlowCount"] == "0"  # 30 s allowed


def test_file_names_and_contents(tmp_path: Path, make_run_dir: Callable[..., Path]) -> None:
    result = read_run_dir(make_run_dir())
    when = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)
    assert (
        perfdata_file_name("SchedulingThroughput", "density", when)
        == "SchedulingThroughput_density_2024-05-01T12:30:15Z.json"
    )
    paths = write_summaries(result, tmp_path / "out", when=when)
    names = sorted(p.name for p in paths)
    assert names == [
        "APIResponsivenessPrometheus_density_2024-05-01T12:30:15Z.json",
        "PodStartupLatency_PodStartupLatency_density_2024-05-01T12:30:15Z.json",
        "ResourceUsageSummary_density_2024-05-01T12:30:15Z.json",
        "SchedulingThroughput_density_2024-05-01T12:30:15Z.json",
    ]
    for p in paths:
        assert re.fullmatch(r"[A-Za-z_]+_density_\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.json", p.name)
    contents = {p.name.split("_density_")[0]: codec.loads(p.read_bytes()) for p in paths}
    assert validate_perfdata(contents["PodStartupLatency_PodStartupLatency"]) == []
    assert validate_perfdata(contents["APIResponsivenessPrometheus"]) == []
    tp = contents["SchedulingThroughput"]
    assert set(tp) == {"perc50", "perc90", "perc99", "max"} and tp["max"] == 100.0
    usage = contents["ResourceUsageSummary"]
    assert set(usage) == {"50", "90", "99", "100"}
    assert [c["Name"] for c in usage["100"]] == ["apiserver", "etcd"]
    assert usage["100"][0]["Mem"] == 111_000_000


def test_validator_rejects_bad_documents() -> None:
    assert validate_perfdata([]) == ["top level: expected an object"]
    problems = validate_perfdata(
        {"version": "2", "dataItems": [{"data": {"Perc50": "fast"}, "unit": "", "labels": {"Metric": 1}}, {"data": {}}]}
    )
    assert 'version: expected "1.0" or "v1", got \'2\'' in problems
    assert "dataItems[0].data.Perc50: expected a number, got 'fast'" in problems
    assert "dataItems[0].unit: expected a non-empty string" in problems
    assert "dataItems[0].labels: expected an object of strings" in problems
    assert "dataItems[1].data: expected a non-empty object of numbers" in problems
    assert validate_perfdata({"version": "1.0"}) == ["dataItems: expected a list"]
    assert validate_perfdata({"version": "v1", "dataItems": []}) == []  # clusterloader2's API-latency version
