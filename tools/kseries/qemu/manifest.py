"""The pinned QEMU source, read from qemu-tree/manifest.toml."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from .. import tomlconfig
from ..tomlconfig import POSITIVE, NonEmptyStr, Rule


@dataclass(frozen=True)
class _Source:
    """[source]: the pinned orig tarball and where to find it."""

    version: NonEmptyStr
    package: NonEmptyStr
    debian_version: NonEmptyStr
    mirror: Annotated[str, Rule(lambda v: v.startswith(("http://", "https://", "file://")),
                                "an http(s) URL",
                                example='"http://deb.debian.org/debian"')]
    suite: NonEmptyStr
    component: NonEmptyStr
    tarball: NonEmptyStr
    tarball_size: Annotated[int, Rule(POSITIVE.holds, "a positive integer",
                                      "copy the size in bytes from the Sources index")]
    tarball_sha256: Annotated[str, tomlconfig.matches(
        r"[0-9a-f]{64}", "a sha256 (64 lowercase hex digits)",
        "copy the value from the Sources index")]
    topdir: NonEmptyStr
    import_tag: NonEmptyStr
    tag: NonEmptyStr
    fixes: NonEmptyStr


@dataclass(frozen=True)
class _Series:
    branch: NonEmptyStr = "vhost-blk"
    patches: NonEmptyStr = "patches/qemu"


@dataclass(frozen=True)
class _File:
    source: _Source
    series: _Series = field(default_factory=_Series)


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
    patches: str  # relative to the checkout: paths.Places.in_checkout

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
    def spec(self) -> str:
        return f"{self.package}={self.debian_version}"

    def url(self, directory: str) -> str:
        """The tarball's URL, given the Sources index's ``Directory``."""
        return f"{self.mirror.rstrip('/')}/{directory.strip('/')}/{quote(self.tarball)}"


def load(path: Path) -> QemuManifest:
    """Parse and validate; a problem is a UsageError naming the key."""
    data = tomlconfig.load(_File, path, what="QEMU manifest",
                           missing_hint="run from the project checkout or pass --manifest PATH")
    return QemuManifest(path=path.resolve(), branch=data.series.branch,
                        patches=data.series.patches, **dataclasses.asdict(data.source))
