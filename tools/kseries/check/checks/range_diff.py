"""range-diff: ``git range-diff`` against a previous version of the series (tip only)."""

from __future__ import annotations

import re
from collections import Counter

from ...git import git
from ..context import Check, CheckContext
from ..model import Outcome, State

_PAIR = re.compile(r"^\s*(?:\d+|-):\s+\S+\s+([=!<>])\s+(?:\d+|-):", re.M)
_WORDS = {"=": "unchanged", "!": "changed", "<": "dropped", ">": "new"}


def old_range(ctx: CheckContext, spec: str) -> str:
    """``A..B`` as given, or for a single ref R: merge-base(R, tip)..R."""
    if ".." in spec:
        return spec
    base = git(ctx.tree, "merge-base", spec, ctx.commit).stdout.strip()
    return f"{base}..{spec}"


class RangeDiff(Check):
    name = "range-diff"
    description = "git range-diff against --range-diff-base (tip only)"

    def run(self, ctx: CheckContext) -> Outcome:
        spec = ctx.options.range_diff_base
        if not spec:
            return Outcome.skip("no previous version given (--range-diff-base OLD_BASE..OLD_TIP)")
        old = old_range(ctx, spec)
        new = f"{ctx.base_commit}..{ctx.commit}"
        proc = git(ctx.tree, "range-diff", "--no-color", old, new, check=False)
        ctx.write_log(f"$ git range-diff {old} {new}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            return Outcome.not_run(f"git range-diff failed: {proc.stderr.strip()[:200]}")
        counts = Counter(m.group(1) for m in _PAIR.finditer(proc.stdout))
        text = ", ".join(f"{counts[k]} {w}" for k, w in _WORDS.items() if counts[k])
        return Outcome(State.SUCCESS, f"against {spec}: {text or 'no commits'}")


CHECK = RangeDiff()
