"""sparse: run sparse (make C=2) on what the patch touches; new warnings only."""

from __future__ import annotations

import shutil

from .. import diagnostics, kbuild
from ..context import Check, CheckContext
from ..model import Outcome, State


class Sparse(Check):
    name = "sparse"
    description = "sparse (C=2) on the touched objects; warnings new relative to the patch before"

    def run(self, ctx: CheckContext) -> Outcome:
        if shutil.which("sparse") is None:
            return Outcome.cannot_run("sparse is not installed (apt-get install sparse)")
        if not kbuild.have_make():
            return Outcome.cannot_run("make is not installed (apt-get install build-essential)")
        tg = kbuild.targets(ctx)
        if not tg.now:
            return Outcome.skip("the patch changes no file that is compiled")
        flags = [*ctx.config.build.make_flags, "C=2"]
        kbuild.ensure_config(ctx, force=kbuild.kconfig_changed(ctx))
        before, now = kbuild.before_and_after(ctx, tg.now, flags, "sparse", force=False)
        if now.error:
            return Outcome.not_run(f"the build failed, so sparse did not run: {now.error}")
        # C=2 runs sparse beside the compiler: keep only sparse's lines.
        b = [d for d in before.diagnostics if not d.message.endswith("]")]
        n = [d for d in now.diagnostics if not d.message.endswith("]")]
        new = diagnostics.new_since(b, n)
        for d in new:
            ctx.write_log(f"NEW: {d.text}")
        if new:
            return Outcome(ctx.config.build.sparse_severity,
                           f"{len(new)} new sparse warning(s); first: {new[0]}")
        return Outcome(State.SUCCESS, f"no new sparse warnings ({len(n)} in all)")


CHECK = Sparse()
