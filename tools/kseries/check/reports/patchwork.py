"""patchwork.json: check states ready to POST to a patchwork instance.

Each entry is the body of ``POST /api/patches/<id>/checks/`` (state,
context, description, and target_url when the output is published at an
http(s) URL: patchwork's URL validation refuses anything else) with the
patch's Message-Id, by which a poster finds the patchwork id, and its
``git patch-id``.  Skipped checks are left out: patchwork has no such
state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..model import SeriesReport, State

CONTEXT_PREFIX = "check-series-"
_MAX_DESCRIPTION = 255


def is_web_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def to_list(report: SeriesReport, url_base: str | None) -> list[dict[str, Any]]:
    base = url_base.rstrip("/") if url_base and is_web_url(url_base) else None
    out = []
    for row in report.patches:
        for result in row.results.values():
            if result.state == State.SKIP:
                continue
            check: dict[str, Any] = {
                "state": result.state.value,
                "context": CONTEXT_PREFIX + result.check,
                "description": result.description[:_MAX_DESCRIPTION],
            }
            if base:
                check["target_url"] = f"{base}/{result.log or 'report.html'}"
            out.append({"patch": row.patch.name, "msgid": row.patch.message_id,
                        "patch_id": row.patch.patch_id, "check": check})
    return out


def write(report: SeriesReport, path: Path, url_base: str | None) -> None:
    path.write_text(json.dumps(to_list(report, url_base), indent=2) + "\n")
