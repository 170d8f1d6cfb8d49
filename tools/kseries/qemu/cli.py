"""``kseries qemu fetch|build``: the subcommands, registered by kseries.cli."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from . import manifest

if TYPE_CHECKING:
    from .. import paths

HELP = "fetch, patch (patches/qemu) and build the project's QEMU 10.0.2"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", type=Path, default=None,
                   help="pin of the QEMU source (default: qemu-tree/manifest.toml)")
    p.add_argument("--tarball", type=Path, default=None,
                   help="use this downloaded orig tarball instead of fetching it")


def register(sub: Any) -> None:
    """Add the ``qemu`` command group to kseries' subcommands."""
    p_qemu = sub.add_parser("qemu", help=HELP, description=HELP)
    qsub = p_qemu.add_subparsers(dest="qemu_command", required=True)

    p = qsub.add_parser("fetch", help="download, verify and import the pinned QEMU tree "
                                      "into qemu-tree/qemu")
    _common(p)
    p.set_defaults(func=cmd_fetch)

    p = qsub.add_parser("build", help="fetch if needed, apply patches/qemu, configure and "
                                      "build into build/qemu")
    _common(p)
    p.add_argument("--work", type=Path, default=None,
                   help="build directory root (default: build/, or $KSERIES_WORK); "
                        "QEMU builds into WORK/qemu")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="parallel ninja jobs (default: ninja's, cores + 2)")
    p.add_argument("--no-apply", action="store_true",
                   help="build qemu-tree/qemu as it is checked out, without applying "
                        "patches/qemu")
    p.add_argument("--force", action="store_true",
                   help="recreate the series branch even if it has other commits")
    p.add_argument("--reconfigure", action="store_true",
                   help="run configure even if nothing calls for it")
    p.set_defaults(func=cmd_build)


def _manifest(args: argparse.Namespace, lay: paths.Layout) -> manifest.QemuManifest:
    return manifest.load(args.manifest or lay.qemu_manifest)


def cmd_fetch(args: argparse.Namespace) -> int:
    from .. import paths
    from ..progress import Progress
    from . import fetch

    man = _manifest(args, paths.layout())
    fetch.fetch(man, Progress(), args.tarball)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from .. import paths, table
    from ..progress import Progress
    from . import build

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: at least 1", "leave it out for ninja's default")
    lay = paths.layout(work=args.work)
    man = _manifest(args, lay)
    res = build.build(man, lay.qemu_build, Progress(), patches=lay.in_checkout(man.patches),
                      jobs=args.jobs,
                      apply_series=not args.no_apply, force=args.force,
                      reconfigure=args.reconfigure, tarball=args.tarball)
    print(f"built QEMU {man.version}: {res.described} ({res.head[:12]}) in {res.build}")
    print(table.render([table.Column(width=20), table.Column()],
                       list(res.binaries.items()), gap=" ", indent="  ", header=False))
    bins = res.binaries
    print(f"qtests: QTEST_QEMU_BINARY={bins['qemu-system-x86_64']} "
          f"QTEST_QEMU_STORAGE_DAEMON_BINARY={bins['qemu-storage-daemon']} "
          f"{bins['qos-test']} -l")
    return 0
