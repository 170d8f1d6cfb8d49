"""report.html: one self-contained page (inline CSS, no scripts), rendered
with jinja2; every cell of the matrix links to the check's log."""

from __future__ import annotations

from pathlib import Path

import jinja2

from ..model import SeriesReport, State

TEMPLATES = Path(__file__).with_name("templates")


def render(report: SeriesReport) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    template = env.get_template("report.html.j2")
    return template.render(report=report, totals=report.totals(),
                           took=report.check_seconds(), states=list(State),
                           failed=report.failed, verdict=verdict(report))


def verdict(report: SeriesReport) -> str:
    if report.interrupted:
        return "INTERRUPTED"
    return "FAIL" if report.failed else "PASS"


def write(report: SeriesReport, path: Path) -> None:
    path.write_text(render(report))
