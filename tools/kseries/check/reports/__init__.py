"""The reports: JSON, JUnit XML, HTML, patchwork check states and a KCIDB document."""

from __future__ import annotations

from pathlib import Path

from ..model import SeriesReport
from . import html as html
from . import json_report as json_report
from . import junit as junit
from . import kcidb as kcidb
from . import patchwork as patchwork

NAMES = {"json": "report.json", "junit": "report.xml", "html": "report.html",
         "patchwork": "patchwork.json", "kcidb": "kcidb.json"}


def write_all(report: SeriesReport, output: Path, url_base: str | None) -> dict[str, Path]:
    """Write every report into ``output``; their paths by kind."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {kind: output / name for kind, name in NAMES.items()}
    json_report.write(report, paths["json"])
    junit.write(report, paths["junit"])
    html.write(report, paths["html"])
    patchwork.write(report, paths["patchwork"], url_base)
    kcidb.write(report, paths["kcidb"], url_base)
    return paths
