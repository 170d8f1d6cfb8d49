"""The latest check-series report, as the cover letter and the send gate see it.

check-series (tools/check-series) writes a JSON report.  This module
reads only what the cover letter needs and is lenient about spelling,
because the two tools evolve separately:

- overall result: ``"ok": bool``, or ``"status"``/``"result"`` with a state;
- ``"patches"``: a list of ``{"index", "subject" | "name", "checks"}`` where
  ``checks`` maps a check name to a state, or is a list of
  ``{"name", "state" | "status"}``;
- optional ``"tests"``: ``{suite: {"pass": n, "fail": n, "skip": n}}``;
  otherwise the ``subtests`` of each check are counted (the last patch
  that has them).

check-series' own shape (``patches[].patch`` with ``index``, ``subject``,
``patch_id`` and ``patches[].results`` mapping a check to ``{"state"}``,
plus ``stopped_early``) is read as well; patch-ids, when present, must
match the series being posted, or the report is stale.

States are normalised to pass / warn / fail / skip.  Nothing is invented:
a missing or unreadable report is reported as such, and the gate refuses
to send on it unless forced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import worktree
from ..errors import UsageError

_STATES = {
    "pass": "pass", "passed": "pass", "success": "pass", "ok": "pass",
    "warn": "warn", "warning": "warn", "warnings": "warn",
    "fail": "fail", "failed": "fail", "failure": "fail", "error": "fail", "errored": "fail",
    "skip": "skip", "skipped": "skip", "not run": "skip", "none": "skip",
}
_COUNT_KEYS = {"pass": "pass", "passed": "pass", "fail": "fail", "failed": "fail",
               "skip": "skip", "skipped": "skip", "error": "fail", "errors": "fail"}


def state(value: object) -> str:
    """A check state in one of the four words the cover letter uses."""
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if isinstance(value, dict):
        value = value.get("state", value.get("status", value.get("result")))
    if isinstance(value, bool):
        return "pass" if value else "fail"
    return _STATES.get(str(value).strip().lower(), "fail" if value is not None else "skip")


@dataclass(frozen=True)
class PatchRow:
    index: int
    subject: str
    cells: dict[str, str]
    patch_id: str = ""


@dataclass(frozen=True)
class CheckReport:
    """``status`` is pass, fail or missing; ``problem`` says why when not pass."""

    path: Path
    status: str
    problem: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[PatchRow, ...] = ()
    tests: dict[str, dict[str, int]] = field(default_factory=dict)
    when: str = ""

    @property
    def found(self) -> bool:
        return self.status != "missing"

    def totals(self) -> dict[str, int]:
        out = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
        for row in self.rows:
            for cell in row.cells.values():
                out[cell] += 1
        return out


def latest(path: Path) -> Path | None:
    """``path`` itself, or the newest ``*.json`` when it is a directory."""
    if path.is_dir():
        found = sorted(path.glob("*.json"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None
    return path if path.is_file() else None


def _rows(patches: object) -> tuple[tuple[str, ...], tuple[PatchRow, ...]]:
    if not isinstance(patches, list):
        return (), ()
    columns: dict[str, None] = {}
    rows = []
    for i, item in enumerate(patches, 1):
        if not isinstance(item, dict):
            continue
        info = item.get("patch") if isinstance(item.get("patch"), dict) else item
        assert isinstance(info, dict)
        raw = item.get("checks", item.get("results", {}))
        cells: dict[str, str] = {}
        if isinstance(raw, dict):
            cells = {str(k): state(v) for k, v in raw.items()}
        elif isinstance(raw, list):
            cells = {str(c.get("name", f"check{j}")): state(c)
                     for j, c in enumerate(raw) if isinstance(c, dict)}
        for name in cells:
            columns[name] = None
        index = info.get("index", i)
        subject = info.get("subject", info.get("name", ""))
        rows.append(PatchRow(int(index) if isinstance(index, int) else i, str(subject), cells,
                             str(info.get("patch_id", ""))))
    return tuple(columns), tuple(rows)


def _subtests(patches: object) -> dict[str, dict[str, int]]:
    """Test counts from sub-results: per check, the last patch that has them."""
    out: dict[str, dict[str, int]] = {}
    if not isinstance(patches, list):
        return out
    for patch in patches:
        if not isinstance(patch, dict):
            continue
        results = patch.get("results", patch.get("checks", {}))
        if isinstance(results, list):
            results = {str(r.get("name", "")): r for r in results if isinstance(r, dict)}
        if not isinstance(results, dict):
            continue
        for name, result in results.items():
            subs = result.get("subtests") if isinstance(result, dict) else None
            if isinstance(subs, list) and subs:
                counts = {"pass": 0, "fail": 0, "skip": 0}
                for sub in subs:
                    st = state(sub)
                    counts["pass" if st in ("pass", "warn") else st] += 1
                out[str(name)] = counts
    return out


def _tests(raw: object) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if not isinstance(raw, dict):
        return out
    for suite, counts in raw.items():
        if not isinstance(counts, dict):
            continue
        merged = {"pass": 0, "fail": 0, "skip": 0}
        for key, value in counts.items():
            if key.lower() in _COUNT_KEYS and isinstance(value, int):
                merged[_COUNT_KEYS[key.lower()]] += value
        out[str(suite)] = merged
    return out


def load(path: Path, expected_patches: int | None = None,
         patch_ids: list[str] | None = None) -> CheckReport:
    """Read the latest report at ``path`` (a file or a directory of them)."""
    found = latest(path)
    if found is None:
        return CheckReport(path, "missing", f"no check-series report at {path}")
    try:
        data = json.loads(found.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return CheckReport(found, "fail", f"the check-series report {found} is unreadable: {exc}")
    if not isinstance(data, dict):
        return CheckReport(found, "fail", f"the check-series report {found} is not a JSON object")
    columns, rows = _rows(data.get("patches"))
    tests = _tests(data.get("tests")) or _subtests(data.get("patches"))
    when = str(data.get("finished", data.get("started", data.get("created", ""))))
    if "ok" in data:
        overall = state(bool(data["ok"]))
    elif "status" in data or "result" in data:
        overall = state(data.get("status", data.get("result")))
    elif rows:
        overall = "pass"
    else:
        return CheckReport(found, "fail", f"the check-series report {found} has no result")
    if any(cell == "fail" for row in rows for cell in row.cells.values()):
        overall = "fail"
    if any(c["fail"] for c in tests.values()):
        overall = "fail"
    problem = ""
    stopped = data.get("stopped_early")
    if overall == "fail":
        problem = f"the latest check-series run ({found}) failed"
    elif stopped:
        overall = "fail"
        problem = f"the latest check-series run ({found}) stopped early: {stopped}"
    elif patch_ids and rows and all(r.patch_id for r in rows) and \
            [r.patch_id for r in rows] != patch_ids:
        overall = "fail"
        problem = (f"the check-series report {found} is for other patches "
                   "(patch-ids differ): it is stale")
    elif expected_patches is not None and rows and len(rows) != expected_patches:
        overall = "fail"
        problem = (f"the check-series report {found} covers {len(rows)} patches, "
                   f"the series has {expected_patches}: it is stale")
    return CheckReport(found, overall, problem, columns, rows, tests, when)


def gate(report: CheckReport, force: bool) -> str | None:
    """Raise unless the series may be sent; return a warning when forced."""
    if report.status == "pass":
        return None
    if force:
        return f"sending although {report.problem} (--force)"
    raise UsageError(f"refusing to send: {report.problem}",
                     "run tools/check-series and fix what fails, or pass --force to send anyway")


def patch_ids(patches: list[Path]) -> list[str]:
    """``git patch-id --stable`` of each patch file, as check-series records them."""
    return worktree.patch_ids_of_files(patches)
