"""The cover letter: the project's design text plus what the tools measured.

The design text (intro, Design, Alternatives considered, Testing prose)
is the body of ``patches/0000-cover-letter.patch``: that file is already
the series' cover, `kseries apply` puts it in the branch description and
`kseries export` writes it back, so it is edited in one place.  Headings
are underlined with ``=``.  The sections this module generates (check
matrix and test counts, benchmarks, base, changelog) replace whatever the
text says about them, so the letter never claims results nobody has.

Two jinja2 templates in ``templates/`` do the wording:
``cover-letter.txt.j2`` renders the letter (subject line, blank line,
body) that b4 keeps in the branch description, and
``b4-cover.tmpl.j2`` renders the b4 ``prep-cover-template`` that wraps
it (range-diff, shortlog, diffstat, base-commit below the ``---``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .. import table
from ..manifest import Manifest
from .bench import Bench
from .checks import CheckReport

TEMPLATES = Path(__file__).resolve().parent / "templates"
_HEADING = re.compile(r"^(\S[^\n]*)\n(=+|-+)[ \t]*$", re.M)
_GENERATED = {"testing", "benchmarks", "base"}
_BASE_LINE = re.compile(r"^Base: .*(?:\n(?!\n).*)*", re.M)
_CHANGES = re.compile(r"^changes (in|since) v\d+", re.I)


@dataclass(frozen=True)
class Section:
    title: str
    body: str


@dataclass(frozen=True)
class DesignText:
    subject: str
    intro: str
    sections: tuple[Section, ...]
    testing: str = ""


@dataclass(frozen=True)
class CoverInputs:
    """Everything the template may show; each part may be absent."""

    design: DesignText
    manifest: Manifest
    base_commit: str
    version: int
    patch_count: int
    checks: CheckReport
    bench: Bench | None = None
    changes: tuple[tuple[int, str], ...] = ()
    previous: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def parse_design(text: str) -> DesignText:
    """Split ``subject\\n\\nbody`` into the intro and underlined sections."""
    subject, _, body = text.partition("\n\n")
    body = _BASE_LINE.sub("", body).strip("\n")
    marks = list(_HEADING.finditer(body))
    intro = body[: marks[0].start()] if marks else body
    sections: list[Section] = []
    testing = ""
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        title = m.group(1).strip()
        content = body[m.end():end].strip("\n")
        if title.lower() == "testing":
            testing = content
        elif title.lower() in _GENERATED or _CHANGES.match(title):
            continue
        else:
            sections.append(Section(title, content))
    return DesignText(subject.strip(), intro.strip("\n"), tuple(sections), testing)


# What the hand-written Testing prose may claim, and the check that must have run for it.
_CLAIMS = (
    (re.compile(r"\bW=1\b"), "build", "W=1 builds"),
    (re.compile(r"\bsparse\b", re.I), "sparse", "sparse"),
    (re.compile(r"\bcheckpatch\b", re.I), "checkpatch", "checkpatch"),
    (re.compile(r"\bkernel-doc\b", re.I), "kerneldoc", "kernel-doc"),
    (re.compile(r"\bkunit\b", re.I), "kunit", "KUnit"),
    (re.compile(r"\bboot(?:s|ed|ing)?\b", re.I), "boot", "a boot"),
)


def unsupported_claims(testing: str, report: CheckReport) -> list[str]:
    """What the Testing prose claims that the check-series report did not run."""
    return [f"{words} (the {check} check did not run)" for pattern, check, words in _CLAIMS
            if pattern.search(testing) and check not in report.ran]


def matrix(report: CheckReport) -> str:
    """Patches as rows, checks as columns, in fixed width."""
    n = len(report.rows)
    body = [[f"{row.index}/{n}", *(row.cells.get(c, "-") for c in report.columns)]
            for row in report.rows]
    return table.render([table.Column(c) for c in ("patch", *report.columns)], body,
                        indent="  ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["underline"] = lambda s, ch="=": f"{s}\n{ch * len(s)}"
    env.filters["dollars"] = lambda s: str(s).replace("$", "$$")
    return env


def _tidy(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def render(inputs: CoverInputs) -> str:
    """The cover letter as b4 keeps it: subject line, blank line, body."""
    text = _environment().get_template("cover-letter.txt.j2").render(
        d=inputs.design, m=inputs.manifest, i=inputs, checks=inputs.checks,
        matrix=matrix(inputs.checks) if inputs.checks.rows else "",
        totals=inputs.checks.totals(), bench=inputs.bench)
    text = _tidy(text)
    bad = [line for line in text.splitlines() if line.startswith("#") or line == "---"]
    if bad:
        # b4 drops lines starting with '#' and splits the letter at '---'.
        raise ValueError(f"the cover letter has a line b4 would mangle: {bad[0]!r}")
    return text


def render_b4_template(range_diff: str = "", previous_version: int = 0) -> str:
    """The b4 ``prep-cover-template`` (string.Template syntax) for this posting."""
    return _environment().get_template("b4-cover.tmpl.j2").render(
        range_diff=range_diff.rstrip("\n"), previous_version=previous_version)
