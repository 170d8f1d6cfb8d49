"""patchwork.json: check states ready to POST to a patchwork instance.

Each entry is the body of ``POST /api/patches/<id>/checks/`` (state,
context, description, target_url) with the patch's Message-Id, by
which a poster finds the patchwork id.  Skipped checks are left out:
patchwork has no such state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..model import SeriesReport, State

CONTEXT_PREFIX = "check-series-"
_MAX_DESCRIPTION = 255


def to_list(report: SeriesReport, url_base: str) -> list[dict[str, Any]]:
    base = url_base.rstrip("/")
    out = []
    for row in report.patches:
        for result in row.results.values():
            if result.state == State.SKIP:
                continue
            out.append({
                "patch": row.patch.name,
                "msgid": row.patch.message_id,
                "check": {
                    "state": result.state.value,
                    "context": CONTEXT_PREFIX + result.check,
                    "description": result.description[:_MAX_DESCRIPTION],
                    "target_url": f"{base}/{result.log}" if result.log else f"{base}/report.html",
                },
            })
    return out


def write(report: SeriesReport, path: Path, url_base: str) -> None:
    path.write_text(json.dumps(to_list(report, url_base), indent=2) + "\n")
