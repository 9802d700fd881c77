"""`kubemark fidelity`: ours against Go kubemark's request profile, row by row (pure logic, small fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from kubemark.cli import app
from kubemark.report.fidelity import (
    FidelityError,
    compare_profiles,
    fidelity_table,
    load_explanations,
    load_profiles,
    split_key,
)

runner = CliRunner()

GO = {"PUT leases": 6.0, "PATCH nodes/status": 0.2, "WATCH pods": 0.13, "WATCH csidrivers": 0.13}
OURS = {"PUT leases": 5.5, "PATCH nodes/status": 6.0, "WATCH pods": 0.13, "WATCH nodes": 0.26}


def _rows(report: Any) -> dict[str, Any]:
    return {r.key: r for r in report.rows}


def _benchmark(go: dict[str, float], ours: dict[str, float], *, extra_runs: list[dict[str, Any]] = ()) -> dict:
    return {
        "benchmark": "peer_go_kubemark",
        "runs": [
            {"kind": "go", "nodes": 50, "requests_per_node_minute": go, "audit": {"requests_per_node_minute": go}},
            {"kind": "ours", "nodes": 50, "requests_per_node_minute": ours, "audit": {"requests_per_node_minute": go}},
            *extra_runs,
        ],
    }


def test_split_key() -> None:
    assert split_key("PATCH nodes/status") == ("PATCH", "nodes", "status")
    assert split_key("list pods") == ("LIST", "pods", "")


def test_rows_flag_differences_beyond_the_tolerance() -> None:
    rows = _rows(compare_profiles(GO, OURS))
    assert not rows["WATCH pods"].flagged and rows["WATCH pods"].verdict == "ok"
    # 5.5 vs 6.0 is -8.3 %: within 10 %.
    assert not rows["PUT leases"].flagged
    assert rows["PATCH nodes/status"].flagged and rows["PATCH nodes/status"].verdict == "+2900%"
    assert rows["PATCH nodes/status"].ratio == pytest.approx(30.0)
    assert rows["WATCH nodes"].flagged and rows["WATCH nodes"].verdict == "only ours"
    assert rows["WATCH nodes"].ratio is None
    assert rows["WATCH csidrivers"].flagged and rows["WATCH csidrivers"].verdict == "missing in ours"


def test_tolerance_is_a_bound_on_both_sides() -> None:
    at_edge = _rows(compare_profiles({"GET nodes": 1.0}, {"GET nodes": 1.1}))
    assert not at_edge["GET nodes"].flagged
    below = _rows(compare_profiles({"GET nodes": 1.0}, {"GET nodes": 0.85}))
    assert below["GET nodes"].flagged and below["GET nodes"].verdict == "-15%"
    tight = _rows(compare_profiles(GO, OURS, tolerance=0.05))
    assert tight["PUT leases"].flagged  # -8.3 % is outside 5 %


def test_min_rate_spares_rows_below_the_noise_floor_only() -> None:
    report = compare_profiles(GO, OURS, min_rate=0.2)
    rows = _rows(report)
    assert rows["WATCH nodes"].verdict == "only ours"  # 0.26 is above the floor
    assert not rows["WATCH csidrivers"].flagged and rows["WATCH csidrivers"].verdict == "below noise floor"
    assert rows["PATCH nodes/status"].flagged


def test_keys_are_normalised_and_summed() -> None:
    report = compare_profiles({"patch nodes/status": 0.1, "PATCH  nodes/status": 0.1}, {"PATCH nodes/status": 0.2})
    assert len(report.rows) == 1
    assert report.rows[0].reference == pytest.approx(0.2) and not report.rows[0].flagged


def test_explanations_mark_flagged_rows_explained() -> None:
    report = compare_profiles(GO, OURS, explanations={"patch nodes/status": "quantity normalisation"})
    rows = _rows(report)
    assert rows["PATCH nodes/status"].explanation == "quantity normalisation"
    unexplained = {r.key for r in report.unexplained}
    assert unexplained == {"WATCH nodes", "WATCH csidrivers"}
    assert len(report.flagged) == 3


def test_totals_and_rejects_bad_rates() -> None:
    ref_total, cand_total = compare_profiles(GO, OURS).totals
    assert ref_total == pytest.approx(6.46) and cand_total == pytest.approx(11.89)
    with pytest.raises(FidelityError, match="negative"):
        compare_profiles({"GET nodes": -1.0}, {})
    with pytest.raises(FidelityError, match="not a number"):
        compare_profiles({"GET nodes": "many"}, {})  # type: ignore[dict-item]


def test_table_shows_each_row_ratio_and_verdict() -> None:
    console = Console(width=200, record=True)
    console.print(fidelity_table(compare_profiles(GO, OURS)))
    text = console.export_text()
    line = next(ln for ln in text.splitlines() if "status" in ln)
    assert "0.200" in line and "6.000" in line and "30.00" in line and "+2900%" in line
    assert "3 flagged, 3 without an explanation" in text


def test_load_one_benchmark_json_with_both_kinds(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    go_only = {"kind": "go", "nodes": 100, "requests_per_node_minute": {"PUT leases": 9.0}}
    # The benchmark's stdout: the JSON object, then its one-line summary.
    path.write_text(json.dumps(_benchmark(GO, OURS, extra_runs=[go_only])) + "\npeer_go_kubemark: summary\n")
    ref, cand, ref_label, cand_label = load_profiles([path])
    assert ref == GO and cand == OURS  # N=50: the go run at 100 has no ours beside it
    assert (ref_label, cand_label) == ("go x 50", "ours x 50")
    audit_ref, audit_cand, _, _ = load_profiles([path], profile="audit.requests_per_node_minute")
    assert audit_ref == GO and audit_cand == GO
    with pytest.raises(FidelityError, match="no 'ours' run with 100 nodes"):
        load_profiles([path], nodes=100)


def test_load_two_files_bare_profile_and_run_object(tmp_path: Path) -> None:
    go, ours = tmp_path / "go.json", tmp_path / "ours.json"
    go.write_text(json.dumps(GO))
    ours.write_text(json.dumps({"kind": "ours", "nodes": 7, "requests_per_node_minute": OURS}))
    ref, cand, ref_label, cand_label = load_profiles([go, ours])
    assert ref == GO and cand == OURS
    assert (ref_label, cand_label) == ("go", "ours x 7")
    with pytest.raises(FidelityError, match="not JSON"):
        (tmp_path / "bad.json").write_text("nope")
        load_profiles([go, tmp_path / "bad.json"])
    with pytest.raises(FidelityError, match="one file must be"):
        load_profiles([go])


def test_load_explanations_validates_shape(tmp_path: Path) -> None:
    good = tmp_path / "why.yaml"
    good.write_text("PATCH nodes/status: capacity 3.75Gi is stored as 3840Mi\n")
    assert load_explanations(good) == {"PATCH nodes/status": "capacity 3.75Gi is stored as 3840Mi"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(FidelityError, match="expected a mapping"):
        load_explanations(bad)


def test_cli_exit_codes(tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(_benchmark(GO, OURS)))
    shown = runner.invoke(app, ["fidelity", str(bench)])
    assert shown.exit_code == 0, shown.output
    assert "flagged" in shown.output
    strict = runner.invoke(app, ["fidelity", str(bench), "--strict"])
    assert strict.exit_code == 1
    why = tmp_path / "why.yaml"
    why.write_text(
        "PATCH nodes/status: status quantities\nWATCH nodes: proxy watches its node\nWATCH csidrivers: none\n"
    )
    explained = runner.invoke(app, ["fidelity", str(bench), "--strict", "--explain", str(why)])
    assert explained.exit_code == 0, explained.output
    same = tmp_path / "same.json"
    same.write_text(json.dumps(_benchmark(GO, GO)))
    assert runner.invoke(app, ["fidelity", str(same), "--strict"]).exit_code == 0
    missing = runner.invoke(app, ["fidelity", str(tmp_path / "absent.json")])
    assert missing.exit_code == 2
