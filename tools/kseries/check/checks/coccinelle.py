"""coccinelle: the tree's semantic patches (coccicheck MODE=report) on the C files
the patch changes; findings new relative to the patch before.

The kernel's per-file way (Documentation/dev-tools/coccinelle.rst):
``make C=1 CHECK=scripts/coccicheck MODE=report path/file.o`` with the
object deleted first, in the build check's directory with its make flags
(ccache gives the object back), at the patch before and at the patch.
C=1 checks only what make compiles: C=2 would also run the 73 semantic
patches on every prepare-stage object make visits (scripts/mod/empty.c),
which doubled the time.  A finding is keyed by file and message without
its line numbers, as compiler warnings are.
"""

from __future__ import annotations

import shutil

from .. import diagnostics, kbuild
from ..context import Check, CheckContext
from ..model import Outcome, State


class Coccinelle(Check):
    name = "coccinelle"
    description = ("coccicheck MODE=report (make C=1 CHECK=scripts/coccicheck) on the changed "
                   "C files; new findings only")
    opt_in = True

    def run(self, ctx: CheckContext) -> Outcome:
        if shutil.which("spatch") is None:
            return Outcome.cannot_run("spatch is not installed (apt-get install coccinelle)")
        if not kbuild.have_make():
            return Outcome.cannot_run("make is not installed (apt-get install build-essential)")
        if not (ctx.tree / "scripts" / "coccicheck").is_file():
            return Outcome.cannot_run("the tree has no scripts/coccicheck")
        changed = {p for s, p in ctx.changed_files() if s != "D" and p.endswith(".c")}
        objects = [t for t in kbuild.targets(ctx).now if t[:-2] + ".c" in changed]
        if not objects:
            return Outcome.skip("the patch changes no C file")
        flags = [*ctx.config.build.make_flags, "C=1",
                 f"CHECK={ctx.tree / 'scripts' / 'coccicheck'}", "MODE=report"]
        kbuild.ensure_config(ctx, force=kbuild.kconfig_changed(ctx))
        before, now = kbuild.before_and_after(ctx, objects, flags, "coccinelle",
                                              parser=diagnostics.parse_cocci)
        if now.error:
            if "coccicheck failed" in ctx.log.read_text(errors="replace"):
                return Outcome(State.FAIL, f"coccicheck failed: {now.error}")
            return Outcome.not_run(f"the build failed, so coccinelle did not run: {now.error}")
        new = diagnostics.new_since(before.diagnostics, now.diagnostics)
        return kbuild.verdict(ctx, new, len(now.diagnostics), ctx.config.coccinelle.severity,
                              f"{len(objects)} file(s)", done="checked",
                              noun="coccinelle finding")

CHECK = Coccinelle()
