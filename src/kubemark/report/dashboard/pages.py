"""The dashboard's HTML pages, rendered on the server: runs table, trend, compare, one run, not found.

Plain HTML forms and links carry every choice in the query string (no JavaScript needed); the only script is
an `onchange` that submits a select's form. Everything from disk is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from kubemark.report.compare import Comparison
from kubemark.report.dashboard.comparing import CompareOutcome
from kubemark.report.dashboard.listing import RunsQuery
from kubemark.report.dashboard.metrics import MetricValue
from kubemark.report.dashboard.runs import REPORT, RunInfo, RunKind
from kubemark.report.dashboard.svg import PlotPoint, PlotSeries, trend_svg
from kubemark.report.dashboard.trend import Group, Trend, format_group

__all__ = [
    "compare_page",
    "display",
    "file_url",
    "format_value",
    "not_found_page",
    "run_page",
    "run_url",
    "runs_page",
    "trend_page",
]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222}
header{background:#263238;color:#fff;padding:.5em 1.5em;display:flex;gap:1.5em;align-items:baseline}
header a{color:#cfd8dc;text-decoration:none}header a.active{color:#fff;font-weight:600}
header .brand{font-weight:700;color:#fff}main{padding:1em 1.5em;max-width:1400px}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .55em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}th a{color:inherit}.pass{color:#157015;font-weight:600}
.fail{color:#b00020;font-weight:600}.muted{color:#777}tr.broken td{background:#fff8e1}td.error{color:#8a4b00}
tr.regression td{background:#fdecea}tr.regression td.flag{color:#b00020;font-weight:700}.warning{color:#8a4b00}
.banner{padding:.6em 1em;border-radius:4px;margin:.6em 0}.banner.pass{background:#e8f5e9}
.banner.fail{background:#fdecea}.banner.warn{background:#fff8e1;color:#6d4c00}form.bar{margin:.6em 0}
form.bar label{margin-right:.8em}.label{display:inline-block;background:#eceff1;border-radius:3px;
padding:0 .35em;margin:1px;font-size:.85em}#runs{table-layout:fixed;width:100%}#runs td{overflow-wrap:anywhere}#runs td.start,#runs td.wall{white-space:nowrap}svg.trend{max-width:100%;height:auto}code{font-size:.9em}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def run_url(run: RunInfo) -> str:
    return f"/run/{run.root}/{quote(run.name, safe='')}"


def file_url(run: RunInfo, relative: str) -> str:
    return f"{run_url(run)}/{quote(relative)}"


def _when(start: float | None) -> str:
    return "—" if start is None else datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def display(unit: str) -> tuple[float, str]:
    """(factor, unit) a value is shown in: seconds as ms, bytes as MiB."""
    return {"s": (1000.0, "ms"), "bytes": (1 / 2**20, "MiB")}.get(unit, (1.0, unit))


def format_value(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    factor, shown = display(unit)
    return f"{value * factor:.4g} {shown}"


def _group_label(group: Group) -> str:
    test, nodes = group
    return f"{test or '?'} · {'? nodes' if nodes is None else f'{nodes} nodes'}"


def _labels(labels: Mapping[str, str]) -> str:
    return "".join(f'<span class="label">{_e(k)}={_e(v)}</span>' for k, v in sorted(labels.items()))


def _slos(run: RunInfo) -> str:
    if run.kind is RunKind.BROKEN:
        return "—"
    total = run.slos_passed + run.slos_failed
    cls = "pass" if run.passed else "fail"
    text = f"{run.slos_passed}/{total} met"
    if run.slos_failed:
        text += f", {run.slos_failed} failed"
    if run.failed_steps:
        text += f", {run.failed_steps} failed steps"
    title = " (judged by the dashboard against the default SLOs)" if run.kind is RunKind.CLUSTERLOADER2 else ""
    return f'<span class="{cls}" title="SLO verdicts{title}">{_e(text)}</span>'


def _options(values: Iterable[tuple[str, str]], selected: str) -> str:
    return "".join(
        f'<option value="{_e(v)}"{" selected" if v == selected else ""}>{_e(label)}</option>' for v, label in values
    )


def _layout(title: str, active: str, body: str, problems: Sequence[str] = ()) -> str:
    nav = "".join(
        f'<a href="{href}" class="{"active" if name == active else ""}">{name}</a>'
        for name, href in (("Runs", "/"), ("Trend", "/trend"), ("Compare", "/compare"))
    )
    notes = "".join(f'<div class="banner warn">{_e(p)}</div>' for p in problems)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kubemark dashboard: {_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><span class="brand">kubemark dashboard</span>{nav}</header><main>{notes}{body}</main></body></html>\n'
    )


# -- runs table -----------------------------------------------------------------------------------------------


def _sort_link(query: RunsQuery, key: str, label: str) -> str:
    desc = not query.desc if query.sort == key else key in ("start", "wall", "nodes")
    arrow = (" ▼" if query.desc else " ▲") if query.sort == key else ""
    return f'<a href="/?{_e(urlencode(query.params(sort=key, desc=desc)))}">{_e(label)}{arrow}</a>'


# Fixed column widths: the browser lays out a long table in one pass instead of measuring every cell first.
_RUNS_COLUMNS = (
    "<colgroup>"
    + "".join(
        f'<col style="width:{w}">'
        for w in ("2.4em", "2.4em", "11%", "8.8em", "5.5em", "4.5em", "11.5em", "6.5em", "9.5em", "", "7.5em")
    )
    + "</colgroup>"
)


def _run_row(run: RunInfo) -> str:
    pick = (
        f'<td><input type="radio" name="a" value="{_e(run.id)}" aria-label="A: {_e(run.name)}"></td>'
        f'<td><input type="radio" name="b" value="{_e(run.id)}" aria-label="B: {_e(run.name)}"></td>'
    )
    name = f'<a href="{_e(run_url(run))}">{_e(run.name)}</a>'
    if run.warning:
        name += f'<div class="warning">{_e(run.warning)}</div>'
    if run.kind is RunKind.BROKEN:
        return (
            f'<tr class="run broken" data-run="{_e(run.id)}">{pick}<td class="l name">{name}</td>'
            f'<td class="l kind">broken</td><td class="l error" colspan="7">{_e(run.error)}</td></tr>'
        )
    report = f'<a href="{_e(file_url(run, REPORT))}">report.html</a>' if run.has_report else "—"
    return (
        f'<tr class="run {run.kind.value}" data-run="{_e(run.id)}">{pick}<td class="l name">{name}</td>'
        f'<td class="l kind">{_e(run.kind.value)}</td><td class="l test">{_e(run.test)}</td>'
        f'<td class="nodes">{"—" if run.nodes is None else run.nodes}</td><td class="start">{_when(run.start)}</td>'
        f'<td class="wall">{_duration(run.wall)}</td><td class="l slos">{_slos(run)}</td>'
        f'<td class="l labels">{_labels(run.labels)}</td><td class="l report">{report}</td></tr>'
    )


def runs_page(
    shown: Sequence[RunInfo], every: Sequence[RunInfo], query: RunsQuery, roots: Sequence[str], problems: Sequence[str]
) -> str:
    tests = sorted({r.test for r in every if r.test})
    nodes = sorted({r.nodes for r in every if r.nodes is not None})
    broken = sum(1 for r in every if r.kind is RunKind.BROKEN)
    submit = ' onchange="this.form.submit()"'
    filters = (
        '<form class="bar filters" method="get" action="/">'
        f'<label>text <input type="search" name="q" value="{_e(query.text)}" placeholder="name, test, label"></label>'
        f'<label>test <select name="test"{submit}>{_options([("", "any"), *((t, t) for t in tests)], query.test)}'
        "</select></label>"
        f'<label>nodes <select name="nodes"{submit}>'
        f"{_options([('', 'any'), *((str(n), str(n)) for n in nodes), ('-', 'unknown')], query.nodes)}</select></label>"
        f'<label>kind <select name="kind"{submit}>'
        f"{_options([('', 'any'), *((k.value, k.value) for k in RunKind)], query.kind)}</select></label>"
        f'<label>status <select name="status"{submit}>'
        f"{_options([('', 'any'), ('pass', 'passed'), ('fail', 'failed'), ('broken', 'broken')], query.status)}"
        "</select></label>"
        + (f'<input type="hidden" name="sort" value="{_e(query.sort)}">' if query.sort != "start" else "")
        + (f'<input type="hidden" name="desc" value="{int(query.desc)}">' if query.sort != "start" else "")
        + '<button type="submit">Filter</button> <a href="/">reset</a></form>'
    )
    head = (
        '<tr><th title="baseline">A</th><th title="candidate">B</th>'
        + "".join(
            f'<th class="{"l" if key in ("name", "kind", "test", "slos", "labels") else ""}">'
            f"{_sort_link(query, key, label)}</th>"
            for key, label in (
                ("name", "run"),
                ("kind", "kind"),
                ("test", "test"),
                ("nodes", "nodes"),
                ("start", "started (UTC)"),
                ("wall", "wall time"),
                ("slos", "SLOs"),
                ("labels", "labels"),
            )
        )
        + '<th class="l">report</th></tr>'
    )
    if shown:
        rows = "".join(_run_row(r) for r in shown)
    else:
        rows = '<tr><td colspan="11" class="l muted">No runs match.</td></tr>'
    table = (
        '<form method="get" action="/compare">'
        f'<table id="runs">{_RUNS_COLUMNS}<thead>{head}</thead><tbody>{rows}</tbody></table>'
        '<label>regression threshold <input type="number" name="threshold" value="10" min="0" step="any" '
        'style="width:5em"> %</label> <button type="submit">Compare A with B</button></form>'
    )
    where = ", ".join(f"<code>{_e(r)}</code>" for r in roots)
    summary = (
        f'<p class="muted" id="summary">{len(shown)} of {len(every)} runs shown ({broken} broken) from {where}; '
        "the list is read afresh on every load.</p>"
    )
    return _layout("runs", "Runs", f"<h1>Runs</h1>{filters}{summary}{table}", problems)


# -- trend ------------------------------------------------------------------------------------------------------


def _metric_options(metrics: Mapping[str, int], selected: str) -> str:
    families: dict[str, list[str]] = {}
    for name in metrics:
        families.setdefault(name.partition("/")[0], []).append(name)
    out = []
    for family, names in families.items():
        opts = _options(((n, f"{n} ({metrics[n]} runs)") for n in names), selected)
        out.append(f'<optgroup label="{_e(family)}">{opts}</optgroup>')
    return "".join(out)


def trend_page(trend: Trend, mix: bool) -> str:
    if not trend.metric:
        body = "<h1>Trend</h1><p class='muted'>No run has readable summary files yet.</p>"
        return _layout("trend", "Trend", body)
    factor, unit = display(trend.unit)
    group_opts = [(format_group(g), f"{_group_label(g)} ({n} runs)") for g, n in sorted(trend.groups.items(), key=str)]
    form = (
        '<form class="bar" method="get" action="/trend">'
        f'<label>metric <select name="metric" onchange="this.form.submit()">'
        f"{_metric_options(trend.metrics, trend.metric)}</select></label>"
        f'<label>runs of <select name="group" onchange="this.form.submit()"{" disabled" if mix else ""}>'
        f"{_options(group_opts, format_group(trend.group) if trend.group else '')}</select></label>"
        f'<label><input type="checkbox" name="mix" value="1"{" checked" if mix else ""} '
        'onchange="this.form.submit()"> mix tests and sizes</label>'
        '<button type="submit">Show</button></form>'
    )
    points = trend.points
    position = {p.run.id: i for i, p in enumerate(points)}
    series = []
    for group, group_points in sorted(trend.series.items(), key=str):
        plotted = []
        for p in group_points:
            thr = None if p.threshold is None else p.threshold * factor
            bad = p.threshold is not None and (
                p.value > p.threshold if trend.better == "lower" else p.value < p.threshold
            )
            tip = f"{p.run.name}: {p.value * factor:.4g} {unit}" + (f" (SLO {thr:.4g})" if thr is not None else "")
            plotted.append(PlotPoint(position[p.run.id], p.value * factor, thr, tip, run_url(p.run), p.run.id, bad))
        series.append(PlotSeries(_group_label(group), plotted))
    labels = [_when(p.run.start)[5:16] for p in points]
    plot = f'<div class="plot">{trend_svg(series, labels, f"{trend.metric} ({unit})", unit=unit)}</div>'
    rows = []
    for p in reversed(points):
        verdict = ""
        if p.threshold is not None:
            ok = p.value <= p.threshold if trend.better == "lower" else p.value >= p.threshold
            verdict = '<span class="pass">within SLO</span>' if ok else '<span class="fail">over SLO</span>'
        rows.append(
            f'<tr class="point-row" data-run="{_e(p.run.id)}"><td class="l"><a href="{_e(run_url(p.run))}">'
            f"{_e(p.run.name)}</a></td><td>{_when(p.run.start)}</td><td class='l'>{_e(_group_label(p.run.group))}</td>"
            f"<td>{format_value(p.value, trend.unit)}</td><td>{format_value(p.threshold, trend.unit)}</td>"
            f'<td class="l">{verdict}</td></tr>'
        )
    table = (
        '<table id="points"><thead><tr><th class="l">run</th><th>started (UTC)</th><th class="l">test · size</th>'
        f"<th>value</th><th>SLO threshold</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    better = "lower is better" if trend.better == "lower" else "higher is better"
    caption = f'<p class="muted" id="trend-caption">{len(points)} runs; {better}; a point opens its run.</p>'
    skipped = ""
    if trend.skipped:
        items = "".join(f"<li>{_e(r.name)}: {_e(reason)}</li>" for r, reason in trend.skipped)
        skipped = f'<div class="banner warn">Summary files that could not be read:<ul>{items}</ul></div>'
    return _layout("trend", "Trend", f"<h1>Trend</h1>{form}{caption}{plot}{skipped}{table}")


# -- compare ----------------------------------------------------------------------------------------------------


def _facts(a: RunInfo, b: RunInfo) -> str:
    rows: list[tuple[str, Callable[[RunInfo], str]]] = [
        ("run", lambda r: f'<a href="{_e(run_url(r))}">{_e(r.name)}</a>'),
        ("kind", lambda r: _e(r.kind.value)),
        ("test", lambda r: _e(r.test)),
        ("nodes", lambda r: "—" if r.nodes is None else str(r.nodes)),
        ("started (UTC)", lambda r: _when(r.start)),
        ("wall time", lambda r: _duration(r.wall)),
        ("SLOs", _slos),
        ("labels", lambda r: _labels(r.labels)),
        ("report", lambda r: f'<a href="{_e(file_url(r, REPORT))}">report.html</a>' if r.has_report else "—"),
    ]
    body = "".join(
        f'<tr><th class="l">{_e(name)}</th><td class="l">{fn(a)}</td><td class="l">{fn(b)}</td></tr>'
        for name, fn in rows
    )
    return (
        '<table id="sides"><thead><tr><th></th><th class="l">A (baseline)</th><th class="l">B (candidate)</th></tr>'
        f"</thead><tbody>{body}</tbody></table>"
    )


def _deltas(cmp: Comparison, only_changed: bool) -> str:
    rows = []
    for d in cmp.deltas:
        if only_changed and not d.regression and (d.change_pct is None or abs(d.change_pct) < cmp.threshold_pct):
            continue
        change = "—" if d.change_pct is None else f"{d.change_pct:+.1f}%"
        cls = "delta regression" if d.regression else "delta"
        rows.append(
            f'<tr class="{cls}" data-metric="{_e(d.metric)}"><td class="l metric">{_e(d.metric)}</td>'
            f"<td>{format_value(d.a, d.unit)}</td><td>{format_value(d.b, d.unit)}</td><td>{change}</td>"
            f'<td class="l flag">{"REGRESSION" if d.regression else ""}</td></tr>'
        )
    return (
        '<table id="deltas"><thead><tr><th class="l">metric</th><th>A</th><th>B</th><th>change</th><th></th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def compare_page(
    runs: Sequence[RunInfo],
    a: RunInfo | None,
    b: RunInfo | None,
    threshold: float,
    outcome: CompareOutcome | None,
    only_changed: bool,
) -> str:
    choices = [(r.id, f"{r.name} ({r.kind.value}, {_when(r.start)})") for r in runs]
    form = (
        '<form class="bar" method="get" action="/compare">'
        f'<label>A (baseline) <select name="a">{_options(choices, a.id if a else "")}</select></label>'
        f'<label>B (candidate) <select name="b">{_options(choices, b.id if b else "")}</select></label>'
        f'<label>threshold <input type="number" name="threshold" value="{threshold:g}" min="0" step="any" '
        'style="width:5em"> %</label>'
        f'<label><input type="checkbox" name="changed" value="1"{" checked" if only_changed else ""}> '
        "only changes over the threshold</label><button type=submit>Compare</button></form>"
    )
    parts = ["<h1>Compare</h1>", form]
    if a is None or b is None:
        parts.append("<p class='muted'>Pick two runs.</p>")
    else:
        parts.append(_facts(a, b))
        if outcome is None or outcome.comparison is None:
            error = outcome.error if outcome else "nothing to compare"
            parts.append(f'<div class="banner fail" id="compare-error">Cannot compare: {_e(error)}</div>')
        else:
            cmp = outcome.comparison
            n = len(cmp.regressions)
            cls = "fail" if n else "pass"
            text = f"{n} regression{'s' if n != 1 else ''}" if n else "No regression"
            parts.append(
                f'<div class="banner {cls}" id="verdict">{text} of B against A over {cmp.threshold_pct:g}% '
                f"({len(cmp.deltas)} metrics compared).</div>"
            )
            parts.append(_deltas(cmp, only_changed))
            parts.append(
                f'<p class="muted">Same rule as <code>kubemark compare</code>: latencies and resources regress '
                f"when they rise, throughput when it falls, by more than the threshold (latencies also by more than "
                f"5 ms). Figures: {_e(outcome.source)}.</p>"
            )
    return _layout("compare", "Compare", "".join(parts))


# -- one run ----------------------------------------------------------------------------------------------------


def run_page(run: RunInfo, files: Sequence[str], metrics: Mapping[str, MetricValue], errors: Sequence[str]) -> str:
    group = urlencode({"group": format_group(run.group)})
    parts = [f"<h1>{_e(run.name)}</h1>"]
    if run.kind is RunKind.BROKEN:
        parts.append(f'<div class="banner fail" id="run-error">Broken run: {_e(run.error)}</div>')
    else:
        parts.append(
            f"<p>{_e(run.kind.value)} run of <b>{_e(run.test)}</b>, "
            f"{'? nodes' if run.nodes is None else f'{run.nodes} nodes'}, started {_when(run.start)} UTC, "
            f"wall time {_duration(run.wall)}; SLOs: {_slos(run)}. {_labels(run.labels)}</p>"
        )
    if run.warning:
        parts.append(f'<div class="banner warn">{_e(run.warning)}</div>')
    for error in errors:
        if error != run.error:
            parts.append(f'<div class="banner warn">{_e(error)}</div>')
    if run.has_report:
        parts.append(f'<p><a id="report" href="{_e(file_url(run, REPORT))}">Open report.html</a></p>')
    if metrics:
        rows = "".join(
            f'<tr><td class="l"><a href="/trend?{_e(urlencode({"metric": name}))}&amp;{_e(group)}">{_e(name)}</a></td>'
            f"<td>{format_value(m.value, m.unit)}</td></tr>"
            for name, m in sorted(metrics.items())
        )
        parts.append(
            "<h2>Figures from its summary files</h2>"
            f'<table id="metrics"><thead><tr><th class="l">metric (click: trend)</th><th>value</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    links = "".join(f'<li><a href="{_e(file_url(run, f))}">{_e(f)}</a></li>' for f in files)
    parts.append(f"<h2>Files</h2><ul id='files'>{links}</ul>")
    return _layout(run.name, "Runs", "".join(parts))


def not_found_page(message: str) -> str:
    return _layout("not found", "", f"<h1>Not found</h1><p>{_e(message)}</p><p><a href='/'>All runs</a></p>")
