"""report.html: one self-contained page per run (inline CSS, inline SVG plots, no network references).

Sections: SLO verdicts, measurements not measured here (and why), steps, pod startup (CDF per transition, percentile breakdown, latency over time),
fill-level table (rows p10/p50/p90/p99, columns cluster fill), scheduling throughput over time, API call latency
by verb/resource, resource usage over time, run parameters and the clock-skew check.
Plots are drawn with matplotlib's object API (no pyplot, so no global figure state) on the SVG backend.
"""

from __future__ import annotations

import html
import io
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from kubemark import codec
from kubemark.measure.percentiles import POD_STARTUP_TRANSITIONS, by_measurement, pod_startup_series, summarize
from kubemark.report.model import RunResult, read_run_dir

__all__ = ["REPORT_FILE", "render_html", "render_report"]

REPORT_FILE = "report.html"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.pass{color:#157015;font-weight:600}
.fail{color:#b00020;font-weight:600}.muted{color:#777}.plot svg{max-width:100%;height:auto}
.banner{padding:.6em 1em;border-radius:4px;margin:.6em 0}.banner.pass{background:#e8f5e9}
.banner.fail{background:#fdecea}.banner.warn{background:#fff8e1;color:#6d4c00}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _svg(draw: Callable[[Figure], None], *, width: float = 9.0, height: float = 3.6) -> str:
    """Render a figure to an inline <svg> element without the XML prolog, DOCTYPE or metadata (they hold URLs)."""
    with rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasSVG(fig)
        draw(fig)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = "l" if i < left else ""
            if isinstance(cell, tuple):  # (text, css class)
                cells.append(f'<td class="{cls} {cell[1]}">{_e(cell[0])}</td>')
            else:
                cells.append(f'<td class="{cls}">{_e(cell)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# -- sections -----------------------------------------------------------------------------------------------------


def _verdicts(result: RunResult) -> str:
    if not result.verdicts:
        return "<h2>SLO verdicts</h2><p class='muted'>No SLOs were checked.</p>"
    rows = [
        (
            v.name,
            f"{v.measured:.4g}",
            f"{v.threshold:.4g}",
            v.unit,
            ("PASS", "pass") if v.passed else ("FAIL", "fail"),
            (v.detail, "l"),
        )
        for v in result.verdicts
    ]
    return "<h2>SLO verdicts</h2>" + _table(["SLO", "measured", "threshold", "unit", "verdict", "detail"], rows)


def _not_measured(result: RunResult) -> str:
    """The measurements the test named that this run did not measure: never a silent pass."""
    if not result.warnings:
        return ""
    rows = [(w.identifier, w.method, (w.reason, "l")) for w in result.warnings]
    return (
        "<h2>Not measured here</h2>"
        f'<div class="banner warn">{len(result.warnings)} measurement(s) the test names were not measured by '
        "this run: they produced no numbers and no verdicts.</div>"
        + _table(["identifier", "method", "why"], rows, left=3)
    )


def _steps(result: RunResult) -> str:
    if not result.steps:
        return ""
    rows = [
        (s.name or f"step {i}", f"{s.seconds:.1f}", ("failed", "fail") if s.error else ("ok", "pass"), (s.error, "l"))
        for i, s in enumerate(result.steps, 1)
    ]
    return "<h2>Steps</h2>" + _table(["step", "seconds", "status", "error"], rows)


def _pod_startup(result: RunResult) -> str:
    series = pod_startup_series(result.pods)
    if not any(series[n].samples for n in POD_STARTUP_TRANSITIONS):
        return "<h2>Pod startup latency</h2><p class='muted'>No pod startup samples.</p>"

    def cdf(fig: Figure) -> None:
        ax = fig.add_subplot()
        for name in POD_STARTUP_TRANSITIONS:
            values = sorted(series[name].samples)
            if values:
                n = len(values)
                ax.step([v * 1000 for v in values], [(i + 1) / n for i in range(n)], where="post", label=name)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("fraction of pods")
        ax.set_title("Pod startup CDF per transition")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")

    def breakdown(fig: Figure) -> None:
        ax = fig.add_subplot()
        names = [n for n in POD_STARTUP_TRANSITIONS if series[n].samples]
        width = 0.25
        for j, p in enumerate((50, 90, 99)):
            vals = [summarize(series[n].samples)[f"Perc{p}"] * 1000 for n in names]
            ax.bar([i + (j - 1) * width for i in range(len(names))], vals, width, label=f"p{p}")
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("ms")
        ax.set_title("Per-transition breakdown")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)

    startup = series["pod_startup"]

    def over_time(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = [t - result.start for t in startup.observed_at]
        ax.plot(xs, [s * 1000 for s in startup.samples], ".", markersize=3)
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("pod startup (ms)")
        ax.set_title("Pod startup latency over time")
        ax.grid(alpha=0.3)

    # One block of rows per PodStartupLatency measurement (density: saturation pods apart from latency pods).
    rows = []
    for measurement, pods in by_measurement(result.pods).items():
        own = pod_startup_series(pods)
        for name in POD_STARTUP_TRANSITIONS:
            s = summarize(own[name].samples)
            cells = (_ms(s["Perc50"]), _ms(s["Perc90"]), _ms(s["Perc99"]), _ms(s["max"]))
            rows.append((measurement or "all", name, int(s["count"]), *cells))
    parts = [
        "<h2>Pod startup latency</h2>",
        _table(["measurement", "transition", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows),
        f'<div class="plot">{_svg(cdf)}</div>',
        f'<div class="plot">{_svg(breakdown, height=3.0)}</div>',
    ]
    if startup.observed_at and len(startup.observed_at) == len(startup.samples):
        parts.append(f'<div class="plot">{_svg(over_time, height=3.0)}</div>')
    return "".join(parts)


def _fill_levels(result: RunResult) -> str:
    if not result.fill_levels:
        return ""
    levels = sorted(result.fill_levels)
    summaries = {lvl: summarize(result.fill_levels[lvl]) for lvl in levels}
    rows: list[Sequence[object]] = [
        [f"p{p}"] + [_ms(summaries[lvl][f"Perc{p}"]) for lvl in levels] for p in (10, 50, 90, 99)
    ]
    rows.append(["samples"] + [int(summaries[lvl]["count"]) for lvl in levels])
    headers = ["pod startup (ms)"] + [f"{lvl:g}% full" for lvl in levels]
    return "<h2>Pod startup by cluster fill level</h2>" + _table(headers, rows)


def _throughput(result: RunResult) -> str:
    if not result.throughput:
        return ""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.plot([t - result.start for t, _ in result.throughput], [v for _, v in result.throughput], "-o", markersize=2)
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("pods/s")
        ax.set_title("Scheduling throughput over time")
        ax.grid(alpha=0.3)

    values = [v for _, v in result.throughput]
    s = summarize(values)
    line = (
        f"<p>p50 {s['Perc50']:.1f}, p90 {s['Perc90']:.1f}, max {s['max']:.1f} pods/s over {len(values)} intervals.</p>"
    )
    return f'<h2>Scheduling throughput</h2>{line}<div class="plot">{_svg(draw, height=3.0)}</div>'


def _api_latency(result: RunResult) -> str:
    samples = result.api_samples()
    if not samples:
        return ""
    keyed = sorted(samples.items(), key=lambda kv: -summarize(kv[1])["Perc99"])
    rows = []
    for key, values in keyed:
        s = summarize(values)
        sub = f"/{key.subresource}" if key.subresource else ""
        rows.append(
            (
                key.verb,
                f"{key.resource}{sub}",
                key.scope,
                int(s["count"]),
                _ms(s["Perc50"]),
                _ms(s["Perc90"]),
                _ms(s["Perc99"]),
            )
        )
    top = keyed[:20]

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        labels = [f"{k.verb} {k.resource}{'/' + k.subresource if k.subresource else ''} ({k.scope})" for k, _ in top]
        ax.barh(range(len(top)), [summarize(v)["Perc99"] * 1000 for _, v in top])
        ax.set_yticks(range(len(top)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("p99 latency (ms)")
        ax.set_title("API call latency by verb and resource (p99)")
        ax.grid(axis="x", alpha=0.3)

    height = max(2.4, 0.28 * len(top) + 1.0)
    return (
        "<h2>API call latency</h2>"
        + f'<div class="plot">{_svg(draw, height=height)}</div>'
        + _table(["verb", "resource", "scope", "count", "p50 ms", "p90 ms", "p99 ms"], rows, left=3)
    )


def _flowcontrol(result: RunResult) -> str:
    if not result.flowcontrol:
        return ""
    rows = [
        (lv.priority_level, lv.dispatched, lv.rejected, _ms(lv.wait_p50), _ms(lv.wait_p99)) for lv in result.flowcontrol
    ]
    return (
        "<h2>API priority and fairness</h2><p class='muted'>Requests per priority level while API responsiveness "
        "was measured, and how long they waited for a seat; as upstream, the API-latency SLI leaves that wait out."
        "</p>" + _table(["priority level", "dispatched", "rejected (429)", "wait p50 ms", "wait p99 ms"], rows)
    )


def _usage(result: RunResult) -> str:
    if not result.usage:
        return ""
    by_component: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for u in result.usage:
        by_component[u.component].append((u.time - result.start, u.cpu_cores, u.memory_bytes))

    def draw(fig: Figure) -> None:
        cpu_ax, mem_ax = fig.subplots(1, 2)
        for name, points in sorted(by_component.items()):
            points.sort()
            cpu_ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
            mem_ax.plot([p[0] for p in points], [p[2] / 2**20 for p in points], label=name)
        cpu_ax.set_title("CPU (cores)")
        mem_ax.set_title("Memory (MiB)")
        for ax in (cpu_ax, mem_ax):
            ax.set_xlabel("seconds since start")
            ax.grid(alpha=0.3)
        cpu_ax.legend()

    rows = []
    for name, points in sorted(by_component.items()):
        cpu = summarize(p[1] for p in points)
        mem = summarize(p[2] for p in points)
        rows.append(
            (
                name,
                f"{cpu['Perc50']:.3f}",
                f"{cpu['Perc99']:.3f}",
                f"{cpu['max']:.3f}",
                f"{mem['Perc50'] / 2**20:.1f}",
                f"{mem['max'] / 2**20:.1f}",
            )
        )
    return (
        "<h2>Resource usage</h2>"
        + f'<div class="plot">{_svg(draw, height=3.0)}</div>'
        + _table(["component", "CPU p50", "CPU p99", "CPU max", "MiB p50", "MiB max"], rows)
    )


def _context(result: RunResult) -> str:
    parts = ["<h2>Run</h2>"]
    skew = result.clock_skew
    if skew:
        level = str(skew.get("level", ""))
        cls = {"ok": "pass", "warn": "warn", "refuse": "fail"}.get(level, "warn")
        parts.append(f'<div class="banner {cls}">Clock check ({_e(level)}): {_e(skew.get("message", ""))}</div>')
    if result.parameters:
        params = [
            (k, (codec.dumps(v).decode() if not isinstance(v, str) else v, "l"))
            for k, v in sorted(result.parameters.items())
        ]
        parts.append(_table(["parameter", "value"], params))
    return "".join(parts)


def render_html(result: RunResult) -> str:
    started = datetime.fromtimestamp(result.start, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    verdict = ("PASSED", "pass") if result.passed else ("FAILED", "fail")
    body = [
        f"<h1>{_e(result.test)}</h1>",
        f'<p class="muted">started {started}, ran {result.end - result.start:.1f} s</p>',
        f'<div class="banner {verdict[1]}">Run {verdict[0]}: '
        f"{sum(v.passed for v in result.verdicts)}/{len(result.verdicts)} SLOs met, "
        f"{sum(1 for s in result.steps if s.error)} failed steps"
        + (f", {len(result.warnings)} measurement(s) not measured here" if result.warnings else "")
        + "</div>",
        _verdicts(result),
        _not_measured(result),
        _steps(result),
        _pod_startup(result),
        _fill_levels(result),
        _throughput(result),
        _api_latency(result),
        _flowcontrol(result),
        _usage(result),
        _context(result),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>kubemark: {_e(result.test)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(part for part in body if part)
        + "</body></html>\n"
    )


def render_report(run_dir: str | Path) -> Path:
    """Read a run directory and write its report.html; returns the file's path. Raises RunDirError."""
    d = Path(run_dir)
    result = read_run_dir(d)
    out = d / REPORT_FILE
    out.write_text(render_html(result), encoding="utf-8")
    return out
