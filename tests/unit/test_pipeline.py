"""The main job (`kseries all`) with its expensive steps faked.

tree.ensure/open_tree, worktree.apply_series, build.build, kunit_run.run and
boot.run are replaced; the job's own logic runs: which stages run, their
status and detail, the stop after a failure, the skips, the report.json it
writes (byte for byte, but for the seconds, against the golden files in
tests/fixtures/pipeline) and the table and exit status `kseries all` gives.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kseries import boot, build, cli, kunit_run, paths, pipeline, tree, worktree
from kseries.errors import KseriesError
from kseries.progress import Progress

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "pipeline"
BASE = "b" * 40
HEAD = "c" * 40
RELEASE = "6.12.117-vhost-blk"


@dataclass
class FakeTree:
    path: Path
    base: str = "v6.12"

    def base_commit(self) -> str:
        return BASE


@dataclass
class Fakes:
    """What the fakes were asked, and what they are to do."""

    work: Path
    fail: dict[str, str] = field(default_factory=dict)  # stage -> error
    kunit_fail: bool = False
    guest_output: str = f"uname -r: {RELEASE}\n"
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _maybe_fail(self, stage: str) -> None:
        if stage in self.fail:
            raise KseriesError(self.fail[stage], "the fix")

    def ensure(self, lay: paths.Layout, progress: Progress) -> FakeTree:
        self.calls.append(("fetch", None))
        self._maybe_fail("fetch")
        return FakeTree(self.work / "linux")

    def open_tree(self, path: Path, base: str) -> FakeTree:
        return FakeTree(path, base)

    def apply_series(self, tree_path: Path, wt: Path, base_commit: str, patches: list[Path],
                     progress: Progress) -> worktree.Applied:
        self.calls.append(("apply", [p.name for p in patches]))
        self._maybe_fail("apply")
        return worktree.Applied(HEAD, len(patches), reused=False)

    def build(self, src: Path, outdir: Path, fragments: list[Path],
              progress: Progress) -> build.BuildResult:
        self.calls.append(("build", [f.name for f in fragments]))
        self._maybe_fail("build")
        return build.BuildResult(outdir, outdir / "bzImage", RELEASE, 1234, 60.0,
                                 self.work / "build.log")

    def kunit(self, src: Path, kunitconfig: Path, build_dir: Path, progress: Progress,
              arch: str = "um") -> kunit_run.KunitResult:
        self.calls.append(("kunit", (kunitconfig.name, arch)))
        self._maybe_fail("kunit")
        cases = [kunit_run.Case("vhost_blk", "test_a", "PASS"),
                 kunit_run.Case("vhost_blk", "test_b", "FAIL" if self.kunit_fail else "PASS")]
        return kunit_run.KunitResult(cases, 1 if self.kunit_fail else 0,
                                     self.work / "kunit.log", self.work / "kunit.json",
                                     counts=Counter(c.status for c in cases))

    def boot(self, spec: boot.GuestSpec, command: str, log: Path,
             progress: Progress) -> boot.BootResult:
        self.calls.append(("boot", command))
        self._maybe_fail("boot")
        return boot.BootResult(command, 0, self.guest_output, log, [], 42.0, kvm=False)


def _layout(tmp_path: Path, with_series: bool = True) -> paths.Layout:
    patches = tmp_path / "patches"
    patches.mkdir()
    if with_series:
        for name in ("0001-a.patch", "0002-b.patch"):
            (patches / name).write_text(f"From {'0' * 40} Mon Sep 17 00:00:00 2001\n"
                                        f"Subject: [PATCH] {name}\n\n")
        (patches / "series").write_text("0001-a.patch\n0002-b.patch\n")
    return paths.layout(patches=patches, work=tmp_path / "build")


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fakes:
    f = Fakes(tmp_path / "build")
    monkeypatch.setattr(tree, "ensure", f.ensure)
    monkeypatch.setattr(tree, "open_tree", f.open_tree)
    monkeypatch.setattr(worktree, "apply_series", f.apply_series)
    monkeypatch.setattr(build, "build", f.build)
    monkeypatch.setattr(kunit_run, "run", f.kunit)
    monkeypatch.setattr(boot, "run", f.boot)
    return f


def _normalized(path: Path, tmp_path: Path) -> str:
    """report.json with the seconds zeroed and the temporary directory named TMP."""
    text = path.read_text()
    text = re.sub(r'"seconds": [0-9.e-]+', '"seconds": 0.0', text)
    return text.replace(str(tmp_path), "TMP")


def _check_golden(name: str, lay: paths.Layout, tmp_path: Path) -> dict[str, Any]:
    got = _normalized(lay.report, tmp_path)
    assert got == (GOLDEN / name).read_text()
    data: dict[str, Any] = json.loads(lay.report.read_text())
    assert all(isinstance(s["seconds"], float) and s["seconds"] >= 0 for s in data["stages"])
    return data


def _statuses(report: pipeline.Report) -> dict[str, str]:
    return {s.name: s.status for s in report.stages}


def test_every_stage_passes(fakes: Fakes, tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    report = pipeline.run_main(lay, Progress(quiet=True), kunit_arch="x86_64")
    assert _statuses(report) == dict.fromkeys(["fetch", "apply", "build", "kunit", "boot"],
                                              "pass")
    assert report.ok
    _check_golden("report-pass.json", lay, tmp_path)
    calls = dict(fakes.calls)
    assert calls["apply"] == ["0001-a.patch", "0002-b.patch"]
    assert "vhost-blk.config" in calls["build"]
    assert calls["kunit"] == ("vhost_blk.kunitconfig", "x86_64")
    assert calls["boot"] == pipeline.guest_check_command(RELEASE, with_series=True)
    assert "/dev/vhost-blk" in calls["boot"]


def test_an_empty_series_tests_the_base(fakes: Fakes, tmp_path: Path) -> None:
    lay = _layout(tmp_path, with_series=False)
    report = pipeline.run_main(lay, Progress(quiet=True))
    assert report.ok
    calls = dict(fakes.calls)
    assert calls["apply"] == []
    assert "vhost-blk.config" not in calls["build"]
    assert calls["kunit"] == ("smoke.kunitconfig", "um")
    assert "/dev/vhost-blk" not in calls["boot"]
    assert report.stages[1].summary.startswith("patches/ is empty: the base alone")


def test_skipped_stages_do_not_run(fakes: Fakes, tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    report = pipeline.run_main(lay, Progress(quiet=True), skip=frozenset({"boot"}))
    assert _statuses(report)["boot"] == "skip"
    assert "boot" not in dict(fakes.calls)
    assert report.ok
    _check_golden("report-skip-boot.json", lay, tmp_path)


def test_only_skips_is_not_a_pass() -> None:
    report = pipeline.Report([pipeline.KunitStage("skip"), pipeline.BootStage("skip")])
    assert not report.ok
    assert pipeline.Report([pipeline.FetchStage("pass"), pipeline.BootStage("skip")]).ok


def test_a_failing_build_stops_the_later_stages(fakes: Fakes, tmp_path: Path) -> None:
    fakes.fail["build"] = "make failed: error: foo"
    lay = _layout(tmp_path)
    report = pipeline.run_main(lay, Progress(quiet=True))
    assert _statuses(report) == {"fetch": "pass", "apply": "pass", "build": "fail",
                                 "kunit": "not run", "boot": "not run"}
    assert [c[0] for c in fakes.calls] == ["fetch", "apply", "build"]
    assert not report.ok
    _check_golden("report-build-fails.json", lay, tmp_path)


def test_a_failing_fetch_runs_nothing_else(fakes: Fakes, tmp_path: Path) -> None:
    fakes.fail["fetch"] = "download failed"
    lay = _layout(tmp_path)
    report = pipeline.run_main(lay, Progress(quiet=True))
    assert _statuses(report) == {"fetch": "fail", "apply": "not run", "build": "not run",
                                 "kunit": "not run", "boot": "not run"}
    assert report.stages[0].summary == "download failed (the fix)"
    assert [c[0] for c in fakes.calls] == ["fetch"]


def test_failing_kunit_still_boots(fakes: Fakes, tmp_path: Path) -> None:
    fakes.kunit_fail = True
    lay = _layout(tmp_path)
    report = pipeline.run_main(lay, Progress(quiet=True))
    assert _statuses(report)["kunit"] == "fail"
    assert _statuses(report)["boot"] == "pass"
    assert not report.ok
    _check_golden("report-kunit-fails.json", lay, tmp_path)


def test_a_guest_failure_fails_boot(fakes: Fakes, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_boot(spec: boot.GuestSpec, command: str, log: Path,
                 progress: Progress) -> boot.BootResult:
        return boot.BootResult(command, 1, "wrong kernel\n", log, [], 3.0, kvm=True)

    monkeypatch.setattr(boot, "run", bad_boot)
    lay = _layout(tmp_path)
    report = pipeline.run_main(lay, Progress(quiet=True))
    stage = report.stages[-1]
    assert (stage.name, stage.status) == ("boot", "fail")
    assert "exited 1 in the guest: wrong kernel" in stage.summary
    assert stage.data()["kvm"] is True


def test_kseries_all_prints_the_table_and_exits(fakes: Fakes, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    lay = _layout(tmp_path)
    argv = ["all", "--patches", str(lay.patches), "--work", str(lay.work), "--skip", "boot"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[:5]]
    assert [r[:2] for r in rows] == [["fetch", "PASS"], ["apply", "PASS"], ["build", "PASS"],
                                     ["kunit", "PASS"], ["boot", "SKIP"]]
    assert all(re.fullmatch(r"\d+\.\d+s", r[2]) for r in rows)
    assert rows[2][3:] == [f"{RELEASE},", "1234", "steps"]
    assert out.splitlines()[5:] == [f"report: {lay.report}", "RESULT: PASS"]

    fakes.fail["apply"] = "git am failed"
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "apply  FAIL" in out
    assert out.splitlines()[-1] == "RESULT: FAIL"


def test_each_stage_returns_its_typed_result(fakes: Fakes, tmp_path: Path) -> None:
    lay = _layout(tmp_path)
    progress = Progress(quiet=True)
    built = pipeline.run_build(lay, True, progress)
    assert isinstance(built, pipeline.BuildStage)
    assert (built.status, built.summary) == ("pass", f"{RELEASE}, 1234 steps")
    assert built.build is not None and built.build.release == RELEASE
    assert built.seconds >= 0

    fakes.kunit_fail = True
    kunit = pipeline.run_kunit(lay, True, "um", progress)
    assert kunit.status == "fail" and not kunit.ok
    assert kunit.kunit is not None and kunit.kunit.counts["FAIL"] == 1  # kept on failure
    assert kunit.data()["cases"][1] == {"suite": "vhost_blk", "name": "test_b",
                                        "status": "FAIL"}

    fakes.fail["build"] = "make failed"
    failed = pipeline.run_build(lay, True, progress)
    assert (failed.status, failed.summary, failed.build) == ("fail", "make failed (the fix)",
                                                             None)
    assert failed.data() == {}


def test_a_skipped_build_leaves_nothing_to_boot(fakes: Fakes, tmp_path: Path) -> None:
    report = pipeline.run_main(_layout(tmp_path), Progress(quiet=True),
                               skip=frozenset({"build"}))
    assert _statuses(report) == {"fetch": "pass", "apply": "pass", "build": "skip",
                                 "kunit": "pass", "boot": "not run"}
    assert "boot" not in dict(fakes.calls)
