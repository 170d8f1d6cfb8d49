"""report.json: the machine-readable report (schema: schema.json beside this module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..model import Result, SeriesReport

SCHEMA_ID = "check-series/1"
SCHEMA_PATH = Path(__file__).with_name("schema.json")


def _result(result: Result) -> dict[str, Any]:
    return {"state": result.state.value, "description": result.description,
            "seconds": round(result.seconds, 3), "log": result.log, "cached": result.cached,
            "subtests": [{"name": s.name, "state": s.state.value, "detail": s.detail}
                         for s in result.subtests]}


def to_dict(report: SeriesReport) -> dict[str, Any]:
    took = report.check_seconds()
    return {
        "schema": SCHEMA_ID,
        "ok": report.ok,
        "exit_status": report.exit_status,
        "started": report.started,
        "seconds": round(report.seconds, 3),
        "tree": report.tree,
        "base": report.base,
        "base_commit": report.base_commit,
        "source": report.source,
        "stopped_early": report.stopped_early,
        "interrupted": report.interrupted,
        "checks": [{"name": n, "scope": scope, "description": d, "seconds": round(took[n], 3)}
                   for n, scope, d in report.checks],
        "totals": report.totals(),
        "patches": [{"index": row.patch.index, "name": row.patch.name,
                     "subject": row.patch.subject, "author": row.patch.author,
                     "patch_id": row.patch.patch_id, "message_id": row.patch.message_id,
                     "commit": row.commit, "state": row.state.value,
                     "results": {name: _result(r) for name, r in row.results.items()}}
                    for row in report.patches],
    }


def write(report: SeriesReport, path: Path) -> None:
    path.write_text(json.dumps(to_dict(report), indent=2) + "\n")
