"""The same `kubemark run` on the embedded master and on the real control plane, figures side by side.

Runs `kubemark run --nodes N --test TEST` twice, once per master (`--master embedded`, then `--master real`:
etcd + the real kube-apiserver, kube-controller-manager and kube-scheduler that `scripts/kube-binaries.sh`
builds), each into its own run directory, then reads both back (`read_run_dir`) and lines up what a user
compares: SLO verdicts, pod startup of the latency and saturation pods (p50/p90/p99), the API server's own
latency SLI p99 per call (the `api_call_latency` verdicts: `apiserver_request_sli_duration_seconds`, the same
metric on both), scheduler throughput (1 s windows), and CPU (p50/p99 cores) and peak RSS per component.
The hollow nodes are the same code on both sides, so the differences are the masters'.

Prints JSON (both runs' figures, `--markdown` also a README table) and a one-line summary.

    .venv/bin/python benchmarks/embedded_vs_real.py [--nodes 100] [--test density] [--markdown]
    .venv/bin/python benchmarks/embedded_vs_real.py --runs A_DIR B_DIR --markdown   # tabulate two existing runs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from kubemark import codec
from kubemark.measure.percentiles import pod_startup_series, summarize
from kubemark.report.model import RunResult, read_run_dir

MASTERS = ("embedded", "real")
KUBEMARK = Path(sys.executable).with_name("kubemark")
# What clusterloader2's density calls its two pod populations (the PodStartupLatency Identifiers).
POPULATIONS = {"latency pods": "PodStartupLatency", "saturation pods": "SaturationPodStartupLatency"}


def _round(x: float, digits: int = 3) -> float:
    return round(float(x), digits)


def run_figures(result: RunResult) -> dict[str, Any]:
    """The figures of one run that the side-by-side table shows."""
    pods: dict[str, Any] = {}
    for label, identifier in POPULATIONS.items():
        timelines = [p for p in result.pods if p.measurement == identifier]
        startup = pod_startup_series(timelines)["pod_startup"]
        if startup.samples:
            s = startup.summary()
            pods[label] = {"count": len(startup.samples), **{f"p{q}": _round(s[f"Perc{q}"]) for q in (50, 90, 99)}}
    api = {
        v.name.removeprefix("api_call_latency "): _round(v.measured, 4)
        for v in result.verdicts
        if v.name.startswith("api_call_latency ")
    }
    throughput: dict[str, float] = {}
    if result.throughput:
        s = summarize(v for _, v in result.throughput)
        throughput = {"p50": _round(s["Perc50"], 1), "p90": _round(s["Perc90"], 1), "max": _round(s["max"], 1)}
    cpu: dict[str, list[float]] = defaultdict(list)
    mem: dict[str, float] = defaultdict(float)
    for u in result.usage:
        cpu[u.component].append(u.cpu_cores)
        mem[u.component] = max(mem[u.component], u.memory_bytes)
    components = {
        name: {
            "cpu_p50_cores": _round(summarize(cpu[name])["Perc50"]),
            "cpu_p99_cores": _round(summarize(cpu[name])["Perc99"]),
            "rss_max_mib": _round(mem[name] / 2**20, 0),
        }
        for name in sorted(cpu)
    }
    return {
        "test": result.test,
        "wall_s": _round(result.end - result.start, 1),
        "slos_passed": sum(v.passed for v in result.verdicts),
        "slos": len(result.verdicts),
        "passed": result.passed,
        "failed_slos": [v.name for v in result.verdicts if not v.passed],
        "pod_startup_s": pods,
        "api_sli_p99_s": api,
        "scheduling_throughput_pods_per_s": throughput,
        "components": components,
    }


def _cell(value: Any, unit: str = "") -> str:
    return "—" if value is None else f"{value:g}{unit}" if isinstance(value, float | int) else str(value)


def markdown_table(figures: dict[str, dict[str, Any]]) -> str:
    """One README table: a row per figure, a column per master."""
    masters = list(figures)
    rows: list[tuple[str, list[Any]]] = []

    def row(label: str, get: Any, unit: str = "") -> None:
        values = [get(figures[m]) for m in masters]
        if any(v is not None for v in values):
            rows.append((label, [_cell(v, unit) for v in values]))

    row("SLOs passed", lambda f: f"{f['slos_passed']}/{f['slos']}")
    row("wall time", lambda f: f["wall_s"], " s")
    for label in POPULATIONS:
        for q in ("p50", "p99"):
            row(f"pod startup, {label} {q}", lambda f, la=label, q=q: f["pod_startup_s"].get(la, {}).get(q), " s")
    for key in ("p50", "p90", "max"):
        row(f"scheduler throughput {key}", lambda f, k=key: f["scheduling_throughput_pods_per_s"].get(k), " pods/s")
    calls = sorted({c for f in figures.values() for c in f["api_sli_p99_s"]})
    for call in calls:
        row(f"API SLI p99 {call}", lambda f, c=call: f["api_sli_p99_s"].get(c), " s")
    names = sorted({c for f in figures.values() for c in f["components"]})
    for name in names:
        row(
            f"{name}: CPU p50 / p99, peak RSS",
            lambda f, n=name: (
                None
                if n not in f["components"]
                else "{cpu_p50_cores:g} / {cpu_p99_cores:g} cores, {rss_max_mib:g} MiB".format(**f["components"][n])
            ),
        )
    head = "| | " + " | ".join(f"{m} master" for m in masters) + " |"
    sep = "| --- |" + " --- |" * len(masters)
    return "\n".join([head, sep, *(f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows)])


def _run(master: str, args: argparse.Namespace, out: Path) -> tuple[int, float]:
    cmd = [str(KUBEMARK), "run", "--nodes", str(args.nodes), "--test", args.test, "--out", str(out), "--no-progress"]
    cmd += ["--master", master]
    if master == "real" and args.kube_binaries:
        cmd += ["--kube-binaries", str(args.kube_binaries)]
    for item in args.set or []:
        cmd += ["--set", item]
    print(f"# {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    # The run's own terminal output goes to stderr, so stdout stays the JSON.
    rc = subprocess.run(cmd, stdout=sys.stderr, check=False).returncode
    return rc, time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--test", default="density")
    parser.add_argument("--set", action="append", help="test parameter key=value, passed to both runs")
    parser.add_argument("--kube-binaries", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="parent of the two run dirs (default: a temp dir)")
    parser.add_argument("--runs", nargs=2, type=Path, metavar=("EMBEDDED_DIR", "REAL_DIR"), help="skip running")
    parser.add_argument("--markdown", action="store_true", help="also print the README table (to stderr)")
    args = parser.parse_args()

    exits: dict[str, int] = {}
    walls: dict[str, float] = {}
    if args.runs:
        dirs = dict(zip(MASTERS, args.runs, strict=True))
    else:
        parent = args.out or Path(tempfile.mkdtemp(prefix="kubemark-embedded-vs-real-"))
        dirs = {m: parent / f"{args.test}-{m}" for m in MASTERS}
        for master in MASTERS:
            exits[master], walls[master] = _run(master, args, dirs[master])
    figures = {m: run_figures(read_run_dir(d)) for m, d in dirs.items()}
    doc = {
        "benchmark": "embedded_vs_real",
        "nodes": args.nodes,
        "test": args.test,
        "run_dirs": {m: str(d) for m, d in dirs.items()},
        "exit_codes": exits,
        "command_wall_s": {m: round(w, 1) for m, w in walls.items()},
        "figures": figures,
    }
    sys.stdout.write(codec.dumps_pretty(doc).decode() + "\n")
    if args.markdown:
        print(markdown_table(figures), file=sys.stderr)
    e, r = figures["embedded"], figures["real"]

    def p99(f: dict[str, Any]) -> str:
        return _cell(f["pod_startup_s"].get("latency pods", {}).get("p99"), " s")

    print(
        f"embedded_vs_real: {args.test} x {args.nodes} nodes: SLOs {e['slos_passed']}/{e['slos']} embedded vs "
        f"{r['slos_passed']}/{r['slos']} real; latency-pod startup p99 {p99(e)} vs {p99(r)}; wall "
        f"{e['wall_s']:g} s vs {r['wall_s']:g} s"
    )
    return 0 if all(f["passed"] for f in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
