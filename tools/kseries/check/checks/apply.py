"""apply: ``git am`` the patch on top of the previous one."""

from __future__ import annotations

from ..context import Check, CheckContext
from ..gitops import ApplyFailure, am
from ..model import Outcome, State


class Apply(Check):
    name = "apply"
    description = "git am on top of the previous patch; names the file and hunk that fail"
    cacheable = False

    def run(self, ctx: CheckContext) -> Outcome:
        result = am(ctx.tree, ctx.patch.path)
        if isinstance(result, ApplyFailure):
            ctx.write_log(result.output)
            ctx.write_log(result.message)
            return Outcome(State.FAIL, result.message)
        ctx.commit = result
        ctx.write_log(f"applied {ctx.patch.name} as {result}")
        return Outcome(State.SUCCESS, f"applied as {result[:12]}")


CHECK = Apply()
