"""kcidb.json: the run as a KCIDB I/O document (KernelCI's schema, v5.3).

Per patch K of the series: a checkout (the base commit with patches
1..K applied: ``patchset_hash`` as KCIDB defines it, ``valid`` whether K
applied), one build of it (the ``build`` check's state; no status when
the check did not run) and a test per check that has a result on K,
with its subtests (KUnit cases) as child paths.  KCIDB has no warning:
a warning is PASS with ``misc.check_series_state = "warning"``.  A
skip is SKIP.  ``log_url`` is set when the output is published at an
http(s) URL (``--url-base``).  The document is plain JSON; the tests
validate it with the kcidb-io package's own schema.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..model import PatchReport, Result, SeriesReport, State

MAJOR, MINOR = 5, 3
ORIGIN = "check_series"
ARCH = "x86_64"
_STATUS = {State.SUCCESS: "PASS", State.WARNING: "PASS", State.FAIL: "FAIL",
           State.SKIP: "SKIP"}
_PATH_PART = re.compile(r"[^a-zA-Z0-9_-]+")


def _part(name: str) -> str:
    """One component of a KCIDB test path (letters, digits, '_' and '-')."""
    return _PATH_PART.sub("_", name).strip("_") or "unnamed"


def run_id(report: SeriesReport) -> str:
    """What tells this run apart from another: its start, base and patches."""
    text = "\n".join([report.started, report.base_commit,
                      *(row.patch.key for row in report.patches)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def patchset_hash(rows: list[PatchReport]) -> str | None:
    """sha256 over the newline-terminated sha256 of each patch file; None if one is gone."""
    lines = []
    for row in rows:
        try:
            lines.append(hashlib.sha256(row.patch.path.read_bytes()).hexdigest() + "\n")
        except OSError:
            return None
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _url(url_base: str | None, rel: str) -> dict[str, str]:
    return {"log_url": f"{url_base.rstrip('/')}/{rel}"} if url_base and rel else {}


def _test(build_id: str, result: Result, url_base: str | None,
          started: str) -> list[dict[str, Any]]:
    test: dict[str, Any] = {
        "build_id": build_id, "id": f"{build_id}-{_part(result.check)}", "origin": ORIGIN,
        "path": _part(result.check), "status": _STATUS[result.state],
        "comment": result.description, "duration": result.seconds,
        "misc": {"check_series_state": result.state.value, "cached": result.cached},
        **_url(url_base, result.log)}
    if started:
        test["start_time"] = started
    out = [test]
    for n, sub in enumerate(result.subtests, 1):
        path = ".".join([_part(result.check), *(_part(p) for p in sub.name.split("."))])
        out.append({"build_id": build_id, "id": f"{test['id']}-{n}", "origin": ORIGIN,
                    "path": path, "status": _STATUS[sub.state],
                    "comment": sub.detail or sub.name,
                    "misc": {"check_series_state": sub.state.value}})
    return out


def to_dict(report: SeriesReport, url_base: str | None = None) -> dict[str, Any]:
    run = run_id(report)
    checkouts: list[dict[str, Any]] = []
    builds: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    for k, row in enumerate(report.patches, 1):
        checkout_id = f"{ORIGIN}:{run}-{row.patch.label}"
        applied = row.results.get("apply")
        checkout: dict[str, Any] = {
            "id": checkout_id, "origin": ORIGIN, "git_commit_hash": report.base_commit,
            "comment": f"{report.base} + patches 1..{row.patch.index}: {row.patch.subject}",
            "misc": {"patch": row.patch.name, "patch_id": row.patch.patch_id,
                     "message_id": row.patch.message_id, "commit": row.commit}}
        digest = patchset_hash(report.patches[:k])
        if digest is not None and report.patches[0].patch.index == 1:
            checkout["patchset_hash"] = digest
        if applied is not None and applied.state != State.SKIP:
            checkout["valid"] = applied.state != State.FAIL
        if report.started:
            checkout["start_time"] = report.started
        checkouts.append(checkout)
        build_id = f"{checkout_id}-build"
        build: dict[str, Any] = {"checkout_id": checkout_id, "id": build_id, "origin": ORIGIN,
                                 "architecture": ARCH}
        built = row.results.get("build")
        if built is not None:
            build["status"] = _STATUS[built.state]
            build["comment"] = built.description
            build.update(_url(url_base, built.log))
        else:
            build["comment"] = "the build check did not run on this patch"
        builds.append(build)
        for result in row.results.values():
            tests.extend(_test(build_id, result, url_base, report.started))
    return {"version": {"major": MAJOR, "minor": MINOR},
            "checkouts": checkouts, "builds": builds, "tests": tests}


def write(report: SeriesReport, path: Path, url_base: str | None) -> None:
    path.write_text(json.dumps(to_dict(report, url_base), indent=2) + "\n")
