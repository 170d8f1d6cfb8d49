"""Benchmark figures for the cover letter, when a benchmark has run.

``kseries bench`` writes build/bench/run-<time>/ with table.md, its own
rendering of the results; given that directory (the default) or one run,
the newest run's table is taken verbatim (kseries.bench.report finds it).
A ``.txt``/``.md`` file is taken verbatim too, and a JSON file may be a
list of flat objects (one per measurement) or an object holding such a
list under ``results`` or ``rows``.  Anything else is left out of the
cover letter, and the cover says there are no figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import table as text_table
from ..bench import report


@dataclass(frozen=True)
class Bench:
    path: Path
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    text: str = ""

    def table(self) -> str:
        """A fixed-width plain-text table (emails are read in monospace)."""
        if self.text:
            return self.text
        return text_table.render([text_table.Column(c) for c in self.columns], self.rows,
                                 rule="columns")


def _cell(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def load(path: Path) -> Bench | None:
    if path.is_dir():
        table = report.latest_table(path)
        if table is None:
            return None
        path = table
    if not path.is_file():
        return None
    if path.suffix in (".txt", ".md"):
        text = path.read_text().strip()
        return Bench(path, text=text) if text else None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(data, dict):
        data = data.get("results", data.get("rows"))
    if not isinstance(data, list):
        return None
    items = [d for d in data if isinstance(d, dict)]
    columns: dict[str, None] = {}
    for item in items:
        for key, value in item.items():
            if not isinstance(value, (dict, list)):
                columns[str(key)] = None
    if not items or not columns:
        return None
    rows = tuple(tuple(_cell(item.get(c, "")) for c in columns) for item in items)
    return Bench(path, tuple(columns), rows)
