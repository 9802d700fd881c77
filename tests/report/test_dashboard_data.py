"""The dashboard's data side without a browser: run discovery, broken runs, metrics, trend, compare, listing."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.report.dashboard.fixtures import DENSITY_100, FixtureRun, make_runs_dir, write_fixture_run

from kubemark import codec
from kubemark.measure.slo import SLOThresholds
from kubemark.report.compare import compare_runs, run_metrics
from kubemark.report.dashboard.comparing import compare_figures, compare_two
from kubemark.report.dashboard.listing import RunsQuery
from kubemark.report.dashboard.metrics import POD_STARTUP_SLO_METRIC, metric_threshold, verdict_name
from kubemark.report.dashboard.runs import RunIndex, RunInfo, RunKind
from kubemark.report.dashboard.summary_files import find_summary_files, split_summary_name
from kubemark.report.dashboard.trend import build_trend, format_group, parse_group
from kubemark.report.model import read_run_dir

METRIC = POD_STARTUP_SLO_METRIC


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs_dir(tmp_path_factory.mktemp("dashboard") / "runs")


@pytest.fixture
def index(runs_dir: Path) -> RunIndex:
    return RunIndex([runs_dir])


def by_name(index: RunIndex) -> dict[str, RunInfo]:
    return {r.name: r for r in index.scan()}


# -- summary file names -----------------------------------------------------------------------------------------


def test_summary_file_names_split_into_summary_test_and_time() -> None:
    assert split_summary_name("SchedulingThroughput_density_2026-01-02T03:04:05Z.json") == (
        "SchedulingThroughput_density",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert split_summary_name("summary.json") is None
    assert split_summary_name("_2026-01-02T03:04:05Z.json") is None
    names = [
        "PodStartupLatency_PodStartupLatency_my_test_2026-01-02T03:04:05Z.json",
        "APIResponsivenessPrometheus_simple_my_test_2026-01-02T03:04:05Z.json",
        "SchedulingThroughput_my_test_2026-01-02T03:04:05Z.json",
        "junit.xml",
    ]
    found = {f.summary: f.test for f in find_summary_files(names)}
    assert found == {
        "PodStartupLatency_PodStartupLatency": "my_test",
        "APIResponsivenessPrometheus_simple": "my_test",
        "SchedulingThroughput": "my_test",
    }
    # a known test name (kubemark's summary.json) wins over the inference
    assert {f.summary for f in find_summary_files(names[:1], "test")} == {"PodStartupLatency_PodStartupLatency_my"}


# -- discovery --------------------------------------------------------------------------------------------------


def test_every_fixture_run_is_listed_with_its_kind(index: RunIndex) -> None:
    runs = by_name(index)
    assert set(runs) == {
        *DENSITY_100,
        "density-50-nodes",
        "load-01",
        "cl2-density",
        "corrupt-run",
        "half-written",
    }
    assert {n for n, r in runs.items() if r.kind is RunKind.KUBEMARK} == {*DENSITY_100, "density-50-nodes", "load-01"}
    d1 = runs["density-01"]
    assert (d1.test, d1.nodes, d1.has_report) == ("density", 100, True)
    assert d1.labels["git"] == "a1b2c3d" and d1.labels["cluster"] == "embedded (etcd)"
    assert d1.slos_passed == 4 and d1.slos_failed == 0 and d1.wall == pytest.approx(95.0)
    assert d1.thresholds["pod_startup_latency"] == 5.0


def test_clusterloader2_run_is_read_from_its_summary_files(index: RunIndex) -> None:
    cl2 = by_name(index)["cl2-density"]
    assert cl2.kind is RunKind.CLUSTERLOADER2
    assert cl2.test == "density" and cl2.nodes is None
    assert cl2.start == datetime(2026, 1, 7, 12, tzinfo=UTC).timestamp()
    assert cl2.wall == pytest.approx(2714.32)  # junit.xml's suite time
    # judged against the default SLOs: PUT leases p99 1.21 s > 1 s fails; POST pods counted once over two variants
    assert (cl2.slos_passed, cl2.slos_failed) == (4, 1)
    values = index.metrics(cl2).values
    assert values[METRIC].value == pytest.approx(1.713)
    assert values["api/PUT leases resource/p99"].value == pytest.approx(1.21)
    assert values["api[simple]/POST pods namespace/p99"].value == pytest.approx(0.047)
    assert values["scheduling_throughput/max"].value == 104.8
    assert values["resources/etcd-server-master/etcd-container/memory_max"].value == 2207654321
    assert not any(m.startswith("MetricsForE2E") for m in values)  # not PerfData: nothing to plot


def test_broken_runs_are_listed_with_the_reason(index: RunIndex, tmp_path: Path) -> None:
    runs = by_name(index)
    assert runs["corrupt-run"].kind is RunKind.BROKEN
    assert "summary.json: invalid JSON" in runs["corrupt-run"].error
    assert "half-written" in runs["half-written"].error
    root = tmp_path / "runs"
    root.mkdir()
    (root / "empty").mkdir()
    (root / "not-a-run").mkdir()
    (root / "not-a-run" / "notes.txt").write_text("hello")
    (root / "wrong-types").mkdir()
    (root / "wrong-types" / "summary.json").write_text('{"test": "x", "start": "yesterday", "end": 2}')
    (root / "list").mkdir()
    (root / "list" / "summary.json").write_text("[1, 2]")
    (root / "bad-cl2").mkdir()
    (root / "bad-cl2" / "SchedulingThroughput_density_2026-01-02T03:04:05Z.json").write_text("{")
    (root / "outside").symlink_to(tmp_path)
    errors = {r.name: r.error for r in RunIndex([root]).scan()}
    assert all(r for r in errors.values()), errors
    assert "empty directory" in errors["empty"]
    assert "not a run" in errors["not-a-run"]
    assert "summary.json: malformed" in errors["wrong-types"] and "yesterday" in errors["wrong-types"]
    assert "summary.json: malformed" in errors["list"]
    assert "invalid JSON" in errors["bad-cl2"]
    assert "outside the runs directory" in errors["outside"]


def test_new_and_changed_runs_are_seen_without_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    index = RunIndex([root])
    assert index.scan() == []
    run = write_fixture_run(root, FixtureRun("first"))
    assert [r.name for r in index.scan()] == ["first"]
    assert index.scan()[0] is index.scan()[0]  # cached while unchanged
    (run / "labels.json").write_text('{"git": "0123abc"}')
    assert index.scan()[0].labels["git"] == "0123abc"
    summary = (run / "summary.json").read_bytes()
    (run / "summary.json").write_bytes(summary[:10])
    assert index.scan()[0].kind is RunKind.BROKEN
    (run / "summary.json").write_bytes(summary)
    assert index.scan()[0].kind is RunKind.KUBEMARK
    shutil.rmtree(run)
    assert index.scan() == []


def test_a_missing_runs_directory_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    index = RunIndex([tmp_path / "nope"])
    assert index.scan() == []
    assert index.problems() == [f"{tmp_path / 'nope'}: not a directory"]
    run = write_fixture_run(tmp_path, FixtureRun("one-run"))
    assert "looks like a run directory itself" in RunIndex([run]).problems()[0]


def test_files_resolve_only_inside_the_run(index: RunIndex, runs_dir: Path, tmp_path: Path) -> None:
    run = by_name(index)["density-01"]
    assert index.resolve_file(run, "report.html") == (runs_dir / "density-01" / "report.html").resolve()
    for bad in ("../density-02/report.html", "../../etc/passwd", "/etc/passwd", "", ".", "nope.html", "a\0b"):
        assert index.resolve_file(run, bad) is None, bad
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    link = runs_dir / "density-01" / "leak.txt"
    os.symlink(secret, link)
    try:
        assert index.resolve_file(run, "leak.txt") is None
    finally:
        link.unlink()
    for bad_id in ("0/..", "0/.", "1/density-01", "x/density-01", "0/density-01/report.html", "0/", "0/.hidden"):
        assert index.get(bad_id) is None, bad_id


# -- metrics, thresholds ----------------------------------------------------------------------------------------


def test_thresholds_come_from_the_run_else_the_default_slos() -> None:
    defaults = SLOThresholds()
    assert verdict_name(METRIC) == "pod_startup_latency"
    assert verdict_name("pod_startup/Saturation/pod_startup/p99") == "pod_startup_latency Saturation"
    assert verdict_name("api[server]/PATCH nodes/status resource/p99") == "api_call_latency PATCH nodes/status resource"
    assert verdict_name("api/PATCH nodes/status resource/p50") is None
    assert metric_threshold(METRIC, {}, defaults) == 5.0
    assert metric_threshold(METRIC, {"pod_startup_latency": 3600.0}, defaults) == 3600.0
    assert metric_threshold("api/LIST pods cluster/p99", {}, defaults) == 30.0
    assert metric_threshold("api/GET pods resource/p99", {}, defaults) == 1.0
    assert metric_threshold("pod_startup/Saturation/pod_startup/p99", {}, defaults) is None
    assert metric_threshold("scheduling_throughput/max", {}, defaults) is None


def test_summary_figures_are_the_figures_kubemark_compare_uses(tmp_path: Path) -> None:
    """The clusterloader2 path of the compare view feeds compare_metrics figures read from summary files; for a
    run with one pod measurement they match the ones kubemark compare computes from samples."""
    result_dir = write_fixture_run(tmp_path, FixtureRun("one"))
    index = RunIndex([tmp_path])
    run = index.get("0/one")
    assert run is not None
    rebuilt = compare_figures(index.metrics(run).values)
    original = run_metrics(read_run_dir(result_dir))
    assert len([k for k in rebuilt if k.startswith("pod_startup/")]) == 15
    assert set(rebuilt) == set(original)
    for name, (value, unit, better) in rebuilt.items():
        assert original[name][1:] == (unit, better), name
        if not name.startswith("pod_startup/"):  # kubemark compare's are over every pod, the summary's the SLO pods'
            assert value == pytest.approx(original[name][0], rel=1e-6, abs=1e-9), name


# -- trend ------------------------------------------------------------------------------------------------------


def test_trend_keeps_one_test_and_size_unless_mixed(index: RunIndex) -> None:
    runs = index.scan()
    trend = build_trend(index, runs, METRIC)
    assert trend.group == ("density", 100)
    assert [p.run.name for p in trend.points] == list(DENSITY_100)
    assert all(p.threshold == 5.0 for p in trend.points)
    assert trend.points[-1].value > 1.5 * trend.points[-2].value  # the planted slowdown
    assert trend.groups == {("density", 100): 5, ("density", 50): 1, ("load", 100): 1, ("density", None): 1}
    load = build_trend(index, runs, METRIC, ("load", 100))
    assert [p.run.name for p in load.points] == ["load-01"]
    mixed = build_trend(index, runs, METRIC, mix=True)
    assert mixed.group is None and len(mixed.points) == 8 and len(mixed.series) == 4
    starts = [p.run.start or 0 for p in mixed.points]
    assert starts == sorted(starts)
    api = build_trend(index, runs, "api/PUT leases resource/p99")
    assert [p.run.name for p in api.points] == ["cl2-density"] and api.group == ("density", None)


def test_trend_defaults_and_groups_in_urls(index: RunIndex) -> None:
    trend = build_trend(index, index.scan(), "no/such/metric")
    assert trend.metric == METRIC
    assert parse_group(format_group(("density", 100))) == ("density", 100)
    assert parse_group(format_group(("a/b", None))) == ("a/b", None)
    assert parse_group("nonsense") is None
    empty = build_trend(index, [])
    assert empty.metric == "" and empty.points == []


# -- compare ----------------------------------------------------------------------------------------------------


def test_compare_of_kubemark_runs_is_kubemark_compare(index: RunIndex, runs_dir: Path) -> None:
    runs = by_name(index)
    outcome = compare_two(index, runs["density-04"], runs["density-05"], 10.0)
    expected = compare_runs(runs_dir / "density-04", runs_dir / "density-05", threshold_pct=10.0)
    assert outcome.comparison is not None
    assert outcome.comparison.deltas == expected.deltas
    assert "pod_startup/pod_startup/p99" in {d.metric for d in outcome.comparison.regressions}
    back = compare_two(index, runs["density-05"], runs["density-04"], 10.0)
    assert back.comparison is not None and not back.comparison.has_regression
    lenient = compare_two(index, runs["density-04"], runs["density-05"], 1000.0)
    assert lenient.comparison is not None and not lenient.comparison.has_regression


def test_compare_with_a_clusterloader2_run_uses_summary_files(index: RunIndex) -> None:
    runs = by_name(index)
    outcome = compare_two(index, runs["density-04"], runs["cl2-density"], 10.0)
    assert outcome.comparison is not None, outcome.error
    deltas = {d.metric: d for d in outcome.comparison.deltas}
    assert deltas["pod_startup/pod_startup/p99"].b == pytest.approx(1.713)
    assert deltas["pod_startup/pod_startup/p99"].regression
    assert deltas["scheduling_throughput/max"].b == 104.8 and not deltas["scheduling_throughput/max"].regression
    assert "summary files" in outcome.source


def test_compare_with_a_broken_run_says_why(index: RunIndex, runs_dir: Path, tmp_path: Path) -> None:
    runs = by_name(index)
    outcome = compare_two(index, runs["density-01"], runs["corrupt-run"], 10.0)
    assert outcome.comparison is None and "invalid JSON" in outcome.error
    # summary.json fine but a sample CSV cut short: the table lists it, the comparison names the file
    root = tmp_path / "r"
    write_fixture_run(root, FixtureRun("ok"))
    bad = write_fixture_run(root, FixtureRun("bad-csv"))
    (bad / "api_calls.csv").write_text("started_at,verb,resource,subresource,scope,status,seconds\n1,GET\n")
    other = RunIndex([root])
    got = {r.name: r for r in other.scan()}
    assert got["bad-csv"].kind is RunKind.KUBEMARK
    outcome = compare_two(other, got["ok"], got["bad-csv"], 10.0)
    assert outcome.comparison is None and "api_calls.csv" in outcome.error


# -- listing ----------------------------------------------------------------------------------------------------


def test_filter_and_sort(index: RunIndex) -> None:
    runs = index.scan()

    def names(**params: str) -> list[str]:
        return [r.name for r in RunsQuery.from_params(params).apply(runs)]

    assert names()[:2] == ["density-05", "density-04"]  # newest first; runs without a start last
    assert set(names()[-2:]) == {"corrupt-run", "half-written"}
    assert names(test="load") == ["load-01"]
    assert names(nodes="50") == ["density-50-nodes"]
    assert set(names(nodes="-")) == {"cl2-density", "corrupt-run", "half-written"}  # size unknown
    assert set(names(status="broken")) == {"corrupt-run", "half-written"}
    assert names(status="fail") == ["cl2-density"]
    assert names(kind="clusterloader2") == ["cl2-density"]
    assert names(q="SLOW-change") == ["density-05"]  # a label, case-insensitive
    assert names(q="invalid json") == ["corrupt-run"]  # the error text
    assert names(sort="name", desc="0")[:3] == ["cl2-density", "corrupt-run", "density-01"]
    assert names(sort="wall")[0] == "cl2-density"
    assert names(sort="nodes", desc="0")[0] == "density-50-nodes"
    assert RunsQuery.from_params({"sort": "bogus"}).sort == "start"
    assert RunsQuery().params(test="x") == {"test": "x"}
    assert RunsQuery().params(sort="name", desc=False) == {"sort": "name", "desc": "0"}


def test_other_perfdata_and_bad_summary_files(tmp_path: Path) -> None:
    """Any other PerfData (e.g. a network-ready latency measurement) becomes metrics; a bad summary file is a
    warning on the trend page, not a lost run."""
    run = write_fixture_run(tmp_path, FixtureRun("net"))
    network = {
        "version": "1.0",
        "dataItems": [{"data": {"Perc50": 120.0, "Perc99": 480.0}, "unit": "ms", "labels": {"Metric": "ready"}}],
    }
    (run / "NetworkReadyLatency_density_2026-01-05T00:01:35Z.json").write_bytes(codec.dumps(network))
    throughput = next(run.glob("SchedulingThroughput_*.json"))
    throughput.write_text("{")
    index = RunIndex([tmp_path])
    info = index.get("0/net")
    assert info is not None
    metrics = index.metrics(info)
    assert metrics.values["NetworkReadyLatency/Metric=ready/Perc99"].value == pytest.approx(0.48)
    assert METRIC in metrics.values and "scheduling_throughput/max" not in metrics.values
    assert metrics.errors and throughput.name in metrics.errors[0]
    trend = build_trend(index, index.scan(), "NetworkReadyLatency/Metric=ready/Perc99")
    assert len(trend.points) == 1 and trend.points[0].threshold is None
    assert [r.name for r, _ in trend.skipped] == ["net"]
