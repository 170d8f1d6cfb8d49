"""What fio and the load generator printed, as results; ratios and targets.

A result that could not be measured keeps ``ok=False`` and the reason;
it is shown as failed and left out of every ratio, never replaced by a
number.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import KseriesError
from .matrix import DIRECT, BenchCase


class ResultError(ValueError):
    """Output that is not what the tool prints; the message names the problem."""


@dataclass
class Measurement:
    key: str
    ok: bool
    error: str = ""
    iops: float = 0.0
    bw_bytes: float = 0.0
    lat_us: dict[str, float] = field(default_factory=dict)  # p50, p99, p99.9, mean
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        try:
            return cls(key=str(data["key"]), ok=bool(data["ok"]), error=str(data.get("error", "")),
                       iops=float(data.get("iops", 0.0)),
                       bw_bytes=float(data.get("bw_bytes", 0.0)),
                       lat_us={str(k): float(v) for k, v in data.get("lat_us", {}).items()},
                       seconds=float(data.get("seconds", 0.0)), extra=dict(data.get("extra", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ResultError(f"a result line lacks a field or has a bad value: {exc!r}") from None


def to_line(result: Measurement) -> str:
    """One line of results.jsonl (what the guest appends per case), with its newline."""
    return json.dumps(result.to_json()) + "\n"


def load(path: Path) -> dict[str, Measurement]:
    """results.jsonl as the guest wrote it, by case key; a bad line is an error naming it.

    A missing file is no results (the guest stopped before the first case).
    """
    out: dict[str, Measurement] = {}
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            res = Measurement.from_json(json.loads(line))
        except (ValueError, ResultError) as exc:
            raise KseriesError(f"{path}:{n}: not a result line ({exc})",
                               "the file is written by kseries.bench.guest; "
                               "re-run the benchmark") from None
        out[res.key] = res
    return out


def failed(key: str, error: str, **extra: Any) -> Measurement:
    return Measurement(key=key, ok=False, error=error, extra=dict(extra))


def _json_object(text: str, tool: str) -> dict[str, Any]:
    """The JSON object in a tool's output (fio may print warnings before it)."""
    start = text.find("{")
    if start < 0:
        snippet = " ".join(text.split())[:120] or "nothing"
        raise ResultError(f"{tool} printed no JSON (it printed: {snippet})")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ResultError(f"{tool} printed malformed JSON: {exc.msg} at offset "
                          f"{start + exc.pos}") from None
    if not isinstance(obj, dict):
        raise ResultError(f"{tool} printed JSON that is not an object")
    return obj


def parse_load(key: str, text: str) -> Measurement:
    """One JSON line of vblk-load."""
    data = _json_object(text, "vblk-load")
    if not data.get("ok", False):
        return failed(key, str(data.get("error") or "vblk-load reported a failure"),
                      errors=data.get("errors", 0))
    try:
        lat = data["lat_ns"]
        return Measurement(key=key, ok=True, iops=float(data["iops"]),
                           bw_bytes=float(data["bw_bytes"]),
                           lat_us={"mean": lat["mean"] / 1e3, "p50": lat["p50"] / 1e3,
                                   "p99": lat["p99"] / 1e3, "p99.9": lat["p99.9"] / 1e3},
                           seconds=float(data["seconds"]),
                           extra={k: data[k] for k in ("ios", "kicks", "waits", "wakeups",
                                                       "ring_size", "features") if k in data})
    except (KeyError, TypeError) as exc:
        raise ResultError(f"vblk-load JSON lacks {exc}") from None


_FIO_PCT = {"p50": "50.000000", "p99": "99.000000", "p99.9": "99.900000"}


def parse_fio(key: str, text: str, rw: str) -> Measurement:
    """fio --output-format=json with --group_reporting: the one job's read or write side."""
    data = _json_object(text, "fio")
    jobs = data.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise ResultError("fio JSON has no jobs")
    job = jobs[0]
    if job.get("error"):
        return failed(key, f"fio job error {job['error']}")
    side = job.get("read" if rw.endswith("read") else "write")
    if not isinstance(side, dict):
        raise ResultError(f"fio JSON has no {'read' if rw.endswith('read') else 'write'} side")
    lat = side.get("lat_ns") or side.get("clat_ns") or {}
    pct = lat.get("percentile") or {}
    try:
        lat_us = {name: float(pct[field_]) / 1e3 for name, field_ in _FIO_PCT.items()
                  if field_ in pct}
        lat_us["mean"] = float(lat.get("mean", 0.0)) / 1e3
        iops = float(side["iops"])
        if iops <= 0:
            return failed(key, "fio completed no I/O")
        return Measurement(key=key, ok=True, iops=iops, bw_bytes=float(side["bw_bytes"]),
                      lat_us=lat_us, seconds=float(side.get("runtime", 0)) / 1e3,
                      extra={"ios": side.get("total_ios", 0), "usr_cpu": job.get("usr_cpu"),
                             "sys_cpu": job.get("sys_cpu")})
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultError(f"fio JSON lacks {exc}") from None


# -- ratios and targets -------------------------------------------------------------------


@dataclass
class Row:
    """One case in the table: its result and its ratio to the direct device."""

    case: BenchCase
    result: Measurement
    ratio_direct: float | None = None


@dataclass
class TargetCheck:
    """A target: measured value against the goal, per group."""

    name: str
    group: str
    value: float | None
    target: float
    detail: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.value >= self.target


TARGET_DIRECT = 0.97
TARGET_VS_USER = 1.5
TARGET_WORKERS = 1.8


def group_name(group: tuple[str, str, int, int]) -> str:
    dev, rw, depth, queues = group
    return f"{dev} {rw} qd{depth} {queues}q"


def rows(cases: list[BenchCase], results: dict[str, Measurement]) -> list[Row]:
    """Every case in plan order; a case without a result is a failure that says so."""
    out: list[Row] = []
    direct: dict[tuple[str, str, int, int], float] = {}
    for c in cases:
        r = results.get(c.key)
        if r is not None and r.ok and c.backend in DIRECT:
            direct[c.group] = max(direct.get(c.group, 0.0), r.iops)
    for c in cases:
        r = results.get(c.key) or failed(c.key, "no result: the guest stopped before this case")
        ceiling = direct.get(c.group)
        ratio = r.iops / ceiling if r.ok and ceiling else None
        out.append(Row(c, r, ratio))
    return out


def checks(table: list[Row]) -> list[TargetCheck]:
    """The issue's targets per group: vhost-blk vs direct and vs vhost-user, workers."""
    by_group: dict[tuple[str, str, int, int], list[Row]] = {}
    for row in table:
        by_group.setdefault(row.case.group, []).append(row)
    out: list[TargetCheck] = []
    for group, members in by_group.items():
        name = group_name(group)
        ok = {r.case.label: r for r in members if r.result.ok}
        blk = [r for r in members if r.case.backend == "vhost-blk" and r.result.ok]
        if not blk:
            continue
        best = max(blk, key=lambda r: r.result.iops)
        if best.ratio_direct is not None:
            out.append(TargetCheck("vhost-blk / direct", name, best.ratio_direct, TARGET_DIRECT,
                             best.case.label))
        user = [r for r in members if r.case.backend == "vhost-user" and r.result.ok]
        if user:
            out.append(TargetCheck("vhost-blk / vhost-user-blk", name,
                             best.result.iops / user[0].result.iops, TARGET_VS_USER,
                             best.case.label))
        queues = group[3]
        one = ok.get(f"vhost-blk {queues}q/1w")
        many = ok.get(f"vhost-blk {queues}q/{queues}w")
        if queues > 1 and one and many:
            out.append(TargetCheck(f"{queues} workers / 1 worker", name,
                             many.result.iops / one.result.iops, TARGET_WORKERS,
                             f"vhost-blk {queues}q"))
    return out
