"""vblk.cfuzz (building and running vblk-fuzz) and the bench's build of vblk-load,
which shares tools/bench/vring.c with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kseries.bench import runner
from kseries.progress import Progress
from vblk import cfuzz

ROOT = Path(__file__).resolve().parents[2]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


def test_parse_keeps_failures_and_the_summary() -> None:
    out = "\n".join([
        "noise",
        json.dumps({"tool": "vblk-fuzz", "failure": "mismatch", "detail": "x"}),
        json.dumps({"tool": "other", "mode": "fuzz"}),
        "{not json",
        json.dumps({"tool": "vblk-fuzz", "mode": "fuzz", "ok": True, "failures": 1}),
    ])
    summary, failures = cfuzz.parse(out)
    assert summary["mode"] == "fuzz"
    assert [f["failure"] for f in failures] == ["mismatch"]
    res = cfuzz.Result(0, summary, failures)
    assert not res.ok  # a failure line is a failure, whatever the summary says
    assert "mismatch" in res.describe()


def test_ok_needs_a_clean_summary_and_exit() -> None:
    good = {"tool": "vblk-fuzz", "mode": "fuzz", "ok": True, "failures": 0}
    assert cfuzz.Result(0, good).ok
    assert not cfuzz.Result(1, good).ok
    assert not cfuzz.Result(0, {**good, "failures": 2}).ok
    assert not cfuzz.Result(0, {}).ok


def _copy_sources(dest: Path) -> Path:
    for rel in (*cfuzz.SOURCES, *cfuzz.HEADERS):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest / rel)
    return dest


@needs_gcc
def test_prebuilt_only_when_built_from_these_sources(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "tree")
    out = cfuzz.build(root, tmp_path / "bin")
    assert out.is_file()
    assert cfuzz.prebuilt(root, tmp_path / "bin") == out
    header = root / cfuzz.HEADERS[0]
    header.write_text(header.read_text() + "\n/* changed */\n")
    assert cfuzz.prebuilt(root, tmp_path / "bin") is None
    fresh = cfuzz.find_or_build(root, tmp_path / "bin", tmp_path / "scratch")
    assert fresh == tmp_path / "scratch" / cfuzz.NAME


@needs_gcc
def test_build_error_says_why(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path / "tree")
    src = root / cfuzz.SOURCES[0]
    src.write_text(src.read_text() + "\nstatic int unused_and_warned;\n")
    with pytest.raises(cfuzz.BuildError, match="unused_and_warned"):
        cfuzz.build(root, tmp_path / "bin")


@needs_gcc
def test_the_bench_still_builds_vblk_load(tmp_path: Path) -> None:
    out = runner.build_tool(ROOT, tmp_path, Progress(quiet=True))
    assert out.is_file()
