"""CPU a hollow kube-proxy spends keeping its rule count, per endpoint-slice change, at clusterloader2 load sizes.

The load test at 1,000 nodes has ~1,650 services, each with one slice; every hollow node's proxy follows every
change. The rule count used to be recomputed over all services and slices at each sync (7.3 ms at 1,650
services: x 1,000 nodes syncing once a second is 7 CPU-seconds per second); RuleSet updates it per change.
Target: a slice change costs under 20 us, whatever the number of services.

    .venv/bin/python benchmarks/proxy_rules.py [--services 1650] [--endpoints 5] [--changes 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from kubemark import codec
from kubemark.hollow.proxy import SERVICE_NAME_LABEL, RuleSet


def _service(i: int) -> dict[str, Any]:
    return {"metadata": {"namespace": f"load-{i % 10}", "name": f"svc-{i}"}, "spec": {"ports": [{"port": 80}]}}


def _slice(i: int, endpoints: int, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": f"load-{i % 10}",
            "name": f"svc-{i}-abcde",
            "labels": {SERVICE_NAME_LABEL: f"svc-{i}"},
        },
        "endpoints": [{"addresses": [f"10.0.{i % 250}.{e}"], "conditions": {"ready": ready}} for e in range(endpoints)],
    }


def run(services: int, endpoints: int, changes: int) -> dict[str, object]:
    rules = RuleSet()
    t0 = time.perf_counter()
    for i in range(services):
        rules.set_service(_service(i))
        rules.set_slice(_slice(i, endpoints, True))
    fill = time.perf_counter() - t0
    # Changes cycle over the services, flipping readiness (prepared up front: decoding is the informer's cost).
    updates = [_slice(i % services, endpoints, i % 2 == 1) for i in range(changes)]
    t0 = time.perf_counter()
    for s in updates:
        rules.set_slice(s)
    per_change = (time.perf_counter() - t0) / changes
    return {
        "services": services,
        "endpoints_per_slice": endpoints,
        "changes": changes,
        "fill_s": fill,
        "per_change_us": per_change * 1e6,
        "rules": rules.rules,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1650)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--changes", type=int, default=20000)
    args = ap.parse_args()
    result = run(args.services, args.endpoints, args.changes)
    sys.stdout.write(codec.dumps(result).decode() + "\n")
    ok = float(result["per_change_us"]) < 20  # type: ignore[arg-type]
    print(
        f"proxy rule count: {result['per_change_us']:.1f} us per slice change at {args.services} services "
        f"(target < 20 us): {'met' if ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
