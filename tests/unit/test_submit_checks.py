"""Reading check-series reports and the send gate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kseries.check import reports
from kseries.check.model import PatchInfo, PatchReport, Result, SeriesReport, State, Subtest
from kseries.check.reports import json_report
from kseries.errors import UsageError
from kseries.submit import checks

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "submit"


def write(tmp_path: Path, data: object, name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_passing_report_in_check_series_shape() -> None:
    r = checks.load(FIX / "check-pass.json", 3)
    assert r.status == "pass" and r.problem == ""
    assert r.columns == ("apply", "checkpatch", "build", "kunit")
    assert r.rows[0].subject == "foo: add the driver"
    assert r.rows[0].cells["build"] == "warn"
    assert r.totals() == {"pass": 8, "warn": 1, "fail": 0, "skip": 1}
    assert r.tests == {"kunit": {"pass": 2, "fail": 0, "skip": 1}}
    assert checks.gate(r, force=False) is None


def test_failed_report_is_refused_unless_forced() -> None:
    r = checks.load(FIX / "check-fail.json", 3)
    assert r.status == "fail" and "failed" in r.problem
    with pytest.raises(UsageError, match="refusing to send: the latest check-series run"):
        checks.gate(r, force=False)
    assert "--force" in (checks.gate(r, force=True) or "")


def test_missing_report_is_refused(tmp_path: Path) -> None:
    r = checks.load(tmp_path / "nothing.json", 3)
    assert r.status == "missing" and not r.found
    with pytest.raises(UsageError, match="no check-series report"):
        checks.gate(r, force=False)


def series(*cells: dict[str, State], ids: tuple[str, ...] = ()) -> SeriesReport:
    """A check-series run as check-series models it: one dict of check states per patch."""
    names = list(dict.fromkeys(n for row in cells for n in row))
    rep = SeriesReport(tree="/t", base="base", base_commit="b" * 40, source="patches",
                       checks=[(n, "patch", n) for n in names],
                       started="2026-01-01T00:00:00+00:00", seconds=3.5)
    for i, row in enumerate(cells, 1):
        info = PatchInfo(i, f"000{i}-x.patch", Path(f"000{i}-x.patch"), f"x {i}", "A <a@b>",
                         ids[i - 1] if ids else f"p{i}", "k" * 64)
        rep.patches.append(PatchReport(info, "c" * 40, {
            n: Result(n, st, f"{n} said {st}", 1.0) for n, st in row.items()}))
    return rep


def written(tmp_path: Path, report: SeriesReport, name: str = "report.json") -> Path:
    """The report as check-series writes it."""
    path = tmp_path / name
    json_report.write(report, path)
    return path


OK, WARN, FAIL, SKIP = State.SUCCESS, State.WARNING, State.FAIL, State.SKIP


def test_a_report_written_by_check_series_is_read_through_its_loader(tmp_path: Path) -> None:
    rep = series({"apply": OK, "build": OK}, {"apply": OK, "build": WARN, "kunit": OK})
    rep.patches[1].results["kunit"].subtests = [Subtest("s.a", OK), Subtest("s.b", SKIP),
                                                 Subtest("s.c", WARN)]
    path = written(tmp_path, rep)
    r = checks.load(path, 2, ["p1", "p2"])
    assert r.status == "pass" and r.problem == "" and r.path == path
    assert r.when == "2026-01-01T00:00:00+00:00"
    assert r.columns == ("apply", "build", "kunit")
    assert r.rows[0].cells == {"apply": "pass", "build": "pass"}
    assert r.rows[1].cells == {"apply": "pass", "build": "warn", "kunit": "pass"}
    assert [row.patch_id for row in r.rows] == ["p1", "p2"]
    assert r.tests == {"kunit": {"pass": 2, "fail": 0, "skip": 1}}
    assert checks.gate(r, force=False) is None


@pytest.mark.parametrize(("change", "words"), [
    ("one patch", "covers 1 patches, the series has 3: it is stale"),
    ("no patch", "covers 0 patches, the series has 3: it is stale"),
    ("stopped early", "stopped early: patch 2 did not apply"),
    ("interrupted", "was interrupted (SIGINT)"),
    ("failed", "failed"),
])
def test_runs_that_may_not_be_sent(tmp_path: Path, change: str, words: str) -> None:
    rows = [{"apply": OK, "build": OK}] * 3
    if change == "one patch":
        rows = rows[:1]
    elif change == "no patch":
        rows = []
    elif change == "failed":
        rows[1] = {"apply": OK, "build": FAIL}
    rep = series(*rows)
    if change == "stopped early":
        rep.stopped_early = "patch 2 did not apply"
    elif change == "interrupted":
        rep.interrupted = "SIGINT"
    path = written(tmp_path, rep)
    r = checks.load(path, 3)
    assert r.status == "fail" and words in r.problem and str(path) in r.problem
    with pytest.raises(UsageError, match="refusing to send: "):
        checks.gate(r, force=False)


@pytest.mark.parametrize(("data", "words"), [
    # What the old reader guessed at is refused now: these are not check-series reports.
    ({"status": "success"}, "has no schema: not a check-series/1 report"),
    ({}, "has no schema"),
    ({"ok": True, "tests": {"kunit": {"passed": 3}}}, "has no schema"),
    ([1, 2], "is not a JSON object"),
    ({"schema": "check-series/2", "ok": True}, "has schema 'check-series/2'"),
])
def test_what_is_not_a_check_series_1_report_is_refused(tmp_path: Path, data: object,
                                                       words: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    r = checks.load(path, 3)
    assert r.status == "fail" and r.found
    assert r.problem.startswith(f"the check-series report {path} ") and words in r.problem
    with pytest.raises(UsageError) as err:
        checks.gate(r, force=False)
    assert err.value.message == f"refusing to send: {r.problem}" and "\n" not in r.problem


def test_a_report_with_an_unknown_state_is_refused(tmp_path: Path) -> None:
    data = json_report.to_dict(series({"apply": OK}, {"apply": OK}, {"apply": OK}))
    data["patches"][2]["results"]["apply"]["state"] = "passed"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    r = checks.load(path, 3)
    assert r.status == "fail" and not r.rows
    assert r.problem == (f"the check-series report {path} has an unknown state "
                         "patches[2].results.apply.state = 'passed' "
                         "(known: success, warning, fail, skip)")
    with pytest.raises(UsageError, match="refusing to send: the check-series report"):
        checks.gate(r, force=False)
    assert "--force" in (checks.gate(r, force=True) or "")


def test_unreadable_report(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{not json")
    problem = checks.load(path).problem
    assert problem.startswith(f"the check-series report {path} is not JSON: ")


def test_patch_ids_must_match(tmp_path: Path) -> None:
    path = written(tmp_path, series({"build": OK}, {"build": OK}, ids=("id1", "id2")))
    assert checks.load(path, 2, ["id1", "id2"]).status == "pass"
    stale = checks.load(path, 2, ["id1", "other"])
    assert stale.status == "fail" and "patch-ids differ" in stale.problem


def test_a_directory_means_its_report_json_or_its_newest_report(tmp_path: Path) -> None:
    old = written(tmp_path, series({"build": FAIL}), "old.json")
    new = written(tmp_path, series({"build": OK}), "new.json")
    os.utime(old, (1, 1))
    assert checks.load(tmp_path).path == new
    assert checks.load(tmp_path).status == "pass"
    # check-series' output directory: report.json, although patchwork.json is newer.
    out = tmp_path / "check-series"
    reports.write_all(series({"build": OK}), out, None)
    os.utime(out / "report.json", (1, 1))
    assert checks.load(out).path == out / "report.json"
    assert checks.load(out, 1).status == "pass"


def test_a_report_of_fewer_checks_than_the_project_enables_is_refused(tmp_path: Path) -> None:
    """`--only apply,checkpatch,hygiene` passed, but it is not the project's check."""
    rep = series(*[{"apply": OK, "checkpatch": OK, "hygiene": OK}] * 2)
    path = written(tmp_path, rep)
    enabled = ("apply", "checkpatch", "hygiene", "build", "sparse", "kunit", "boot")
    r = checks.load(path, 2, ["p1", "p2"], enabled=enabled)
    assert r.status == "fail"
    assert r.problem == (f"the check-series report {path} did not run build, sparse, kunit, "
                         "boot, which check-series.toml enables")
    with pytest.raises(UsageError) as err:
        checks.gate(r, force=False)
    assert "\n" not in err.value.message
    full = series(*[{n: OK for n in enabled}] * 2)
    assert checks.load(written(tmp_path, full, "full.json"), 2, ["p1", "p2"],
                       enabled=enabled).status == "pass"


def test_a_report_without_patch_ids_is_not_of_the_exact_patches(tmp_path: Path) -> None:
    path = written(tmp_path, series({"build": OK}, {"build": OK}, ids=("", "")))
    stale = checks.load(path, 2, ["id1", "id2"])
    assert stale.status == "fail" and "patch-ids differ" in stale.problem


def test_ran_lists_the_checks_with_a_result_that_is_not_a_skip(tmp_path: Path) -> None:
    rep = series({"apply": OK, "build": WARN, "boot": SKIP}, {"apply": OK, "boot": SKIP})
    r = checks.load(written(tmp_path, rep), 2)
    assert r.ran == ("apply", "build")


def test_a_check_that_could_not_run_did_not_run(tmp_path: Path) -> None:
    """sparse selected but not installed: a skip saying "cannot run" is not a pass."""
    from kseries.check.model import Outcome
    rows = [{"apply": OK, "sparse": SKIP, "fixes": SKIP}] * 2
    rep = series(*rows)
    cannot = Outcome.cannot_run("sparse is not installed (apt-get install sparse)")
    for row in rep.patches:
        row.results["sparse"] = Result("sparse", cannot.state, cannot.description)
        row.results["fixes"] = Result("fixes", SKIP, "no Fixes: tag to check")
    path = written(tmp_path, rep)
    r = checks.load(path, 2, ["p1", "p2"], enabled=("apply", "sparse", "fixes"))
    assert r.status == "fail"
    assert r.problem == (f"the check-series report {path} did not run sparse (cannot run: "
                         "sparse is not installed (apt-get install sparse)), which "
                         "check-series.toml enables")
