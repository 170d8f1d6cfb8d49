"""hygiene: the commit message a maintainer reads before the code.

Signed-off-by from the author, a "subsystem: summary" subject of
bounded length, well-formed Fixes: tags, Link:/Closes: URLs, no trailing
whitespace, a description besides the tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from ...errors import UsageError
from .. import inputs
from ..config import HygieneConfig
from ..context import Check, CheckContext
from ..model import Outcome, State

_PREFIX = re.compile(r"^[\w.+/,-]+(?:[: ][\w.+/,-]+)*: \S")
_TAG = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): ?(.*)$")
_FIXES = re.compile(r'^[0-9a-f]{12,40} \(".+"\)$')
_URL = re.compile(r"^https?://\S+$")


@dataclass(frozen=True)
class Problem:
    state: State
    text: str


def review(subject: str, author: str, message: str, cfg: HygieneConfig) -> list[Problem]:
    """Everything wrong with one commit message, worst first."""
    problems: list[Problem] = []
    fail, warn = State.FAIL, State.WARNING
    lines = message.rstrip("\n").splitlines()
    tags = [(m.group(1), m.group(2).strip(), n) for n, line in enumerate(lines, 1)
            if (m := _TAG.match(line))]
    author_name, author_mail = parseaddr(author)
    signoffs = [parseaddr(value) for name, value, _ in tags if name.lower() == "signed-off-by"]
    if not signoffs:
        problems.append(Problem(fail, "no Signed-off-by tag"))
    elif not any(mail.lower() == author_mail.lower() for _, mail in signoffs):
        problems.append(Problem(fail, f"no Signed-off-by from the author <{author_mail}>"))
    elif not any(name == author_name for name, mail in signoffs
                 if mail.lower() == author_mail.lower()):
        problems.append(Problem(warn, f"the author's Signed-off-by name differs from "
                                      f"From: {author_name!r}"))
    if not subject.strip():
        problems.append(Problem(fail, "empty subject"))
    else:
        if len(subject) > cfg.subject_max:
            problems.append(Problem(warn, f"subject is {len(subject)} characters "
                                          f"(at most {cfg.subject_max})"))
        if cfg.require_prefix and not _PREFIX.match(subject):
            problems.append(Problem(warn, f"subject has no 'subsystem: ' prefix: {subject!r}"))
        if subject.rstrip().endswith("."):
            problems.append(Problem(warn, "subject ends with a period"))
    for name, value, n in tags:
        key = name.lower()
        if key == "fixes" and not _FIXES.match(value):
            problems.append(Problem(fail, f"line {n}: malformed Fixes: tag {value!r} "
                                          "(want: Fixes: <12+ hex digits> (\"subject\"))"))
        if key in ("link", "closes") and not _URL.match(value):
            problems.append(Problem(warn, f"line {n}: {name}: is not a URL: {value!r}"))
    trailing = [n for n, line in enumerate(lines, 1) if line != line.rstrip()]
    if trailing:
        problems.append(Problem(warn, "trailing whitespace on message line(s) "
                                      + ", ".join(map(str, trailing[:8]))))
    tag_lines = {n for _, _, n in tags}
    if not any(line.strip() for n, line in enumerate(lines, 1) if n not in tag_lines):
        problems.append(Problem(warn, "no commit description, only tags"))
    return sorted(problems, key=lambda p: -p.state.rank)


class Hygiene(Check):
    name = "hygiene"
    description = "commit message: Signed-off-by, subject, Fixes:, Link:/Closes:, whitespace"
    needs_tree = False

    def run(self, ctx: CheckContext) -> Outcome:
        try:
            msg = inputs.parse_message(ctx.patch.path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {ctx.patch.path}: {exc}", "check the file") from None
        message = inputs.commit_message(inputs.body_of(msg))
        problems = review(ctx.patch.subject, ctx.patch.author, message, ctx.config.hygiene)
        for p in problems:
            ctx.write_log(f"{p.state.value.upper()}: {p.text}")
        if not problems:
            ctx.write_log("commit message: no problems")
            return Outcome(State.SUCCESS, "commit message looks right")
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Outcome(problems[0].state, problems[0].text + more)


CHECK = Hygiene()
