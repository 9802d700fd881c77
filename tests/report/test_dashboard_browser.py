"""The dashboard driven in headless Chromium (Playwright): the runs table lists the fixture runs, the trend plot
has one point per run of the chosen metric, compare highlights the planted regression, broken runs show why.

Chromium is Debian's (installed by the fixture when missing and possible, else the tests fail saying how);
the dashboard runs in a thread on 127.0.0.1, port 0. Playwright waits for navigations and elements itself:
nothing here sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.report.dashboard.browser import BrowserUnavailable, ensure_chromium
from tests.report.dashboard.fixtures import DENSITY_100, make_runs_dir
from tests.report.dashboard.server import running_dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.timeout(900)  # the first test may install Chromium

ALL_RUNS = {*DENSITY_100, "density-50-nodes", "load-01", "cl2-density", "corrupt-run", "half-written"}
METRIC = "pod_startup/PodStartupLatency/pod_startup/p99"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        chromium = ensure_chromium()
    except BrowserUnavailable as exc:
        pytest.fail(str(exc))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    runs = make_runs_dir(tmp_path_factory.mktemp("dashboard") / "runs")
    with running_dashboard([runs]) as url:
        yield url


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, errors


def row_names(page: Page) -> list[str]:
    return [name.strip() for name in page.locator("#runs tr.run td.name > a").all_inner_texts()]


def test_runs_table_lists_the_fixture_runs(page: Page) -> None:
    page.goto("/")
    assert set(row_names(page)) == ALL_RUNS
    assert row_names(page)[:2] == ["density-05", "density-04"]  # newest first
    d1 = page.locator('tr.run[data-run="0/density-01"]')
    assert d1.locator("td.test").inner_text() == "density"
    assert d1.locator("td.nodes").inner_text() == "100"
    assert d1.locator("td.start").inner_text() == "2026-01-05 00:00:00"
    assert d1.locator("td.wall").inner_text() == "1 min 35 s"
    assert d1.locator("td.slos").inner_text() == "4/4 met"
    assert "git=a1b2c3d" in d1.locator("td.labels").inner_text()
    cl2 = page.locator('tr.run[data-run="0/cl2-density"]')
    assert cl2.locator("td.kind").inner_text() == "clusterloader2"
    assert cl2.locator("td.slos").inner_text() == "4/5 met, 1 failed"
    assert "10 of 10 runs shown (2 broken)" in page.locator("#summary").inner_text()


def test_filter_and_sort_from_the_page(page: Page) -> None:
    page.goto("/")
    with page.expect_navigation():
        page.select_option("select[name=test]", "load")
    assert row_names(page) == ["load-01"]
    page.goto("/")
    page.fill("input[name=q]", "slow-change")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert row_names(page) == ["density-05"]
    page.goto("/")
    with page.expect_navigation():
        page.click("#runs th a:text('nodes')")
    names = row_names(page)  # most nodes first, unknown sizes last
    assert names.index("density-50-nodes") == 6
    assert set(names[-3:]) == {"cl2-density", "corrupt-run", "half-written"}
    with page.expect_navigation():
        page.click("#runs th a:text('nodes')")  # again: ascending
    assert row_names(page)[0] == "density-50-nodes"


def test_broken_runs_show_their_error(page: Page) -> None:
    page.goto("/")
    corrupt = page.locator('tr.run.broken[data-run="0/corrupt-run"] td.error')
    assert "summary.json: invalid JSON (half-written?)" in corrupt.inner_text()
    half = page.locator('tr.run.broken[data-run="0/half-written"] td.error')
    assert "no summary.json yet" in half.inner_text()
    with page.expect_navigation():
        page.click('tr.run[data-run="0/corrupt-run"] td.name a')
    assert "invalid JSON" in page.locator("#run-error").inner_text()


def test_trend_plot_has_one_point_per_run_of_the_metric(page: Page) -> None:
    page.goto("/trend")
    assert page.locator("select[name=metric]").input_value() == METRIC
    points = page.locator("svg.trend circle.point")
    assert points.count() == 5  # density at 100 nodes only: other tests and sizes are not mixed in
    assert sorted(points.evaluate_all("els => els.map(e => e.dataset.run)")) == [f"0/{n}" for n in DENSITY_100]
    assert page.locator("svg.trend polyline.threshold").count() == 1
    assert "5000" in page.locator("svg.trend polyline.threshold title").text_content()
    assert page.locator("#points tr.point-row").count() == 5
    with page.expect_navigation():
        page.check("input[name=mix]")
    assert page.locator("svg.trend circle.point").count() == 8  # + density at 50 nodes, load, clusterloader2
    page.goto("/trend")
    with page.expect_navigation():
        page.select_option("select[name=metric]", "api/PUT leases resource/p99")
    assert page.locator("svg.trend circle.point").count() == 1  # only the clusterloader2 run has it
    assert page.locator("svg.trend circle.point.bad").count() == 1  # 1210 ms over the 1 s SLO
    with page.expect_navigation():
        page.select_option("select[name=metric]", "scheduling_throughput/p50")
    assert page.locator("svg.trend circle.point").count() == 1  # still the clusterloader2 run's group
    with page.expect_navigation():
        page.select_option("select[name=group]", "density/100")
    assert page.locator("svg.trend circle.point").count() == 5


def test_compare_highlights_the_planted_regression(page: Page) -> None:
    page.goto("/")
    page.check('tr.run[data-run="0/density-04"] input[name=a]')
    page.check('tr.run[data-run="0/density-05"] input[name=b]')
    with page.expect_navigation():
        page.click("text=Compare A with B")
    assert "/compare?" in page.url
    row = page.locator('#deltas tr.regression[data-metric="pod_startup/pod_startup/p99"]')
    assert row.locator("td.flag").inner_text() == "REGRESSION"
    background = row.locator("td.metric").evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(253, 236, 234)"
    assert "regressions of B against A over 10%" in page.locator("#verdict").inner_text()
    assert page.locator("#deltas tr.regression").count() >= 10
    # the other way round (B faster), nothing regresses
    page.select_option("select[name=a]", "0/density-05")
    page.select_option("select[name=b]", "0/density-04")
    with page.expect_navigation():
        page.click("form.bar button[type=submit]")
    assert page.locator("#deltas tr.regression").count() == 0
    assert page.locator("#verdict").inner_text().startswith("No regression")


def test_compare_a_kubemark_run_beside_a_clusterloader2_run(page: Page) -> None:
    page.goto("/compare?a=0/density-04&b=0/cl2-density")
    assert page.locator("#sides").inner_text().count("clusterloader2") == 1
    assert page.locator('#deltas tr[data-metric="scheduling_throughput/max"] td.flag').inner_text() == ""
    page.goto("/compare?a=0/density-04&b=0/corrupt-run")
    assert "invalid JSON" in page.locator("#compare-error").inner_text()


def test_each_run_reaches_its_report(page: Page, tmp_path: Path) -> None:
    page.goto("/")
    with page.expect_navigation():
        page.click('tr.run[data-run="0/density-01"] td.report a')
    assert page.title() == "kubemark: density"
    assert page.locator("h2:text('SLO verdicts')").count() == 1
    page.goto("/run/0/density-01")
    with page.expect_navigation():
        page.click("#report")
    assert page.url.endswith("/run/0/density-01/report.html")
