"""``kseries l2 build``: the L2 guest's kernel and initramfs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "the L2 guest (Debian's kernel + busybox initramfs) for tests/guest/test_l2.py"


def register(sub: Any) -> None:
    p_l2 = sub.add_parser("l2", help=HELP, description=HELP)
    lsub = p_l2.add_subparsers(dest="l2_command", required=True)
    p = lsub.add_parser("build", help="download the pinned kernel package and write "
                                      "build/l2/vmlinuz and build/l2/initrd.img")
    p.add_argument("--manifest", type=Path, default=None,
                   help="the pin (default: l2-guest/manifest.toml)")
    p.add_argument("--outdir", type=Path, default=None,
                   help="where to write the image (default: build/l2, or $KSERIES_WORK/l2)")
    p.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from .. import paths
    from ..progress import Progress
    from . import image, manifest

    lay = paths.layout()
    man = manifest.load(args.manifest or lay.l2_manifest)
    img = image.build(man, args.outdir or lay.l2_build, Progress())
    what = "built" if img.rebuilt else "up to date"
    print(f"{what}: {img.vmlinuz} and {img.initrd} ({img.seconds:.0f}s)")
    return 0
