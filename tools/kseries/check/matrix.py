"""The terminal matrix: patches as rows, checks as columns, totals below."""

from __future__ import annotations

from .model import SeriesReport, State

CELL = {State.SUCCESS: "ok", State.WARNING: "WARN", State.FAIL: "FAIL", State.SKIP: "skip"}


def render(report: SeriesReport, subject_width: int = 44) -> str:
    names = [name for name, _, _ in report.checks]
    widths = [max(len(n), 5) for n in names]
    head = f"{'#':>3}  {'patch':<{subject_width}}"
    lines = [head + "".join(f"  {n:<{w}}" for n, w in zip(names, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    for row in report.patches:
        subject = row.patch.subject
        if len(subject) > subject_width:
            subject = subject[:subject_width - 1] + "~"
        cells = []
        for name, width in zip(names, widths, strict=True):
            result = row.results.get(name)
            text = "." if result is None else CELL[result.state] + ("*" if result.cached else "")
            cells.append(f"  {text:<{width}}")
        lines.append(f"{row.patch.label:>3}  {subject:<{subject_width}}" + "".join(cells))
    lines.append("-" * len(lines[0]))
    took = report.check_seconds()
    lines.append(f"{'':>3}  {'time':<{subject_width}}" + "".join(
        f"  {_secs(took.get(n, 0.0)):<{w}}" for n, w in zip(names, widths, strict=True)))
    for state in (State.FAIL, State.WARNING):
        counts = [sum(1 for r in report.patches if (x := r.results.get(n)) and x.state == state)
                  for n in names]
        lines.append(f"{'':>3}  {state.value + 's':<{subject_width}}" + "".join(
            f"  {c:<{w}}" for c, w in zip(counts, widths, strict=True)))
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
