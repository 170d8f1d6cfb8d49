"""Build the load generator and the non-debug kernel, boot once, run the plan, report."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import boot, build
from ..errors import KseriesError, UsageError
from ..paths import Layout
from ..progress import Progress
from . import report, results
from .matrix import BenchPlan
from .results import Measurement, ResultError, checks, rows

CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]
# vblk-load.c and the virtqueue code it shares with vblk-fuzz.c (vring.h).
SOURCES = [Path("tools") / "bench" / "vblk-load.c", Path("tools") / "bench" / "vring.c"]
# Seconds for booting and starting the runner, on top of the cases: a
# debug kernel under TCG on a busy machine took over 6 minutes to boot.
BOOT_ALLOWANCE = 1200
HEARTBEAT = 60.0  # seconds between "bench: guest: still running" lines


@dataclass
class Options:
    outdir: Path  # this run's directory
    kernel_dir: Path  # O= directory of the bench kernel
    build_kernel: bool = True
    cpus: int = 2
    memory: str = "2G"
    append: str = ""
    console_log: Path | None = None
    series_head: str = ""  # the commit built: patches/ applied to the pinned base
    source_tree: Path | None = None  # the tree to build (default: the layout's tree)


def build_tool(root: Path, dest: Path, progress: Progress) -> Path:
    """gcc -O2 -Wall -Wextra -Werror the load generator into dest/."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise UsageError("gcc is not installed", "apt-get install gcc")
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "vblk-load"
    cmd = [gcc, *CFLAGS, "-o", str(out), *(str(root / src) for src in SOURCES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["?"])[:3]
        raise KseriesError(f"building the load generator failed: {' | '.join(first)}",
                           f"command: {shlex.join(cmd)}")
    progress.say(f"bench: built {out}")
    return out


def _follow(path: Path, total: int, progress: Progress, stop: threading.Event) -> None:
    """Print a progress line per result the guest appends to results.jsonl.

    A log follower, not a heartbeat: it reports each new result as it
    lands; the heartbeat around the boot (``run``) covers the minutes
    before the first result and between slow cases.
    """
    seen = 0
    while not stop.wait(2.0):
        if not path.exists():
            continue
        lines = path.read_text(errors="replace").splitlines()
        for line in lines[seen:]:
            seen += 1
            try:
                res = Measurement.from_json(json.loads(line))
            except (ValueError, ResultError):
                continue
            what = f"{res.iops:,.0f} IOPS" if res.ok else f"FAILED: {res.error[:100]}"
            progress.say(f"bench: [{seen}/{total}] {res.key}: {what}")


def render(plan: BenchPlan, outdir: Path, meta: dict[str, Any],
           progress: Progress) -> tuple[str, int]:
    """results.json, table.md and plot.png from outdir/results.jsonl; (text, failures)."""
    table_rows = rows(plan.cases, results.load(outdir / "results.jsonl"))
    targets = checks(table_rows)
    run = report.BenchRun(plan.settings, table_rows, targets, meta)
    report.write(run, outdir / report.RESULTS)
    text = report.text(run)
    (outdir / "table.md").write_text(text)
    try:
        report.plot(table_rows, outdir / "plot.png")
    except ImportError:
        progress.say("bench: matplotlib is not installed; no plot (pip install matplotlib)")
    failures = sum(not r.result.ok for r in table_rows)
    return text, failures


def run(lay: Layout, plan: BenchPlan, opts: Options, progress: Progress) -> int:
    outdir = opts.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    for name in ("results.jsonl", "results.json", "table.md", "plot.png"):
        (outdir / name).unlink(missing_ok=True)
    tool = build_tool(lay.root, lay.bench_runs, progress)
    if opts.build_kernel:
        with progress.stage("bench kernel build"):
            res = build.build(opts.source_tree or lay.tree, opts.kernel_dir,
                              lay.fragments(with_series=True, debug=False), progress)
        release = res.release
    else:
        release = "(not rebuilt)"
    plan.tool = str(tool)
    plan.out = str(outdir)
    plan_path = outdir / "plan.json"
    plan_path.write_text(json.dumps(plan.to_json(), indent=2) + "\n")
    tools_dir = lay.tools
    command = (f"echo kseries-bench: guest up, starting the runner; "
               f"PYTHONPATH={shlex.quote(str(tools_dir))} {shlex.quote(sys.executable)} "
               f"-m kseries.bench.guest {shlex.quote(str(plan_path))}")
    spec = boot.GuestSpec(outdir=opts.kernel_dir, cpus=opts.cpus, memory=opts.memory,
                          append=opts.append, cwd=lay.root,
                          timeout=BOOT_ALLOWANCE + plan.seconds(), rwdirs=(outdir,))
    log = opts.console_log or lay.console_log("bench")
    progress.say(f"bench: {len(plan.cases)} cases, at most {plan.seconds() // 60} min in the "
                 f"guest; results in {outdir}")
    stop = threading.Event()
    follower = threading.Thread(target=_follow, daemon=True,
                                args=(outdir / "results.jsonl", len(plan.cases), progress, stop))
    follower.start()
    t0 = time.monotonic()
    try:
        with progress.heartbeat("bench: guest", HEARTBEAT):
            result = boot.run(spec, command, log, progress)
    finally:
        stop.set()
        follower.join(5)
    (outdir / "guest-output.txt").write_text(result.output)
    meta = {"command": " ".join(sys.argv), "kernel_release": release,
            "series_head": opts.series_head,
            "kernel_dir": str(opts.kernel_dir), "console_log": str(result.console_log),
            "kvm": result.kvm, "boot_seconds": round(result.seconds, 1),
            "guest_cpus": opts.cpus, "guest_memory": opts.memory, "append": opts.append,
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "wall_seconds": round(time.monotonic() - t0, 1)}
    guest_json = outdir / "guest.json"
    if guest_json.exists():
        meta["guest"] = json.loads(guest_json.read_text())
    text, failures = render(plan, outdir, meta, progress)
    print(text)
    print(f"results: {outdir}/results.json, {outdir}/table.md, {outdir}/plot.png")
    if result.returncode is None and not result.splats and not result.timed_out \
            and not failures:
        # virtme-ng's console fallback has dropped the end marker line once
        # after the guest's runner had finished; every case reported anyway.
        progress.say("bench: WARNING: the guest's exit status was lost on the console; "
                     "every case reported a result")
        return 0
    if not result.ok:
        try:
            result.raise_for_failure()
        except KseriesError as err:
            progress.say(f"bench: the guest run failed: {err}")
        return 1
    return 1 if failures else 0
