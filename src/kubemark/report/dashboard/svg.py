"""The trend plot as inline SVG, drawn by hand: a handful of elements per point, no plotting library per request.

Each run is a `<circle class="point">` (a link to its run page, `data-run` its id, a `<title>` tooltip), each
series a polyline, the SLO threshold a dashed `class="threshold"` line. A threshold more than three times the
largest value would flatten the points, so it is drawn along the top edge and marked off scale instead.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PlotPoint", "PlotSeries", "nice_step", "trend_svg"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 24, 56


@dataclass(frozen=True)
class PlotPoint:
    x: int  # position on the common axis (runs in time order)
    value: float  # in display units
    threshold: float | None  # in display units
    label: str  # tooltip
    href: str
    run_id: str
    bad: bool = False  # beyond its threshold


@dataclass(frozen=True)
class PlotSeries:
    label: str
    points: Sequence[PlotPoint]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def nice_step(span: float, ticks: int = 5) -> float:
    """A 1/2/5 x 10^k step that cuts `span` into about `ticks` parts."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def trend_svg(
    series: Sequence[PlotSeries],
    x_labels: Sequence[str],
    y_label: str,
    *,
    unit: str = "",
    width: int = 960,
    height: int = 340,
) -> str:
    """The plot; `x_labels[i]` names axis position i (a run's start time); values are in `unit`."""
    points = [p for s in series for p in s.points]
    n = max(len(x_labels), 1)
    values = [p.value for p in points if math.isfinite(p.value)]
    thresholds = [p.threshold for p in points if p.threshold is not None and math.isfinite(p.threshold)]
    top_value = max(values, default=0.0)
    off_scale = bool(thresholds) and top_value > 0 and max(thresholds) > 3 * top_value
    top = max([top_value, *([] if off_scale else thresholds)]) or 1.0
    step = nice_step(top)
    y_max = step * math.ceil(top * 1.05 / step)
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + (plot_w / 2 if n == 1 else x * plot_w / (n - 1))

    def sy(v: float) -> float:
        return _TOP + plot_h - min(max(v, 0.0), y_max) / y_max * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(y_label)} over runs">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>',
    ]
    tick = 0.0
    while tick <= y_max + step / 2:
        y = sy(tick)
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_fmt(tick)}</text>')
        tick += step
    every = max(1, math.ceil(n / 10))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            anchor = "middle" if 0 < i < n - 1 or n == 1 else "start" if i == 0 else "end"
            out.append(
                f'<text x="{sx(i):.1f}" y="{_TOP + plot_h + 16}" text-anchor="{anchor}" font-size="10">'
                f"{_e(label)}</text>"
            )
    out.append(
        f'<text x="14" y="{_TOP + plot_h / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {_TOP + plot_h / 2:.0f})">{_e(y_label)}</text>'
    )
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        marked = [p for p in s.points if p.threshold is not None]
        if marked:
            ys = [_TOP + 1.0] * len(marked) if off_scale else [sy(p.threshold or 0.0) for p in marked]
            xs = [sx(p.x) for p in marked]
            if len(marked) == 1:
                xs, ys = [_LEFT, _LEFT + plot_w], ys * 2
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
            title = f"SLO threshold {_fmt(marked[-1].threshold or 0.0)} {unit}".rstrip()
            if off_scale:
                title += ": above this range (drawn at the top edge)"
            out.append(
                f'<polyline class="threshold{" off-scale" if off_scale else ""}" points="{coords}" fill="none" '
                f'stroke="#b00020" stroke-width="1.5" stroke-dasharray="6 4"><title>{_e(title)}</title></polyline>'
            )
            if i == 0:
                out.append(
                    f'<text x="{_LEFT + plot_w - 4}" y="{ys[-1] - 4:.1f}" text-anchor="end" font-size="11" '
                    f'fill="#b00020">{_e(title)}</text>'
                )
        if len(s.points) > 1:
            coords = " ".join(f"{sx(p.x):.1f},{sy(p.value):.1f}" for p in s.points)
            out.append(f'<polyline class="series" points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for p in s.points:
            fill = "#b00020" if p.bad else color
            out.append(
                f'<a href="{_e(p.href)}"><circle class="point{" bad" if p.bad else ""}" cx="{sx(p.x):.1f}" '
                f'cy="{sy(p.value):.1f}" r="4.5" fill="{fill}" data-run="{_e(p.run_id)}" data-value="{p.value!r}">'
                f"<title>{_e(p.label)}</title></circle></a>"
            )
    if len(series) > 1:
        for i, s in enumerate(series):
            x = _LEFT + 150 * i
            out.append(f'<rect x="{x}" y="{height - 22}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
            out.append(f'<text x="{x + 14}" y="{height - 13}" font-size="11">{_e(s.label)}</text>')
    out.append("</svg>")
    return "".join(out)
