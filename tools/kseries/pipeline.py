"""The main job: fetch the tree, apply the series, build, KUnit, boot, report.

The series is applied in the layout's scratch worktree (never on a
branch of the developer's tree) and built into the directories that
check-series and the in-guest suite use too.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import boot, build, kunit_run, series, table, tree, worktree
from .errors import KseriesError
from .paths import Layout
from .progress import Progress

# The stage table: name, status (as wide as NOT RUN), seconds, detail.
STAGE_COLUMNS = (table.Column(), table.Column(width=7), table.Column(align=">", width=8),
                 table.Column())


@dataclass
class Stage:
    name: str
    status: str = "not run"  # pass, fail, skip, not run
    seconds: float = 0.0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    stages: list[Stage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status in ("pass", "skip") for s in self.stages) and any(
            s.status == "pass" for s in self.stages)

    def table(self) -> str:
        return table.render(STAGE_COLUMNS, [(s.name, s.status.upper(), f"{s.seconds:.1f}s",
                                             s.detail) for s in self.stages], header=False)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"ok": self.ok, "stages": [asdict(s) for s in self.stages]},
                                   indent=2, default=str) + "\n")


def guest_check_command(release: str, with_series: bool) -> str:
    """Smoke test in the guest: the right kernel, and the device when present."""
    cmd = f'test "$(uname -r)" = {release} && echo "uname -r: $(uname -r)"'
    if with_series:
        cmd += " && test -c /dev/vhost-blk && ls -l /dev/vhost-blk"
    return cmd


def run_main(lay: Layout, progress: Progress, kunit_arch: str = "um",
             skip: frozenset[str] = frozenset()) -> Report:
    report = Report()
    names = ["fetch", "apply", "build", "kunit", "boot"]
    stages = {name: Stage(name) for name in names}
    report.stages = [stages[n] for n in names]
    state: dict[str, Any] = {"with_series": False}

    def do(name: str, fn: Any) -> bool:
        stage = stages[name]
        if name in skip:
            stage.status, stage.detail = "skip", "skipped with --skip"
            return True
        t0 = time.monotonic()
        try:
            with progress.stage(name):
                stage.detail = fn(stage) or ""
            stage.status = "pass"
        except KseriesError as err:
            stage.status, stage.detail = "fail", str(err)
        stage.seconds = time.monotonic() - t0
        return stage.status == "pass"

    def fetch(stage: Stage) -> str:
        t = tree.ensure(lay, progress)
        return f"{t.path} at {t.base_commit()[:12]}"

    def apply(stage: Stage) -> str:
        patches = series.list_patches(lay.patches) if lay.patches.is_dir() else []
        state["with_series"] = bool(patches)
        t = tree.open_tree(lay.tree, lay.base)
        res = worktree.apply_series(t.path, lay.series_tree, t.base_commit(), patches,
                                    progress)
        stage.data = {"worktree": str(lay.series_tree), "head": res.head, "reused": res.reused}
        what = f"{res.count} patches" if patches else "patches/ is empty: the base alone"
        again = ", already applied" if res.reused else ""
        return f"{what} in {lay.series_tree} at {res.head[:12]}{again}"

    def do_build(stage: Stage) -> str:
        res = build.build(lay.series_tree, lay.debug_build,
                          lay.fragments(with_series=state["with_series"]), progress)
        state["build"] = res
        stage.data = {"release": res.release, "steps": res.steps, "log": str(res.log)}
        return f"{res.release}, {res.steps} steps"

    def kunit(stage: Stage) -> str:
        name = "vhost_blk.kunitconfig" if state["with_series"] else "smoke.kunitconfig"
        res = kunit_run.run(lay.series_tree, lay.kunit / name, lay.kunit_build(kunit_arch),
                            progress, arch=kunit_arch)
        stage.data = {"cases": [asdict(c) for c in res.cases], "log": str(res.log)}
        if not res.ok:
            failed = [c.full_name for c in res.cases if c.status in ("FAIL", "ERROR")]
            raise KseriesError(f"KUnit: {res.summary()}; failed: {', '.join(failed[:5])}",
                               f"see {res.log}")
        return res.summary()

    def do_boot(stage: Stage) -> str:
        res: build.BuildResult = state["build"]
        spec = boot.GuestSpec(outdir=res.outdir, cwd=lay.root)
        cmd = guest_check_command(res.release, state["with_series"])
        result = boot.run(spec, cmd, lay.console_log("boot"), progress)
        stage.data = {"attempts": result.attempts, "retry_reason": result.retry_reason,
                      "notes": result.notes,
                      "console_log": str(result.console_log), "kvm": result.kvm,
                      "output": result.output[-2000:]}
        result.raise_for_failure()
        retried = f"; retried once: {result.retry_reason}" if result.attempts > 1 else ""
        return f"{result.output.strip().splitlines()[0] if result.output.strip() else ''}" \
               f" ({'KVM' if result.kvm else 'TCG'}, {result.seconds:.0f}s{retried})"

    if do("fetch", fetch):
        with worktree.lock(lay.series_tree):
            if do("apply", apply) and do("build", do_build):
                do("kunit", kunit)
                do("boot", do_boot)
    report.write(lay.report)
    return report
