"""``kseries bench``: the subcommand's options, registered by kseries.cli."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import KseriesError, UsageError
from . import matrix

if TYPE_CHECKING:
    from .. import paths
    from ..progress import Progress

# The runner (QEMU, the guest, matplotlib for the plot) and the tree
# modules are imported by the command, so that `kseries --help` does not
# load them.

HELP = "benchmark vhost-blk against the direct device and vhost-user-blk (boots a VM)"


def register(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``bench`` subparser to kseries' subcommands."""
    p = sub.add_parser("bench", help=HELP, description=HELP)
    common(p)
    p.add_argument("--devices", default="null_blk,brd",
                   help=f"comma-separated, from {','.join(matrix.DEVICES)} (default: both)")
    p.add_argument("--rw", default="randread,randwrite",
                   help="comma-separated access patterns (default: randread,randwrite)")
    p.add_argument("--iodepth", default="1,32,128", help="per queue (default: 1,32,128)")
    p.add_argument("--queues", default="1,2", help="queue counts (default: 1,2)")
    p.add_argument("--backends", default=",".join(matrix.BACKENDS),
                   help="comma-separated (default: all): " + ",".join(matrix.BACKENDS))
    p.add_argument("--bs", type=int, default=4096, help="block size in bytes (default 4096)")
    p.add_argument("--runtime", type=int, default=5, help="seconds measured per case (5)")
    p.add_argument("--ramp", type=int, default=1, help="seconds of warm-up per case (1)")
    p.add_argument("--cpus", type=int, default=2, help="guest vCPUs (default 2)")
    p.add_argument("--memory", default="2G", help="guest memory (default 2G)")
    p.add_argument("--append", default="",
                   help="extra guest kernel command line (e.g. idle=poll)")
    p.add_argument("--out", type=Path, default=None,
                   help="run directory (default: build/bench/run-<UTC time>)")
    p.add_argument("--kernel-dir", type=Path, default=None,
                   help="O= directory of the non-debug kernel (default: build/x86_64-bench)")
    p.add_argument("--no-build", action="store_true",
                   help="boot the kernel already in --kernel-dir without rebuilding it")
    p.add_argument("--no-apply", action="store_true",
                   help="build the tree as it is checked out instead of applying patches/ "
                        "in the series worktree (build/series-tree)")
    p.add_argument("--console-log", type=Path, default=None,
                   help="guest console log (default: build/logs/bench-console.log)")
    p.add_argument("--report-only", type=Path, default=None, metavar="RUN_DIR",
                   help="only re-render the table, JSON and plot of an earlier run")
    p.set_defaults(func=cmd_bench)


def make_plan(args: argparse.Namespace) -> matrix.BenchPlan:
    try:
        return matrix.plan(
            matrix.parse_list(args.devices, "devices"), matrix.parse_list(args.rw, "rw"),
            matrix.parse_ints(args.iodepth, "iodepth"), matrix.parse_ints(args.queues, "queues"),
            matrix.parse_list(args.backends, "backends"),
            matrix.Settings(bs=args.bs, runtime=args.runtime, ramp=args.ramp))
    except matrix.PlanError as exc:
        raise UsageError(str(exc), "see `kseries bench --help`") from None


def cmd_bench(args: argparse.Namespace) -> int:
    from .. import paths, worktree
    from ..progress import Progress

    progress = Progress()
    if args.report_only is not None:
        return _report_only(args.report_only, progress)
    plan = make_plan(args)
    if args.cpus < 1:
        raise UsageError(f"--cpus {args.cpus}: at least 1", "the default is 2")
    lay = paths.layout(manifest_path=args.manifest, tree=args.tree, base=args.base,
                       work=args.work)
    kernel_dir = (args.kernel_dir or lay.bench_build).resolve()
    if args.no_build:
        if not (kernel_dir / "arch" / "x86" / "boot" / "bzImage").exists():
            raise UsageError(f"--no-build, but there is no kernel in {kernel_dir}",
                             "run once without --no-build to build it")
        return _run(lay, plan, args, kernel_dir, "(not rebuilt)", lay.tree, progress)
    if args.no_apply:
        head, source = prepare_tree(lay, apply=False, progress=progress)
        return _run(lay, plan, args, kernel_dir, head, source, progress)
    with worktree.lock(lay.series_tree):  # held until the kernel is built and booted
        head, source = prepare_tree(lay, apply=True, progress=progress)
        return _run(lay, plan, args, kernel_dir, head, source, progress)


def _run(lay: paths.Layout, plan: matrix.BenchPlan, args: argparse.Namespace, kernel_dir: Path,
         series_head: str, source: Path, progress: Progress) -> int:
    from . import runner

    stamp = time.strftime("run-%Y%m%dT%H%M%SZ", time.gmtime())
    opts = runner.Options(outdir=args.out or lay.bench_runs / stamp, kernel_dir=kernel_dir,
                          build_kernel=not args.no_build, cpus=args.cpus, memory=args.memory,
                          append=args.append, console_log=args.console_log,
                          series_head=series_head, source_tree=source)
    return runner.run(lay, plan, opts, progress)


def prepare_tree(lay: paths.Layout, apply: bool, progress: Progress) -> tuple[str, Path]:
    """Fetch the pinned tree if it is the default one; apply patches/ in the
    series worktree (build/series-tree) unless ``apply`` is false.

    Returns the commit that will be built and the tree to build it from.
    Like the main job, the bench never checks out a branch of the
    developer's tree, and it builds from the same worktree, so a kernel it
    already built there stays warm.
    """
    from .. import series, tree, worktree

    t = tree.ensure(lay, progress)
    if not apply:
        head = t.head()
        progress.say(f"bench: building {t.path} as checked out ({head[:12]}), "
                     "patches/ not applied")
        return head, t.path
    with progress.stage("apply"):
        res = worktree.apply_series(t.path, lay.series_tree, t.base_commit(),
                                    series.list_patches(lay.patches), progress)
    progress.say(f"bench: {res.count} patches in {lay.series_tree} at {res.head[:12]}")
    return res.head, lay.series_tree


def _report_only(run_dir: Path, progress: Progress) -> int:
    from . import runner

    plan_path = run_dir / "plan.json"
    if not plan_path.exists():
        raise UsageError(f"{run_dir} has no plan.json", "give the directory of an earlier run")
    try:
        plan = matrix.BenchPlan.from_json(json.loads(plan_path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise KseriesError(f"{plan_path} is not a benchmark plan ({exc})",
                           "give the directory of an earlier run") from None
    meta: dict[str, Any] = {}
    old = run_dir / "results.json"
    if old.exists():
        meta = json.loads(old.read_text()).get("meta", {})
    text, failures = runner.render(plan, run_dir, meta, progress)
    print(text)
    return 1 if failures else 0
