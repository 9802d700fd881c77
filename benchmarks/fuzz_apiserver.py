"""Fuzzing the embedded API server on etcd: many more requests than tests/security/test_fuzz.py sends.

The same generators and oracle (tests/security/fuzzing.py): mutated objects of every served kind (wrong types,
huge numbers, deep nesting, unicode, missing fields, wrong apiVersion/kind), odd paths (unknown groups, versions
and resources, odd namespaces and names, encoded characters, `..`), query parameters (selectors, resourceVersion
and resourceVersionMatch, limit/continue, watch, timeoutSeconds, dryRun, propagationPolicy, ...) and patch
documents (JSON patch ops on any path including metadata.name/uid/resourceVersion, merge and strategic patches
with directives, apply). Each request gets: an answer within 5 s, no 5xx, a metav1.Status for every non-2xx,
storage unchanged unless it was an accepted write, no error logged by the server.

Target: 0 findings (0 5xx, 0 non-Status errors, 0 storage changes after rejected requests, 0 hangs).
Reported: requests, the outcome histogram by (method, status, reason), findings by kind with the first ones
in full, and (with `coverage` installed) the share of src/kubemark/master/apiserver lines the run reached.

    .venv/bin/python benchmarks/fuzz_apiserver.py [--examples 5000] [--seed 0] [--no-coverage]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the generators live with the tests (tests/security/fuzzing.py)

from _harness import emit  # noqa: E402

APISERVER_SOURCES = ROOT / "src" / "kubemark" / "master" / "apiserver"


def _start_coverage(enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        import coverage
    except ImportError:
        return None
    cov = coverage.Coverage(source=[str(APISERVER_SOURCES)], data_file=None, branch=False)
    cov.start()  # before the server's thread starts: coverage follows threads started after this
    return cov


def _coverage_figures(cov: Any) -> dict[str, Any] | None:
    if cov is None:
        return None
    cov.stop()
    data = cov.get_data()
    statements = hit = 0
    per_file: dict[str, float] = {}
    for path in sorted(APISERVER_SOURCES.rglob("*.py")):
        _, lines, _, missing, _ = cov.analysis2(str(path))
        statements += len(lines)
        hit += len(lines) - len(missing)
        if lines:
            per_file[str(path.relative_to(APISERVER_SOURCES))] = round(
                100 * (len(lines) - len(missing)) / len(lines), 1
            )
    del data
    return {
        "scope": "src/kubemark/master/apiserver (statements)",
        "statements": statements,
        "statements_hit": hit,
        "percent": round(100 * hit / statements, 1) if statements else 0.0,
        "per_file_percent": per_file,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="requests to generate and send")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (runs with the same seed are the same)")
    parser.add_argument("--reseed-every", type=int, default=50, help="re-create missing seed objects every N requests")
    parser.add_argument("--no-coverage", action="store_true", help="do not measure API server line coverage")
    args = parser.parse_args()

    cov = _start_coverage(not args.no_coverage)
    from hypothesis import HealthCheck, given, seed, settings
    from tests.security.fuzzing import FuzzRequest, FuzzServer, requests

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kubemark-fuzz-") as tmp, FuzzServer(Path(tmp)) as server:

        @seed(args.seed)
        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(requests())
        def one_request(request: FuzzRequest) -> None:
            server.run(request)  # findings are counted in server.stats, not raised: the run goes on
            if server.stats.requests % args.reseed_every == 0:
                server.reseed()

        one_request()
        stats = server.stats.to_json()
    elapsed = time.monotonic() - started
    coverage_figures = _coverage_figures(cov)
    result = {
        "benchmark": "fuzz_apiserver",
        "parameters": {"examples": args.examples, "seed": args.seed, "reseed_every": args.reseed_every},
        "seconds": round(elapsed, 1),
        "requests_per_second": round(stats["requests"] / elapsed, 1) if elapsed else 0.0,
        **stats,
        "findings_total": sum(stats["findings"].values()),
        "coverage": coverage_figures,
    }
    covered = f", {coverage_figures['percent']}% of apiserver lines" if coverage_figures else ""
    emit(
        result,
        f"fuzz_apiserver: {stats['requests']} requests, {stats['distinct_outcomes']} distinct outcomes, "
        f"{stats['server_errors_5xx']} 5xx, {stats['rejected_with_storage_change']} storage changes after rejected "
        f"requests, {result['findings_total']} findings{covered} in {elapsed:.0f} s",
    )


if __name__ == "__main__":
    main()
