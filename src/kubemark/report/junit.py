"""junit.xml as clusterloader2 writes it: suite "ClusterLoaderV2", one testcase per step, plus one per SLO verdict.

A failed step or verdict carries a <failure> whose message says what failed (the step's error, or the verdict's
measured-vs-threshold detail), so CI dashboards show the reason without opening logs. A measurement the run did
not measure (not measured here) is a <skipped> testcase with the reason: visible, and neither passed nor failed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from kubemark.report.model import RunResult

__all__ = ["SUITE_NAME", "junit_xml", "write_junit"]

SUITE_NAME = "ClusterLoaderV2"


def junit_xml(result: RunResult) -> str:
    suite = ET.Element("testsuite", name=SUITE_NAME)
    failures = 0
    cases = 0
    for i, step in enumerate(result.steps, start=1):
        case = ET.SubElement(
            suite,
            "testcase",
            name=f"{result.test}: [step: {i:02d}] {step.name}",
            classname=SUITE_NAME,
            time=f"{step.seconds:.3f}",
        )
        cases += 1
        if step.error:
            failures += 1
            failure = ET.SubElement(
                case, "failure", message=step.error.splitlines()[0] if step.error else "", type="Failure"
            )
            failure.text = step.error
    for verdict in result.verdicts:
        case = ET.SubElement(
            suite, "testcase", name=f"{result.test}: [SLO] {verdict.name}", classname=SUITE_NAME, time="0"
        )
        cases += 1
        if not verdict.passed:
            failures += 1
            message = verdict.detail or f"{verdict.measured:g} {verdict.unit} against threshold {verdict.threshold:g}"
            failure = ET.SubElement(case, "failure", message=message, type="SLOViolation")
            failure.text = message
    skipped = 0
    for warning in result.warnings:
        case = ET.SubElement(
            suite,
            "testcase",
            name=f"{result.test}: [not measured] {warning.identifier} ({warning.method})",
            classname=SUITE_NAME,
            time="0",
        )
        cases += 1
        skipped += 1
        ET.SubElement(case, "skipped", message=f"not measured here: {warning.reason}")
    suite.set("tests", str(cases))
    suite.set("skipped", str(skipped))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("time", f"{max(0.0, result.end - result.start):.3f}")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(result: RunResult, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(junit_xml(result))
    return p
