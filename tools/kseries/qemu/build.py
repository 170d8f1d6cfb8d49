"""``kseries qemu build``: fetch, apply patches/qemu, configure, ninja.

Every step is skipped when it has nothing to do, so a second build with
nothing changed takes a second or two, and an edit of one source file
recompiles that file and relinks.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import KseriesError, UsageError
from ..git import git
from ..progress import Progress
from . import apply, configure, fetch, ninja
from .manifest import QemuManifest

# What the project runs, by ninja target.
TARGETS = {
    "qemu-system-x86_64": "qemu-system-x86_64",
    "qemu-storage-daemon": "storage-daemon/qemu-storage-daemon",
    "qos-test": "tests/qtest/qos-test",
}


def binaries(build_dir: Path) -> dict[str, Path]:
    """The binaries of TARGETS, by name, in QEMU's build directory ``build_dir``."""
    return {name: build_dir / target for name, target in TARGETS.items()}


@dataclass(frozen=True)
class QemuBuild:
    build: Path
    tree: Path
    head: str
    described: str  # what was built: "vhost-blk = v10.0.2-ds-base + 3 patches"
    configured: bool
    steps: ninja.Steps
    seconds: float
    log: Path

    @property
    def binaries(self) -> dict[str, Path]:
        return binaries(self.build)


@contextlib.contextmanager
def _lock(build: Path) -> Iterator[None]:
    """One QEMU build at a time on a build directory (and its tree)."""
    build.parent.mkdir(parents=True, exist_ok=True)
    with build.with_name(build.name + ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another `kseries qemu` is building in {build}",
                             "wait for it to finish") from None
        yield


def build(man: QemuManifest, build_dir: Path, progress: Progress, *, patches: Path,
          jobs: int | None = None,
          apply_series: bool = True, force: bool = False, reconfigure: bool = False,
          tarball: Path | None = None) -> QemuBuild:
    t0 = time.monotonic()
    build_dir = build_dir.resolve()
    with _lock(build_dir):
        tree = fetch.fetch(man, progress, tarball)
        if apply_series:
            applied = apply.apply(tree, man.tag, man.branch, patches, progress, force)
            head = applied.head
            described = f"{applied.branch} = {man.tag} + {applied.count} patches"
        else:
            head = git(tree, "rev-parse", "HEAD").stdout.strip()
            ref = git(tree, "symbolic-ref", "-q", "--short", "HEAD", check=False).stdout.strip()
            described = f"{ref or 'detached HEAD'} as checked out (--no-apply)"
            progress.say(f"qemu: building {tree} {described} at {head[:12]}")
        opts = configure.options(sys.executable, shutil.which("ccache") is not None)
        configured = configure.configure(tree, build_dir, opts, progress, force=reconfigure)
        configure.link_firmware(build_dir)
        log = build_dir / "build.log"
        log.write_text("")
        progress.say(f"qemu: ninja {' '.join(TARGETS.values())}")
        steps = ninja.run(build_dir, list(TARGETS.values()), progress, log, jobs)
    took = time.monotonic() - t0
    result = QemuBuild(build_dir, tree, head, described, configured, steps, took, log)
    for name, path in result.binaries.items():
        if not path.is_file():
            raise KseriesError(f"the build finished but {name} is missing at {path}",
                               f"see {log}")
    progress.say(f"qemu: build: {steps}, {took:.1f}s")
    return result
