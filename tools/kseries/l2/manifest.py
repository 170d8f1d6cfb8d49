"""What l2-guest/manifest.toml pins: the guest kernel package and the tools."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from .. import tomlconfig
from ..deb import Pin
from ..tomlconfig import NON_EMPTY, NonEmptyStr, Rule

# Programs are named by their full path on the host.
_Absolute = Annotated[str, Rule(lambda v: v.startswith("/"), "an absolute path",
                                "name programs by their full path on the host",
                                example='"/usr/bin/fio"')]
_LINKS = Rule(lambda links: all(k.startswith("/") and v and "/" not in v
                                for k, v in links.items()),
              "a table mapping absolute paths to file names",
              'write links = { "/usr/sbin/mkfs.ext4" = "mke2fs" }')


@dataclass(frozen=True)
class _Kernel:
    package: NonEmptyStr
    debian_version: NonEmptyStr
    release: NonEmptyStr
    sha256: Annotated[str, tomlconfig.matches(r"[0-9a-f]{64}",
                                              "a sha256 (64 lowercase hex digits)",
                                              "copy it from `sha256sum` of the .deb")]
    modules: Annotated[tuple[NonEmptyStr, ...], NON_EMPTY]


@dataclass(frozen=True)
class _Initramfs:
    busybox: _Absolute
    programs: Annotated[tuple[_Absolute, ...], NON_EMPTY]
    links: Annotated[dict[str, str], _LINKS] = field(default_factory=dict)


@dataclass(frozen=True)
class _File:
    kernel: _Kernel
    initramfs: _Initramfs


@dataclass(frozen=True)
class L2Manifest:
    path: Path
    pin: Pin
    release: str
    modules: tuple[str, ...]
    busybox: Path
    programs: tuple[Path, ...]
    links: dict[str, str]

    @property
    def init(self) -> Path:
        """The guest's init (its checks), next to the manifest."""
        return self.path.parent / "init"

    @property
    def cache(self) -> Path:
        return self.path.parent / "cache"


def load(path: Path) -> L2Manifest:
    """Parse and check the manifest; a UsageError names what is wrong."""
    data = tomlconfig.load(_File, path, what="L2 manifest",
                           missing_hint="run from the project checkout",
                           hint="see the comments in l2-guest/manifest.toml")
    k, i = data.kernel, data.initramfs
    pin = Pin(k.package, k.debian_version, k.sha256, "amd64", path)
    return L2Manifest(path=path, pin=pin, release=k.release, modules=k.modules,
                      busybox=Path(i.busybox), programs=tuple(Path(p) for p in i.programs),
                      links=dict(i.links))
