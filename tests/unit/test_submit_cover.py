"""The cover letter rendered for a fixture series."""

from __future__ import annotations

from pathlib import Path

import pytest

from kseries import manifest
from kseries.bench import report as bench_report
from kseries.errors import ReportError
from kseries.submit import bench, checks, cover

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "submit"
MANIFEST = Path(__file__).resolve().parents[2] / "kernel-tree" / "manifest.toml"
SHA = "d3699acb341cf2ec2f21d51e9d7e9f412f204801"


def inputs(report: checks.CheckReport, **kw: object) -> cover.CoverInputs:
    args: dict[str, object] = {"version": 1, **kw}
    return cover.CoverInputs(design=cover.parse_design((FIX / "cover.txt").read_text()),
                             manifest=manifest.load(MANIFEST), base_commit=SHA,
                             patch_count=3, checks=report, **args)  # type: ignore[arg-type]


def test_design_text_is_split_into_sections() -> None:
    d = cover.parse_design((FIX / "cover.txt").read_text())
    assert d.subject == "foo: a driver for the foo device"
    assert d.intro.startswith("This series adds a driver")
    assert [s.title for s in d.sections] == ["Design", "Alternatives considered"]
    assert d.testing == "KUnit covers the request parser."


def test_rendered_cover_with_a_passing_report_and_benchmarks() -> None:
    report = checks.load(FIX / "check-pass.json", 3)
    text = cover.render(inputs(report, bench=bench.load(FIX / "bench.json")))
    expected = (FIX / "expected-cover.txt").read_text()
    assert text == expected


def test_the_newest_benchmark_run_reaches_the_cover(tmp_path: Path) -> None:
    """What `kseries bench` writes (build/bench/run-<time>/results.json), read with
    the benchmark's own reader and shown as its table.md shows it."""
    run = bench_report.load(FIX / "bench.json")
    for stamp, iops in (("run-20261101T100000Z", 12345.0), ("run-20261130T090000Z", 67890.0)):
        (tmp_path / stamp).mkdir()
        run.rows[4].result.iops = iops
        bench_report.write(run, tmp_path / stamp / "results.json")
    (tmp_path / "run-20261201T000000Z").mkdir()  # an unfinished run: no results yet
    found = bench.load(tmp_path)
    assert found is not None and found.path.parent.name == "run-20261130T090000Z"
    assert found.table() == bench_report.text(run).strip()
    text = cover.render(inputs(checks.load(tmp_path / "none.json", 3), bench=found))
    assert "| vhost-blk 2q/2w | 67,890 |" in text and "12,345" not in text
    assert "No benchmark figures" not in text
    assert bench.load(tmp_path / "run-20261201T000000Z") is None


def test_benchmark_results_the_reader_refuses_stop_the_cover(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"results": [{"backend": "direct", "kiops": 101.5}]}')
    with pytest.raises(ReportError) as err:
        bench.load(path)
    assert err.value.message.startswith(f"the benchmark results {path} are not a version 1 ")


def test_hand_written_figures_are_taken_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "figures.md"
    path.write_text("\n| case | ratio |\n| a | 0.97x |\n\n")
    found = bench.load(path)
    assert found is not None and found.table() == "| case | ratio |\n| a | 0.97x |"


def test_rendered_cover_without_results_invents_nothing(tmp_path: Path) -> None:
    text = cover.render(inputs(checks.load(tmp_path / "none.json", 3)))
    assert "No tools/check-series report was found" in text
    assert "pass" not in text.split("Testing\n=======\n")[1]
    assert "No benchmark figures are included in this version." in text
    assert "Linux 6.12.117 as Debian ships it" in text and SHA[:12] in text
    assert "Changelog" not in text
    assert not [line for line in text.splitlines() if line.startswith("#") or line == "---"]


def test_changelog_lists_every_version_newest_first(tmp_path: Path) -> None:
    text = cover.render(inputs(checks.load(tmp_path / "none.json"), version=3,
                               changes=((3, "- third"), (2, "- second")), previous="v2"))
    log = text.split("Changelog\n=========\n")[1]
    assert log.index("Changes in v3:\n- third") < log.index("Changes in v2:\n- second")
    assert "range-diff against v2 follows" in log


def test_b4_template_escapes_dollars_and_keeps_b4_fields() -> None:
    tpl = cover.render_b4_template("1:  abc ! 1:  def x\n    -$cost\n", 1)
    assert "Range-diff against v1:\n1:  abc ! 1:  def x\n    -$$cost" in tpl
    for field in ("${cover}", "${shortlog}", "${diffstat}", "${base_commit}", "${change_id}"):
        assert field in tpl
    assert "\n-- \n${signature}" in tpl
    assert not [line for line in tpl.splitlines() if line.startswith("#")]
    assert "Range-diff" not in cover.render_b4_template()


def test_a_line_b4_would_drop_is_refused(tmp_path: Path) -> None:
    design = cover.parse_design("subject\n\n# not a heading for b4\n")
    with pytest.raises(ValueError, match="b4 would mangle"):
        cover.render(cover.CoverInputs(design=design, manifest=manifest.load(MANIFEST),
                                       base_commit=SHA, version=1, patch_count=1,
                                       checks=checks.load(tmp_path / "none.json")))


def test_testing_prose_may_claim_only_checks_that_ran(tmp_path: Path) -> None:
    from kseries.check.model import PatchInfo, PatchReport, Result, SeriesReport, State
    from kseries.check.reports import json_report
    rep = SeriesReport(tree="/t", base="b", base_commit="b" * 40, source="p",
                       checks=[(n, "patch", n) for n in ("apply", "checkpatch", "build", "boot")])
    info = PatchInfo(1, "0001-x.patch", Path("0001-x.patch"), "x", "A <a@b>", "p1", "k" * 64)
    rep.patches.append(PatchReport(info, "c" * 40, {
        "apply": Result("apply", State.SUCCESS, "ok"),
        "checkpatch": Result("checkpatch", State.SUCCESS, "ok"),
        "build": Result("build", State.SUCCESS, "ok"),
        "boot": Result("boot", State.SKIP, "cannot run: vng is missing")}))
    json_report.write(rep, tmp_path / "report.json")
    report = checks.load(tmp_path / "report.json", 1)
    prose = ("Every patch builds with W=1 and sparse and is checkpatch --strict clean. "
             "The series is booted under QEMU.")
    assert cover.unsupported_claims(prose, report) == [
        "sparse (the sparse check did not run)", "a boot (the boot check did not run)"]
    assert cover.unsupported_claims("Every patch builds with W=1.", report) == []
    text = cover.render(inputs(report))
    assert "check-series ran apply, checkpatch, build on this version" in text
