"""The dashboard's aiohttp application and server: read-only GET routes over a `RunIndex`.

    /                         runs table (filter and sort in the query string, see `listing`)
    /trend?metric=&group=&mix= one metric over runs
    /compare?a=&b=&threshold=  two runs side by side, per-metric deltas, regressions
    /run/<root>/<name>         one run: facts, figures, files
    /run/<root>/<name>/<file>  a file of that run (report.html, PerfData, CSVs), never anything outside it
    /api/runs, /api/trend, /api/compare   the same as JSON

Served files get a Content-Security-Policy without scripts or network access, so a run directory's HTML cannot
act on the dashboard's origin.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from kubemark import codec
from kubemark.measure.slo import SLOThresholds
from kubemark.report.dashboard import api, pages
from kubemark.report.dashboard.comparing import compare_two
from kubemark.report.dashboard.listing import RunsQuery
from kubemark.report.dashboard.runs import RunIndex, RunInfo, RunKind
from kubemark.report.dashboard.trend import build_trend, parse_group

__all__ = ["INDEX", "DashboardServer", "create_app"]

INDEX = web.AppKey("index", RunIndex)
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:"
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(body=codec.dumps(obj), status=status, content_type="application/json")


def _not_found(message: str) -> web.Response:
    return _html(pages.not_found_page(message), status=404)


def _run_of(request: web.Request) -> RunInfo | None:
    return request.app[INDEX].get(f"{request.match_info['root']}/{request.match_info['name']}")


async def runs_view(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    every = index.scan()
    query = RunsQuery.from_params(request.query)
    roots = [str(r) for r in index.roots]
    return _html(pages.runs_page(query.apply(every), every, query, roots, index.problems()))


async def runs_api(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    shown = RunsQuery.from_params(request.query).apply(index.scan())
    return _json(
        {"roots": [str(r) for r in index.roots], "problems": index.problems(), "runs": [api.run_json(r) for r in shown]}
    )


async def trend_view(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    mix = request.query.get("mix") == "1"
    group = parse_group(request.query.get("group", ""))
    trend = build_trend(index, index.scan(), request.query.get("metric") or None, group, mix)
    return _html(pages.trend_page(trend, mix))


async def trend_api(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    group = parse_group(request.query.get("group", ""))
    mix = request.query.get("mix") == "1"
    return _json(api.trend_json(build_trend(index, index.scan(), request.query.get("metric") or None, group, mix)))


def _pick(runs: Sequence[RunInfo], a_id: str, b_id: str) -> tuple[RunInfo | None, RunInfo | None]:
    """The runs named, or by default the newest readable run (B) and the one before it of its group (A)."""
    by_id = {r.id: r for r in runs}
    if a_id or b_id:
        return by_id.get(a_id), by_id.get(b_id)
    ok = sorted((r for r in runs if r.kind is not RunKind.BROKEN), key=lambda r: (r.start or 0.0, r.id))
    if len(ok) < 2:
        return None, None
    b = ok[-1]
    same = [r for r in ok[:-1] if r.group == b.group]
    return (same or ok[:-1])[-1], b


def _threshold(request: web.Request) -> float:
    try:
        value = float(request.query.get("threshold", "10"))
    except ValueError:
        raise web.HTTPBadRequest(text="threshold: expected a number (percent)") from None
    if not value >= 0:
        raise web.HTTPBadRequest(text="threshold: must be >= 0")
    return value


async def compare_view(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    runs = sorted(index.scan(), key=lambda r: (-(r.start or 0.0), r.id))
    threshold = _threshold(request)
    a, b = _pick(runs, request.query.get("a", ""), request.query.get("b", ""))
    outcome = compare_two(index, a, b, threshold) if a is not None and b is not None else None
    return _html(pages.compare_page(runs, a, b, threshold, outcome, request.query.get("changed") == "1"))


async def compare_api(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    a, b = _pick(index.scan(), request.query.get("a", ""), request.query.get("b", ""))
    if a is None or b is None:
        return _json({"error": "a and b must name runs (ids as /api/runs gives them)"}, status=404)
    return _json(api.compare_json(a, b, compare_two(index, a, b, _threshold(request))))


async def run_view(request: web.Request) -> web.Response:
    index = request.app[INDEX]
    run = _run_of(request)
    if run is None:
        return _not_found("no such run")
    try:
        files = sorted(e.name for e in os.scandir(run.path) if e.is_file())
    except OSError:
        files = []
    metrics = index.metrics(run)
    return _html(pages.run_page(run, files, metrics.values, metrics.errors))


async def run_file(request: web.Request) -> web.StreamResponse:
    run = _run_of(request)
    path = None if run is None else request.app[INDEX].resolve_file(run, request.match_info["path"])
    if path is None:
        return _not_found("no such file in this run")
    response = web.FileResponse(path)
    response.headers["Content-Security-Policy"] = FILE_CSP
    return response


def create_app(roots: Sequence[str | Path], *, thresholds: SLOThresholds | None = None) -> web.Application:
    """The dashboard over `roots` (directories of run directories); nothing is read before a request."""
    app = web.Application(middlewares=[_headers])
    app[INDEX] = RunIndex(roots, thresholds=thresholds)
    app.router.add_get("/", runs_view)
    app.router.add_get("/trend", trend_view)
    app.router.add_get("/compare", compare_view)
    app.router.add_get("/run/{root:\\d+}/{name}", run_view)
    app.router.add_get("/run/{root:\\d+}/{name}/{path:.+}", run_file)
    app.router.add_get("/api/runs", runs_api)
    app.router.add_get("/api/trend", trend_api)
    app.router.add_get("/api/compare", compare_api)
    return app


class DashboardServer:
    """The dashboard listening on `host:port` (0: a free port) until `stop()`; `url` once started."""

    def __init__(self, roots: Sequence[str | Path], host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(roots)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
