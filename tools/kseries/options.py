"""Options the front doors share (as kunit.py's add_common_opts/add_build_opts).

Each helper adds one group of options with the same names, types and
defaults wherever it is used; ``help`` texts can be given where a
command means something more specific by an option (check-series'
``--work`` holds its worktree and builds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

MANIFEST_HELP = "pin of the base tree (default: kernel-tree/manifest.toml)"
TREE_HELP = "kernel git tree (default: kernel-tree/linux, fetched)"
BASE_HELP = "base ref in the tree (default: the pinned tag)"
WORK_HELP = "build and log directory (default: build/, or $KSERIES_WORK)"
PATCHES_HELP = "series directory (patches/)"


def add_tree_opts(p: argparse.ArgumentParser, *, manifest_help: str = MANIFEST_HELP,
                  tree_help: str = TREE_HELP, base_help: str = BASE_HELP) -> None:
    """--manifest, --tree, --base: which kernel tree and which base in it."""
    p.add_argument("--manifest", type=Path, default=None, help=manifest_help)
    p.add_argument("--tree", type=Path, default=None, help=tree_help)
    p.add_argument("--base", default=None, help=base_help)


def add_work_opt(p: argparse.ArgumentParser, *, help: str = WORK_HELP) -> None:
    """--work: where builds, logs and scratch trees go."""
    p.add_argument("--work", type=Path, default=None, help=help)


def add_patches_opt(p: argparse.ArgumentParser, *, help: str = PATCHES_HELP) -> None:
    """--patches: the series directory."""
    p.add_argument("--patches", type=Path, default=None, help=help)


def add_common_opts(p: argparse.ArgumentParser) -> None:
    """The tree and work options of every kseries command that builds a kernel."""
    add_tree_opts(p)
    add_work_opt(p)
