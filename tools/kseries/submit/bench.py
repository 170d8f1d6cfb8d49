"""Benchmark figures for the cover letter, when a benchmark has run.

``kseries bench`` writes build/bench/run-<time>/results.json; given that
directory (the default) or one run, the newest run's results.json is
read with the benchmark's own reader (``kseries.bench.report.load``) and
rendered as ``kseries bench`` renders table.md: the cases, the targets
and a summary. A results.json file may be named directly; a ``.txt`` or
``.md`` file is taken verbatim (figures written by hand). A results.json
the reader refuses stops the command with its one-line error naming the
file; no results at all leave the figures out, and the cover says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..bench import report


@dataclass(frozen=True)
class Bench:
    path: Path
    text: str

    def table(self) -> str:
        """The figures as the cover letter shows them (emails are read in monospace)."""
        return self.text


def load(path: Path) -> Bench | None:
    if path.is_dir():
        found = report.latest_results(path)
        if found is None:
            return None
        path = found
    if not path.is_file():
        return None
    if path.suffix in (".txt", ".md"):
        text = path.read_text().strip()
        return Bench(path, text) if text else None
    return Bench(path, report.text(report.load(path)).strip())
