"""The broken fixture series still applies on top of patches/.

tests/integration/test_check_series.py checks that check-series names
each breaking patch of tests/fixtures/check/broken/ by the check it
breaks (checkpatch, KUnit, the build).  That only means something while
each fixture applies: a fixture that no longer applies fails "apply" and
every later check is skipped, which the integration test only finds out
after the main job, about 45 minutes into CI.  The fixtures touch only
drivers/vhost/blk*.c, files the series creates, so those files can be
rebuilt from patches/ alone and the fixtures applied to them here, in
the unit tier.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATCHES = ROOT / "patches"
BROKEN = ROOT / "tests" / "fixtures" / "check" / "broken"
FILES = "drivers/vhost/blk*"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _series(directory: Path) -> list[Path]:
    return [directory / name for name in (directory / "series").read_text().split()]


def _apply(tree: Path, patch: Path, include: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["git", "apply", "--verbose"]
    if include:
        cmd.append(f"--include={include}")
    return subprocess.run([*cmd, str(patch)], cwd=tree, text=True, capture_output=True,
                          check=False)


def test_every_broken_fixture_applies_on_the_series(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for patch in _series(PATCHES):
        proc = _apply(tmp_path, patch, FILES)
        assert proc.returncode == 0, f"{patch.name}: {proc.stderr}"
    assert (tmp_path / "drivers" / "vhost" / "blk.c").is_file()
    for patch in _series(BROKEN):
        proc = _apply(tmp_path, patch)
        assert proc.returncode == 0, (
            f"{patch.name} no longer applies on patches/ (regenerate its hunk against "
            f"the series' tip): {proc.stderr.strip()}")
