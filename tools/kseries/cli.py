"""kseries: fetch the pinned tree, apply and export the series, build,
run KUnit, boot the result and run commands in it, check the series
patch by patch (`kseries check`, also check-series) and post it
(`kseries submit`, also submit-series).

A thin command-line layer over the modules of this package; every
failure ends with one line naming the problem and one saying what to do.
Exit status: 0 passed, 1 a check failed, 2 a usage or environment error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import frontdoor, options
from .bench import cli as bench_cli
from .check import cli as check_cli
from .errors import UsageError
from .l2 import cli as l2_cli
from .qemu import cli as qemu_cli
from .submit import cli as submit_cli

if TYPE_CHECKING:
    from . import paths

# The command modules are imported by the command that needs them (as b4's
# command.py does), so that `kseries --help` and argument errors stay fast:
# the subcommands' */cli.py modules hold only their options.


def _layout(args: argparse.Namespace) -> paths.Layout:
    from . import paths

    return paths.layout(manifest_path=args.manifest, tree=args.tree, base=args.base,
                        patches=getattr(args, "patches", None), work=args.work)


def cmd_fetch(args: argparse.Namespace) -> int:
    from . import tree
    from .progress import Progress

    lay = _layout(args)
    tree.fetch(lay.manifest, lay.tree, cache=lay.kernel_cache, deb=args.deb, progress=Progress())
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from . import series, tree
    from .progress import Progress

    lay = _layout(args)
    tree.open_tree(lay.tree, lay.base)
    res = series.apply(lay.tree, lay.base, args.branch or lay.manifest.branch, lay.patches,
                       Progress(), force=args.force)
    print(f"applied {len(res.applied)} patches; {res.branch} is at {res.head[:12]}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import series, tree
    from .progress import Progress

    lay = _layout(args)
    tree.open_tree(lay.tree, lay.base)
    series.export(lay.tree, lay.base, args.branch or lay.manifest.branch, lay.patches,
                  Progress(), reroll=args.reroll)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from . import build, tree
    from .progress import Progress

    if args.vhost_blk_module and (args.no_series or args.config):
        raise UsageError("--vhost-blk-module needs the series' config fragments",
                         "leave out --no-series and --config")
    lay = _layout(args)
    tree.open_tree(lay.tree, lay.base)
    frags = args.config or lay.fragments(with_series=not args.no_series, debug=not args.no_debug,
                                         kvm=args.kvm, module=args.vhost_blk_module)
    name = "x86_64-debug" if not args.no_debug else "x86_64"
    name += "-kvm" if args.kvm else ""
    name += "-mod" if args.vhost_blk_module else ""
    outdir = args.outdir or lay.dev_build(name)
    res = build.build(lay.tree, outdir, frags, Progress())
    print(f"built {res.release} in {res.outdir} ({res.steps} steps, {res.seconds:.0f}s)")
    print(f"boot it: kseries run --outdir {res.outdir} -- COMMAND")
    return 0


def cmd_kunit(args: argparse.Namespace) -> int:
    from . import kunit_run, tree
    from .progress import Progress

    lay = _layout(args)
    tree.open_tree(lay.tree, lay.base)
    kcfg = args.kunitconfig or lay.kunit / "vhost_blk.kunitconfig"
    res = kunit_run.run(lay.tree, kcfg, args.build_dir or lay.dev_build(f"kunit-{args.arch}"),
                        Progress(), arch=args.arch)
    from . import table

    if res.cases:
        print(table.render([table.Column(width=5), table.Column()],
                           [(case.status, case.full_name) for case in res.cases],
                           gap=" ", header=False))
    print(res.summary())
    return 0 if res.ok else 1


def newest_build(lay: paths.Layout) -> Path:
    """The debug kernel built last: the main job's or the developer tree's."""
    found = [d for d in (lay.debug_build, lay.dev_build("x86_64-debug"))
             if (d / "arch" / "x86" / "boot" / "bzImage").exists()]
    if not found:
        return lay.debug_build  # boot.run names what is missing and the fix
    newest = max(found, key=lambda d: (d / "arch" / "x86" / "boot" / "bzImage").stat().st_mtime)
    if len(found) > 1:
        print(f"kseries: booting the newer build, {newest} (--outdir picks one)",
              file=sys.stderr)
    return newest


def cmd_run(args: argparse.Namespace) -> int:
    from . import boot
    from .progress import Progress

    lay = _layout(args)
    if args.cmd[:1] == ["--"]:
        args.cmd = args.cmd[1:]
    if not args.cmd:
        raise UsageError("no command given", "e.g. `kseries run -- uname -r`")
    command = args.cmd[0] if len(args.cmd) == 1 else shlex.join(args.cmd)
    outdir = args.outdir or newest_build(lay)
    spec = boot.GuestSpec(outdir=outdir, cpus=args.cpus, memory=args.memory,
                          append=args.append, cwd=lay.root, timeout=args.timeout,
                          rwdirs=tuple(args.rwdir),
                          single_thread_tcg=args.tcg_single_thread)
    log = args.console_log or lay.console_log("run")
    res = boot.run(spec, command, log, Progress())
    sys.stdout.write(res.output)
    res.raise_for_failure()
    return 0


def cmd_all(args: argparse.Namespace) -> int:
    from . import pipeline
    from .progress import Progress

    lay = _layout(args)
    progress = Progress()
    report = pipeline.run_main(lay, progress, kunit_arch=args.kunit_arch,
                               skip=frozenset(args.skip))
    print(report.table())
    print(f"report: {lay.report}")
    print("RESULT: " + ("PASS" if report.ok else "FAIL"))
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kseries", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("all", help="main job: fetch, apply, build, KUnit, boot, report")
    options.add_common_opts(p)
    options.add_patches_opt(p)
    p.add_argument("--kunit-arch", default="um", choices=["um", "x86_64"])
    p.add_argument("--skip", action="append", default=[], choices=["kunit", "boot"])
    p.set_defaults(func=cmd_all)

    p_tree = sub.add_parser("tree", help="the pinned base tree")
    tsub = p_tree.add_subparsers(dest="tree_command", required=True, metavar="SUBCOMMAND")
    p = tsub.add_parser("fetch", help="download, verify and import the pinned tree")
    options.add_common_opts(p)
    p.add_argument("--deb", type=Path, default=None,
                   help="use this downloaded .deb instead of apt-get download")
    p.set_defaults(func=cmd_fetch)

    for name, func, text in (("apply", cmd_apply, "create the series branch and git am patches/"),
                             ("export", cmd_export, "regenerate patches/ from the series branch")):
        p = sub.add_parser(name, help=text)
        options.add_common_opts(p)
        options.add_patches_opt(p)
        p.add_argument("--branch", default=None, help="series branch (default from manifest)")
        if name == "apply":
            p.add_argument("--force", action="store_true",
                           help="recreate the branch even if it has commits")
        else:
            p.add_argument("-v", "--reroll", type=int, default=None, help="series version N")
        p.set_defaults(func=func)

    p = sub.add_parser("build", help="configure and build the kernel (O= directory)")
    options.add_common_opts(p)
    p.add_argument("--outdir", type=Path, default=None,
                   help="O= directory (default: build/dev-x86_64-debug; the main job "
                        "builds patches/ into build/x86_64-debug)")
    p.add_argument("--config", type=Path, action="append", default=None,
                   help="config fragment (repeatable; default: the project's)")
    p.add_argument("--no-debug", action="store_true", help="leave out debug.config")
    p.add_argument("--no-series", action="store_true", help="leave out vhost-blk.config")
    p.add_argument("--kvm", action="store_true",
                   help="add kvm.config, for a VM that runs L2 guests (tests/guest/test_l2.py; "
                        "default O=build/dev-x86_64-debug-kvm)")
    p.add_argument("--vhost-blk-module", action="store_true",
                   help="build vhost-blk (and vhost) as modules, for "
                        "tests/guest/test_module.py (default O=build/dev-x86_64-debug-mod)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("kunit", help="run KUnit with the tree's kunit.py")
    options.add_common_opts(p)
    p.add_argument("--kunitconfig", type=Path, default=None)
    p.add_argument("--arch", default="um", choices=["um", "x86_64"])
    p.add_argument("--build-dir", type=Path, default=None)
    p.set_defaults(func=cmd_kunit)

    p = sub.add_parser("run", help="boot the built kernel and run a command in it")
    options.add_common_opts(p)
    p.add_argument("--outdir", type=Path, default=None,
                   help="build directory to boot (default: the newer of build/x86_64-debug, "
                        "the main job's, and build/dev-x86_64-debug, `kseries build`'s)")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--memory", default="2G")
    p.add_argument("--append", default="", help="extra kernel command line")
    p.add_argument("--rwdir", type=Path, action="append", default=[])
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--console-log", type=Path, default=None)
    p.add_argument("--tcg-single-thread", action="store_true",
                   help="under TCG, run the vCPUs in turn on one host thread (for guests "
                        "that run KVM guests: see boot.py)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="command to run in the guest")
    p.set_defaults(func=cmd_run)

    bench_cli.register(sub, options.add_common_opts)
    qemu_cli.register(sub)
    l2_cli.register(sub)
    check_cli.register(sub)
    submit_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["submit", "trailers"]:  # a command of its own, as `submit-series trailers`
        args = submit_cli.trailers_parser("kseries submit trailers").parse_args(argv[2:])
    else:
        args = build_parser().parse_args(argv)
    return frontdoor.run("kseries", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
