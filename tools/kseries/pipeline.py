"""The main job: fetch the tree, apply the series, build, KUnit, boot, report.

Each stage is a function returning its own typed result (status, seconds,
a one-line summary and what the stage found), as the kernel's kunit.py
does with run_config/run_build/run_tests and KunitResult; run_main()
chains them, stopping at the first failure of fetch, apply or build.

The series is applied in the layout's scratch worktree (never on a
branch of the developer's tree) and built into the directories that
check-series and the in-guest suite use too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from . import boot, build, kunit_run, series, table, tree, worktree
from .boot import BootResult
from .build import BuildResult
from .errors import KseriesError
from .kunit_run import KunitResult
from .paths import Layout
from .progress import Progress
from .tree import Tree
from .worktree import Applied

PASS, FAIL, SKIP, NOT_RUN = "pass", "fail", "skip", "not run"

# The stage table: name, status (as wide as NOT RUN), seconds, detail.
STAGE_COLUMNS = (table.Column(), table.Column(width=7), table.Column(align=">", width=8),
                 table.Column())


@dataclass
class StageResult:
    """What one stage did: one row of the table, one entry of report.json."""

    NAME: ClassVar[str] = ""

    status: str = NOT_RUN  # pass, fail, skip, not run
    seconds: float = 0.0
    summary: str = ""  # one line: the table's last column, report.json's "detail"

    @property
    def name(self) -> str:
        return self.NAME

    @property
    def ok(self) -> bool:
        """Passed or skipped: the next stage may run."""
        return self.status in (PASS, SKIP)

    def data(self) -> dict[str, Any]:
        """The stage's own findings, as report.json's "data"."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": self.seconds,
                "detail": self.summary, "data": self.data()}


@dataclass
class FetchStage(StageResult):
    NAME: ClassVar[str] = "fetch"
    checkout: Tree | None = None


@dataclass
class ApplyStage(StageResult):
    NAME: ClassVar[str] = "apply"
    with_series: bool = False  # patches/ holds patches (else the base alone is tested)
    worktree: Path | None = None
    applied: Applied | None = None

    def data(self) -> dict[str, Any]:
        if self.applied is None:
            return {}
        return {"worktree": str(self.worktree), "head": self.applied.head,
                "reused": self.applied.reused}


@dataclass
class BuildStage(StageResult):
    NAME: ClassVar[str] = "build"
    build: BuildResult | None = None

    def data(self) -> dict[str, Any]:
        if self.build is None:
            return {}
        return {"release": self.build.release, "steps": self.build.steps,
                "log": str(self.build.log)}


@dataclass
class KunitStage(StageResult):
    NAME: ClassVar[str] = "kunit"
    kunit: KunitResult | None = None

    def data(self) -> dict[str, Any]:
        if self.kunit is None:
            return {}
        return {"cases": [asdict(c) for c in self.kunit.cases], "log": str(self.kunit.log)}


@dataclass
class BootStage(StageResult):
    NAME: ClassVar[str] = "boot"
    boot: BootResult | None = None

    def data(self) -> dict[str, Any]:
        if self.boot is None:
            return {}
        res = self.boot
        return {"attempts": res.attempts, "retry_reason": res.retry_reason, "notes": res.notes,
                "console_log": str(res.console_log), "kvm": res.kvm,
                "output": res.output[-2000:]}


STAGES: tuple[type[StageResult], ...] = (FetchStage, ApplyStage, BuildStage, KunitStage,
                                         BootStage)


@dataclass
class Report:
    stages: list[StageResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status in (PASS, SKIP) for s in self.stages) and any(
            s.status == PASS for s in self.stages)

    def table(self) -> str:
        return table.render(STAGE_COLUMNS, [(s.name, s.status.upper(), f"{s.seconds:.1f}s",
                                             s.summary) for s in self.stages], header=False)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"ok": self.ok, "stages": [s.to_json() for s in self.stages]},
                                   indent=2, default=str) + "\n")


R = TypeVar("R", bound=StageResult)


def _timed(stage: R, progress: Progress, work: Callable[[], str]) -> R:
    """Run ``work`` as ``stage``: it fills the stage's fields and returns the summary;
    a KseriesError fails the stage with its message."""
    t0 = time.monotonic()
    try:
        with progress.stage(stage.name):
            stage.summary = work()
        stage.status = PASS
    except KseriesError as err:
        stage.status, stage.summary = FAIL, str(err)
    stage.seconds = time.monotonic() - t0
    return stage


def skipped(cls: type[R]) -> R:
    return cls(status=SKIP, summary="skipped with --skip")


def guest_check_command(release: str, with_series: bool) -> str:
    """Smoke test in the guest: the right kernel, and the device when present."""
    cmd = f'test "$(uname -r)" = {release} && echo "uname -r: $(uname -r)"'
    if with_series:
        cmd += " && test -c /dev/vhost-blk && ls -l /dev/vhost-blk"
    return cmd


def run_fetch(lay: Layout, progress: Progress) -> FetchStage:
    """The pinned tree, fetched and imported unless it is there already."""
    stage = FetchStage()

    def work() -> str:
        stage.checkout = t = tree.ensure(lay, progress)
        return f"{t.path} at {t.base_commit()[:12]}"

    return _timed(stage, progress, work)


def run_apply(lay: Layout, progress: Progress) -> ApplyStage:
    """patches/ on the base in the scratch worktree (the caller holds its lock)."""
    stage = ApplyStage()

    def work() -> str:
        patches = series.list_patches(lay.patches) if lay.patches.is_dir() else []
        stage.with_series = bool(patches)
        t = tree.open_tree(lay.tree, lay.base)
        res = worktree.apply_series(t.path, lay.series_tree, t.base_commit(), patches,
                                    progress)
        stage.worktree, stage.applied = lay.series_tree, res
        what = f"{res.count} patches" if patches else "patches/ is empty: the base alone"
        again = ", already applied" if res.reused else ""
        return f"{what} in {lay.series_tree} at {res.head[:12]}{again}"

    return _timed(stage, progress, work)


def run_build(lay: Layout, with_series: bool, progress: Progress) -> BuildStage:
    """The debug kernel from the worktree, with the series' fragments when it has patches."""
    stage = BuildStage()

    def work() -> str:
        stage.build = res = build.build(lay.series_tree, lay.debug_build,
                                        lay.fragments(with_series=with_series), progress)
        return f"{res.release}, {res.steps} steps"

    return _timed(stage, progress, work)


def run_kunit(lay: Layout, with_series: bool, arch: str, progress: Progress) -> KunitStage:
    """The series' KUnit suites (the smoke kunitconfig for the base alone)."""
    stage = KunitStage()

    def work() -> str:
        name = "vhost_blk.kunitconfig" if with_series else "smoke.kunitconfig"
        stage.kunit = res = kunit_run.run(lay.series_tree, lay.kunit / name,
                                          lay.kunit_build(arch), progress, arch=arch)
        if not res.ok:
            failed = [c.full_name for c in res.cases if c.status in ("FAIL", "ERROR")]
            raise KseriesError(f"KUnit: {res.summary()}; failed: {', '.join(failed[:5])}",
                               f"see {res.log}")
        return res.summary()

    return _timed(stage, progress, work)


def run_boot(lay: Layout, kernel: BuildResult, with_series: bool,
             progress: Progress) -> BootStage:
    """Boot ``kernel`` and check, in the guest, its release and /dev/vhost-blk."""
    stage = BootStage()

    def work() -> str:
        spec = boot.GuestSpec(outdir=kernel.outdir, cwd=lay.root)
        cmd = guest_check_command(kernel.release, with_series)
        stage.boot = res = boot.run(spec, cmd, lay.console_log("boot"), progress)
        res.raise_for_failure()
        retried = f"; retried once: {res.retry_reason}" if res.attempts > 1 else ""
        first = res.output.strip().splitlines()[0] if res.output.strip() else ""
        return f"{first} ({'KVM' if res.kvm else 'TCG'}, {res.seconds:.0f}s{retried})"

    return _timed(stage, progress, work)


def run_main(lay: Layout, progress: Progress, kunit_arch: str = "um",
             skip: frozenset[str] = frozenset()) -> Report:
    """Every stage in order; a failed fetch, apply or build leaves the rest "not run"."""

    def unless_skipped(cls: type[R], run: Callable[[], R]) -> R:
        return skipped(cls) if cls.NAME in skip else run()

    done: list[StageResult] = []

    def run_stages() -> None:
        fetched = unless_skipped(FetchStage, lambda: run_fetch(lay, progress))
        done.append(fetched)
        if not fetched.ok:
            return
        with worktree.lock(lay.series_tree):
            applied = unless_skipped(ApplyStage, lambda: run_apply(lay, progress))
            done.append(applied)
            if not applied.ok:
                return
            with_series = applied.with_series
            built = unless_skipped(BuildStage, lambda: run_build(lay, with_series, progress))
            done.append(built)
            if not built.ok:
                return
            done.append(unless_skipped(
                KunitStage, lambda: run_kunit(lay, with_series, kunit_arch, progress)))
            kernel = built.build
            if kernel is not None:  # None: the build was skipped, there is nothing to boot
                done.append(unless_skipped(
                    BootStage, lambda: run_boot(lay, kernel, with_series, progress)))

    run_stages()
    report = Report(done + [cls() for cls in STAGES[len(done):]])
    report.write(lay.report)
    return report
