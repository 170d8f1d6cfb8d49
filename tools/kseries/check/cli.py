"""check-series: check a kernel patch series patch by patch, the way a
subsystem maintainer's CI would, and say which patch breaks what.

With no argument it checks the project's patches/ against the pinned
tree.  INPUT can be a directory of `git format-patch` files (series file
order), an mbox, or a git range BASE..TIP in --tree.

Exit status: 0 every check passed (warnings allowed), 1 a check failed,
2 a usage or environment error (the message names the cause and the fix),
130 interrupted (Ctrl-C or SIGTERM; the reports are still written, with the
unfinished checks marked skip).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import frontdoor, options
from ..errors import UsageError
from . import config as config_mod
from . import interrupt
from .model import INTERRUPTED_EXIT

if TYPE_CHECKING:
    from ..progress import Progress
    from .context import Check

PROG = "check-series"
HELP = "check a patch series patch by patch, the way a maintainer's CI would"

# The engine, the checks and the reports (jinja2) are imported by run(),
# so that `kseries --help` does not load them.


def _names(values: list[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def configure(p: argparse.ArgumentParser) -> None:
    """check-series' arguments, on its own parser or on ``kseries check``'s."""
    p.add_argument("input", nargs="?", default=None,
                   help="patch directory, mbox file, BASE..TIP, or a message-id or "
                        "lore/patchwork URL (with --thread) (default: the config's patches/)")
    p.add_argument("--thread", type=Path, default=None, metavar="MBOX",
                   help="local mbox holding the thread of a message-id INPUT (b4 am -m MBOX)")
    p.add_argument("--config", type=Path, default=None,
                   help=f"project config (default: {config_mod.FILE_NAME} in this project's "
                        "checkout when run there, else in the working directory, if any)")
    options.add_tree_opts(p, manifest_help="pin of the base tree",
                          tree_help="kernel git tree (default: the pinned tree, kernel-tree/linux)",
                          base_help="base ref in the tree (default: the pinned tag, or a range's "
                                    "start)")
    p.add_argument("--only", action="append", default=[], metavar="CHECK[,CHECK]",
                   help="run only these checks (apply always runs); an opt-in check "
                        "(--list-checks) runs per patch even when the config leaves it out")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK[,CHECK]",
                   help="leave these checks out")
    p.add_argument("--from", dest="first", type=int, default=1, metavar="K",
                   help="check from patch K (earlier patches are applied, not checked)")
    p.add_argument("--to", dest="last", type=int, default=0, metavar="K",
                   help="check up to patch K (the tip checks run on it)")
    p.add_argument("--keep-going", action="store_true",
                   help="go on to the next patch after a failed check")
    p.add_argument("--resume", action="store_true",
                   help="reuse cached results of unchanged patches (patch-id + config)")
    p.add_argument("--output", type=Path, default=None,
                   help="reports, logs and cache (default: build/check-series in this "
                        "project's checkout, else ./check-series)")
    options.add_work_opt(p, help="worktree and build directories (default: with the pinned "
                                 "tree, the main job's build/series-tree, build/x86_64-debug and "
                                 "build/kunit-ARCH; with --tree, build/check-work in this "
                                 "project's checkout, else ./check-series-work)")
    p.add_argument("--worktree", type=Path, default=None,
                   help="git worktree to apply the patches in (default: see --work)")
    p.add_argument("--build-dir", type=Path, default=None,
                   help="kernel O= build directory (default: see --work)")
    p.add_argument("--range-diff-base", default=None, metavar="OLD_BASE..OLD_TIP",
                   help="previous version of the series for git range-diff (or its tip ref)")
    p.add_argument("--smoke-tip", action="store_true",
                   help="boot the tip with [boot] smoke_command instead of tip_command")
    p.add_argument("--url-base", default=None,
                   help="URL the output directory is published at (patchwork target_url)")
    p.add_argument("--patchwork", default=None, metavar="API",
                   help="after the run, post each patch's checks to this patchwork REST API "
                        "(e.g. https://patchwork.kernel.org/api/1.2; token in $PATCHWORK_TOKEN)")
    p.add_argument("--dry-run", action="store_true",
                   help="with --patchwork: print the requests instead of sending them")
    p.add_argument("--list-checks", action="store_true", help="list the check plug-ins and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    return p


def register(sub: Any) -> None:
    """Add ``kseries check`` (the same command as check-series) to kseries' subcommands."""
    p = sub.add_parser("check", help=HELP + " (check-series)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)
    p.set_defaults(func=cmd_check)


def list_checks(cfg: config_mod.ProjectConfig) -> str:
    from .. import table
    from . import registry

    rows = []
    for name, check in sorted(registry.discover().items()):
        where = [w for w, names in (("per patch", cfg.per_patch), ("tip", cfg.tip))
                 if name in names]
        off = "off: opt in with --only or [checks]" if check.opt_in else "off"
        rows.append((name, f"{check.description} [{', '.join(where) or off}]"))
    return table.render([table.Column(width=11), table.Column()], rows, gap=" ", header=False)


def _plan_checks(cfg: config_mod.ProjectConfig, args: argparse.Namespace
                 ) -> tuple[list[Check], list[Check]]:
    from . import registry

    available = registry.discover()
    only, skip = _names(args.only), _names(args.skip)
    both = sorted(set(only) & set(skip))
    if both:
        raise UsageError(f"--only and --skip both name {', '.join(both)}",
                         "name a check in one of them, not both")
    if "apply" in skip:
        raise UsageError("the apply check cannot be skipped: every other check needs the patch "
                         "applied", "leave apply out of --skip")
    enabled = {*cfg.per_patch, *cfg.tip, "apply"}
    # An opt-in check (off unless named) runs per patch when --only names it.
    opted = [n for n in only if n in available and available[n].opt_in and n not in enabled]
    for name in only:
        if name in available and name not in enabled and name not in opted:
            raise UsageError(f"check {name!r} is not enabled in the config's [checks]",
                             "add it to per_patch or tip in check-series.toml")
    per_names = ("apply", *(n for n in cfg.per_patch if n != "apply"), *opted)
    per = registry.select(available, per_names, [*only, "apply"] if only else [], skip,
                          "[checks] per_patch / --only / --skip")
    tip = registry.select(available, cfg.tip, only, skip, "[checks] tip / --only / --skip")
    return per, tip


def _patchwork_token(args: argparse.Namespace) -> str | None:
    """Check --patchwork and --dry-run before the run; the token to post with."""
    if args.patchwork is None:
        if args.dry_run:
            raise UsageError("--dry-run without --patchwork", "add --patchwork API or drop it")
        return None
    from . import pwpost

    pwpost.check_api(args.patchwork)
    token = os.environ.get("PATCHWORK_TOKEN") or None
    if token is None and not args.dry_run:
        raise UsageError("--patchwork needs an API token in $PATCHWORK_TOKEN",
                         "export PATCHWORK_TOKEN=... (your patchwork profile's API token), "
                         "or add --dry-run to print the requests")
    return token


def run(args: argparse.Namespace, progress: Progress) -> int:
    from .. import paths, tree
    from . import engine, gitops, inputs, matrix, reports
    from .context import RunOptions
    from .reports import patchwork

    # In this checkout: its config, outputs under the work directory; anywhere
    # else the working directory (see Places.check_home).
    root, default_output, default_work = paths.places().check_home(Path.cwd())
    cfg_path = args.config or (root / config_mod.FILE_NAME)
    cfg = config_mod.load(cfg_path if args.config or cfg_path.exists() else None, root)
    if args.list_checks:
        print(list_checks(cfg))
        return 0
    per, tip = _plan_checks(cfg, args)
    if args.url_base is not None and not patchwork.is_web_url(args.url_base):
        raise UsageError(f"--url-base {args.url_base!r} is not an http(s) URL",
                         "give the URL the output directory is published at, "
                         "e.g. https://ci.example.org/run/7/ (patchwork accepts no other)")
    token = _patchwork_token(args)
    output = (args.output or default_output).resolve()
    work = (args.work or default_work).resolve()
    worktree, build_dir, kunit_dir = work / "worktree", None, None
    if args.tree is not None:
        tree_path, base = args.tree.resolve(), args.base
    else:
        lay = paths.layout(manifest_path=args.manifest, base=args.base)
        tree_path, base = lay.tree, lay.base
        if args.work is None and args.worktree is None:
            # The pinned tree: the worktree and builds the main job uses, so
            # whichever runs second finds them warm.  (A build directory
            # shared with another source tree would be rebuilt whole.)
            worktree, build_dir = lay.series_tree, lay.debug_build
            kunit_dir = lay.kunit_build(cfg.kunit.arch)
    if not (tree_path / ".git").exists():
        tree.open_tree(tree_path, base or "HEAD")  # raises with the reason and the fix
    series_in = inputs.load(args.input, cfg.patches, tree_path, output, args.thread)
    for note in series_in.notes:
        progress.say(f"input: {note}")
    base = base or series_in.base
    if base is None:
        raise UsageError("--tree was given without --base", "give the series' base: --base REF")
    base_commit = gitops.rev_parse(tree_path, base)
    if args.range_diff_base:
        for ref in args.range_diff_base.split(".."):
            gitops.rev_parse(tree_path, ref)
    count = len(series_in.patches)
    last = args.last or count
    if not 1 <= args.first <= last <= count:
        raise UsageError(f"--from {args.first} --to {last} is not within the series' "
                         f"{count} patches", f"give 1 <= K <= {count}")
    plan = engine.Plan(patches=series_in.patches, per_patch=per, tip=tip, first=args.first,
                       last=last, keep_going=args.keep_going, resume=args.resume)
    if args.build_dir:
        build_dir = args.build_dir.resolve()
    setup = engine.Setup(tree=tree_path, worktree=(args.worktree or worktree).resolve(),
                         base=base, base_commit=base_commit, source=series_in.source,
                         output=output, work=work, config=cfg,
                         options=RunOptions(range_diff_base=args.range_diff_base,
                                            smoke_tip=args.smoke_tip,
                                            build_dir=build_dir,
                                            kunit_dir=kunit_dir))
    progress.say(f"checking {count} patches from {series_in.source} on {base} "
                 f"({base_commit[:12]}): {', '.join(c.name for c in per)}"
                 + (f"; tip: {', '.join(c.name for c in tip)}" if tip else ""))
    with interrupt.catching():
        report = engine.run(plan, setup, progress)
        written = reports.write_all(report, output, args.url_base)
    print(matrix.render(report))
    for line in matrix.failures(report):
        print(line)
    print("reports: " + ", ".join(str(p) for p in written.values()))
    print("RESULT: " + reports.html.verdict(report))
    if args.patchwork:
        from . import pwpost

        entries = json.loads(written["patchwork"].read_text())
        posted = pwpost.post(entries, args.patchwork, token, dry_run=args.dry_run)
        if not args.dry_run:
            progress.say(f"patchwork: posted {posted} checks to {args.patchwork}")
    if report.interrupted:
        print(f"check-series: interrupted by {report.interrupted}: {report.stopped_early}; the "
              "reports mark the unfinished checks skip; rerun with --resume to continue "
              f"(exit {report.exit_status})", file=sys.stderr)
    return report.exit_status


def cmd_check(args: argparse.Namespace) -> int:
    """``check-series``/``kseries check``: the run, and a signal before any check ran."""
    from ..progress import Progress

    progress = Progress(quiet=args.quiet)
    try:
        with interrupt.catching():
            return run(args, progress)
    except (KeyboardInterrupt, interrupt.Interrupted) as sig:
        name = sig.signame if isinstance(sig, interrupt.Interrupted) else "SIGINT"
        print(f"check-series: interrupted by {name} before any check ran: no reports written "
              f"(exit {INTERRUPTED_EXIT})", file=sys.stderr)
        return INTERRUPTED_EXIT


def main(argv: list[str] | None = None) -> int:
    """The ``check-series`` command: ``kseries check`` under its own name."""
    return frontdoor.run(PROG, cmd_check, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
