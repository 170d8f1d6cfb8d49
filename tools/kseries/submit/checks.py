"""The latest check-series report, as the cover letter and the send gate see it.

check-series writes report.json (schema check-series/1); this module
reads it with check-series' own reader,
``kseries.check.reports.json_report.load``, and keeps what the cover
letter needs: a row per patch with each check's state in the cover's
words (success, warning, fail, skip read as pass, warn, fail, skip), the
KUnit-style counts of each check's subtests (the last patch that has
them), and the overall status.

Nothing is guessed or invented: a missing report is "missing"; a report
that check-series' reader refuses (not JSON, another schema, an unknown
state, a missing field, totals that disagree) is "fail" with the
reader's one-line error, which names the file. A run that failed, was
interrupted or stopped early fails, and so does a report of other
patches (patch-ids differ, or the report has none) or of another number
of patches: it is stale. So does a report that left out a check the
project's check-series.toml enables (a run with ``--only`` or ``--skip``):
its one line names the checks that did not run. The gate refuses to
send on anything but "pass" unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import worktree
from ..check import config as check_config
from ..check.model import CANNOT_RUN, SeriesReport, State
from ..check.reports import NAMES, json_report
from ..errors import ReportError, UsageError

# check-series' states in the four words the cover letter uses.
WORDS = {State.SUCCESS: "pass", State.WARNING: "warn", State.FAIL: "fail", State.SKIP: "skip"}


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
    ran: tuple[str, ...] = ()  # the checks with a result other than skip on some patch

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
    """``path`` itself; for a directory its report.json, or else its newest ``*.json``."""
    if path.is_dir():
        if (path / NAMES["json"]).is_file():
            return path / NAMES["json"]
        found = sorted(path.glob("*.json"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None
    return path if path.is_file() else None


def _columns(report: SeriesReport) -> tuple[str, ...]:
    """The checks in check-series' column order, those with a result on some patch."""
    ran = {name for row in report.patches for name in row.results}
    return tuple(name for name, _, _ in report.checks if name in ran)


def _tests(report: SeriesReport) -> dict[str, dict[str, int]]:
    """Subtest counts per check, from the last patch that has them (a warning passes)."""
    out: dict[str, dict[str, int]] = {}
    for row in report.patches:
        for name, result in row.results.items():
            if result.subtests:
                counts = {"pass": 0, "fail": 0, "skip": 0}
                for sub in result.subtests:
                    word = WORDS[sub.state]
                    counts["pass" if word == "warn" else word] += 1
                out[name] = counts
    return out


def _ran(report: SeriesReport) -> tuple[str, ...]:
    done = {name for row in report.patches for name, result in row.results.items()
            if result.state != State.SKIP}
    return tuple(name for name, _, _ in report.checks if name in done)


def _could_not_run(report: SeriesReport, enabled: tuple[str, ...]) -> dict[str, str]:
    """Enabled checks that skipped somewhere because they cannot run here, with the reason."""
    out: dict[str, str] = {}
    for row in report.patches:
        for name, result in row.results.items():
            if (name in enabled and result.state == State.SKIP
                    and result.description.startswith(CANNOT_RUN)):
                out.setdefault(name, result.description)
    return out


def load(path: Path, expected_patches: int | None = None,
         patch_ids: list[str] | None = None,
         enabled: tuple[str, ...] = ()) -> CheckReport:
    """Read the latest report at ``path`` (a file, or a directory holding reports).

    ``enabled`` are the checks check-series.toml turns on; each must be
    one of the report's checks.
    """
    found = latest(path)
    if found is None:
        return CheckReport(path, "missing", f"no check-series report at {path}")
    try:
        report = json_report.load(found)
    except ReportError as err:
        return CheckReport(found, "fail", err.message)
    columns = _columns(report)
    rows = tuple(PatchRow(row.patch.index, row.patch.subject,
                          {name: WORDS[row.results[name].state]
                           for name in columns if name in row.results}, row.patch.patch_id)
                 for row in report.patches)
    tests = _tests(report)
    ids = [r.patch_id for r in rows]
    selected = {name for name, _, _ in report.checks}
    missing = [name for name in enabled if name not in selected]
    could_not = _could_not_run(report, enabled)
    missing += [f"{name} ({why})" for name, why in could_not.items() if name not in missing]
    overall, problem = "fail", ""
    if report.interrupted:
        problem = f"the latest check-series run ({found}) was interrupted ({report.interrupted})"
    elif not report.ok:
        problem = f"the latest check-series run ({found}) failed"
    elif report.stopped_early:
        problem = f"the latest check-series run ({found}) stopped early: {report.stopped_early}"
    elif expected_patches is not None and len(rows) != expected_patches:
        problem = (f"the check-series report {found} covers {len(rows)} patches, "
                   f"the series has {expected_patches}: it is stale")
    elif patch_ids is not None and ids != patch_ids:
        problem = (f"the check-series report {found} is for other patches "
                   "(patch-ids differ): it is stale")
    elif missing:
        problem = (f"the check-series report {found} did not run {', '.join(missing)}, "
                   "which check-series.toml enables")
    else:
        overall = "pass"
    return CheckReport(found, overall, problem, columns, rows, tests, report.started,
                       _ran(report))


def enabled(root: Path) -> tuple[str, ...]:
    """The checks the project's check-series.toml (in ``root``) turns on; none without one."""
    path = root / check_config.FILE_NAME
    if not path.is_file():
        return ()
    cfg = check_config.load(path, root)
    return tuple(dict.fromkeys((*cfg.per_patch, *cfg.tip)))


def with_claims(report: CheckReport, claims: list[str]) -> CheckReport:
    """``report``, failed when the cover letter claims checks it did not run."""
    if report.status != "pass" or not claims:
        return report
    return replace(report, status="fail",
                   problem=f"the cover letter's Testing section claims {', '.join(claims)}")


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
