"""kcidb.json against the kcidb-io package's own schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import kcidb_io
import pytest
from test_check_reports import report  # noqa: F401  (the fixture)

from kseries.check import reports
from kseries.check.model import SeriesReport
from kseries.check.reports import kcidb


def written(report: SeriesReport, tmp_path: Path) -> dict[str, object]:  # noqa: F811
    for row in report.patches:  # the patch files the report names
        path = tmp_path / row.patch.name
        path.write_text(f"patch {row.patch.index}\n")
        row.patch = type(row.patch)(**{**row.patch.__dict__, "path": path})
    paths = reports.write_all(report, tmp_path / "out", "https://ci.example.org/run/7")
    data = json.loads(paths["kcidb"].read_text())
    assert isinstance(data, dict)
    return data


def test_kcidb_document_is_valid_kcidb(report: SeriesReport, tmp_path: Path) -> None:  # noqa: F811
    data = written(report, tmp_path)
    kcidb_io.schema.LATEST.validate(data)
    assert kcidb_io.schema.LATEST.is_valid_exactly(data)
    checkouts, builds, tests = data["checkouts"], data["builds"], data["tests"]
    assert isinstance(checkouts, list) and isinstance(builds, list) and isinstance(tests, list)
    assert [c["valid"] for c in checkouts] == [True, True]
    one = hashlib.sha256(b"patch 1\n").hexdigest() + "\n"
    two = one + hashlib.sha256(b"patch 2\n").hexdigest() + "\n"
    assert [c["patchset_hash"] for c in checkouts] == [
        hashlib.sha256(one.encode()).hexdigest(), hashlib.sha256(two.encode()).hexdigest()]
    assert [b["status"] for b in builds] == ["PASS", "FAIL"]
    assert builds[1]["log_url"] == "https://ci.example.org/run/7/logs/02-build.log"
    by_path = {(t["build_id"][-8:-6], t["path"]): t for t in tests}
    assert by_path[("01", "build")]["misc"]["check_series_state"] == "warning"
    assert by_path[("01", "kunit")]["status"] == "SKIP"
    assert by_path[("02", "kunit.s.bad")]["status"] == "FAIL"
    assert by_path[("02", "kunit.s.ok")]["status"] == "PASS"
    assert by_path[("02", "diffstat")]["status"] == "PASS"
    assert len({t["id"] for t in tests}) == len(tests) == 9


def test_the_schema_check_can_fail(report: SeriesReport, tmp_path: Path) -> None:  # noqa: F811
    data = kcidb.to_dict(report)
    data["tests"][0]["status"] = "WARNING"
    with pytest.raises(jsonschema.exceptions.ValidationError):
        kcidb_io.schema.LATEST.validate(data)
