"""clusterloader2 summary files in a run directory: which files they are, what they summarise, their contents.

clusterloader2 (and `kubemark run`, which names its files the same way) writes `<Summary>_<test>_<RFC3339>.json`,
e.g. `PodStartupLatency_SaturationPodStartupLatency_density_2026-01-02T03:04:05Z.json`. Both the summary and
the test name may hold underscores, so the test is known from summary.json (kubemark runs) or taken as the
longest run of trailing name parts that every file of the directory shares (clusterloader2 runs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kubemark import codec

__all__ = ["SummaryFile", "SummaryFileError", "find_summary_files", "load_summary", "split_summary_name"]

# The RFC 3339 time Go's time.RFC3339 layout writes (fractions and offsets accepted too), then ".json".
_TIME_SUFFIX = re.compile(r"_(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))\.json$")


class SummaryFileError(ValueError):
    """A summary file that cannot be read or parsed; the message names the file."""


@dataclass(frozen=True, slots=True)
class SummaryFile:
    name: str  # file name inside the run directory
    summary: str  # e.g. "PodStartupLatency_PodStartupLatency", "APIResponsivenessPrometheus_server"
    test: str
    when: datetime


def split_summary_name(file_name: str) -> tuple[str, datetime] | None:
    """`"X_density_2026-01-02T03:04:05Z.json"` -> ("X_density", that time); None when not a summary file name."""
    m = _TIME_SUFFIX.search(file_name)
    if m is None or m.start() == 0:
        return None
    try:
        when = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
    except ValueError:
        return None
    return file_name[: m.start()], when


def _common_test(stems: list[list[str]]) -> str:
    """The longest tail of name parts every stem shares, leaving each stem at least one part of summary."""
    shortest = min(len(s) for s in stems)
    n = 0
    while n < shortest - 1 and len({tuple(s[-(n + 1) :]) for s in stems}) == 1:
        n += 1
    return "_".join(stems[0][-n:]) if n else ""


def find_summary_files(file_names: Iterable[str], test: str | None = None) -> list[SummaryFile]:
    """The summary files among `file_names` (sorted by name); `test` when known, else inferred as above."""
    parsed = sorted((name, *split) for name in file_names if (split := split_summary_name(name)) is not None)
    if not parsed:
        return []
    if test is None:
        test = _common_test([stem.split("_") for _, stem, _ in parsed])
    out = []
    for name, stem, when in parsed:
        summary = stem[: -len(test) - 1] if test and stem.endswith("_" + test) else stem
        out.append(SummaryFile(name, summary, test, when))
    return out


def load_summary(path: Path) -> Any:
    """A summary file's JSON; raises SummaryFileError naming the file."""
    try:
        return codec.loads(path.read_bytes())
    except OSError as exc:
        raise SummaryFileError(f"{path.name}: {exc.strerror or exc}") from None
    except codec.JSONDecodeError as exc:
        raise SummaryFileError(f"{path.name}: invalid JSON: {exc}") from None
