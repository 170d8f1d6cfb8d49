"""The terminal matrix: patches as rows, checks as columns, totals below."""

from __future__ import annotations

from .. import table
from ..table import Column
from .model import SeriesReport, State

CELL = {State.SUCCESS: "ok", State.WARNING: "WARN", State.FAIL: "FAIL", State.SKIP: "skip"}


def render(report: SeriesReport, subject_width: int = 44) -> str:
    names = [name for name, _, _ in report.checks]
    columns = [Column("#", ">", 3), Column("patch", width=subject_width),
               *(Column(n, width=5) for n in names)]
    rows: list[list[object]] = []
    for row in report.patches:
        subject = row.patch.subject
        if len(subject) > subject_width:
            subject = subject[:subject_width - 1] + "~"
        cells = []
        for name in names:
            result = row.results.get(name)
            cells.append("." if result is None
                         else CELL[result.state] + ("*" if result.cached else ""))
        rows.append([row.patch.label, subject, *cells])
    took = report.check_seconds()
    footer: list[list[object]] = [["", "time", *(_secs(took.get(n, 0.0)) for n in names)]]
    for state in (State.FAIL, State.WARNING):
        footer.append(["", state.value + "s", *(
            sum(1 for r in report.patches if (x := r.results.get(n)) and x.state == state)
            for n in names)])
    lines = [table.render(columns, rows, footer=footer, rule=True)]
    totals = report.totals()
    lines.append("")
    lines.append("totals: " + ", ".join(f"{totals[s.value]} {s.value}" for s in State)
                 + f"; {report.seconds:.1f}s wall" + ("; * = cached" if any(
                     r.cached for p in report.patches for r in p.results.values()) else ""))
    if report.stopped_early:
        lines.append(report.stopped_early)
    return "\n".join(lines)


def _secs(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"


def failures(report: SeriesReport) -> list[str]:
    """One line per failed or warning cell: the patch, the check and why."""
    out = []
    for row in report.patches:
        for result in row.results.values():
            word = {State.FAIL: "FAIL", State.WARNING: "WARN"}.get(result.state)
            if word:
                out.append(f"{word} {row.patch.label} {row.patch.name} [{result.check}]: "
                           f"{result.description}")
    return out
