"""Plain-text tables, the one renderer every tool prints its tables with.

``render`` lays out fixed-width columns (each left or right aligned, at
least ``Column.width`` wide, widened to fit its cells), separated by
``gap``, with an optional header, a rule under it and footer rows (under
a second rule when there is a rule); lines carry no trailing blanks. ``markdown`` writes the
unpadded ``| a | b |`` tables of the benchmark reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Align = Literal["<", ">"]


@dataclass(frozen=True)
class Column:
    title: str = ""
    align: Align = "<"
    width: int = 0  # the least width; a longer cell (or title) widens the column


def render(columns: Sequence[Column], rows: Sequence[Sequence[object]], *,
           footer: Sequence[Sequence[object]] = (), gap: str = "  ", indent: str = "",
           header: bool = True, rule: bool = False) -> str:
    """The table as lines joined by newlines (no final newline).

    ``rule`` draws a run of dashes as wide as the table under the header
    and above the footer.
    """
    body = [_cells(row, len(columns)) for row in rows]
    foot = [_cells(row, len(columns)) for row in footer]
    titles = [c.title for c in columns]
    widths = [max([c.width, len(c.title) if header else 0, *(len(r[i]) for r in body + foot)])
              for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        text = gap.join(f"{cell:{col.align}{width}}"
                        for cell, col, width in zip(cells, columns, widths, strict=True))
        return (indent + text).rstrip()

    ruler = indent + "-" * (sum(widths) + len(gap) * (len(widths) - 1))
    lines = [line(titles)] if header else []
    if header and rule:
        lines.append(ruler)
    lines += [line(r) for r in body]
    if foot:
        if rule:
            lines.append(ruler)
        lines += [line(r) for r in foot]
    return "\n".join(lines)


def markdown(titles: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, cells unpadded (no final newline)."""
    lines = [_markdown_row(titles), "|" + "---|" * len(titles)]
    lines += [_markdown_row(_cells(row, len(titles))) for row in rows]
    return "\n".join(lines)


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cells(row: Sequence[object], n: int) -> list[str]:
    if len(row) != n:
        raise ValueError(f"a table row has {len(row)} cells for {n} columns: {list(row)!r}")
    return [str(cell) for cell in row]
