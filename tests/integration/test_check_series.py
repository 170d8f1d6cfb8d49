"""tools/check-series on the real pinned tree: the vhost-blk series passes every
per-patch check, and a deliberately broken series fails with the right patch named.

Both run after the main job (conftest.py) and on what it leaves: the
pinned tree, the scratch worktree build/series-tree (check-series moves
its HEAD, never a branch of the developer's tree) and the warm debug and
UML KUnit build directories, so each patch's build and KUnit run is
incremental.  The real run goes first and the broken series sits on top
of it.

The broken series (tests/fixtures/check/broken/) is three patches on top
of patches/, numbered 12-14 so they follow the real series:

- 0012 indents two lines with spaces: a checkpatch ERROR, and nothing else;
- 0013 maps BLK_STS_NOTSUPP to an I/O error: builds and passes checkpatch,
  but the KUnit case vhost_blk_test_status fails;
- 0014 uses a field struct vhost_blk_vq does not have: blk.o does not build.

Run with ``pytest -m integration tests/integration/test_check_series.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
from schema_lite import validate

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

CHECK_SERIES = [sys.executable, str(ROOT / "tools" / "check-series")]
OUTPUT = ROOT / "build" / "check-series" / "integration"
BROKEN = ROOT / "tests" / "fixtures" / "check" / "broken"
SCHEMA = ROOT / "tools" / "kseries" / "check" / "reports" / "schema.json"
PER_PATCH = ["apply", "checkpatch", "hygiene", "fixes", "build", "sparse", "kerneldoc", "kunit"]
# The series has no Fixes: tag: the fixes check has nothing to look at in it.
NO_TAGS = {"fixes"}
# A skip that only says the check has nothing to look at in this patch.
NOT_APPLICABLE = ("the patch changes no file that is compiled",
                  "the patch changes no .c or .h file",
                  "no change under the test paths",
                  "the tests are not in the tree yet",
                  "no Fixes: tag to check")


@pytest.fixture(scope="module", autouse=True)
def after_main_job(main_job: dict[str, Any]) -> None:
    """The pinned tree and warm builds: the main job runs first (conftest.py)."""
    assert main_job["by_name"]["fetch"]["status"] == "pass", main_job["by_name"]["fetch"]


def check_series(*args: str) -> subprocess.CompletedProcess[str]:
    # The venv's bin/ first: check-series finds vng and kunit.py's helpers there.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    proc = subprocess.run([*CHECK_SERIES, *args], cwd=ROOT, text=True,
                          capture_output=True, check=False, env=env)
    sys.stderr.write(proc.stderr[-4000:])  # the progress, for the CI log
    return proc


def load(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    schema = json.loads(SCHEMA.read_text())
    validate(data, schema, schema)
    return data


def cell(data: dict[str, Any], index: int, check: str) -> dict[str, Any]:
    row = next(p for p in data["patches"] if p["index"] == index)
    result: dict[str, Any] = row["results"][check]
    return result


@pytest.fixture(scope="module")
def real_run() -> tuple[subprocess.CompletedProcess[str], Path]:
    """check-series on patches/ with every per-patch check.

    The boot check is skipped (--skip boot): its tip command is the
    in-guest suite, which test_pipeline.py already runs in one boot of
    the same tip (the main job builds base + patches/ in the same
    worktree and build directory); a second TCG boot with the suite
    would cost another ~15 minutes of CI's 90.
    """
    out = OUTPUT / "real"
    shutil.rmtree(out, ignore_errors=True)
    return check_series("--skip", "boot", "--keep-going", "--output", str(out)), out


def test_real_series_passes_every_per_patch_check(
        real_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = real_run
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "RESULT: PASS" in proc.stdout
    data = load(out)
    assert data["ok"] is True and data["exit_status"] == 0
    assert data["stopped_early"] == "" and data["interrupted"] == ""
    series = (ROOT / "patches" / "series").read_text().split()
    assert [p["name"] for p in data["patches"]] == series
    assert [c["name"] for c in data["checks"] if c["scope"] == "patch"] == PER_PATCH
    assert "boot" not in [c["name"] for c in data["checks"]]
    bad = []
    for row in data["patches"]:
        for check in PER_PATCH:
            r = row["results"][check]
            if r["state"] == "success":
                continue
            if r["state"] == "skip" and r["description"].startswith(NOT_APPLICABLE):
                continue
            bad.append(f"{row['name']} {check}: {r['state']}: {r['description']}")
    assert not bad, "\n".join(bad)
    # Each check really ran somewhere, and the ones that must run on C code did.
    for check in PER_PATCH:
        if check in NO_TAGS:
            continue
        assert any(p["results"][check]["state"] == "success" for p in data["patches"]), check
    c_patches = [p for p in data["patches"] if p["name"].startswith(
        tuple(f"{i:04d}-" for i in range(2, 11)))]
    for row in c_patches:
        for check in ("build", "sparse", "kerneldoc"):
            assert row["results"][check]["state"] == "success", (row["name"], check)
    kunit = [p["results"]["kunit"] for p in data["patches"]
             if p["results"]["kunit"]["state"] == "success"]
    assert len(kunit) >= 7, "KUnit should run for patches 4-10 (they touch drivers/vhost)"
    for r in kunit:
        assert r["subtests"], r["description"]
        assert {s["state"] for s in r["subtests"]} == {"success"}, r["description"]
    # Tip checks.
    assert data["patches"][-1]["results"]["diffstat"]["state"] == "success"


def test_real_series_reports(real_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = real_run
    data = load(out)
    suites = ET.parse(out / "report.xml").getroot().findall("testsuite")
    assert len(suites) == len(data["patches"])
    assert all(s.get("failures") == "0" for s in suites)
    cases = [c for s in suites for c in s.findall("testcase")]
    assert any(c.get("classname", "").endswith(".kunit") for c in cases)  # KUnit cases
    page = (out / "report.html").read_text()
    assert '<table class="matrix" id="matrix">' in page
    assert len(re.findall(r"<tr>\s*<td>\d\d</td>", page)) == len(data["patches"])
    links = re.findall(r'<a href="(logs/[^"]+)">', page)
    assert links and all((out / link).is_file() for link in links)
    posted = json.loads((out / "patchwork.json").read_text())
    assert posted and {c["check"]["state"] for c in posted} == {"success"}
    assert {c["check"]["context"] for c in posted} >= {f"check-series-{c}" for c in PER_PATCH
                                                       if c not in NO_TAGS}
    for line in ("reports:", "totals:"):
        assert line in proc.stdout


@pytest.fixture(scope="module")
def broken_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """patches/ followed by the broken patches, as one directory with a series file."""
    d = tmp_path_factory.mktemp("broken-series")
    names = []
    for src in (ROOT / "patches", BROKEN):
        for name in (src / "series").read_text().split():
            shutil.copy(src / name, d / name)
            names.append(name)
    (d / "series").write_text("\n".join(names) + "\n")
    return d


def _fail_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("FAIL ")]


def test_broken_series_names_each_breaking_patch(
        real_run: tuple[subprocess.CompletedProcess[str], Path], broken_input: Path) -> None:
    out = OUTPUT / "broken"
    shutil.rmtree(out, ignore_errors=True)
    proc = check_series("--skip", "boot", "--keep-going", "--from", "12", "--output", str(out),
                        str(broken_input))
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "RESULT: FAIL" in proc.stdout
    data = load(out)
    assert [p["index"] for p in data["patches"]] == [12, 13, 14]
    states = {p["index"]: {c: r["state"] for c, r in p["results"].items()}
              for p in data["patches"]}
    # Every fixture applies: a stale one would skip every later check of it.
    assert {i: states[i]["apply"] for i in states} == {12: "success", 13: "success",
                                                       14: "success"}, data["patches"]

    # 12: checkpatch, and only checkpatch.
    assert states[12] == {**{c: "success" for c in PER_PATCH}, "checkpatch": "fail",
                          "fixes": "skip"}
    assert "code indent should use tabs" in cell(data, 12, "checkpatch")["description"]
    # 13: the KUnit case that checks the mapping, and only KUnit.
    assert states[13] == {**{c: "success" for c in PER_PATCH}, "kunit": "fail",
                          "fixes": "skip"}
    kunit = cell(data, 13, "kunit")
    failed = [s["name"] for s in kunit["subtests"] if s["state"] == "fail"]
    assert failed and all("vhost_blk_test_status" in n for n in failed), failed
    assert "vhost_blk_test_status" in kunit["description"]
    # 14: the build, with the compiler's error.  KUnit's UML build of the
    # same file fails too; sparse does not run on code that does not build.
    assert states[14]["build"] == "fail"
    assert "nr_reqs" in cell(data, 14, "build")["description"]
    assert {c: states[14][c] for c in ("apply", "checkpatch", "hygiene", "kerneldoc")} == {
        c: "success" for c in ("apply", "checkpatch", "hygiene", "kerneldoc")}
    assert states[14]["kunit"] == "fail"
    assert states[14]["sparse"] == "skip"

    named = {(line.split()[1], line.split()[3]) for line in _fail_lines(proc.stdout)}
    assert named == {("12", "[checkpatch]:"), ("13", "[kunit]:"), ("14", "[build]:"),
                     ("14", "[kunit]:")}
    assert "FAIL 12 0012-vhost-blk-map-a-missing-medium" in proc.stdout
    suites = ET.parse(out / "report.xml").getroot().findall("testsuite")
    assert [s.get("failures") for s in suites] == ["1", "2", "2"]  # 13: kunit + its case


def test_broken_series_stops_at_the_first_breaking_patch(broken_input: Path) -> None:
    """Without --keep-going: patch 12 fails, 13 and 14 are not run (not passed)."""
    out = OUTPUT / "broken-stop"
    shutil.rmtree(out, ignore_errors=True)
    proc = check_series("--only", "apply,checkpatch,hygiene", "--from", "12",
                        "--output", str(out), str(broken_input))
    assert proc.returncode == 1, proc.stdout[-3000:]
    data = load(out)
    assert cell(data, 12, "checkpatch")["state"] == "fail"
    assert "stopped after patch 12 failed checkpatch" in data["stopped_early"]
    for index in (13, 14):
        row = next(p for p in data["patches"] if p["index"] == index)
        assert {r["state"] for r in row["results"].values()} == {"skip"}
    assert [line.split()[1] for line in _fail_lines(proc.stdout)] == ["12"]
