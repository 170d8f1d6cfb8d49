"""Where things live in a project checkout, and overrides from the CLI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import manifest as manifest_mod
from . import tree as tree_mod
from .manifest import Manifest


def project_root() -> Path:
    """The checkout this package was loaded from (tools/kseries/..)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Layout:
    root: Path
    manifest: Manifest
    tree: Path
    base: str
    patches: Path
    work: Path

    # The series (patches/ on the base) is applied in one scratch worktree
    # by every job that tests it: the main job, check-series and the
    # benchmark.  Its builds of one configuration share one directory, so
    # a second job finds them warm.  The developer's own tree (``tree``)
    # builds into directories of its own (``dev-*``): a build directory
    # that switched source trees would recompile everything.
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
    def qemu_manifest(self) -> Path:
        """The pinned QEMU (``kseries qemu``)."""
        return self.root / "qemu-tree" / "manifest.toml"

    @property
    def qemu_build(self) -> Path:
        """QEMU's meson build directory: qemu-system-x86_64, qemu-storage-daemon, qos-test."""
        return self.work / "qemu"

    @property
    def l2_build(self) -> Path:
        """The L2 guest's vmlinuz and initrd.img (``kseries l2 build``)."""
        return self.work / "l2"

    @property
    def l2_manifest(self) -> Path:
        return self.root / "l2-guest" / "manifest.toml"

    @property
    def configs(self) -> Path:
        return self.root / "kernel-tree" / "configs"

    @property
    def kunit(self) -> Path:
        return self.root / "kunit"

    def fragments(self, with_series: bool, debug: bool = True, kvm: bool = False) -> list[Path]:
        names = ["base.config"]
        if with_series:
            names.append("vhost-blk.config")
        if debug:
            names.append("debug.config")
        if kvm:
            names.append("kvm.config")
        return [self.configs / name for name in names]


def layout(manifest_path: Path | None = None, tree: Path | None = None,
           base: str | None = None, patches: Path | None = None,
           work: Path | None = None) -> Layout:
    root = project_root()
    man = manifest_mod.load(manifest_path or root / "kernel-tree" / "manifest.toml")
    work = work or Path(os.environ.get("KSERIES_WORK", root / "build"))
    return Layout(
        root=root,
        manifest=man,
        tree=(tree or tree_mod.default_tree_dir(man)).resolve(),
        base=base or man.tag,
        patches=(patches or root / man.patches).resolve(),
        work=work.resolve(),
    )
