"""check-series end to end on a synthetic kernel-like tree (real gcc, fake checkpatch)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from helpers import quiet_progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "check"))
import synth
from synth import cells, run

from kseries import build
from kseries.check import cli

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="needs gcc and make")


def test_new_warning_is_blamed_on_the_patch_that_adds_it(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    tree, patches = synth.make_series(tmp_path)
    rc, report = run(tmp_path, tree, "--keep-going", str(patches))
    assert rc == 1
    assert cells(report, "build") == ["success", "fail", "success"]
    patch2 = report["patches"][1]["results"]["build"]  # type: ignore[index]
    assert "unused variable" in patch2["description"]
    assert "lib/a.c:5" in patch2["description"]
    # Patch 3 moves the warning three lines down; it is not new there.
    patch3 = report["patches"][2]["results"]["build"]  # type: ignore[index]
    assert "no new warnings (1 already there)" in patch3["description"]
    out = capsys.readouterr().out
    assert "FAIL 02 0002-lib-a-add-a-counter.patch [build]" in out
    assert "RESULT: FAIL" in out


def test_clean_series_exits_0_and_prints_the_matrix(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    tree, patches = synth.make_series(tmp_path, patch2_a=synth.A_C_CLEAN,
                                      patch3_a=synth.A_C_CLEAN_3)
    rc, report = run(tmp_path, tree, str(patches))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert report["ok"] is True and report["exit_status"] == 0
    assert "apply" in out.splitlines()[0] and "build" in out.splitlines()[0]
    assert "RESULT: PASS" in out
    assert cells(report, "diffstat") == ["-", "-", "success"]


def test_without_keep_going_it_stops_after_the_failing_patch(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path)
    rc, report = run(tmp_path, tree, str(patches))
    assert rc == 1
    assert cells(report, "build") == ["success", "fail", "skip"]
    third = report["patches"][2]["results"]["apply"]  # type: ignore[index]
    assert "stopped after patch 02" in third["description"]
    assert "--keep-going" in str(report["stopped_early"])


def test_resume_reruns_only_the_changed_patch(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path)
    rc, first = run(tmp_path, tree, "--keep-going", "--resume", str(patches))
    assert rc == 1
    assert not any(r["cached"] for p in first["patches"] for r in p["results"].values())  # type: ignore[attr-defined]
    # Same series again: everything but apply (always run) comes from the cache.
    _, again = run(tmp_path, tree, "--keep-going", "--resume", str(patches))
    for p in again["patches"]:  # type: ignore[attr-defined]
        for name, r in p["results"].items():
            if r["state"] != "skip":
                assert r["cached"] == (name != "apply"), (p["name"], name)
    # Change patch 3's code: patches 1 and 2 are reused, patch 3 reruns.
    synth.add_series(tree, patch3_a=synth.A_C_MOVED.replace("+ 0;", "+ 3;"))
    synth.export(tree, patches)
    _, changed = run(tmp_path, tree, "--keep-going", "--resume", str(patches))
    rows = changed["patches"]
    assert isinstance(rows, list)
    for row in rows[:2]:
        assert row["results"]["build"]["cached"] is True
        assert row["results"]["checkpatch"]["cached"] is True
    assert rows[2]["results"]["build"]["cached"] is False
    assert rows[2]["results"]["checkpatch"]["cached"] is False
    assert cells(changed, "build") == ["success", "fail", "success"]
    # The cached cell still links to a log holding the cached output.
    log = tmp_path / "out" / rows[1]["results"]["build"]["log"]
    assert "unused variable" in log.read_text()


def test_resume_keeps_a_skip_for_want_of_work_but_not_one_that_could_not_run(
        tmp_path: Path) -> None:
    config = synth.write_config(tmp_path / "cs.toml", ["apply", "fixes", "kunit"])
    tree, patches = synth.make_series(tmp_path)
    run(tmp_path, tree, "--resume", str(patches), config=config)
    _, again = run(tmp_path, tree, "--resume", str(patches), config=config)
    fixes = [synth.result(again, k, "fixes") for k in (1, 2, 3)]
    assert [(r["state"], r["cached"]) for r in fixes] == [("skip", True)] * 3
    assert fixes[0]["description"] == "no Fixes: tag to check"
    kunit = [synth.result(again, k, "kunit") for k in (1, 2, 3)]
    assert [(r["state"], r["cached"]) for r in kunit] == [("skip", False)] * 3
    assert str(kunit[0]["description"]).startswith("cannot run: no kunitconfig")


def test_the_build_before_a_patch_is_the_build_of_the_patch_before(tmp_path: Path) -> None:
    # Both patches change lib/a.c only: patch 2's baseline is patch 1's own build.
    tree = synth.init_tree(tmp_path / "tree")
    synth.git(tree, "checkout", "-q", "-b", "series")
    for when, text in ((1_700_000_100, synth.A_C_WARN), (1_700_000_200, synth.A_C_MOVED)):
        synth.write(tree, "lib/a.c", text)
        synth.commit(tree, f"lib: a: change {when}\n\nChange it.\n\n{synth.SOB}", when)
    patches = synth.export(tree, tmp_path / "patches")
    config = synth.write_config(tmp_path / "cs.toml", ["apply", "build"])
    rc, report = run(tmp_path, tree, "--keep-going", str(patches), config=config)
    assert rc == 1 and cells(report, "build") == ["fail", "success"]
    assert synth.result(report, 2, "build")["description"] == (
        "1 target(s) built, no new warnings (1 already there)")
    log = (tmp_path / "out" / "logs" / "02-build.log").read_text()
    assert "nothing compiled differently since: not built again" in log
    assert "lib/a.c:5:13: warning: unused variable" in log.split("== with the patch")[0]
    # A make with other variables in between (a full build without W=1, say):
    # objects may be redone by the next W=1 make, so patch 2's baseline is built.
    progress, _ = quiet_progress()
    build.make(tree, tmp_path / "work" / "build", ["lib/b.o"], progress, tmp_path / "make.log")
    run(tmp_path, tree, "--keep-going", "--from", "2", str(patches), config=config)
    log = (tmp_path / "out" / "logs" / "02-build.log").read_text()
    assert "not built again" not in log
    assert "  CC      lib/a.o" in log.split("== with the patch")[0]


def test_without_resume_nothing_is_reused(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path)
    run(tmp_path, tree, "--keep-going", str(patches))
    _, again = run(tmp_path, tree, "--keep-going", str(patches))
    assert not any(r["cached"] for p in again["patches"] for r in p["results"].values())  # type: ignore[attr-defined]


def test_checkpatch_error_fails_the_right_patch(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path, patch2_extra="/* CHECKPATCH-ERROR */\n")
    rc, report = run(tmp_path, tree, "--keep-going", "--only", "checkpatch", str(patches))
    assert rc == 1
    # Patch 3 only carries the marker in context lines, which do not count.
    assert cells(report, "checkpatch") == ["success", "fail", "success"]
    desc = report["patches"][1]["results"]["checkpatch"]["description"]  # type: ignore[index]
    assert desc.startswith("1 errors, 0 warnings, 0 checks; first: ERROR: do not add")
    assert desc.endswith("(lib/a.c)")  # where, from checkpatch's "#N: FILE:" line
    # Run from the top of the tree: no false trailing-whitespace error.
    log = (tmp_path / "out" / "logs" / "01-checkpatch.log").read_text()
    assert "trailing whitespace" not in log


def test_checkpatch_check_is_a_warning(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path, patch2_extra="/* CHECKPATCH-CHECK */\n")
    rc, report = run(tmp_path, tree, "--only", "checkpatch", str(patches))
    assert rc == 0
    assert cells(report, "checkpatch") == ["success", "warning", "success"]


def test_from_and_to_limit_the_checked_patches(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path)
    rc, report = run(tmp_path, tree, "--from", "3", "--to", "3", str(patches))
    assert rc == 0
    rows = report["patches"]
    assert isinstance(rows, list)
    assert [r["index"] for r in rows] == [3]
    assert rows[0]["results"]["build"]["state"] == "success"
    assert rows[0]["results"]["diffstat"]["state"] == "success"


def test_to_moves_the_tip(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path)
    rc, report = run(tmp_path, tree, "--to", "1", str(patches))
    assert rc == 0
    assert cells(report, "diffstat") == ["success"]


def test_mbox_input_with_a_cover_letter(tmp_path: Path) -> None:
    tree, _ = synth.make_series(tmp_path)
    out = synth.git(tree, "format-patch", "--cover-letter", "--stdout", "base..series")
    mbox = tmp_path / "series.mbox"
    mbox.write_text(out + "\n")
    rc, report = run(tmp_path, tree, "--keep-going", str(mbox))
    assert rc == 1
    assert [p["subject"] for p in report["patches"]] == [  # type: ignore[attr-defined]
        "lib: b: add zero", "lib: a: add a counter", "lib: a: document the file"]
    assert cells(report, "build") == ["success", "fail", "success"]


def test_git_range_input(tmp_path: Path) -> None:
    tree, _ = synth.make_series(tmp_path)
    rc = cli.main(["-q", "--config", str(synth.CONFIG), "--tree", str(tree), "--output",
                   str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--keep-going",
                   "base..series"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rc == 1
    assert report["base"] == "base"
    assert cells(report, "build") == ["success", "fail", "success"]


def test_range_diff_against_a_previous_version(tmp_path: Path) -> None:
    tree, _ = synth.make_series(tmp_path)
    synth.git(tree, "branch", "v1", "series")
    synth.add_series(tree, patch3_a=synth.A_C_MOVED.replace("+ 0;", "+ 3;"))
    patches = synth.export(tree, tmp_path / "v2")
    rc, report = run(tmp_path, tree, "--keep-going", "--range-diff-base", "base..v1",
                     str(patches))
    assert rc == 1
    rd = report["patches"][2]["results"]["range-diff"]  # type: ignore[index]
    assert rd["state"] == "success"
    assert "2 unchanged, 1 changed" in rd["description"]


def test_sparse_warnings_are_attributed(tmp_path: Path) -> None:
    if shutil.which("sparse") is None:
        pytest.skip("sparse is not installed")
    config = synth.write_config(tmp_path / "cs.toml", ["apply", "sparse"])
    # A global without a declaration: sparse says it should be static.
    tree, patches = synth.make_series(tmp_path, patch2_extra="int lib_a_count;\n")
    rc, report = run(tmp_path, tree, "--keep-going", str(patches), config=config)
    assert rc == 0  # sparse findings are warnings by default
    assert cells(report, "sparse") == ["success", "warning", "success"]
    desc = report["patches"][1]["results"]["sparse"]["description"]  # type: ignore[index]
    assert "lib_a_count" in desc


def test_check_that_cannot_run_is_skipped_with_the_reason(tmp_path: Path) -> None:
    config = synth.write_config(tmp_path / "cs.toml", ["apply", "kunit", "kerneldoc", "boot"])
    tree, patches = synth.make_series(tmp_path)
    rc, report = run(tmp_path, tree, str(patches), config=config)
    assert rc == 0
    for check in ("kunit", "kerneldoc", "boot"):
        r = report["patches"][0]["results"][check]  # type: ignore[index]
        assert r["state"] == "skip", check
        assert r["description"], check
    assert "no kunitconfig" in report["patches"][0]["results"]["kunit"]["description"]  # type: ignore[index]
    assert "kernel-doc" in report["patches"][0]["results"]["kerneldoc"]["description"]  # type: ignore[index]


def test_the_users_checkout_is_not_touched(tmp_path: Path) -> None:
    tree, patches = synth.make_series(tmp_path)
    head = synth.git(tree, "rev-parse", "HEAD")
    branches = synth.git(tree, "branch", "--list")
    run(tmp_path, tree, "--keep-going", str(patches))
    assert synth.git(tree, "rev-parse", "HEAD") == head
    assert synth.git(tree, "branch", "--list") == branches
    assert synth.git(tree, "status", "--porcelain") == ""


def test_checkpatch_runs_the_projects_python(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpatch's spdxcheck.py runs the python3 on PATH; that must be the
    project's (it has ply), not whatever comes first on the caller's PATH."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as `.venv/bin/check-series` is run
    tree, patches = synth.make_series(tmp_path, patch2_extra="/* CHECKPATCH-PYTHON */\n")
    rc, _ = run(tmp_path, tree, "--only", "checkpatch", str(patches))
    assert rc == 0
    log = (tmp_path / "out" / "logs" / "02-checkpatch.log").read_text()
    assert f"python3 prefix: {sys.prefix}\n" in log


def test_a_crashed_checkpatch_helper_fails_the_cell(tmp_path: Path) -> None:
    """No false green: checkpatch totals 0 errors when spdxcheck.py dies."""
    tree, patches = synth.make_series(tmp_path,
                                      patch2_extra="/* CHECKPATCH-HELPER-CRASH */\n")
    rc, report = run(tmp_path, tree, "--keep-going", "--only", "checkpatch", str(patches))
    assert rc == 1
    assert cells(report, "checkpatch") == ["success", "fail", "success"]
    desc = report["patches"][1]["results"]["checkpatch"]["description"]  # type: ignore[index]
    assert "crashed" in desc and "No module named 'ply'" in desc
