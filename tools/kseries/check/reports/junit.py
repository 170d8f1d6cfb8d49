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


def _suite(root: ET.Element, row: PatchReport) -> None:
    name = f"{row.patch.label} {row.patch.subject}"
    results: list[Result] = list(row.results.values())
    cases = len(results) + sum(len(r.subtests) for r in results)
    fails = sum(r.state == State.FAIL for r in results) + sum(
        s.state == State.FAIL for r in results for s in r.subtests)
    skips = sum(r.state == State.SKIP for r in results) + sum(
        s.state == State.SKIP for r in results for s in r.subtests)
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(cases), failures=str(fails),
                          errors="0", skipped=str(skips),
                          time=f"{sum(r.seconds for r in results):.3f}")
    classname = f"check-series.{row.patch.name}"
    for r in results:
        _case(suite, classname, r.check, r.state, r.description, r.seconds, r.log)
        for sub in r.subtests:
            _case(suite, f"{classname}.{r.check}", sub.name, sub.state, sub.detail or
                  sub.state.value, 0.0, r.log)


def to_xml(report: SeriesReport) -> ET.Element:
    totals = report.totals()
    root = ET.Element("testsuites", name="check-series", time=f"{report.seconds:.3f}",
                      tests=str(sum(totals.values())), failures=str(totals["fail"]))
    for row in report.patches:
        _suite(root, row)
    return root


def write(report: SeriesReport, path: Path) -> None:
    tree = ET.ElementTree(to_xml(report))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
