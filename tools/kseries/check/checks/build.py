"""build: compile what the patch touches (W=1), count only new warnings."""

from __future__ import annotations

from .. import diagnostics, kbuild
from ..context import Check, CheckContext
from ..model import Outcome, State


class Build(Check):
    name = "build"
    description = "incremental build of the touched objects with W=1; new warnings only"

    def run(self, ctx: CheckContext) -> Outcome:
        if not kbuild.have_make():
            return Outcome.cannot_run("make is not installed (apt-get install build-essential)")
        tg = kbuild.targets(ctx)
        for note in tg.notes:
            ctx.write_log(f"note: {note}")
        if not tg.now:
            return Outcome.skip("the patch changes no file that is compiled")
        flags = list(ctx.config.build.make_flags)
        kbuild.ensure_config(ctx, force=kbuild.kconfig_changed(ctx))
        ctx.write_log(f"== before the patch ({ctx.prev_commit[:12]}): {' '.join(tg.before)}")
        before = kbuild.at_previous(ctx, lambda: kbuild.compile_targets(
            ctx, tg.before, flags, "build (before)"))
        if before.error:
            ctx.write_log(f"note: the tree before the patch did not build: {before.error}")
        ctx.write_log(f"== with the patch ({ctx.commit[:12]}): {' '.join(tg.now)}")
        now = kbuild.compile_targets(ctx, tg.now, flags, "build")
        if now.error:
            return Outcome(State.FAIL, now.error)
        new = diagnostics.new_since(before.diagnostics, now.diagnostics)
        ctx.write_log(f"== {len(new)} new diagnostics (of {len(now.diagnostics)}):")
        for d in new:
            ctx.write_log(f"NEW: {d.text}")
        what = f"{len(tg.now)} target(s)"
        if new:
            return Outcome(ctx.config.build.severity,
                           f"{len(new)} new warning(s) in {what}; first: {new[0]}")
        old = len(now.diagnostics)
        return Outcome(State.SUCCESS, f"{what} built, no new warnings"
                       + (f" ({old} already there)" if old else ""))


CHECK = Build()
