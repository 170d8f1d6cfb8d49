"""diffstat: the whole series' diffstat, on the tip only."""

from __future__ import annotations

from ...git import git
from ..context import Check, CheckContext
from ..model import Outcome, State


class Diffstat(Check):
    name = "diffstat"
    description = "the series' diffstat against the base (tip only)"

    def run(self, ctx: CheckContext) -> Outcome:
        out = git(ctx.tree, "diff", "--stat=100", "--summary", ctx.base_commit,
                         ctx.commit).stdout
        ctx.write_log(out)
        stat = [line for line in out.splitlines() if " changed" in line]
        return Outcome(State.SUCCESS, stat[-1].strip() if stat else "no changes")


CHECK = Diffstat()
