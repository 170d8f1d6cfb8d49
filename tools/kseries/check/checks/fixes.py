"""fixes: every Fixes: tag names a commit of the tree, by that commit's subject.

hygiene checks a tag's shape; this check looks the commit up in the tree
the patch applies to: the abbreviated hash must name exactly one commit,
that commit must be in the history of the patch (a commit of another
branch is a warning: the fix may be meant for a backport), and the
quoted subject must be the commit's own.  A patch without a Fixes: tag
has nothing to check and is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import UsageError
from ...git import git, rev, succeeds
from .. import inputs
from ..context import Check, CheckContext
from ..model import Outcome, State

_TAG = re.compile(r"^fixes:\s*(.*)$", re.I)
_VALUE = re.compile(r'^([0-9a-f]{12,40}) \("(.+)"\)$')


@dataclass(frozen=True)
class Finding:
    state: State
    text: str


def tags(message: str) -> list[str]:
    """The values of the message's Fixes: tags, in order."""
    return [m.group(1).strip() for line in message.splitlines() if (m := _TAG.match(line))]


def review(ctx: CheckContext, value: str) -> Finding:
    m = _VALUE.match(value)
    if not m:
        return Finding(State.FAIL, f"malformed Fixes: tag {value!r} "
                                   "(want: Fixes: <12+ hex digits> (\"subject\"))")
    abbrev, subject = m.groups()
    sha = rev(ctx.tree, abbrev)
    if sha is None:
        return Finding(State.FAIL, f"Fixes: {abbrev} is not a commit of the tree "
                                   "(or the abbreviation is ambiguous)")
    actual = git(ctx.tree, "log", "-1", "--format=%s", sha).stdout.strip()
    if subject != actual:
        return Finding(State.FAIL, f"Fixes: {abbrev}: subject {subject!r} is not the "
                                   f"commit's {actual!r}")
    head = ctx.commit or ctx.prev_commit
    if not succeeds(ctx.tree, "merge-base", "--is-ancestor", sha, head):
        return Finding(State.WARNING, f"Fixes: {abbrev} is not in the history of this patch "
                                      f"({actual!r} is on another branch)")
    return Finding(State.SUCCESS, f"Fixes: {abbrev} ({actual!r}) is in the tree")


class Fixes(Check):
    name = "fixes"
    description = "each Fixes: tag names a commit of the tree by its own subject"

    def run(self, ctx: CheckContext) -> Outcome:
        try:
            msg = inputs.parse_message(ctx.patch.path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {ctx.patch.path}: {exc}", "check the file") from None
        values = tags(inputs.commit_message(inputs.body_of(msg)))
        if not values:
            ctx.write_log("no Fixes: tag")
            return Outcome.skip("no Fixes: tag to check")
        findings = [review(ctx, value) for value in values]
        for f in findings:
            ctx.write_log(f"{f.state.value.upper()}: {f.text}")
        bad = sorted((f for f in findings if f.state != State.SUCCESS),
                     key=lambda f: -f.state.rank)
        if not bad:
            return Outcome(State.SUCCESS, "; ".join(f.text for f in findings))
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        return Outcome(bad[0].state, bad[0].text + more)


CHECK = Fixes()
