"""Request-profile fidelity: our hollow nodes' API requests against Go kubemark's, row by row.

Go kubemark's hollow kubelet runs kubelet's own code, so the requests per node-minute the API server saw from
its nodes are the reference. A profile maps "VERB resource[/subresource]" to requests per node-minute (as
`benchmarks/peer_go_kubemark.py` writes them). `compare_profiles` lines the two up; a row is flagged when ours
differs from the reference by more than `tolerance` (10 %) of it, or exists on one side only. Rows where both
rates are below `min_rate` are shown but not flagged (a window's counting noise). An explanation (row key ->
text) marks a flagged row as explained.

`kubemark fidelity` prints the table and exits 0 with the flags shown; `--strict` exits 1 when a flagged row
has no explanation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

__all__ = [
    "DEFAULT_TOLERANCE",
    "FidelityError",
    "FidelityReport",
    "FidelityRow",
    "compare_profiles",
    "fidelity_table",
    "load_explanations",
    "load_profiles",
    "split_key",
]

DEFAULT_TOLERANCE = 0.10
DEFAULT_PROFILE = "requests_per_node_minute"
REFERENCE_KIND = "go"
CANDIDATE_KIND = "ours"


class FidelityError(ValueError):
    """An input file is missing, unreadable or holds no profile of the kind asked for."""


def split_key(key: str) -> tuple[str, str, str]:
    """ "PATCH nodes/status" -> ("PATCH", "nodes", "status"); "LIST pods" -> ("LIST", "pods", "")."""
    verb, _, path = key.strip().partition(" ")
    resource, _, subresource = path.strip().partition("/")
    return verb.upper(), resource, subresource


@dataclass(frozen=True, slots=True)
class FidelityRow:
    verb: str
    resource: str
    subresource: str
    reference: float  # requests per node-minute, Go kubemark
    candidate: float  # ours
    flagged: bool
    verdict: str  # "ok", "+35%", "-20%", "only ours", "missing in ours", "below noise floor"
    explanation: str | None = None

    @property
    def key(self) -> str:
        return f"{self.verb} {self.resource}/{self.subresource}" if self.subresource else f"{self.verb} {self.resource}"

    @property
    def ratio(self) -> float | None:
        """Ours / reference (None when the reference made no such request)."""
        return self.candidate / self.reference if self.reference else None


@dataclass
class FidelityReport:
    rows: list[FidelityRow]
    tolerance: float
    min_rate: float
    reference_label: str = "Go kubemark"
    candidate_label: str = "ours"
    context: str = ""  # e.g. "ours x 50 vs go x 50", shown in the title
    what: str = "Requests per node-minute"  # what the rates are, for the title

    @property
    def flagged(self) -> list[FidelityRow]:
        return [r for r in self.rows if r.flagged]

    @property
    def unexplained(self) -> list[FidelityRow]:
        return [r for r in self.rows if r.flagged and not r.explanation]

    @property
    def totals(self) -> tuple[float, float]:
        return sum(r.reference for r in self.rows), sum(r.candidate for r in self.rows)


def _verdict(reference: float, candidate: float, tolerance: float, min_rate: float) -> tuple[bool, str]:
    if reference < min_rate and candidate < min_rate:
        return False, "below noise floor"
    if reference == 0:
        return True, "only ours"
    if candidate == 0:
        return True, "missing in ours"
    change = (candidate - reference) / reference
    # A hair of slack so 10.0 % computed as 10.000000001 % is not flagged.
    if abs(change) > tolerance + 1e-9:
        return True, f"{change:+.0%}"
    return False, "ok"


def compare_profiles(
    reference: Mapping[str, float],
    candidate: Mapping[str, float],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    min_rate: float = 0.0,
    explanations: Mapping[str, str] | None = None,
) -> FidelityReport:
    """One row per (verb, resource, subresource) of either profile, sorted by resource, subresource, verb.
    Keys are normalised ("patch  nodes/status" and "PATCH nodes/status" are one row; their rates add)."""
    if tolerance < 0 or min_rate < 0:
        raise ValueError("tolerance and min_rate must be >= 0")
    ref = _normalise(reference)
    cand = _normalise(candidate)
    notes = {_normalise_key(k): v for k, v in (explanations or {}).items()}
    rows = []
    for key in sorted(set(ref) | set(cand), key=lambda k: (k[1], k[2], k[0])):
        r, c = ref.get(key, 0.0), cand.get(key, 0.0)
        flagged, verdict = _verdict(r, c, tolerance, min_rate)
        rows.append(
            FidelityRow(*key, reference=r, candidate=c, flagged=flagged, verdict=verdict, explanation=notes.get(key))
        )
    return FidelityReport(rows, tolerance, min_rate)


def _normalise_key(key: str) -> tuple[str, str, str]:
    return split_key(key)


def _normalise(profile: Mapping[str, float]) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for key, value in profile.items():
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise FidelityError(f"{key!r}: not a number: {value!r}") from None
        if rate < 0:
            raise FidelityError(f"{key!r}: negative rate {rate}")
        k = _normalise_key(key)
        out[k] = out.get(k, 0.0) + rate
    return out


# -- inputs ----------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise FidelityError(f"{path}: {exc.strerror or exc}") from None
    # A benchmark's stdout is the JSON object followed by its one-line summary: take the object.
    try:
        return json.loads(text)
    except ValueError:
        end = text.rfind("}")
        try:
            return json.loads(text[: end + 1])
        except ValueError:
            raise FidelityError(f"{path}: not JSON") from None


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _is_profile(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, int | float) for v in obj.values())


def _runs(doc: Any) -> list[Mapping[str, Any]]:
    runs = doc.get("runs") if isinstance(doc, Mapping) else None
    return [r for r in runs if isinstance(r, Mapping)] if isinstance(runs, list) else []


def _pick_run(runs: list[Mapping[str, Any]], kind: str, nodes: int | None, profile: str) -> Mapping[str, Any] | None:
    matching = [r for r in runs if r.get("kind") == kind and _dig(r, profile) is not None]
    if nodes is not None:
        matching = [r for r in matching if r.get("nodes") == nodes]
    return max(matching, key=lambda r: r.get("nodes") or 0, default=None)


def _profile_of(doc: Any, kind: str, nodes: int | None, profile: str, where: str) -> tuple[dict[str, float], str]:
    """A profile from a benchmark JSON (its run of `kind`), a run object, or a bare profile mapping."""
    if _runs(doc):
        run = _pick_run(_runs(doc), kind, nodes, profile)
        if run is None:
            at = f" with {nodes} nodes" if nodes is not None else ""
            raise FidelityError(f"{where}: no {kind!r} run{at} with a {profile!r} profile")
        return dict(_dig(run, profile)), f"{kind} x {run.get('nodes')}"
    found = _dig(doc, profile)
    if found is not None:
        if not isinstance(found, Mapping):
            raise FidelityError(f"{where}: {profile!r} is not a mapping")
        label = f"{doc.get('kind', kind)} x {doc.get('nodes')}" if doc.get("nodes") else str(doc.get("kind", kind))
        return dict(found), label
    if _is_profile(doc):
        return dict(doc), kind
    raise FidelityError(f"{where}: no {profile!r} profile (nor runs[] holding one, nor a bare profile mapping)")


def _common_nodes(runs: list[Mapping[str, Any]], profile: str) -> int | None:
    """The largest N with both a reference and a candidate run."""
    have = {
        kind: {r.get("nodes") for r in runs if r.get("kind") == kind and _dig(r, profile) is not None}
        for kind in (REFERENCE_KIND, CANDIDATE_KIND)
    }
    both = [n for n in have[REFERENCE_KIND] & have[CANDIDATE_KIND] if isinstance(n, int)]
    return max(both, default=None)


def load_profiles(
    paths: list[Path], *, profile: str = DEFAULT_PROFILE, nodes: int | None = None
) -> tuple[dict[str, float], dict[str, float], str, str]:
    """(reference, candidate, reference label, candidate label) from one benchmark JSON holding both kinds'
    runs (at `nodes`, default the largest N both have) or from two files (Go's first, ours second), each a
    benchmark JSON, a single run object or a bare profile mapping. `profile` is a dotted key, e.g.
    "audit.requests_per_node_minute"."""
    if len(paths) == 1:
        doc = _read_json(paths[0])
        runs = _runs(doc)
        if not runs:
            raise FidelityError(f"{paths[0]}: one file must be a benchmark JSON with runs[] of both kinds")
        n = nodes if nodes is not None else _common_nodes(runs, profile)
        if n is None:
            raise FidelityError(f"{paths[0]}: no N with both a {REFERENCE_KIND!r} and a {CANDIDATE_KIND!r} run")
        ref, ref_label = _profile_of(doc, REFERENCE_KIND, n, profile, str(paths[0]))
        cand, cand_label = _profile_of(doc, CANDIDATE_KIND, n, profile, str(paths[0]))
        return ref, cand, ref_label, cand_label
    if len(paths) == 2:
        ref, ref_label = _profile_of(_read_json(paths[0]), REFERENCE_KIND, nodes, profile, str(paths[0]))
        cand, cand_label = _profile_of(_read_json(paths[1]), CANDIDATE_KIND, nodes, profile, str(paths[1]))
        return ref, cand, ref_label, cand_label
    raise FidelityError("give one benchmark JSON with both kinds, or two files: Go kubemark's, then ours")


def load_explanations(path: Path) -> dict[str, str]:
    """Row key -> why it differs, from a YAML or JSON mapping."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise FidelityError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise FidelityError(f"{path}: not YAML/JSON: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        raise FidelityError(f"{path}: expected a mapping of row key (e.g. 'PATCH nodes/status') to text")
    return {str(k): v for k, v in data.items()}


# -- output ---------------------------------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value:.3f}" if value else "-"


def fidelity_table(report: FidelityReport) -> Table:
    pct = f"{report.tolerance:.0%}"
    table = Table(
        title=f"{report.what}{f' ({report.context})' if report.context else ''}: flagged when > {pct} apart",
        caption=f"{len(report.flagged)} flagged, {len(report.unexplained)} without an explanation",
    )
    for col in ("verb", "resource", "subresource", report.reference_label, report.candidate_label, "ratio", "verdict"):
        table.add_column(
            col, justify="right" if col in (report.reference_label, report.candidate_label, "ratio") else "left"
        )
    table.add_column("explanation", overflow="fold")
    for row in report.rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        if row.flagged:
            verdict = f"[yellow]{row.verdict}[/yellow]" if row.explanation else f"[red]{row.verdict}[/red]"
        else:
            verdict = f"[green]{row.verdict}[/green]"
        table.add_row(
            row.verb,
            row.resource,
            row.subresource,
            _rate(row.reference),
            _rate(row.candidate),
            ratio,
            verdict,
            row.explanation or "",
        )
    ref_total, cand_total = report.totals
    total_ratio = f"{cand_total / ref_total:.2f}" if ref_total else "-"
    table.add_section()
    table.add_row("all", "", "", f"{ref_total:.3f}", f"{cand_total:.3f}", total_ratio, "", "")
    return table
