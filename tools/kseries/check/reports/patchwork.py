"""patchwork.json: check states ready to POST to a patchwork instance.

Each entry is the body of ``POST /api/patches/<id>/checks/`` (state,
context, description, and target_url when the output is published at an
http(s) URL: patchwork's URL validation refuses anything else) with the
patch's Message-Id, by which a poster finds the patchwork id, and its
``git patch-id``.  Skipped checks are left out: patchwork has no such
state.

The description is the check's one line, then every finding its log
holds (the lines that say ``error:``, ``warning:``, ``ERROR:``,
``WARNING:``, ``CHECK:``, ``FAIL:``), cut at DESCRIPTION_LIMIT with a
count of what was left out.  Patchwork stores it in a TextField without
a maximum length (``Check.description`` in patchwork/models.py) and
shows it on the patch page, so the limit is ours: it keeps a page of
results readable; the full log is at ``target_url``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..model import SeriesReport, State

CONTEXT_PREFIX = "check-series-"
DESCRIPTION_LIMIT = 2000
_FINDING = re.compile(r"\b(?:error|warning|ERROR|WARNING|CHECK|FAIL):")


def is_web_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def findings(log: Path) -> list[str]:
    """The lines of a check's log that report a problem, each once, in order."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    lines = (line.strip() for line in text.splitlines())
    return list(dict.fromkeys(line for line in lines if _FINDING.search(line)))


def describe(summary: str, found: list[str], limit: int = DESCRIPTION_LIMIT) -> str:
    """``summary`` and every finding, one a line, within ``limit`` characters."""
    lines = [summary[:limit]]
    for n, line in enumerate(found):
        rest = len(found) - n
        tail = len(f"\n(+{rest} more in the log)") if rest > 1 else 0
        if sum(len(x) + 1 for x in lines) + len(line) + tail > limit:
            lines.append(f"(+{rest} more in the log)")
            break
        lines.append(line)
    return "\n".join(lines)


def to_list(report: SeriesReport, url_base: str | None,
            output: Path | None = None) -> list[dict[str, Any]]:
    """The check of each result; with ``output``, its findings from the logs there."""
    base = url_base.rstrip("/") if url_base and is_web_url(url_base) else None
    out = []
    for row in report.patches:
        for result in row.results.values():
            if result.state == State.SKIP:
                continue
            check: dict[str, Any] = {
                "state": result.state.value,
                "context": CONTEXT_PREFIX + result.check,
                "description": describe(result.description,
                                        findings(output / result.log)
                                        if output is not None and result.log else []),
            }
            if base:
                check["target_url"] = f"{base}/{result.log or 'report.html'}"
            out.append({"patch": row.patch.name, "msgid": row.patch.message_id,
                        "patch_id": row.patch.patch_id, "check": check})
    return out


def write(report: SeriesReport, path: Path, url_base: str | None) -> None:
    path.write_text(json.dumps(to_list(report, url_base, path.parent), indent=2) + "\n")
