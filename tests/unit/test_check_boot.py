"""The boot check's choice of in-guest command: smoke per patch, the suite on the tip,
the smoke command on the tip with --smoke-tip. Build and boot are stand-ins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kseries import boot, build
from kseries.check import config as config_mod
from kseries.check import kbuild
from kseries.check.checks import boot as boot_check
from kseries.check.context import CheckContext, RunOptions
from kseries.check.model import PatchInfo, State
from kseries.progress import Progress

CONFIG = """
[build]
fragments = ["frag.config"]
[boot]
smoke_command = "SMOKE"
tip_command = "SUITE"
"""


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    commands: list[str] = []
    monkeypatch.setattr(shutil, "which", lambda name, path=None: f"/usr/bin/{name}")
    monkeypatch.setattr(kbuild, "ensure_config", lambda ctx, force: None)

    def fake_build(tree: Path, outdir: Path, fragments: list[Path], progress: Progress,
                   strict_config: bool = True) -> build.BuildResult:
        return build.BuildResult(outdir, outdir / "bzImage", "6.12.0-test", 1, 1.0,
                                 tmp_path / "build.log")

    def fake_run(spec: boot.GuestSpec, command: str, console_log: Path, progress: Progress,
                 kvm: bool | None = None, retries: int = 1) -> boot.BootResult:
        commands.append(command)
        return boot.BootResult(command, 0, "ok", console_log, [], 1.0, False)

    monkeypatch.setattr(build, "build", fake_build)
    monkeypatch.setattr(boot, "run", fake_run)
    return commands


def context(tmp: Path, is_tip: bool, smoke_tip: bool) -> CheckContext:
    (tmp / "frag.config").write_text("CONFIG_X=y\n")
    (tmp / "cs.toml").write_text(CONFIG)
    cfg = config_mod.load(tmp / "cs.toml", tmp)
    patch = PatchInfo(1, "0001-x.patch", tmp / "0001-x.patch", "x: y", "A <a@b.c>", "", "")
    return CheckContext(patch=patch, series=[patch], tree=tmp, base_commit="b", prev_commit="b",
                        commit="c", is_tip=is_tip, config=cfg, log=tmp / "logs" / "boot.log",
                        work=tmp, progress=Progress(quiet=True),
                        options=RunOptions(smoke_tip=smoke_tip))


@pytest.mark.parametrize(("is_tip", "smoke_tip", "expected"), [
    (False, False, "SMOKE"), (True, False, "SUITE"), (True, True, "SMOKE"),
    (False, True, "SMOKE")])
def test_command_by_position_and_option(ran: list[str], tmp_path: Path, is_tip: bool,
                                        smoke_tip: bool, expected: str) -> None:
    outcome = boot_check.CHECK.run(context(tmp_path, is_tip, smoke_tip))
    assert outcome.state == State.SUCCESS, outcome.description
    assert ran == [expected]
    assert f"`{expected}` passed" in outcome.description


def test_without_vng_the_boot_cannot_run(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """Not a skip for want of something to check: submit-series counts it as not run."""
    from kseries.check.model import CANNOT_RUN
    monkeypatch.setattr(shutil, "which",
                        lambda name, path=None: None if name == "vng" else f"/usr/bin/{name}")
    outcome = boot_check.CHECK.run(context(tmp_path, is_tip=True, smoke_tip=False))
    assert outcome.state == State.SKIP
    assert outcome.description == CANNOT_RUN + ("virtme-ng (vng) is not installed "
                                                "(pip install virtme-ng)")
