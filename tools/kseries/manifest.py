"""The pinned base tree and series location, read from manifest.toml."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from . import tomlconfig
from .tomlconfig import SHA256, NonEmptyStr


@dataclass(frozen=True)
class _Base:
    """[base]: the pin."""

    kernel_version: NonEmptyStr
    package: NonEmptyStr
    debian_version: NonEmptyStr
    deb_sha256: Annotated[str, SHA256]
    tarball: NonEmptyStr
    tarball_sha256: Annotated[str, SHA256]
    topdir: NonEmptyStr
    tag: NonEmptyStr


@dataclass(frozen=True)
class _Series:
    """[series]: where the series lives."""

    branch: NonEmptyStr = "vhost-blk"
    patches: NonEmptyStr = "patches"


@dataclass(frozen=True)
class _File:
    base: _Base
    series: _Series = field(default_factory=_Series)


@dataclass(frozen=True)
class Manifest:
    """What ``kernel-tree/manifest.toml`` pins."""

    path: Path
    kernel_version: str
    package: str
    debian_version: str
    deb_sha256: str
    tarball: str
    tarball_sha256: str
    topdir: str
    tag: str
    branch: str
    patches: str

    @property
    def deb_name(self) -> str:
        """File name apt-get download gives the package (':' escaped)."""
        version = self.debian_version.replace(":", "%3a")
        return f"{self.package}_{version}_all.deb"


def load(path: Path) -> Manifest:
    """Parse and validate a manifest; raise UsageError naming the problem."""
    data = tomlconfig.load(_File, path, what="manifest",
                           missing_hint="run from the project checkout or pass --manifest PATH")
    return Manifest(path=path.resolve(), branch=data.series.branch,
                    patches=data.series.patches, **dataclasses.asdict(data.base))
