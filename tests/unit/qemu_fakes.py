"""A fake QEMU orig tarball, a build fix for it and a manifest pinning them
(for the kseries.qemu tests; not collected by pytest)."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers import git, init_repo

from kseries.qemu import manifest

VERSION = "1:10.0.2+ds-2+deb13u1~bpo12+1"
TARBALL = "qemu_10.0.2+ds.orig.tar.xz"
TOPDIR = "qemu-10.0.2"
DIRECTORY = "pool/main/q/qemu"
FILES = {
    "configure": "#!/bin/sh\necho configure \"$@\"\n",
    "meson.build": "project('qemu')\nunpack_edk2_blobs = bzip2.found()\n",
    "hw/block/virtio-blk.c": "/* virtio-blk */\n",
    ".gitignore": "*.patch\n/build/\n",
}


@dataclass(frozen=True)
class FakeSource:
    mirror: Path  # file:// mirror root holding DIRECTORY/TARBALL
    tarball: Path
    size: int
    sha256: str
    fixes: Path  # a fixes directory with one patch and a series file


def _fix_patch(root: Path, src: Path) -> Path:
    """A format-patch file that changes meson.build of the fake tree."""
    repo = init_repo(root / "fixrepo")
    (repo / "meson.build").write_text(FILES["meson.build"])
    git(repo, "add", "meson.build")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "meson.build").write_text(
        FILES["meson.build"].replace("found()", "found() and fs.exists('x')"))
    git(repo, "commit", "-q", "-a", "-m", "meson: unpack the edk2 blobs only when present")
    fixes = root / "fixes"
    fixes.mkdir()
    name = git(repo, "format-patch", "--zero-commit", "-1", "-o", str(fixes))
    (fixes / "series").write_text(Path(name).name + "\n")
    return fixes


def make_source(root: Path) -> FakeSource:
    src = root / "src" / TOPDIR
    for name, text in FILES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    (src / "configure").chmod(0o755)
    mirror = root / "mirror"
    tarball = mirror / DIRECTORY / TARBALL
    tarball.parent.mkdir(parents=True)
    subprocess.run(["tar", "-cJf", str(tarball), "-C", str(src.parent), TOPDIR], check=True)
    data = tarball.read_bytes()
    return FakeSource(mirror, tarball, len(data), hashlib.sha256(data).hexdigest(),
                      _fix_patch(root, src))


def write_manifest(root: Path, fake: FakeSource, **override: str | int) -> manifest.QemuManifest:
    """qemu-tree/manifest.toml under ``root`` pinning ``fake`` (fields overridable)."""
    values: dict[str, str | int] = {
        "version": "10.0.2", "package": "qemu", "debian_version": VERSION,
        "mirror": f"file://{fake.mirror}", "suite": "bookworm-backports", "component": "main",
        "tarball": TARBALL, "tarball_size": fake.size, "tarball_sha256": fake.sha256,
        "topdir": TOPDIR, "import_tag": "v10.0.2-ds", "tag": "v10.0.2-ds-base",
        "fixes": str(fake.fixes),
    }
    values.update(override)
    lines = ["[source]"]
    for key, value in values.items():
        lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    lines += ["", "[series]", 'branch = "vhost-blk"', 'patches = "patches/qemu"', ""]
    path = root / "qemu-tree" / "manifest.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return manifest.load(path)
