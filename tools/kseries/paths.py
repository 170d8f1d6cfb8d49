"""Where things live: every path the tools read or write, in one place.

Two directories decide everything:

- the project root, the checkout this package was loaded from: the
  inputs (pins, config fragments, kunitconfigs, the TOML configs, the
  pinned trees);
- the work directory, ``build/`` in the checkout unless ``$KSERIES_WORK``
  (or a command's ``--work``) says otherwise: every output (build
  directories, the series worktree, logs, reports, bench runs, emails).

``Places`` holds the two and derives every path from them; ``Layout``
adds what a command works on (the manifest, the kernel tree and its base
ref, the series directory).  Nothing else in the package decides a path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import manifest as manifest_mod
from .manifest import Manifest

WORK_VAR = "KSERIES_WORK"
"""The one override: where outputs go instead of ``build/`` in the checkout."""


def project_root() -> Path:
    """The checkout this package was loaded from (tools/kseries/..)."""
    return Path(__file__).resolve().parents[2]


def work_dir(root: Path, work: Path | None = None) -> Path:
    """``work`` if given, else ``$KSERIES_WORK`` if set, else ``ROOT/build``."""
    if work is None:
        env = os.environ.get(WORK_VAR, "")
        work = Path(env) if env else root / "build"
    return work.resolve()


class CheckHome(NamedTuple):
    """Where check-series looks for its config and puts its outputs."""

    config_dir: Path
    output: Path
    work: Path


@dataclass(frozen=True)
class Places:
    """The project root and the work directory, and every path derived from them."""

    root: Path
    work: Path

    # -- inputs, in the checkout ------------------------------------------

    @property
    def tools(self) -> Path:
        """The parent of kseries and vblk (a guest's PYTHONPATH)."""
        return self.root / "tools"

    @property
    def kernel_manifest(self) -> Path:
        """The pinned base tree (``kernel-tree/manifest.toml``)."""
        return self.root / "kernel-tree" / "manifest.toml"

    @property
    def pinned_tree(self) -> Path:
        """Where ``kseries tree fetch`` imports the pinned tree (git-ignored)."""
        return self.root / "kernel-tree" / "linux"

    @property
    def kernel_cache(self) -> Path:
        """The downloaded linux-source .deb (git-ignored)."""
        return self.root / "kernel-tree" / "cache"

    @property
    def configs(self) -> Path:
        return self.root / "kernel-tree" / "configs"

    @property
    def kunit(self) -> Path:
        return self.root / "kunit"

    @property
    def qemu_manifest(self) -> Path:
        """The pinned QEMU (``kseries qemu``)."""
        return self.root / "qemu-tree" / "manifest.toml"

    @property
    def l2_manifest(self) -> Path:
        return self.root / "l2-guest" / "manifest.toml"

    @property
    def check_config(self) -> Path:
        """check-series' project config."""
        return self.root / "check-series.toml"

    @property
    def submit_config(self) -> Path:
        """submit-series' recipients and prefixes."""
        return self.root / "submit.toml"

    def in_checkout(self, relative: str) -> Path:
        """A path a pin names relative to the checkout (``[series] patches``)."""
        return (self.root / relative).resolve()

    def fragments(self, with_series: bool, debug: bool = True, kvm: bool = False,
                  module: bool = False) -> list[Path]:
        names = ["base.config"]
        if with_series:
            names.append("vhost-blk.config")
            if module:
                names.append("vhost-blk-module.config")
        if debug:
            names.append("debug.config")
        if kvm:
            names.append("kvm.config")
        return [self.configs / name for name in names]

    # -- outputs, under the work directory --------------------------------

    # The series (patches/ on the base) is applied in one scratch worktree
    # by every job that tests it: the main job, check-series and the
    # benchmark.  Its builds of one configuration share one directory, so
    # a second job finds them warm.  The developer's own tree builds into
    # directories of its own (``dev-*``): a build directory that switched
    # source trees would recompile everything.
    @property
    def series_tree(self) -> Path:
        return self.work / "series-tree"

    @property
    def debug_build(self) -> Path:
        """The series' debug kernel: main job, check-series, in-guest suite."""
        return self.work / "x86_64-debug"

    def kunit_build(self, arch: str = "um") -> Path:
        """The series' KUnit build (kunit.py --build_dir): main job and check-series."""
        return self.work / f"kunit-{arch}"

    def dev_build(self, name: str) -> Path:
        """A build of the developer's tree (``kseries build`` and ``kseries kunit``)."""
        return self.work / f"dev-{name}"

    @property
    def bench_build(self) -> Path:
        """The benchmark's non-debug kernel."""
        return self.work / "x86_64-bench"

    @property
    def qemu_build(self) -> Path:
        """QEMU's meson build directory: qemu-system-x86_64, qemu-storage-daemon, qos-test."""
        return self.work / "qemu"

    @property
    def l2_build(self) -> Path:
        """The L2 guest's vmlinuz and initrd.img (``kseries l2 build``)."""
        return self.work / "l2"

    @property
    def logs(self) -> Path:
        """Guest consoles (``NAME-console.log``) and the commands that started them."""
        return self.work / "logs"

    def console_log(self, name: str) -> Path:
        return self.logs / f"{name}-console.log"

    @property
    def report(self) -> Path:
        """The main job's report."""
        return self.work / "report.json"

    @property
    def bench_runs(self) -> Path:
        """``kseries bench``: the load generator's build and one ``run-*`` per run."""
        return self.work / "bench"

    @property
    def check_output(self) -> Path:
        """check-series' reports, logs and cache, run in the checkout."""
        return self.work / "check-series"

    @property
    def check_report(self) -> Path:
        """The check-series report submit-series gates on."""
        return self.check_output / "report.json"

    @property
    def check_work(self) -> Path:
        """check-series' scratch space for a tree other than the pinned one."""
        return self.work / "check-work"

    @property
    def submit_output(self) -> Path:
        """submit-series' emails, one ``vN`` directory per version."""
        return self.work / "submit"

    @property
    def submit_worktree(self) -> Path:
        return self.work / "submit" / "linux"

    def check_home(self, cwd: Path) -> CheckHome:
        """Where check-series run from ``cwd`` finds its config and writes.

        Inside this checkout: its check-series.toml, outputs under the work
        directory.  Anywhere else the working directory is the project, the
        way a maintainer runs a tool in their own tree: ./check-series.toml
        if there is one, reports in ./check-series, scratch space in
        ./check-series-work; never this project's config or the report its
        submit-series gates on (so not ``$KSERIES_WORK`` either).
        """
        root, cwd = self.root.resolve(), cwd.resolve()
        if cwd == root or root in cwd.parents:
            return CheckHome(root, self.check_output, self.check_work)
        return CheckHome(cwd, cwd / "check-series", cwd / "check-series-work")


def places(work: Path | None = None, root: Path | None = None) -> Places:
    """The paths of this checkout (or ``root``), outputs in ``work_dir()``."""
    root = (root or project_root()).resolve()
    return Places(root=root, work=work_dir(root, work))


@dataclass(frozen=True)
class Layout(Places):
    """``Places`` plus what a command works on."""

    manifest: Manifest
    tree: Path
    base: str
    patches: Path


def layout(manifest_path: Path | None = None, tree: Path | None = None,
           base: str | None = None, patches: Path | None = None,
           work: Path | None = None) -> Layout:
    where = places(work)
    man = manifest_mod.load(manifest_path or where.kernel_manifest)
    return Layout(
        root=where.root,
        work=where.work,
        manifest=man,
        tree=(tree or where.pinned_tree).resolve(),
        base=base or man.tag,
        patches=patches.resolve() if patches else where.in_checkout(man.patches),
    )
