"""The results as a Markdown table, a JSON document and a matplotlib PNG."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import table as text_table
from ..errors import ReportError
from .matrix import BenchCase, Settings
from .results import Measurement, Row, TargetCheck

# What `kseries bench` writes in each run directory (build/bench/run-<time>/).
TABLE = "table.md"
RESULTS = "results.json"
VERSION = 1  # of results.json
RUN_GLOB = "run-*"


def latest_table(path: Path) -> Path | None:
    """The table of a run directory, or of the newest run under ``path``."""
    if (path / TABLE).is_file():
        return path / TABLE
    runs = sorted(d for d in path.glob(RUN_GLOB) if (d / TABLE).is_file())
    return runs[-1] / TABLE if runs else None  # run-YYYYmmddTHHMMSSZ sorts by time


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


CASE_TITLES = ("device", "rw", "iodepth", "queues", "back end", "IOPS", "/ direct", "p50 us",
               "p99 us", "p99.9 us", "status")
CHECK_TITLES = ("target", "group", "measured", "goal", "met", "best vhost-blk")


def table(rows: list[Row]) -> str:
    """One Markdown table: a line per case, grouped by device, pattern, iodepth, queues."""
    cells = []
    for r in rows:
        c, res = r.case, r.result
        lat = res.lat_us
        status = "ok" if res.ok else "FAILED: " + res.error.replace("|", "/")[:160]
        cells.append((c.device, c.rw, c.iodepth, c.queues, c.label,
                      _num(res.iops) if res.ok else "-", _num(r.ratio_direct, "{:.2f}"),
                      _num(lat.get("p50") if res.ok else None, "{:.0f}"),
                      _num(lat.get("p99") if res.ok else None, "{:.0f}"),
                      _num(lat.get("p99.9") if res.ok else None, "{:.0f}"), status))
    return text_table.markdown(CASE_TITLES, cells)


def checks_table(checks: list[TargetCheck]) -> str:
    met = {True: "yes", False: "no", None: "-"}
    return text_table.markdown(CHECK_TITLES, [
        (ch.name, ch.group, _num(ch.value, "{:.2f}"), f">= {ch.target:g}", met[ch.met], ch.detail)
        for ch in checks])


def summary(rows: list[Row]) -> str:
    bad = [r for r in rows if not r.result.ok]
    text = f"{len(rows) - len(bad)} of {len(rows)} cases measured"
    if bad:
        text += f"; {len(bad)} FAILED: " + "; ".join(
            f"{r.case.key} ({r.result.error[:80]})" for r in bad[:6])
        if len(bad) > 6:
            text += f"; and {len(bad) - 6} more"
    return text


def text(run: BenchRun) -> str:
    """table.md: the cases, the targets and a one-line summary."""
    return (table(run.rows) + "\n\n" + checks_table(run.checks) + "\n\n"
            + summary(run.rows) + "\n")


# -- results.json: the run's model, written and read back ---------------------------------


@dataclass
class BenchRun:
    """What one ``kseries bench`` run found: the model results.json holds."""

    settings: Settings
    rows: list[Row]
    checks: list[TargetCheck]
    meta: dict[str, Any] = field(default_factory=dict)


def to_dict(run: BenchRun) -> dict[str, Any]:
    return {
        "version": VERSION,
        "meta": run.meta,
        "settings": asdict(run.settings),
        "cases": [{"case": {**asdict(r.case), "key": r.case.key, "label": r.case.label},
                   "result": r.result.to_json(), "ratio_direct": r.ratio_direct}
                  for r in run.rows],
        "checks": [{"name": c.name, "group": c.group, "value": c.value, "target": c.target,
                    "met": c.met, "detail": c.detail} for c in run.checks],
    }


def write(run: BenchRun, path: Path) -> None:
    path.write_text(json.dumps(to_dict(run), indent=2) + "\n")


def load(path: Path) -> BenchRun:
    """The run ``write`` wrote at ``path``; ``ReportError`` (one line, naming it) otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"the benchmark results {path} are unreadable: {exc}",
                          "re-run `kseries bench`") from None
    try:
        return from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        why = f"lacks {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ReportError(f"the benchmark results {path} are not a version {VERSION} "
                          f"results.json of `kseries bench`: {why}",
                          "re-run `kseries bench`") from None


def from_dict(data: Any) -> BenchRun:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("version") != VERSION:
        raise ValueError(f"version {data.get('version')!r}, this version reads {VERSION}")
    rows = []
    for i, item in enumerate(data["cases"]):
        fields = dict(item["case"])
        key, label = fields.pop("key"), fields.pop("label")
        case = BenchCase(**fields)
        if (case.key, case.label) != (key, label):
            raise ValueError(f"cases[{i}]: key {key!r} and label {label!r} are not the case's")
        ratio = item["ratio_direct"]
        rows.append(Row(case, Measurement.from_json(item["result"]),
                        None if ratio is None else float(ratio)))
    checks = []
    for i, item in enumerate(data["checks"]):
        value = item["value"]
        check = TargetCheck(str(item["name"]), str(item["group"]),
                            None if value is None else float(value), float(item["target"]),
                            str(item["detail"]))
        if check.met != item["met"]:
            raise ValueError(f"checks[{i}]: met is {item['met']!r}, the value makes it "
                             f"{check.met!r}")
        checks.append(check)
    meta = data["meta"]
    if not isinstance(meta, dict):
        raise ValueError("meta is not an object")
    return BenchRun(Settings(**data["settings"]), rows, checks, meta)


def latest_results(path: Path) -> Path | None:
    """results.json of a run directory, or of the newest run under ``path`` that has one."""
    if (path / RESULTS).is_file():
        return path / RESULTS
    runs = sorted(d for d in path.glob(RUN_GLOB) if (d / RESULTS).is_file())
    return runs[-1] / RESULTS if runs else None  # run-YYYYmmddTHHMMSSZ sorts by time


def plot(rows: list[Row], path: Path) -> None:
    """Per device and pattern: IOPS bars per back end (top), ratio to direct (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        panels.setdefault((r.case.device, r.case.rw), []).append(r)
    fig, axes = plt.subplots(2, max(1, len(panels)), figsize=(6.5 * max(1, len(panels)), 8),
                             squeeze=False)
    colors = plt.get_cmap("tab10")
    for col, ((dev, rw), members) in enumerate(panels.items()):
        groups = list(dict.fromkeys((m.case.iodepth, m.case.queues) for m in members))
        series = list(dict.fromkeys(_series(m) for m in members))
        width = 0.8 / max(1, len(series))
        for si, name in enumerate(series):
            xs, iops, ratio = [], [], []
            for gi, g in enumerate(groups):
                hit = [m for m in members if (m.case.iodepth, m.case.queues) == g
                       and _series(m) == name]
                if not hit:
                    continue
                m = hit[0]
                xs.append(gi + (si - (len(series) - 1) / 2) * width)
                iops.append(m.result.iops if m.result.ok else 0.0)
                ratio.append(m.ratio_direct or 0.0)
            axes[0][col].bar(xs, [v / 1000 for v in iops], width, label=name,
                             color=colors(si % 10))
            axes[1][col].bar(xs, ratio, width, label=name, color=colors(si % 10))
        ticks = [f"qd{d}\n{q}q" for d, q in groups]
        for row_i, ylabel in ((0, "kIOPS"), (1, "ratio to direct")):
            ax = axes[row_i][col]
            ax.set_xticks(range(len(groups)), ticks)
            ax.set_ylabel(ylabel)
            ax.grid(axis="y", alpha=0.3)
        axes[1][col].axhline(0.97, color="black", linestyle="--", linewidth=0.8)
        axes[0][col].set_title(f"{dev} {rw}")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("vhost-blk vs direct block device vs vhost-user-blk (TCG VM: ratios only)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _series(r: Row) -> str:
    c = r.case
    if c.backend == "vhost-blk":
        if c.queues == 1:
            return "vhost-blk 1 worker"
        return "vhost-blk 1 worker" if c.workers == 1 else "vhost-blk worker/queue"
    if c.backend == "vhost-user":
        return "vhost-user-blk"
    return c.label
