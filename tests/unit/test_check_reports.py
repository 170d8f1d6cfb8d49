"""The four reports and the terminal matrix, from a hand-made SeriesReport."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kseries.check import matrix, reports
from kseries.check.model import (
    PatchInfo,
    PatchReport,
    Result,
    SeriesReport,
    State,
    Subtest,
)
from kseries.check.reports import html, json_report, junit, patchwork
from kseries.errors import ReportError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
from schema_lite import validate


def patch(i: int, subject: str) -> PatchInfo:
    return PatchInfo(index=i, name=f"000{i}-x.patch", path=Path(f"/p/000{i}-x.patch"),
                     subject=subject, author="A <a@example.org>", patch_id="ab" * 20,
                     message_key="cd" * 32, message_id=f"<{i}@example.org>")


@pytest.fixture
def report() -> SeriesReport:
    rep = SeriesReport(tree="/t", base="base", base_commit="f" * 40, source="patches/",
                       checks=[("apply", "patch", "git am"), ("build", "patch", "W=1 <build>"),
                               ("kunit", "patch", "KUnit"), ("diffstat", "tip", "stat")],
                       started="2026-01-01T00:00:00+00:00", seconds=12.5)
    r1 = PatchReport(patch(1, "lib: add <b> & c"), commit="1" * 40)
    r1.results = {"apply": Result("apply", State.SUCCESS, "applied", 0.1, "logs/01-apply.log"),
                  "build": Result("build", State.WARNING, "1 new warning", 3.0,
                                  "logs/01-build.log"),
                  "kunit": Result("kunit", State.SKIP, "no change under the test paths")}
    r2 = PatchReport(patch(2, "lib: break it"), commit="2" * 40)
    r2.results = {"apply": Result("apply", State.SUCCESS, "applied", 0.1, "logs/02-apply.log",
                                  cached=False),
                  "build": Result("build", State.FAIL, "error: x undeclared", 2.0,
                                  "logs/02-build.log", cached=True),
                  "kunit": Result("kunit", State.FAIL, "2 tests: 1 pass, 1 fail", 30.0,
                                  "logs/02-kunit.log",
                                  subtests=[Subtest("s.ok", State.SUCCESS),
                                            Subtest("s.bad", State.FAIL)]),
                  "diffstat": Result("diffstat", State.SUCCESS, "2 files changed", 0.0,
                                     "logs/02-diffstat.log")}
    rep.patches = [r1, r2]
    return rep


def test_json_validates_against_the_schema(report: SeriesReport, tmp_path: Path) -> None:
    json_report.write(report, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    schema = json.loads(json_report.SCHEMA_PATH.read_text())
    validate(data, schema, schema)
    assert data["ok"] is False and data["exit_status"] == 1
    assert data["totals"] == {"success": 3, "warning": 1, "fail": 2, "skip": 1}
    assert data["patches"][1]["state"] == "fail"
    assert data["patches"][1]["results"]["build"]["cached"] is True
    assert data["checks"][1]["seconds"] == 5.0


def test_schema_validator_catches_mistakes(report: SeriesReport) -> None:
    data = json_report.to_dict(report)
    schema = json.loads(json_report.SCHEMA_PATH.read_text())
    data["patches"][0]["results"]["build"]["state"] = "passed"
    with pytest.raises(AssertionError, match="not in"):
        validate(data, schema, schema)


def test_junit_parses_and_counts(report: SeriesReport, tmp_path: Path) -> None:
    junit.write(report, tmp_path / "r.xml")
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["01 lib: add <b> & c", "02 lib: break it"]
    assert suites[1].get("failures") == "3"  # build, kunit and the KUnit case s.bad
    assert suites[0].find("testcase[@name='kunit']/skipped") is not None
    failure = suites[1].find("testcase[@name='build']/failure")
    assert failure is not None and failure.get("message") == "error: x undeclared"
    assert suites[1].find("testcase[@name='s.bad']/failure") is not None
    # The root counts every test case, KUnit's too: 3 + 4 checks, 2 KUnit cases.
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("9", "3", "1")
    assert [int(s.get("tests", "0")) for s in suites] == [3, 6]
    # Jenkins takes what follows the last dot of classname as the class.
    classes = {c.get("classname", "") for c in root.iter("testcase")}
    assert all(not c.endswith(".patch") for c in classes), classes
    assert "check-series.0002-x.kunit" in classes


def test_html_has_the_matrix_with_links_to_logs(report: SeriesReport) -> None:
    page = html.render(report)
    assert '<table class="matrix" id="matrix">' in page
    rows = re.findall(r"<tr>\s*<td>(\d\d)</td>", page)
    assert rows == ["01", "02"]
    assert '<a href="logs/02-build.log">fail*</a>' in page
    assert '<td class="na">&middot;</td>' in page  # diffstat on patch 1
    assert "lib: add &lt;b&gt; &amp; c" in page  # escaped
    assert "<script" not in page and "stylesheet" not in page  # self-contained
    assert "s.bad: fail" in page


def test_patchwork_states(report: SeriesReport) -> None:
    checks = patchwork.to_list(report, "https://ci.example.org/run/7/")
    assert {c["check"]["state"] for c in checks} <= {"success", "warning", "fail"}
    assert not any("kunit" in c["check"]["context"] and c["patch"] == "0001-x.patch"
                   for c in checks)  # the skip is not posted
    build = next(c for c in checks if c["check"]["context"] == "check-series-build"
                 and c["msgid"] == "<2@example.org>")
    assert build["check"] == {"state": "fail", "context": "check-series-build",
                              "description": "error: x undeclared",
                              "target_url": "https://ci.example.org/run/7/logs/02-build.log"}


def test_write_all(report: SeriesReport, tmp_path: Path) -> None:
    written = reports.write_all(report, tmp_path / "out", None)
    assert sorted(p.name for p in written.values()) == [
        "kcidb.json", "patchwork.json", "report.html", "report.json", "report.xml"]
    pw = json.loads(written["patchwork"].read_text())
    # Not published anywhere: no target_url (patchwork refuses file:// URLs).
    assert pw and all("target_url" not in c["check"] for c in pw)
    assert pw[0]["patch_id"] == "ab" * 20


def test_matrix_rows_columns_and_totals(report: SeriesReport) -> None:
    text = matrix.render(report)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "patch", "apply", "build", "kunit", "diffstat"]
    assert lines[2].split()[-4:] == ["ok", "WARN", "skip", "."]
    assert lines[3].split()[-4:] == ["ok", "FAIL*", "FAIL", "ok"]
    assert "totals: 3 success, 1 warning, 2 fail, 1 skip; 12.5s wall; * = cached" in text
    assert matrix.failures(report) == [
        "WARN 01 0001-x.patch [build]: 1 new warning",  # warnings get a line too
        "FAIL 02 0002-x.patch [build]: error: x undeclared",
        "FAIL 02 0002-x.patch [kunit]: 2 tests: 1 pass, 1 fail"]


def test_matrix_layout(report: SeriesReport) -> None:
    """Fixed-width columns, a rule as wide as the table, no trailing blanks."""
    lines = matrix.render(report, subject_width=16).splitlines()
    assert lines[:8] == [
        "  #  patch             apply  build  kunit  diffstat",
        "-" * 52,
        " 01  lib: add <b> & c  ok     WARN   skip   .",
        " 02  lib: break it     ok     FAIL*  FAIL   ok",
        "-" * 52,
        "     time              0.2s   5.0s   30s    0.0s",
        "     fails             0      1      1      0",
        "     warnings          0      1      0      0"]


# -- reading report.json back: json_report.load -------------------------------------------


def test_load_reads_back_what_write_wrote(report: SeriesReport, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    json_report.write(report, path)
    assert json_report.load(path) == report
    report.interrupted = "SIGTERM"
    report.stopped_early = "stopped by SIGTERM during patch 2"
    json_report.write(report, path)
    assert json_report.load(path) == report


def test_load_keeps_times_as_written(report: SeriesReport, tmp_path: Path) -> None:
    report.seconds = 1.23456789
    report.patches[0].results["build"].seconds = 2.0004
    json_report.write(report, tmp_path / "a.json")
    again = json_report.load(tmp_path / "a.json")
    assert again.seconds == 1.235 and again.patches[0].results["build"].seconds == 2.0
    json_report.write(again, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()


def test_load_of_an_older_report_without_path_and_message_key(report: SeriesReport,
                                                             tmp_path: Path) -> None:
    data = json_report.to_dict(report)
    for p in data["patches"]:
        del p["path"], p["message_key"]
    (tmp_path / "r.json").write_text(json.dumps(data))
    got = json_report.load(tmp_path / "r.json").patches[0].patch
    assert got.path == Path("0001-x.patch") and got.message_key == ""


def _spoil(data: dict[str, object], change: str) -> None:
    patches: list[dict[str, object]] = data["patches"]  # type: ignore[assignment]
    results: dict[str, dict[str, object]] = patches[1]["results"]  # type: ignore[assignment]
    if change == "unknown state":
        results["build"]["state"] = "passed"
    elif change == "unknown subtest state":
        results["kunit"]["subtests"][0]["state"] = "PASS"  # type: ignore[index]
    elif change == "other schema":
        data["schema"] = "check-series/2"
    elif change == "no schema":
        del data["schema"]
    elif change == "ok disagrees":
        data["ok"] = True
    elif change == "totals disagree":
        data["totals"] = {"success": 9, "warning": 0, "fail": 0, "skip": 0}
    elif change == "missing field":
        del results["build"]["cached"]
    elif change == "wrong type":
        patches[0]["index"] = "1"
    elif change == "patch state disagrees":
        patches[1]["state"] = "success"
    elif change == "unknown signal":
        data["interrupted"] = "SIGHUP"
    elif change == "unknown scope":
        data["checks"][3]["scope"] = "series"  # type: ignore[index]


@pytest.mark.parametrize(("change", "words"), [
    ("unknown state", "unknown state patches[1].results.build.state = 'passed'"),
    ("unknown subtest state", "results.kunit.subtests[0].state = 'PASS'"),
    ("other schema", "has schema 'check-series/2'; this version reads check-series/1 only"),
    ("no schema", "has no schema"),
    ("ok disagrees", "inconsistent: ok is True, its results make it False"),
    ("totals disagree", "inconsistent: totals is"),
    ("missing field", "lacks patches[1].results.build.cached"),
    ("wrong type", "patches[0].index = '1': not an integer"),
    ("patch state disagrees", "inconsistent: patches[1].state is 'success'"),
    ("unknown signal", "has interrupted = 'SIGHUP', not one of '', 'SIGINT', 'SIGTERM'"),
    ("unknown scope", "has checks[3].scope = 'series', not one of 'patch', 'tip'"),
])
def test_load_refuses_what_check_series_did_not_write(report: SeriesReport, tmp_path: Path,
                                                      change: str, words: str) -> None:
    data = json_report.to_dict(report)
    _spoil(data, change)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReportError) as err:
        json_report.load(path)
    assert err.value.message.startswith(f"the check-series report {path} ")
    assert words in err.value.message and "\n" not in str(err.value)


def test_load_refuses_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    for text, words in (("{not json", "is not JSON"), ("[1, 2]", "is not a JSON object")):
        path = tmp_path / "r.json"
        path.write_text(text)
        with pytest.raises(ReportError, match=words) as err:
            json_report.load(path)
        assert str(path) in err.value.message
    with pytest.raises(ReportError, match="cannot read"):
        json_report.load(tmp_path / "missing.json")
