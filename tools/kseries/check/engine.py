"""Run the selected checks over the series, patch by patch, in one worktree."""

from __future__ import annotations

import datetime as dt
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .. import worktree
from ..errors import InfraError, KseriesError, UsageError
from ..progress import Progress
from . import cache as cache_mod
from . import interrupt
from .config import ProjectConfig
from .context import Check, CheckContext, RunOptions
from .live import Live
from .model import Outcome, PatchInfo, PatchReport, Result, SeriesReport, State


@dataclass(frozen=True)
class Plan:
    patches: list[PatchInfo]  # the whole series, in order
    per_patch: list[Check]  # "apply" first
    tip: list[Check]  # run once, on the last checked patch
    first: int = 1  # --from (1-based)
    last: int = 0  # --to (0: the last patch)
    keep_going: bool = False
    resume: bool = False


@dataclass(frozen=True)
class Setup:
    tree: Path  # the user's tree (never modified)
    worktree: Path  # where patches are applied
    base: str
    base_commit: str
    source: str
    output: Path
    work: Path
    config: ProjectConfig
    options: RunOptions


def _one_line(text: str) -> str:
    return " | ".join(part.strip() for part in text.strip().splitlines() if part.strip())[:500]


class Runner:
    def __init__(self, plan: Plan, setup: Setup, progress: Progress) -> None:
        self.plan = plan
        self.setup = setup
        self.progress = progress
        self.cache = cache_mod.Cache(setup.output / "cache", read=plan.resume)
        self.config_fp = setup.config.fingerprint()
        last = plan.last or len(plan.patches)
        self.checked = [p for p in plan.patches if plan.first <= p.index <= last]
        self.live = Live(progress, len(plan.patches))
        per = [c.name for c in plan.per_patch]
        self.tip_checks = [c for c in plan.tip if c.name not in per]
        self.columns = [*plan.per_patch, *self.tip_checks]
        self.interrupted = ""  # the signal's name once one stopped the run

    def key(self, check: Check, patch: PatchInfo, chain: str, is_tip: bool) -> str:
        depends = chain if check.needs_tree else f"{self.setup.base_commit}:{patch.key}"
        return cache_mod.make_key(check.name, check.version, self.config_fp, depends,
                                  str(is_tip), self.setup.options.range_diff_base or "",
                                  str(self.setup.options.smoke_tip))

    def run_check(self, check: Check, ctx: CheckContext, chain: str, upcoming: str) -> Result:
        rel = f"logs/{ctx.patch.label}-{check.name}.log"
        ctx.log = self.setup.output / rel
        ctx.log.unlink(missing_ok=True)
        key = self.key(check, ctx.patch, chain, ctx.is_tip)
        hit = self.cache.get(key) if check.cacheable else None
        if hit is not None:
            result, text = hit
            ctx.write_log(text)
            result.log = rel
            self.live.finished(ctx.patch.index, ctx.patch.name, result)
            return result
        t0 = time.monotonic()
        try:
            with self.live.running(ctx.patch.index, ctx.patch.name, check.name, upcoming):
                outcome = self._guarded(check, ctx)
        except interrupt.Interrupted as sig:
            took = time.monotonic() - t0
            self.interrupted = sig.signame
            ctx.write_log(f"interrupted by {sig.signame} after {took:.1f}s: not finished")
            result = Result(check.name, State.SKIP, f"interrupted by {sig.signame} after "
                            f"{took:.0f}s: not finished", took, rel)
            self.live.finished(ctx.patch.index, ctx.patch.name, result)
            return result
        if not ctx.log.exists() or not ctx.log.stat().st_size:
            ctx.write_log(outcome.description)
        result = Result(check.name, outcome.state, _one_line(outcome.description),
                        time.monotonic() - t0, rel, False, list(outcome.subtests))
        # A skip for want of something to check is as final as a result; one
        # that could not run (a tool missing, the build failed) is not.
        if check.cacheable and outcome.cacheable:
            self.cache.put(key, result, ctx.log.read_text(errors="replace"))
        self.live.finished(ctx.patch.index, ctx.patch.name, result)
        return result

    @staticmethod
    def _guarded(check: Check, ctx: CheckContext) -> Outcome:
        """A check's outcome; what it raises becomes a skip or a failure, never a crash."""
        try:
            return check.run(ctx)
        except (UsageError, InfraError) as err:
            ctx.write_log(f"cannot run: {err}")
            return Outcome.cannot_run(str(err))
        except KseriesError as err:
            ctx.write_log(str(err))
            return Outcome(State.FAIL, str(err))
        except Exception as err:  # a bug in a check must not lose the run
            ctx.write_log(traceback.format_exc())
            return Outcome(State.FAIL, f"internal error in check {check.name}: {err!r} "
                                       "(traceback in its log)")

    def _context(self, patch: PatchInfo, prev: str, is_tip: bool) -> CheckContext:
        return CheckContext(patch=patch, series=self.checked, tree=self.setup.worktree,
                            base_commit=self.setup.base_commit, prev_commit=prev, commit="",
                            is_tip=is_tip, config=self.setup.config,
                            log=self.setup.output / "logs" / "unused.log", work=self.setup.work,
                            progress=self.progress, options=self.setup.options)

    def _skip_all(self, row: PatchReport, checks: list[Check], reason: str) -> None:
        for check in checks:
            row.results.setdefault(check.name, Result(check.name, State.SKIP, reason))

    def run(self) -> SeriesReport:
        s = self.setup
        report = SeriesReport(
            tree=str(s.tree), base=s.base, base_commit=s.base_commit, source=s.source,
            checks=[(c.name, "tip" if c in self.tip_checks else "patch", c.description)
                    for c in self.columns],
            started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        t0 = time.monotonic()
        try:
            with worktree.lock(s.worktree):
                self._run_patches(report)
        except interrupt.Interrupted as sig:  # outside a check: setting up, applying
            self.interrupted = sig.signame
            self._interrupted_rows(report, "")
        if self.interrupted:
            report.interrupted = self.interrupted
            stopped = interrupt.stop_processes(interrupt.descendants())
            if stopped:
                self.progress.say(f"killed {len(stopped)} process(es) that ignored SIGTERM")
        report.seconds = time.monotonic() - t0
        return report

    def _interrupted_rows(self, report: SeriesReport, where: str) -> None:
        """Mark every cell not run yet (after the signal) as skipped."""
        reason = f"not run: interrupted by {self.interrupted}" + (f" {where}" if where else "")
        report.stopped_early = reason
        done = {row.patch.index: row for row in report.patches}
        tip = self.checked[-1] if self.checked else None
        for patch in self.checked:
            row = done.get(patch.index)
            if row is None:
                row = PatchReport(patch)
                report.patches.append(row)
            self._skip_all(row, self.plan.per_patch + (self.tip_checks if patch is tip else []),
                           reason)
        report.patches.sort(key=lambda r: r.patch.index)

    def _run_patches(self, report: SeriesReport) -> None:
        s = self.setup
        self.progress.say(f"worktree {s.worktree} at {s.base_commit[:12]} ({s.base})")
        worktree.prepare(s.tree, s.worktree, s.base_commit)
        prev, chain = s.base_commit, cache_mod.make_key(s.base_commit)
        tip = self.checked[-1] if self.checked else None
        stop = ""
        for patch in self.plan.patches:
            if tip is None or patch.index > tip.index:
                break
            checked = patch in self.checked
            row = PatchReport(patch)
            checks = self.plan.per_patch + (self.tip_checks if patch is tip else [])
            if stop:
                if checked:
                    self._skip_all(row, checks, stop)
                    report.patches.append(row)
                continue
            chain = cache_mod.make_key(chain, patch.key)
            ctx = self._context(patch, prev, patch is tip)
            names = [c.name for c in checks]
            if not checked:  # before --from: applied, not checked
                ctx.log = s.output / "logs" / f"{patch.label}-apply.log"
                outcome = self.plan.per_patch[0].run(ctx)
                if outcome.state == State.FAIL:
                    row.results["apply"] = Result("apply", State.FAIL, outcome.description)
                    report.patches.append(row)
                    stop = f"not run: patch {patch.label} did not apply"
                prev = ctx.commit or prev
                continue
            for i, check in enumerate(checks):
                upcoming = names[i + 1] if i + 1 < len(names) else self._next(patch)
                # checkpatch and hygiene read the patch alone: they run on one
                # that does not apply too (its author wants all the findings).
                if check.name != "apply" and not ctx.commit and check.needs_tree:
                    row.results[check.name] = Result(check.name, State.SKIP,
                                                     "the patch did not apply")
                    continue
                row.results[check.name] = self.run_check(check, ctx, chain, upcoming)
                if self.interrupted:
                    row.commit = ctx.commit
                    report.patches.append(row)
                    self._interrupted_rows(report, f"during {check.name} of patch "
                                                   f"{patch.label}")
                    return
            row.commit = ctx.commit
            report.patches.append(row)
            if not ctx.commit:
                stop = f"not run: patch {patch.label} did not apply"
            elif row.state == State.FAIL and not self.plan.keep_going:
                failed = [r.check for r in row.results.values() if r.state == State.FAIL]
                stop = (f"not run: stopped after patch {patch.label} failed "
                        f"{', '.join(failed)} (--keep-going checks the rest)")
            prev = ctx.commit or prev
        report.stopped_early = stop

    def _next(self, patch: PatchInfo) -> str:
        later = [p for p in self.checked if p.index > patch.index]
        return f"patch {later[0].label}" if later else ""


def run(plan: Plan, setup: Setup, progress: Progress) -> SeriesReport:
    return Runner(plan, setup, progress).run()
