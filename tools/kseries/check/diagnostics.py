"""Compiler, sparse and kernel-doc diagnostics, and the per-patch baseline.

A diagnostic is keyed without its line and column numbers, so code that
a later patch only moves keeps the same key and is not blamed again.
The warnings a patch adds are its multiset minus the previous patch's.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)?\s*"
                   r"(?P<kind>warning|error|fatal error):\s*(?P<msg>.*)$")
# "declared at foo.c:12", "previous definition is here (bar.h:3:5)"
_EMBEDDED_LINE = re.compile(r"(\S+\.[ch]):\d+(?::\d+)?")
# Coccinelle's "... on line 1077, but ..."
_LINE_WORD = re.compile(r"\b(lines?) \d+(?:-\d+)?")
# coccicheck MODE=report: "drivers/foo.c:12:5-11: WARNING: ..." (column range)
_COCCI = re.compile(r"^(?P<file>[^\s:][^:]*\.[ch]):(?P<line>\d+):\d+-\d+:\s*(?P<msg>.*)$")


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    kind: str  # warning or error (coccinelle for a coccicheck report)
    message: str
    text: str  # the line as the tool printed it

    @property
    def key(self) -> tuple[str, str, str]:
        message = _LINE_WORD.sub(r"\1 N", _EMBEDDED_LINE.sub(r"\1", self.message))
        return (self.file, self.kind, message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind}: {self.message}"


def normalise_path(path: str, roots: list[Path]) -> str:
    for root in roots:
        prefix = str(root).rstrip("/") + "/"
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    while path.startswith(("./", "../")):
        path = path.split("/", 1)[1]
    return path


def parse(text: str, roots: list[Path] | None = None) -> list[Diagnostic]:
    """Every ``file:line[:col]: warning|error: message`` line, paths made relative."""
    found = []
    for raw in text.splitlines():
        m = _LINE.match(raw.strip())
        if not m:
            continue
        kind = "error" if "error" in m.group("kind") else "warning"
        found.append(Diagnostic(normalise_path(m.group("file"), roots or []),
                                int(m.group("line")), kind, m.group("msg").strip(), raw.strip()))
    return _dedupe(found)


def parse_cocci(text: str, roots: list[Path] | None = None) -> list[Diagnostic]:
    """coccicheck's report lines (``file:line:col-col: message``), paths made relative."""
    found = []
    for raw in text.splitlines():
        m = _COCCI.match(raw.strip())
        if m:
            found.append(Diagnostic(normalise_path(m.group("file"), roots or []),
                                    int(m.group("line")), "coccinelle", m.group("msg").strip(),
                                    raw.strip()))
    return _dedupe(found)


def _dedupe(items: list[Diagnostic]) -> list[Diagnostic]:
    # make can print the same diagnostic twice (a header in two objects
    # counts once per place in the source, not once per includer).
    seen: set[tuple[str, int, str, str]] = set()
    out = []
    for d in items:
        ident = (d.file, d.line, d.kind, d.message)
        if ident not in seen:
            seen.add(ident)
            out.append(d)
    return out


def new_since(before: list[Diagnostic], after: list[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in ``after`` beyond those ``before`` already had (as multisets)."""
    budget = Counter(d.key for d in before)
    added = []
    for d in after:
        if budget[d.key] > 0:
            budget[d.key] -= 1
        else:
            added.append(d)
    return added
