"""Reading check-series reports and the send gate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(("data", "words"), [
    ({"patches": [{"checks": {"build": "pass"}}], "ok": True}, "covers 1 patches"),
    ({"ok": True, "stopped_early": "patch 2 did not apply",
      "patches": [{"checks": {}}] * 3}, "stopped early"),
    ({"status": "success"}, ""),
    ({}, "has no result"),
    ([1, 2], "not a JSON object"),
    ({"patches": [{"checks": [{"name": "build", "status": "FAILURE"}]}] * 3}, "failed"),
    ({"ok": True, "tests": {"kunit": {"passed": 3, "failed": 1}}}, "failed"),
])
def test_odd_reports(tmp_path: Path, data: object, words: str) -> None:
    r = checks.load(write(tmp_path, data), 3)
    if words:
        assert r.status == "fail" and words in r.problem
    else:
        assert r.status == "pass"


def test_unreadable_report(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{not json")
    assert "unreadable" in checks.load(path).problem


def test_patch_ids_must_match(tmp_path: Path) -> None:
    data = {"ok": True, "patches": [{"patch": {"index": i, "patch_id": f"id{i}"},
                                     "results": {"build": {"state": "success"}}}
                                    for i in (1, 2)]}
    path = write(tmp_path, data)
    assert checks.load(path, 2, ["id1", "id2"]).status == "pass"
    stale = checks.load(path, 2, ["id1", "other"])
    assert stale.status == "fail" and "patch-ids differ" in stale.problem


def test_a_directory_means_its_newest_report(tmp_path: Path) -> None:
    old = write(tmp_path, {"ok": False}, "old.json")
    new = write(tmp_path, {"ok": True}, "new.json")
    os.utime(old, (1, 1))
    assert checks.load(tmp_path).path == new
    assert checks.load(tmp_path).status == "pass"


def test_check_series_1_schema(tmp_path: Path) -> None:
    """The shape Documentation/check-series.md documents (schema check-series/1)."""
    def patch(i: int, build: str) -> dict[str, object]:
        return {"index": i, "name": f"000{i}-x.patch", "subject": f"x {i}", "patch_id": f"p{i}",
                "state": build, "results": {
                    "apply": {"state": "success", "description": ""},
                    "build": {"state": build, "description": "", "subtests": []},
                    "kunit": {"state": "success", "subtests": [
                        {"name": "s.a", "state": "success"}, {"name": "s.b", "state": "skip"}]}}}
    data = {"schema": "check-series/1", "ok": True, "exit_status": 0, "stopped_early": "",
            "started": "2026-01-01T00:00:00+00:00",
            "patches": [patch(1, "success"), patch(2, "warning")]}
    r = checks.load(write(tmp_path, data), 2, ["p1", "p2"])
    assert r.status == "pass" and r.when == "2026-01-01T00:00:00+00:00"
    assert r.columns == ("apply", "build", "kunit")
    assert r.rows[1].cells == {"apply": "pass", "build": "warn", "kunit": "pass"}
    assert r.tests == {"kunit": {"pass": 1, "fail": 0, "skip": 1}}
    data["ok"] = False
    assert checks.load(write(tmp_path, data), 2).status == "fail"
