"""report.html is self-contained: inline plots, no external references, every section present."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from kubemark.report.html import render_report
from kubemark.report.model import RunResult, write_run_dir


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, make_run: Callable[..., RunResult]) -> tuple[Path, Path]:
    """Render once per module: matplotlib is the slow part."""
    d = write_run_dir(make_run(), tmp_path_factory.mktemp("html") / "run")
    return d, render_report(d)


def test_report_has_plots_and_no_external_urls(rendered: tuple[Path, Path]) -> None:
    d, path = rendered
    assert path == d / "report.html"
    text = path.read_text()
    assert text.count("<svg") >= 5  # CDF, breakdown, over time, throughput, API latency, usage
    for pattern in (
        r'(src|href)\s*=\s*["\']?\s*(https?:)?//',
        r"url\(\s*['\"]?(https?:)?//",
        r"@import",
        r"<script",
        r"<link",
    ):
        assert not re.search(pattern, text, re.IGNORECASE), pattern
    # The only http strings left are XML namespace names inside inline SVG.
    assert all(m.group(0).startswith(("xmlns", "xmlns:xlink")) for m in re.finditer(r'[\w:]+="https?://[^"]*"', text))
    for heading in (
        "SLO verdicts",
        "Steps",
        "Pod startup latency",
        "cluster fill level",
        "Scheduling throughput",
        "API call latency",
        "Resource usage",
    ):
        assert heading in text, heading
    assert "FAILED" in text  # a failed step and a failed SLO
    assert "pod-a (Pending: no nodes)" in text


def test_fill_level_table(rendered: tuple[Path, Path]) -> None:
    text = rendered[1].read_text()
    section = text[text.index("cluster fill level") :]
    table = section[: section.index("</table>")]
    assert re.findall(r"<th[^>]*>([^<]*)</th>", table) == ["pod startup (ms)", "10% full", "50% full", "100% full"]
    rows = re.findall(r"<tr><td[^>]*>(p\d+)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", table)
    assert [r[0] for r in rows] == ["p10", "p50", "p90", "p99"]
    p50 = re.findall(r">([^<]*)</td>", rows[1][1])
    assert p50 == ["900.0", "1200.0", "1900.0"]


def test_escapes_untrusted_text(tmp_path: Path) -> None:
    from kubemark.measure.results import StepResult

    d = write_run_dir(
        RunResult("t<script>", 0.0, 1.0, steps=[StepResult("<b>x</b>", 0.0, 1.0, "<img src=x>")]), tmp_path / "r"
    )
    text = render_report(d).read_text()
    assert "<script>" not in text.split("</style>", 1)[1]
    assert "&lt;img src=x&gt;" in text
