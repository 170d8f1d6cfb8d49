"""report.json: the machine-readable report (schema: schema.json beside this module).

``write`` turns a ``SeriesReport`` into the file, ``load`` the file back
into a ``SeriesReport``: what ``write`` wrote, ``load`` reads as the same
model (times rounded to the millisecond, as written). ``load`` reads
exactly schema check-series/1 and refuses anything else (another schema,
an unknown state, a missing or mistyped field, totals that disagree with
the results) with a one-line ``ReportError`` naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from ...errors import ReportError
from ..model import PatchInfo, PatchReport, Result, SeriesReport, State, Subtest

SCHEMA_ID = "check-series/1"
SCHEMA_PATH = Path(__file__).with_name("schema.json")

T = TypeVar("T")


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
                     "path": str(row.patch.path), "message_key": row.patch.message_key,
                     "commit": row.commit, "state": row.state.value,
                     "results": {name: _result(r) for name, r in row.results.items()}}
                    for row in report.patches],
    }


def write(report: SeriesReport, path: Path) -> None:
    path.write_text(json.dumps(to_dict(report), indent=2) + "\n")


# -- reading ------------------------------------------------------------------------------


class _Bad(ValueError):
    """What is wrong with a document, without the file's name."""


_KINDS: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false",
                           dict: "an object", list: "a list"}


def load(path: Path) -> SeriesReport:
    """The report ``write`` wrote at ``path``; ``ReportError`` for anything else."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read the check-series report {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"the check-series report {path} is not JSON: {exc}",
                          "run tools/check-series again") from None
    try:
        return from_dict(data)
    except _Bad as exc:
        raise ReportError(f"the check-series report {path} {exc}",
                          f"it must be a {SCHEMA_ID} report written by tools/check-series; "
                          "run it again") from None


def from_dict(data: object) -> SeriesReport:
    """The model of a check-series/1 document; ``_Bad`` says what is wrong."""
    if not isinstance(data, dict):
        raise _Bad("is not a JSON object")
    if "schema" not in data:
        raise _Bad(f"has no schema: not a {SCHEMA_ID} report")
    if data["schema"] != SCHEMA_ID:
        raise _Bad(f"has schema {data['schema']!r}; this version reads {SCHEMA_ID} only")
    report = SeriesReport(
        tree=_get(data, "tree", str), base=_get(data, "base", str),
        base_commit=_get(data, "base_commit", str), source=_get(data, "source", str),
        checks=[(_get(c, "name", str, f"checks[{i}]."), _get(c, "scope", str, f"checks[{i}]."),
                 _get(c, "description", str, f"checks[{i}]."))
                for i, c in enumerate(_objects(data, "checks"))],
        patches=[_patch(p, f"patches[{i}].") for i, p in enumerate(_objects(data, "patches"))],
        started=_get(data, "started", str), seconds=_number(data, "seconds"),
        stopped_early=_get(data, "stopped_early", str),
        interrupted=_get(data, "interrupted", str))
    _one_of(report.interrupted, ("", "SIGINT", "SIGTERM"), "interrupted")
    for i, (_, scope, _) in enumerate(report.checks):
        _one_of(scope, ("patch", "tip"), f"checks[{i}].scope")
    _agrees(data, "ok", _get(data, "ok", bool), report.ok)
    _agrees(data, "exit_status", _get(data, "exit_status", int), report.exit_status)
    _agrees(data, "totals", _get(data, "totals", dict), report.totals())
    return report


def _one_of(value: str, known: tuple[str, ...], where: str) -> None:
    if value not in known:
        raise _Bad(f"has {where} = {value!r}, not one of {', '.join(map(repr, known))}")


def _patch(raw: Mapping[str, object], where: str) -> PatchReport:
    name = _get(raw, "name", str, where)
    info = PatchInfo(index=_get(raw, "index", int, where), name=name,
                     path=Path(_get(raw, "path", str, where, default=name)),
                     subject=_get(raw, "subject", str, where),
                     author=_get(raw, "author", str, where),
                     patch_id=_get(raw, "patch_id", str, where),
                     message_key=_get(raw, "message_key", str, where, default=""),
                     message_id=_get(raw, "message_id", str, where))
    results = {}
    for check, res in _get(raw, "results", dict, where).items():
        here = f"{where}results.{check}."
        if not isinstance(res, dict):
            raise _Bad(f"{here[:-1]}: not an object")
        results[str(check)] = Result(
            check=str(check), state=_state(res, here),
            description=_get(res, "description", str, here),
            seconds=_number(res, "seconds", here), log=_get(res, "log", str, here),
            cached=_get(res, "cached", bool, here),
            subtests=[Subtest(_get(s, "name", str, f"{here}subtests[{j}]."),
                              _state(s, f"{here}subtests[{j}]."),
                              _get(s, "detail", str, f"{here}subtests[{j}]."))
                      for j, s in enumerate(_objects(res, "subtests", here))])
    patch = PatchReport(info, commit=_get(raw, "commit", str, where), results=results)
    _state(raw, where)  # a known word, and the worst of the results:
    _agrees(raw, "state", raw["state"], patch.state.value, where)
    return patch


def _get(obj: Mapping[str, object], key: str, kind: type[T], where: str = "",
         default: T | None = None) -> T:
    if key not in obj:
        if default is not None:
            return default
        raise _Bad(f"lacks {where}{key}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Bad(f"has {where}{key} = {value!r}: not {_KINDS.get(kind, kind.__name__)}")
    return value


def _number(obj: Mapping[str, object], key: str, where: str = "") -> float:
    value = _get(obj, key, object, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"has {where}{key} = {value!r}: not a number")
    return float(value)


def _objects(obj: Mapping[str, object], key: str, where: str = "") -> list[dict[str, object]]:
    items = _get(obj, key, list, where)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Bad(f"has {where}{key}[{i}] = {item!r}: not an object")
    return items


def _state(obj: Mapping[str, object], where: str) -> State:
    word = _get(obj, "state", str, where)
    try:
        return State(word)
    except ValueError:
        raise _Bad(f"has an unknown state {where}state = {word!r} "
                   f"(known: {', '.join(s.value for s in State)})") from None


def _agrees(obj: Mapping[str, object], key: str, stored: object, derived: object,
            where: str = "") -> None:
    if stored != derived:
        raise _Bad(f"is inconsistent: {where}{key} is {stored!r}, its results make it "
                   f"{derived!r}")
