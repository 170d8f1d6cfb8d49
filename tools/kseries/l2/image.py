"""Write the L2 guest's kernel and initramfs into build/l2.

The kernel is the pinned Debian package's vmlinuz, unchanged.  The
initramfs holds l2-guest/init, busybox, the manifest's programs with the
libraries they load, and the manifest's modules with their dependencies
(flat in /lib/modules, with /modules.order saying what to load first).
A stamp of everything that went in makes a second build a no-op.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import deb as debs
from ..errors import UsageError
from ..progress import Progress
from . import libs, modules
from .manifest import L2Manifest

# Directories init mounts on or writes to.
_DIRS = ("bin", "dev", "proc", "sys", "tmp", "mnt", "etc", "lib/modules")


@dataclass(frozen=True)
class Image:
    vmlinuz: Path
    initrd: Path
    modules: tuple[str, ...]
    rebuilt: bool
    seconds: float


def outputs(outdir: Path) -> tuple[Path, Path]:
    return outdir / "vmlinuz", outdir / "initrd.img"


def _host_files(man: L2Manifest) -> list[Path]:
    """Programs and their libraries, each once, in a stable order."""
    files: list[Path] = []
    for program in (man.busybox, *man.programs):
        for path in (program, *libs.shared_libs(program)):
            if path not in files:
                files.append(path)
    return files


def _stamp(man: L2Manifest, host_files: list[Path]) -> str:
    digest = hashlib.sha256()
    for name, data in (("manifest", man.path.read_bytes()), ("init", man.init.read_bytes())):
        digest.update(name.encode() + b"\0" + data + b"\0")
    for path in host_files:
        digest.update(str(path).encode() + b"\0" + debs.sha256_file(path).encode() + b"\0")
    return digest.hexdigest()


def _copy_host_file(src: Path, root: Path) -> None:
    dest = root / src.relative_to("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src.resolve(), dest)


def _stage(man: L2Manifest, host_files: list[Path], pkgroot: Path, root: Path) -> list[str]:
    for d in _DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    for path in host_files:
        _copy_host_file(path, root)
    shutil.copy2(man.busybox, root / "bin" / "busybox")
    for link, target in man.links.items():
        dest = root / link.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(target)
    init = root / "init"
    shutil.copy2(man.init, init)
    init.chmod(0o755)
    moddir = pkgroot / "lib" / "modules" / man.release
    if not moddir.is_dir():
        raise UsageError(f"{man.pin.spec} has no lib/modules/{man.release}",
                         f"set release in {man.path} to the package's kernel release")
    available = modules.index(moddir)
    order = modules.load_order(man.modules, available, modules.modinfo_depends)
    for name in order:
        src = available[name]
        if not src.name.endswith(".ko"):
            raise UsageError(f"{src.name} is compressed; busybox insmod loads plain .ko files",
                             "pin a kernel package with uncompressed modules")
        shutil.copy2(src, root / "lib" / "modules" / f"{name}.ko")
    (root / "modules.order").write_text("".join(f"{name}\n" for name in order))
    return order


def _cpio(root: Path, dest: Path) -> None:
    """newc archive, zstd-compressed (the Debian kernel has RD_ZSTD)."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    tmp = dest.with_suffix(".tmp")
    with tmp.open("wb") as out:
        cpio = subprocess.Popen(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0",
                                 "--reproducible"], cwd=root, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        zstd = subprocess.Popen(["zstd", "-q", "-3", "-T0", "-c"], stdin=cpio.stdout,
                                stdout=out)
        assert cpio.stdin is not None and cpio.stdout is not None
        cpio.stdout.close()
        cpio.stdin.write("".join(f"{n}\n" for n in names).encode())
        cpio.stdin.close()
        if cpio.wait() != 0 or zstd.wait() != 0:
            raise UsageError(f"cpio | zstd failed writing {dest}",
                             "install cpio and zstd (tools/run does)")
    os.replace(tmp, dest)


def build(man: L2Manifest, outdir: Path, progress: Progress) -> Image:
    """build/l2/vmlinuz and initrd.img, unless the stamp says they are current."""
    t0 = time.monotonic()
    for tool in ("dpkg-deb", "cpio", "zstd", "modinfo", "ldd"):
        if shutil.which(tool) is None:
            raise UsageError(f"{tool} is not installed; the L2 image needs it",
                             "run tools/run once, or install dpkg, cpio, zstd, kmod, libc-bin")
    host_files = _host_files(man)
    deb = debs.download(man.pin, man.cache, progress,
                        " (package, debian_version, release and sha256 together)")
    stamp = _stamp(man, host_files) + man.pin.sha256
    vmlinuz, initrd = outputs(outdir)
    stamp_file = outdir / "stamp"
    order_file = outdir / "modules.order"
    if (vmlinuz.is_file() and initrd.is_file() and order_file.is_file()
            and stamp_file.is_file() and stamp_file.read_text().strip() == stamp):
        progress.say(f"l2: {initrd} is up to date")
        return Image(vmlinuz, initrd, tuple(order_file.read_text().split()), False,
                     time.monotonic() - t0)
    outdir.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="kseries-l2-", dir=outdir) as tmp:
        pkgroot, root = Path(tmp) / "pkg", Path(tmp) / "root"
        with progress.stage(f"l2: unpack {deb.name}"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(pkgroot)], check=True)
        kernel = pkgroot / "boot" / f"vmlinuz-{man.release}"
        if not kernel.is_file():
            raise UsageError(f"{deb.name} has no boot/vmlinuz-{man.release}",
                             f"set release in {man.path} to the package's kernel release")
        with progress.stage("l2: initramfs"):
            order = _stage(man, host_files, pkgroot, root)
            _cpio(root, initrd)
        shutil.copy2(kernel, vmlinuz)
    order_file.write_text("".join(f"{name}\n" for name in order))
    stamp_file.write_text(stamp + "\n")
    mib = initrd.stat().st_size / (1 << 20)
    progress.say(f"l2: {initrd} {mib:.1f} MiB, modules {' '.join(order)}")
    return Image(vmlinuz, initrd, tuple(order), True, time.monotonic() - t0)
