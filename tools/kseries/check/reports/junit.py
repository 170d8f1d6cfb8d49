"""report.xml: JUnit XML, one testsuite per patch, one testcase per check.

A failed check is a <failure>, a skipped one <skipped>; a warning passes
(JUnit has no such state) with the description in <system-out>.  KUnit
cases become test cases of their own under the kunit check.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..model import PatchReport, Result, SeriesReport, State


def _case(suite: ET.Element, classname: str, name: str, state: State, text: str,
          seconds: float, log: str) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name,
                         time=f"{seconds:.3f}")
    if state == State.FAIL:
        ET.SubElement(case, "failure", message=text, type="fail").text = \
            f"{text}\nlog: {log}" if log else text
    elif state == State.SKIP:
        ET.SubElement(case, "skipped", message=text)
    else:
        ET.SubElement(case, "system-out").text = f"{state.value}: {text}" + (
            f"\nlog: {log}" if log else "")


def _counts(row: PatchReport) -> tuple[int, int, int]:
    """(test cases, failures, skipped) of a patch, KUnit cases included."""
    states = [r.state for r in row.results.values()] + [
        s.state for r in row.results.values() for s in r.subtests]
    return len(states), states.count(State.FAIL), states.count(State.SKIP)


def classname(row: PatchReport) -> str:
    """``check-series.NN-subject-words``: no dot inside the patch part, since
    Jenkins reads what follows the last dot as the class (it showed
    "patch" for every file name ending in .patch)."""
    stem = row.patch.name.removesuffix(".patch").replace(".", "_")
    return f"check-series.{stem}"


def _suite(root: ET.Element, row: PatchReport) -> None:
    name = f"{row.patch.label} {row.patch.subject}"
    results: list[Result] = list(row.results.values())
    cases, fails, skips = _counts(row)
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(cases), failures=str(fails),
                          errors="0", skipped=str(skips),
                          time=f"{sum(r.seconds for r in results):.3f}")
    cls = classname(row)
    for r in results:
        _case(suite, cls, r.check, r.state, r.description, r.seconds, r.log)
        for sub in r.subtests:
            _case(suite, f"{cls}.{r.check}", sub.name, sub.state, sub.detail or
                  sub.state.value, 0.0, r.log)


def to_xml(report: SeriesReport) -> ET.Element:
    counts = [_counts(row) for row in report.patches]
    root = ET.Element("testsuites", name="check-series", time=f"{report.seconds:.3f}",
                      tests=str(sum(c[0] for c in counts)),
                      failures=str(sum(c[1] for c in counts)), errors="0",
                      skipped=str(sum(c[2] for c in counts)))
    for row in report.patches:
        _suite(root, row)
    return root


def write(report: SeriesReport, path: Path) -> None:
    tree = ET.ElementTree(to_xml(report))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
