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
        before, now = kbuild.before_and_after(ctx, tg.now, flags, "build")
        if now.error:
            return Outcome(State.FAIL, now.error)
        new = diagnostics.new_since(before.diagnostics, now.diagnostics)
        return kbuild.verdict(ctx, new, len(now.diagnostics), ctx.config.build.severity,
                              f"{len(tg.now)} target(s)")

CHECK = Build()
