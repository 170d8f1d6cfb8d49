"""The pinned QEMU source, read from qemu-tree/manifest.toml."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import UsageError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_STRINGS = ("version", "package", "debian_version", "mirror", "suite", "component",
            "tarball", "tarball_sha256", "topdir", "import_tag", "tag", "fixes")


@dataclass(frozen=True)
class QemuManifest:
    """What ``qemu-tree/manifest.toml`` pins."""

    path: Path
    version: str
    package: str
    debian_version: str
    mirror: str
    suite: str
    component: str
    tarball: str
    tarball_size: int
    tarball_sha256: str
    topdir: str
    import_tag: str
    tag: str
    fixes: str
    branch: str
    patches: str

    @property
    def project_root(self) -> Path:
        return self.path.parent.parent

    @property
    def tree_dir(self) -> Path:
        """Where the imported tree lives (git-ignored)."""
        return self.path.parent / "qemu"

    @property
    def cache_dir(self) -> Path:
        """Downloads and the private apt index (git-ignored)."""
        return self.path.parent / "cache"

    @property
    def fixes_dir(self) -> Path:
        return self.path.parent / self.fixes

    @property
    def patches_dir(self) -> Path:
        return self.project_root / self.patches

    @property
    def spec(self) -> str:
        return f"{self.package}={self.debian_version}"

    def url(self, directory: str) -> str:
        """The tarball's URL, given the Sources index's ``Directory``."""
        return f"{self.mirror.rstrip('/')}/{directory.strip('/')}/{quote(self.tarball)}"


def load(path: Path) -> QemuManifest:
    """Parse and validate; a problem is a UsageError naming the key."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"QEMU manifest {path} does not exist",
                         "run from the project checkout or pass --manifest PATH") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"QEMU manifest {path} is not valid TOML: {exc}",
                         "fix the file") from None
    source = data.get("source")
    if not isinstance(source, dict):
        raise UsageError(f"QEMU manifest {path} has no [source] table",
                         "add [source] with the pin (see qemu-tree/manifest.toml)")
    values: dict[str, str] = {}
    for key in _STRINGS:
        value = source.get(key)
        if not isinstance(value, str) or not value:
            raise UsageError(f"QEMU manifest {path}: [source] {key} is missing or not a string",
                             f'set {key} = "..." in [source]')
        values[key] = value
    size = source.get("tarball_size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise UsageError(f"QEMU manifest {path}: [source] tarball_size is missing or not a "
                         "positive integer", "copy the size in bytes from the Sources index")
    if not _SHA256.match(values["tarball_sha256"]):
        raise UsageError(f"QEMU manifest {path}: [source] tarball_sha256 is not a sha256 "
                         "(64 lowercase hex digits)", "copy the value from the Sources index")
    if not values["mirror"].startswith(("http://", "https://", "file://")):
        raise UsageError(f"QEMU manifest {path}: [source] mirror {values['mirror']!r} is not "
                         "an http(s) URL", 'e.g. mirror = "http://deb.debian.org/debian"')
    series = data.get("series", {})
    if not isinstance(series, dict):
        raise UsageError(f"QEMU manifest {path}: [series] must be a table", "fix the file")
    branch = series.get("branch", "vhost-blk")
    patches = series.get("patches", "patches/qemu")
    if not isinstance(branch, str) or not isinstance(patches, str) or not branch or not patches:
        raise UsageError(f"QEMU manifest {path}: [series] branch/patches must be strings",
                         "fix the file")
    return QemuManifest(path=path.resolve(), tarball_size=size, branch=branch,
                        patches=patches, **values)
